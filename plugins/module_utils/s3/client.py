# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small S3 REST client: the dozen calls the S3 modules make, signed with AWS Signature V4.

Why not boto3 for these: importing boto3 and building a client costs about 0.4 s per module
run, and botocore's per-request work makes a copy of many small objects CPU-bound. This
client speaks the S3 REST API over kept-alive HTTP/1.1 connections (module_utils/http11.py),
so a no-change pass costs little more than the two listings it needs.

It answers with the same shapes as boto3's S3 client (``{"ETag": ..}``, ``{"Contents": [..]}``,
``{"Body": stream}``) and raises :class:`ClientError` (with boto3's ``response`` mapping) for
error replies and :class:`EndpointConnectionError` when the endpoint cannot be reached, so
callers work with either client; :class:`BotoClient` wraps a boto3 client to raise the same
exceptions. Requests go path-style to one endpoint URL. Reads and retries are the caller's:
every request here is idempotent and is retried on a dropped connection, 500/502/503/504,
``SlowDown`` and ``RequestTimeout``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import Counter
from http import HTTPStatus
from queue import Empty, LifoQueue
from urllib.parse import quote, unquote_plus, urlsplit
from xml.etree import ElementTree

from ansible_collections.mlops.migration.plugins.module_utils.http11 import (
    Connection,
    refuse_control_characters,
    UnsafeHeader,
)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
RETRY_STATUS = (500, 502, 503, 504)
RETRY_CODES = ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable")
ATTEMPTS = 5
METADATA_PREFIX = "x-amz-meta-"


class ApiError(Exception):
    """Any failure of an S3 call, from this client or from a wrapped boto3 client."""


class ClientError(ApiError):
    """The service answered with an error; ``response`` is shaped as boto3's."""

    def __init__(self, code, message, status, operation):
        super().__init__(f"An error occurred ({code}) when calling the {operation} operation: {message}")
        self.response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


class EndpointConnectionError(ApiError):
    """The endpoint could not be reached, or dropped the connection on every attempt."""


class NoCredentialsError(ApiError):
    """boto3 found no credentials (only raised through :class:`BotoClient`)."""


def _uri(value, safe="/~"):
    return quote(value.encode("utf-8", "surrogatepass"), safe=safe)


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _children(element):
    return {_local(child.tag): child.text or "" for child in element}


def _error_from(status, reply_body, operation):
    try:
        code, message = str(status), HTTPStatus(status).phrase
    except ValueError:
        code, message = str(status), ""
    if reply_body:
        try:
            fields = _children(ElementTree.fromstring(reply_body))
            code, message = fields.get("Code") or code, fields.get("Message") or message
        except ElementTree.ParseError:
            message = reply_body[:200].decode("utf-8", "replace")
    return ClientError(code, message, status, operation)


class Body:
    """A streamed object body: ``read(n)`` and ``close()``; the connection goes back to the pool at the end."""

    def __init__(self, client, conn, response):
        self._client, self._conn, self._response = client, conn, response

    def read(self, amount=None):
        if self._response is None:
            return b""
        try:
            data = self._response.body.read(amount)
        except OSError as exc:
            self.close()
            raise EndpointConnectionError(f"reading from {self._client.label}: {exc}") from exc
        if self._response.body.done:
            self._client.release(self._conn, self._response)
            self._response = None
        return data

    def close(self):
        if self._response is not None:
            self._conn.close()  # not read to the end: the connection cannot be reused
            self._response = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class S3Client:
    """Path-style S3 calls against one endpoint URL with static credentials."""

    def __init__(self, endpoint_url, access_key, secret_key, session_token=None, region="us-east-1",
                 validate_certs=True, ca_bundle=None, max_pool=10, connect_timeout=10, read_timeout=120):
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint_url {endpoint_url!r} is not an http(s) URL")
        self.label = endpoint_url
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        default_port = 443 if self._https else 80
        self._host_header = parts.netloc.rsplit("@", 1)[-1] if parts.port not in (None, default_port) \
            else parts.hostname
        self._base = parts.path.rstrip("/")
        self._access_key, self._secret_key, self._token = access_key, secret_key, session_token
        self._region = region or "us-east-1"
        self._validate, self._ca_bundle = validate_certs, ca_bundle
        self._ssl = None
        self._pool = LifoQueue(maxsize=max_pool)
        self._timeouts = (connect_timeout, read_timeout)
        self._keys = {}
        self.requests = Counter()  # requests sent, by operation (retries included)
        self._counting = threading.Lock()

    # --- connections -------------------------------------------------------------------

    def _connect(self):
        if self._https and self._ssl is None:
            import ssl  # pylint: disable=import-outside-toplevel  # only https pays for it

            context = ssl.create_default_context(cafile=self._ca_bundle)
            if not self._validate:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl = context
        port = self._port or (443 if self._https else 80)
        return Connection(self._host, port, self._ssl, *self._timeouts)

    def _acquire(self):
        try:
            return self._pool.get_nowait(), True
        except Empty:
            return self._connect(), False

    def release(self, conn, response=None):
        if response is not None and response.will_close:
            conn.close()
            return
        try:
            self._pool.put_nowait(conn)
        except Exception:  # pylint: disable=broad-except  # pool full: drop the extra connection
            conn.close()

    def close(self):
        while True:
            try:
                self._pool.get_nowait().close()
            except Empty:
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- signing -----------------------------------------------------------------------

    def _signing_key(self, day):
        key = self._keys.get(day)
        if key is None:
            key = ("AWS4" + self._secret_key).encode()
            for part in (day, self._region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {day: key}
        return key

    def _sign(self, method, path, query, headers, payload_hash):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = payload_hash
        if self._token:
            headers["x-amz-security-token"] = self._token
        headers["host"] = self._host_header
        names = sorted(headers)
        canonical = "\n".join((
            method, path,
            "&".join(f"{_uri(k, '-_.~')}={_uri(v, '-_.~')}" for k, v in sorted(query)),
            "".join(f"{name}:{' '.join(str(headers[name]).split())}\n" for name in names),
            ";".join(names), payload_hash))
        scope = f"{stamp[:8]}/{self._region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(stamp[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
                                    f"SignedHeaders={';'.join(names)}, Signature={signature}")

    # --- requests ----------------------------------------------------------------------

    def _request(self, operation, method, bucket=None, key=None, query=(), headers=None, body=b"", stream=False):
        """Send one request (retried when transient); return ``(response, data or Body)``."""
        path = self._base + "/" + (_uri(bucket) if bucket else "")
        if key is not None:
            path += "/" + _uri(key)
        target = path + ("?" + "&".join(f"{_uri(k, '-_.~')}={_uri(v, '-_.~')}" for k, v in query) if query else "")
        if body and any(name.lower() == "content-md5" for name in headers or ()):
            payload_hash = UNSIGNED  # the signed Content-MD5 binds the body, as boto3 does over https
        else:
            payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        try:
            refuse_control_characters(target, headers or {})
        except UnsafeHeader as exc:
            raise ClientError("InvalidArgument", str(exc), 0, operation) from exc
        attempt, fresh = 0, False
        while True:
            sent = {name.lower(): value for name, value in (headers or {}).items()}
            self._sign(method, path, query, sent, payload_hash)
            sent["content-length"] = str(len(body))
            with self._counting:
                self.requests[operation] += 1
            conn, reused = None, False
            try:
                conn, reused = (self._connect(), False) if fresh else self._acquire()
                response = conn.request(method, target, sent, body)
                if stream and response.status < 300:
                    return response, Body(self, conn, response)
                data = response.body.read()
            except OSError as exc:
                if conn is not None:
                    conn.close()
                if reused:
                    fresh = True  # a kept-alive connection the server had dropped: again at once, on a new one
                    continue
                attempt += 1
                if attempt == ATTEMPTS:
                    raise EndpointConnectionError(
                        f"Could not connect to the endpoint URL: {self.label}{target} ({exc})") from exc
                time.sleep(0.1 * 2 ** attempt)
                continue
            self.release(conn, response)
            if response.status < 300:
                return response, data
            error = _error_from(response.status, data, operation)
            attempt += 1
            if attempt < ATTEMPTS and (response.status in RETRY_STATUS or error.response["Error"]["Code"] in RETRY_CODES):
                time.sleep(0.1 * 2 ** attempt)
                continue
            raise error

    @staticmethod
    def _metadata(response):
        return {name[len(METADATA_PREFIX):].lower(): value for name, value in response.getheaders()
                if name.lower().startswith(METADATA_PREFIX)}

    @staticmethod
    def _object_headers(content_md5=None, metadata=None, content_type=None):
        headers = {}
        if content_md5:
            headers["content-md5"] = content_md5
        if content_type:
            headers["content-type"] = content_type
        for name, value in (metadata or {}).items():
            headers[METADATA_PREFIX + name.lower()] = value
        return headers

    # --- the calls, with boto3's names and reply shapes --------------------------------
    # pylint: disable=invalid-name  # keyword arguments are boto3's

    def list_buckets(self):
        _response, data = self._request("ListBuckets", "GET")
        root = ElementTree.fromstring(data)
        return {"Buckets": [_children(item) for item in root.iter() if _local(item.tag) == "Bucket"]}

    def head_bucket(self, Bucket):  # noqa: N803
        self._request("HeadBucket", "HEAD", Bucket)
        return {}

    def create_bucket(self, Bucket):  # noqa: N803
        body = b""
        if self._region != "us-east-1":
            body = ('<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    f"<LocationConstraint>{self._region}</LocationConstraint></CreateBucketConfiguration>").encode()
        self._request("CreateBucket", "PUT", Bucket, body=body)
        return {}

    def list_objects_v2(self, Bucket, Prefix="", ContinuationToken=None, MaxKeys=1000, StartAfter=None,  # noqa: N803
                        Delimiter=None):  # noqa: N803
        query = [("list-type", "2"), ("encoding-type", "url"), ("max-keys", str(MaxKeys))]
        for name, value in (("prefix", Prefix), ("continuation-token", ContinuationToken), ("start-after", StartAfter),
                            ("delimiter", Delimiter)):
            if value:
                query.append((name, value))
        _response, data = self._request("ListObjectsV2", "GET", Bucket, query=query)
        root = ElementTree.fromstring(data)
        reply = {"Contents": [], "IsTruncated": False}
        for child in root:
            name = _local(child.tag)
            if name == "Contents":
                item = _children(child)
                reply["Contents"].append({"Key": unquote_plus(item["Key"], errors="surrogatepass"),
                                          "Size": int(item.get("Size") or 0), "ETag": item.get("ETag", "")})
            elif name == "CommonPrefixes":
                reply.setdefault("CommonPrefixes", []).append(
                    {"Prefix": unquote_plus(_children(child).get("Prefix") or "", errors="surrogatepass")})
            elif name == "IsTruncated":
                reply["IsTruncated"] = (child.text or "").strip() == "true"
            elif name == "NextContinuationToken":
                reply["NextContinuationToken"] = child.text
        return reply

    def head_object(self, Bucket, Key, PartNumber=None):  # noqa: N803
        query = [("partNumber", str(PartNumber))] if PartNumber else ()
        response, _data = self._request("HeadObject", "HEAD", Bucket, Key, query=query)
        return {"ContentLength": int(response.getheader("content-length") or 0),
                "ETag": response.getheader("etag") or "", "Metadata": self._metadata(response)}

    def get_object(self, Bucket, Key):  # noqa: N803
        response, body = self._request("GetObject", "GET", Bucket, Key, stream=True)
        return {"Body": body, "ContentLength": int(response.getheader("content-length") or 0),
                "ETag": response.getheader("etag") or "", "Metadata": self._metadata(response)}

    def put_object(self, Bucket, Key, Body=b"", ContentMD5=None, Metadata=None, ContentType=None):  # noqa: N803
        if not isinstance(Body, (bytes, bytearray, memoryview)):
            Body = Body.read()
        response, _data = self._request("PutObject", "PUT", Bucket, Key, body=bytes(Body),
                                        headers=self._object_headers(ContentMD5, Metadata, ContentType))
        return {"ETag": response.getheader("etag") or ""}

    def delete_object(self, Bucket, Key):  # noqa: N803
        self._request("DeleteObject", "DELETE", Bucket, Key)
        return {}

    def delete_objects(self, Bucket, Delete):  # noqa: N803
        from xml.sax.saxutils import escape  # pylint: disable=import-outside-toplevel

        body = "".join(f"<Object><Key>{escape(item['Key'])}</Key></Object>" for item in Delete["Objects"])
        body = (f"<Delete><Quiet>{'true' if Delete.get('Quiet') else 'false'}</Quiet>{body}</Delete>").encode()
        digest = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        _response, data = self._request("DeleteObjects", "POST", Bucket, query=[("delete", "")], body=body,
                                        headers={"content-md5": digest})
        errors = [_children(item) for item in ElementTree.fromstring(data) if _local(item.tag) == "Error"]
        return {"Errors": errors}

    def create_multipart_upload(self, Bucket, Key, Metadata=None, ContentType=None):  # noqa: N803
        _response, data = self._request("CreateMultipartUpload", "POST", Bucket, Key, query=[("uploads", "")],
                                        headers=self._object_headers(metadata=Metadata, content_type=ContentType))
        return {"UploadId": _children(ElementTree.fromstring(data))["UploadId"]}

    def upload_part(self, Bucket, Key, UploadId, PartNumber, Body, ContentMD5=None):  # noqa: N803
        response, _data = self._request("UploadPart", "PUT", Bucket, Key,
                                        query=[("partNumber", str(PartNumber)), ("uploadId", UploadId)],
                                        body=bytes(Body), headers=self._object_headers(ContentMD5))
        return {"ETag": response.getheader("etag") or ""}

    def complete_multipart_upload(self, Bucket, Key, UploadId, MultipartUpload):  # noqa: N803
        from xml.sax.saxutils import escape  # pylint: disable=import-outside-toplevel

        parts = "".join(f"<Part><PartNumber>{part['PartNumber']}</PartNumber><ETag>{escape(part['ETag'])}</ETag></Part>"
                        for part in MultipartUpload["Parts"])
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        _response, data = self._request("CompleteMultipartUpload", "POST", Bucket, Key,
                                        query=[("uploadId", UploadId)], body=body)
        root = ElementTree.fromstring(data)
        if _local(root.tag) == "Error":  # S3 may answer 200 and report the failure in the body
            fields = _children(root)
            raise ClientError(fields.get("Code", "InternalError"), fields.get("Message", ""), 200,
                              "CompleteMultipartUpload")
        return {"ETag": _children(root).get("ETag", "")}

    def abort_multipart_upload(self, Bucket, Key, UploadId):  # noqa: N803
        self._request("AbortMultipartUpload", "DELETE", Bucket, Key, query=[("uploadId", UploadId)])
        return {}

    def list_multipart_uploads(self, Bucket, Prefix=""):  # noqa: N803
        """The uploads in progress under a prefix (the first 1,000: enough to find one key's)."""
        query = [("uploads", ""), ("encoding-type", "url")] + ([("prefix", Prefix)] if Prefix else [])
        _response, data = self._request("ListMultipartUploads", "GET", Bucket, query=query)
        uploads = []
        for child in ElementTree.fromstring(data):
            if _local(child.tag) == "Upload":
                item = _children(child)
                uploads.append({"Key": unquote_plus(item.get("Key") or "", errors="surrogatepass"),
                                "UploadId": item.get("UploadId"), "Initiated": item.get("Initiated") or ""})
        return {"Uploads": uploads}

    def list_parts(self, Bucket, Key, UploadId, PartNumberMarker=0):  # noqa: N803
        query = [("uploadId", UploadId), ("max-parts", "1000")]
        if PartNumberMarker:
            query.append(("part-number-marker", str(PartNumberMarker)))
        _response, data = self._request("ListParts", "GET", Bucket, Key, query=query)
        reply = {"Parts": [], "IsTruncated": False}
        for child in ElementTree.fromstring(data):
            name = _local(child.tag)
            if name == "Part":
                item = _children(child)
                reply["Parts"].append({"PartNumber": int(item["PartNumber"]), "ETag": item.get("ETag", ""),
                                       "Size": int(item.get("Size") or 0)})
            elif name == "IsTruncated":
                reply["IsTruncated"] = (child.text or "").strip() == "true"
            elif name == "NextPartNumberMarker":
                reply["NextPartNumberMarker"] = int(child.text or 0)
        return reply


class BotoClient:
    """A boto3 S3 client whose calls raise this module's exceptions (credentials from boto3's chain)."""

    def __init__(self, client, label):
        self._client, self.label = client, label
        self.requests = Counter()  # calls made, by S3 operation (list_objects_v2 as ListObjectsV2; retries not seen)
        self._counting = threading.Lock()

    def __getattr__(self, name):
        call = getattr(self._client, name)

        def translated(*args, **kwargs):
            from botocore import exceptions  # pylint: disable=import-outside-toplevel

            with self._counting:
                self.requests["".join(word.capitalize() for word in name.split("_"))] += 1
            try:
                reply = call(*args, **kwargs)
            except exceptions.ClientError as exc:
                error = exc.response.get("Error", {})
                raised = ClientError(str(error.get("Code", "")), error.get("Message", ""),
                                     exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"), name)
                raise raised from exc
            except (exceptions.NoCredentialsError, exceptions.PartialCredentialsError) as exc:
                raise NoCredentialsError(str(exc)) from exc
            except exceptions.BotoCoreError as exc:
                raise EndpointConnectionError(str(exc)) from exc
            if isinstance(reply, dict) and "Body" in reply:
                reply["Body"] = BotoBody(reply["Body"], self.label)
            return reply
        return translated

    def close(self):
        self._client.close()


class BotoBody:
    """A botocore streaming body whose read errors are :class:`EndpointConnectionError`."""

    def __init__(self, body, label):
        self._body, self._label = body, label

    def read(self, amount=None):
        try:
            return self._body.read(amount)
        except Exception as exc:  # pylint: disable=broad-except  # urllib3/botocore read errors
            raise EndpointConnectionError(f"reading from {self._label}: {exc}") from exc

    def close(self):
        self._body.close()
