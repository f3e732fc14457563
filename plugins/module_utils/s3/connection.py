# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 connections: the option spec, clients for an endpoint, errors that name the endpoint,
bucket and key, and bucket checks made before any write.

Importable without Ansible. Calls go through module_utils/s3/client.py: its own small SigV4
client when an endpoint URL and keys are given (fast to start, cheap per request), or boto3
(imported only then) for AWS's default endpoint and boto3's credential chain.
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from dataclasses import dataclass

from ansible_collections.mlops.migration.plugins.module_utils.common import (
    CredentialsRefused,
    MigrationError,
    NotFound,
    Unreachable,
)
from ansible_collections.mlops.migration.plugins.module_utils.s3.client import (
    ApiError,
    BotoClient,
    ClientError,
    S3Client,
)


HAS_BOTO3 = importlib.util.find_spec("boto3") is not None  # imported only when a client needs it
CREDENTIAL_ERRORS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
                     "ExpiredToken", "403", "Forbidden")


class S3Error(MigrationError):
    """An S3 operation failed; the message names the endpoint, bucket and key, and the cause."""


class S3NotFound(S3Error, NotFound):
    """The bucket or key does not exist."""


class S3CredentialsRefused(S3Error, CredentialsRefused):
    """The endpoint refused the credentials, or there are none."""


class S3Unreachable(S3Error, Unreachable):
    """The endpoint did not answer."""


def connection_options():
    """Argument spec of one S3 connection (the doc fragment mlops.migration.s3 documents it)."""
    from ansible.module_utils.basic import env_fallback  # pylint: disable=import-outside-toplevel

    return dict(
        endpoint_url=dict(type="str", aliases=["s3_url"], fallback=(env_fallback, ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])),
        access_key=dict(type="str", aliases=["aws_access_key_id"], no_log=False,
                        fallback=(env_fallback, ["AWS_ACCESS_KEY_ID"])),
        secret_key=dict(type="str", aliases=["aws_secret_access_key"], no_log=True,
                        fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY"])),
        session_token=dict(type="str", aliases=["aws_session_token"], no_log=True,
                           fallback=(env_fallback, ["AWS_SESSION_TOKEN"])),
        region=dict(type="str", default="us-east-1", fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
        validate_certs=dict(type="bool", default=True),
        ca_bundle=dict(type="path", fallback=(env_fallback, ["AWS_CA_BUNDLE"])),
        client=dict(type="str", default="auto", choices=["auto", "builtin", "boto3"]),
    )


@dataclass
class Endpoint:
    """One S3 service and the credentials for it."""

    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    region: str = "us-east-1"
    validate_certs: bool = True
    ca_bundle: str | None = None
    client_kind: str = "auto"

    @classmethod
    def from_params(cls, params):
        values = {name: params.get(name) for name in connection_options_names()}
        values["client_kind"] = values.pop("client") or "auto"
        return cls(**values)

    @property
    def label(self):
        return self.endpoint_url or f"AWS S3 ({self.region})"

    def client(self, max_pool=10):
        """A client for this endpoint: the built-in one, or boto3 when ``client`` or missing settings ask for it."""
        builtin = bool(self.endpoint_url and self.access_key and self.secret_key)
        if self.client_kind == "builtin" and not builtin:
            raise S3Error(f"client=builtin needs endpoint_url, access_key and secret_key for {self.label}; "
                          "use client=auto to take credentials from boto3's chain")
        if builtin and self.client_kind != "boto3":
            try:
                return S3Client(self.endpoint_url, self.access_key, self.secret_key, self.session_token, self.region,
                                self.validate_certs, self.ca_bundle, max_pool=max_pool)
            except ValueError as exc:
                raise S3Error(str(exc)) from exc
        if not HAS_BOTO3:
            raise S3Error(f"boto3 is required on the host that runs this module to reach {self.label} without "
                          "endpoint_url, access_key and secret_key (or with client=boto3)")
        import boto3  # pylint: disable=import-outside-toplevel
        from botocore.config import Config  # pylint: disable=import-outside-toplevel

        config = Config(
            retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=max_pool,
            connect_timeout=10, read_timeout=120, parameter_validation=False,
            s3={"addressing_style": "path"} if self.endpoint_url else None,
            # Content-MD5 is what we send; S3-compatible servers need not know the newer CRC headers.
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        session = boto3.session.Session(aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                                        aws_session_token=self.session_token, region_name=self.region)
        verify = self.ca_bundle or self.validate_certs
        return BotoClient(session.client("s3", endpoint_url=self.endpoint_url, verify=verify, config=config),
                          self.label)


def connection_options_names():
    return ("endpoint_url", "access_key", "secret_key", "session_token", "region", "validate_certs", "ca_bundle",
            "client")


def s3_error(exc, endpoint, bucket, key=None):
    """The S3Error (typed by its cause) for an API error, naming the endpoint, bucket and key."""
    where = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or (code in ("404", "NotFound") and key is None):
            return S3NotFound(f"bucket {bucket} does not exist at {endpoint.label}")
        if code in ("NoSuchKey", "404", "NotFound"):
            return S3NotFound(f"{where} does not exist at {endpoint.label}")
        if code in CREDENTIAL_ERRORS or status == 403:
            return S3CredentialsRefused(f"{endpoint.label} rejected the credentials for {where} ({code or status})")
        if code == "BadDigest":
            return S3Error(f"{endpoint.label} refused {where}: the bytes sent do not match their Content-MD5")
        return S3Error(f"{where} at {endpoint.label}: {code} {error.get('Message', '')}".strip())
    if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return S3CredentialsRefused(f"no credentials for {endpoint.label}: set access_key and secret_key "
                                    "(or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
    if type(exc).__name__ in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return S3Unreachable(f"cannot reach {endpoint.label} for {where}: {exc}")
    return S3Error(f"{where} at {endpoint.label}: {exc}")


def explain(exc, endpoint, bucket, key=None):
    """The message of ``s3_error``: the endpoint, bucket and key, and what went wrong."""
    return str(s3_error(exc, endpoint, bucket, key))


@contextmanager
def s3_errors(endpoint, bucket, key=None):
    """Raise the typed S3Error of any API error inside the block (the one place errors are translated)."""
    try:
        yield
    except ApiError as exc:
        raise s3_error(exc, endpoint, bucket, key) from exc


def check_bucket(client, endpoint, bucket):
    """Fail early, before any write, when the bucket is missing or the credentials are wrong."""
    with s3_errors(endpoint, bucket):
        client.head_bucket(Bucket=bucket)


def ensure_bucket(client, endpoint, bucket, create=False, check_mode=False):
    """Check the bucket; when it is missing and ``create``, create it (not in check mode).

    Returns whether it was (or in check mode would be) created.
    """
    try:
        check_bucket(client, endpoint, bucket)
        return False
    except S3NotFound:
        if not create:
            raise
    if not check_mode:
        with s3_errors(endpoint, bucket):
            client.create_bucket(Bucket=bucket)
    return True


def location_options():
    """Argument spec of one S3 location: a connection, a bucket and a prefix in it."""
    return dict(connection_options(), bucket=dict(type="str", required=True), prefix=dict(type="str", default=""))


@dataclass
class Location:
    """A bucket (and a prefix in it) at an endpoint, with the client that reaches it."""

    client: object
    endpoint: Endpoint
    bucket: str
    prefix: str = ""

    def url(self, key=None):
        """``s3://bucket/key at endpoint``, for messages."""
        return f"s3://{self.bucket}/{self.prefix if key is None else key} at {self.endpoint.label}"


def open_bucket(params, max_pool=10, create=False, check_mode=False):
    """``(Location, created)`` for a location's options; the bucket is checked (or created) before any write."""
    endpoint = Endpoint.from_params(params)
    client = endpoint.client(max_pool=max_pool)
    created = ensure_bucket(client, endpoint, params["bucket"], create, check_mode)
    return Location(client, endpoint, params["bucket"], params.get("prefix") or ""), created
