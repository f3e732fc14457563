"""Unit tests of module_utils/s3/objects.py, client.py and sync.py: verification logic, listings merge, shards, errors."""

import hashlib
import io
import time

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.common import CredentialsRefused, NotFound, Unreachable
from ansible_collections.mlops.migration.plugins.module_utils.s3 import client as s3_client, connection, objects
from ansible_collections.mlops.migration.plugins.module_utils.s3.client import ClientError, EndpointConnectionError
from ansible_collections.mlops.migration.plugins.module_utils.checksums import multipart_etag
from ansible_collections.mlops.migration.plugins.module_utils.s3.sync import merge_listings

ENDPOINT = connection.Endpoint("http://127.0.0.1:9000", "ak", "sk")


def info(key, data, parts=None):
    if parts:
        etag = multipart_etag(hashlib.md5(data[o:o + parts]).digest() for o in range(0, len(data), parts))
    else:
        etag = hashlib.md5(data).hexdigest()
    return objects.ObjectInfo(key, len(data), etag)


@pytest.mark.parametrize("part", [None, 7, 10])
def test_source_check_accepts_the_right_bytes_in_any_chunking(part):
    data = bytes(range(256)) * 3
    obj = info("k", data, part)
    sizes = [min(part, len(data) - o) for o in range(0, len(data), part)] if part else None
    check = objects.SourceCheck(obj, sizes)
    for offset in range(0, len(data), 33):
        check.update(data[offset:offset + 33])
    assert check.mismatch() is None
    assert check.md5 == hashlib.md5(data).hexdigest()


def test_source_check_names_corruption_and_truncation():
    data = b"x" * 100
    check = objects.SourceCheck(info("k", data))
    check.update(b"x" * 99 + b"y")
    assert "the source says" in check.mismatch()
    short = objects.SourceCheck(info("k", data))
    short.update(b"x" * 50)
    assert short.mismatch() == "read 50 bytes of 100"


def at(client, bucket):
    return connection.Location(client, ENDPOINT, bucket)


class FakeClient:
    """Just enough of an S3 client to drive copy_object's checks without a server."""

    def __init__(self, body, put_etag=None):
        self.body, self.put_etag, self.puts = body, put_etag, []

    def get_object(self, **_kwargs):
        return {"Body": io.BytesIO(self.body)}

    def put_object(self, **kwargs):
        self.puts.append(kwargs)
        return {"ETag": '"%s"' % (self.put_etag or hashlib.md5(kwargs["Body"]).hexdigest())}


def test_copy_refuses_a_source_that_does_not_match_its_etag():
    obj = info("model.pt", b"original bytes")
    source = FakeClient(b"tampered bytes")
    target = FakeClient(b"")
    with pytest.raises(connection.S3Error, match=r"s3://src/model.pt at http://127.0.0.1:9000: content gives ETag"):
        objects.copy_object(at(source, "src"), at(target, "dst"), obj, "model.pt")
    assert target.puts == []


def test_copy_refuses_a_target_etag_that_is_not_the_md5():
    data = b"payload"
    target = FakeClient(b"", put_etag="0" * 32)
    with pytest.raises(connection.S3Error, match="stored ETag 0{32} is not the md5"):
        objects.copy_object(at(FakeClient(data), "src"), at(target, "dst"), info("k", data), "k")
    sent = target.puts[0]
    assert objects.b64_to_hex(sent["ContentMD5"]) == hashlib.md5(data).hexdigest()
    assert sent["Metadata"] == {}  # a plain copy: the ETag is the md5 and the source's own


def test_same_content_uses_head_only_when_etags_differ():
    src = objects.ObjectInfo("k", 10, "a" * 32 + "-2")
    heads = []

    def head():
        heads.append(1)
        return {"Metadata": {"mlops-source-etag": src.etag}}

    assert objects.same_content(src, objects.ObjectInfo("k", 10, src.etag), head) and not heads
    assert not objects.same_content(src, objects.ObjectInfo("k", 11, "b" * 32), head) and not heads
    assert objects.same_content(src, objects.ObjectInfo("k", 10, "b" * 32 + "-3"), head) and heads
    plain = objects.ObjectInfo("k", 10, "c" * 32)
    by_md5 = {"Metadata": {"md5chksum": objects.hex_to_b64("c" * 32)}}
    assert objects.same_content(plain, objects.ObjectInfo("k", 10, "d" * 32 + "-2"), lambda: by_md5)
    assert not objects.same_content(src, None, head)


def test_merge_listings_pairs_by_relative_key():
    def objs(*keys):
        return [objects.ObjectInfo(k, 1, "e") for k in keys]

    pairs = list(merge_listings(objs("old/a", "old/b", "old/d"), objs("new/b", "new/c", "new/d"), "old/", "new/"))
    assert [(rel, s is not None, t is not None) for rel, s, t in pairs] == [
        ("a", True, False), ("b", True, True), ("c", False, True), ("d", True, True)]


def test_merge_listings_refuses_an_unsorted_listing():
    unsorted = [objects.ObjectInfo(k, 1, "e") for k in ("b", "a")]
    with pytest.raises(connection.S3Error, match="not in key order"):
        list(merge_listings(unsorted, [], "", ""))


def test_shards_are_disjoint_and_cover_everything():
    keys = [f"k/{i}" for i in range(300)]
    shards = [{k for k in keys if objects.in_shard(k, i, 4)} for i in range(4)]
    assert sum(len(s) for s in shards) == 300 and set().union(*shards) == set(keys)
    assert all(objects.in_shard(k, 0, 1) for k in keys)


@pytest.mark.parametrize("code,status,expected,kind", [
    ("NoSuchBucket", 404, "bucket b does not exist at http://127.0.0.1:9000", NotFound),
    ("SignatureDoesNotMatch", 403, "http://127.0.0.1:9000 rejected the credentials for bucket b", CredentialsRefused),
    ("403", 403, "rejected the credentials", CredentialsRefused),
    ("BadDigest", 400, "do not match their Content-MD5", connection.S3Error),
])
def test_errors_name_the_endpoint_and_bucket(code, status, expected, kind):
    exc = ClientError(code, "m", status, "Op")
    assert expected in connection.explain(exc, ENDPOINT, "b")
    assert isinstance(connection.s3_error(exc, ENDPOINT, "b"), kind)  # callers decide on the type, not the text


def test_unreachable_endpoint_message():
    exc = EndpointConnectionError("Could not connect to the endpoint URL: http://127.0.0.1:1/b")
    assert connection.explain(exc, ENDPOINT, "b").startswith("cannot reach http://127.0.0.1:9000 for bucket b")
    assert isinstance(connection.s3_error(exc, ENDPOINT, "b"), Unreachable)
    with pytest.raises(connection.S3Unreachable):
        with connection.s3_errors(ENDPOINT, "b"):
            raise exc


def test_signature_matches_the_aws_documented_example(monkeypatch):
    """AWS's SigV4 example for S3 (GET /test.txt with a Range header, 2013-05-24)."""
    monkeypatch.setattr(s3_client.time, "gmtime", lambda: time.struct_time((2013, 5, 24, 0, 0, 0, 4, 144, 0)))
    client = s3_client.S3Client("https://examplebucket.s3.amazonaws.com", "AKIAIOSFODNN7EXAMPLE",
                                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    headers = {"range": "bytes=0-9"}
    client._sign("GET", "/test.txt", (), headers, s3_client.EMPTY_SHA256)  # pylint: disable=protected-access
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_error_replies_become_client_errors_with_boto3s_shape():
    body = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
    error = s3_client._error_from(404, body, "GetObject")  # pylint: disable=protected-access
    assert error.response == {"Error": {"Code": "NoSuchKey", "Message": "gone"},
                              "ResponseMetadata": {"HTTPStatusCode": 404}}
    headless = s3_client._error_from(403, b"", "HeadObject")  # pylint: disable=protected-access
    assert headless.response["Error"] == {"Code": "403", "Message": "Forbidden"}
    assert "rejected the credentials" in connection.explain(headless, ENDPOINT, "b", "k")


class MultipartFake(FakeClient):
    """A source whose object was uploaded in ``source_parts``, and a target recording multipart calls."""

    def __init__(self, body, source_parts=()):
        super().__init__(body)
        self.source_parts, self.parts, self.completed, self.aborted = list(source_parts), [], None, False

    def head_object(self, PartNumber=None, **_kwargs):  # noqa: N803  # pylint: disable=invalid-name
        return {"ContentLength": self.source_parts[PartNumber - 1] if PartNumber else len(self.body), "Metadata": {}}

    def create_multipart_upload(self, **_kwargs):
        return {"UploadId": "u1"}

    def list_multipart_uploads(self, **_kwargs):  # no killed run left an upload
        return {"Uploads": []}

    def upload_part(self, Body, ContentMD5, PartNumber, **_kwargs):  # noqa: N803  # pylint: disable=invalid-name
        assert objects.b64_to_hex(ContentMD5) == hashlib.md5(Body).hexdigest()  # what a server checks
        self.parts.append(len(Body))
        return {"ETag": hashlib.md5(Body).hexdigest()}

    def complete_multipart_upload(self, MultipartUpload, **_kwargs):  # noqa: N803  # pylint: disable=invalid-name
        self.completed = MultipartUpload["Parts"]
        return {"ETag": multipart_etag(bytes.fromhex(p["ETag"]) for p in MultipartUpload["Parts"])}

    def abort_multipart_upload(self, **_kwargs):
        self.aborted = True


@pytest.mark.parametrize("source_part_mib,uploaded", [
    (5, [5, 5, 2]),  # parts of at least 5 MiB: copied in the same parts, the source's ETag kept
    (1, [6, 6]),     # smaller parts cannot be reused: part_size parts, checked by their own md5s
    (7, [6, 6]),     # parts above the cap (7 MiB here, 64 MiB by default) are re-chunked, never held whole
])
def test_multipart_copy_parts(source_part_mib, uploaded, monkeypatch):
    mib = 1024 * 1024
    monkeypatch.setattr(objects, "MAX_REUSED_PART", 6 * mib)
    data = bytes(range(256)) * (12 * mib // 256)
    obj = info("big.pt", data, parts=source_part_mib * mib)
    sizes = [len(data[o:o + source_part_mib * mib]) for o in range(0, len(data), source_part_mib * mib)]
    source, target = MultipartFake(data, sizes), MultipartFake(b"")
    result = objects.copy_object(at(source, "src"), at(target, "dst"), obj, "big.pt",
                                 part_size=6 * mib, threshold=8 * mib)
    assert (result.bytes, result.method) == (len(data), "multipart-etag")
    assert target.parts == [n * mib for n in uploaded] and not target.aborted
    if source_part_mib == 5:
        assert multipart_etag(bytes.fromhex(p["ETag"]) for p in target.completed) == obj.etag


def test_multipart_copy_of_tampered_bytes_is_aborted():
    mib = 1024 * 1024
    data = b"a" * (12 * mib)
    obj = info("big.pt", data, parts=5 * mib)
    source, target = MultipartFake(b"b" + data[1:], [5 * mib, 5 * mib, 2 * mib]), MultipartFake(b"")
    with pytest.raises(connection.S3Error, match="content gives ETag"):
        objects.copy_object(at(source, "src"), at(target, "dst"), obj, "big.pt", threshold=8 * mib)
    assert target.aborted and target.completed is None


class PagedListing:
    """list_objects_v2 answered from scripted pages."""

    def __init__(self, pages):
        self.pages, self.calls = list(pages), 0

    def list_objects_v2(self, **_kwargs):
        self.calls += 1
        return self.pages.pop(0) if self.pages else {"Contents": [], "IsTruncated": False}


def item(key):
    return {"Key": key, "Size": 1, "ETag": '"' + "0" * 32 + '"'}


@pytest.mark.parametrize("second_page,complaint", [
    ({"Contents": [item("b")], "IsTruncated": True}, "gives no continuation token"),
    ({"Contents": [item("b")], "IsTruncated": True, "NextContinuationToken": "t1"}, "a continuation token it gave before"),
])
def test_a_listing_that_cannot_be_finished_is_an_error_not_the_end(second_page, complaint):
    from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import Endpoint, S3Error
    from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import list_objects

    client = PagedListing([{"Contents": [item("a")], "IsTruncated": True, "NextContinuationToken": "t1"}, second_page])
    keys = []
    with pytest.raises(S3Error, match=complaint):
        for info in list_objects(client, Endpoint("http://127.0.0.1:9", "k", "s"), "bucket"):
            keys.append(info.key)
    assert keys == ["a", "b"]  # what was listed was seen, and the caller learns the listing is cut


def test_delete_extra_deletes_nothing_when_the_source_listing_is_cut_short():
    """The source says it has more keys but gives no token: before, every target key after its
    first page looked extra and was deleted."""
    from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import Endpoint, Location, S3Error
    from ansible_collections.mlops.migration.plugins.module_utils.s3.sync import sync

    class Target(PagedListing):
        deleted = []

        def head_object(self, **_kwargs):
            return {"ETag": '"' + "0" * 32 + '"', "ContentLength": 1, "Metadata": {}}

        def delete_objects(self, Delete, **_kwargs):  # noqa: N803
            self.deleted.extend(o["Key"] for o in Delete["Objects"])
            return {}

    endpoint = Endpoint("http://127.0.0.1:9", "k", "s")
    source = PagedListing([{"Contents": [item("a")], "IsTruncated": True}])
    target = Target([{"Contents": [item(k) for k in ("a", "b", "c")], "IsTruncated": False}])
    with pytest.raises(S3Error, match="gives no continuation token"):
        sync(Location(source, endpoint, "src"), Location(target, endpoint, "dst"), parallel=2, delete_extra=True)
    assert target.deleted == []


class KeysClient:
    """A bucket of ``keys`` that counts its HEAD and list requests (a pure unit test of the choice between them)."""

    def __init__(self, keys):
        self.keys, self.heads, self.lists = sorted(keys), 0, 0

    def head_object(self, Bucket, Key):  # noqa: N803
        self.heads += 1
        if Key not in self.keys:
            raise ClientError("404", "Not Found", 404, "HeadObject")
        return {"ContentLength": 1, "ETag": '"%s"' % hashlib.md5(b"x").hexdigest()}

    def list_objects_v2(self, Bucket, Prefix="", ContinuationToken=None):  # noqa: N803
        self.lists += 1
        start = int(ContinuationToken or 0)
        found = [k for k in self.keys if k.startswith(Prefix)]
        page = found[start:start + 1000]
        more = start + 1000 < len(found)
        return {"Contents": [{"Key": k, "Size": 1, "ETag": '"e"'} for k in page], "IsTruncated": more,
                **({"NextContinuationToken": str(start + 1000)} if more else {})}


def test_a_short_key_list_is_looked_up_key_by_key_without_listing():
    client = KeysClient([f"p/k{i:05d}" for i in range(5000)])
    missing = []
    found = list(objects.listed_keys(client, ENDPOINT, "b", "p/", ["k00003", "k00001", "gone"], missing))
    assert [i.key for i in found] == ["p/k00001", "p/k00003"] and missing == ["gone"]
    assert (client.heads, client.lists) == (3, 0)


def test_a_long_key_list_is_found_by_one_listing_under_its_common_prefix():
    client = KeysClient([f"p/a/k{i:05d}" for i in range(3000)] + [f"p/b/k{i:05d}" for i in range(3000)])
    wanted = [f"a/k{i:05d}" for i in range(0, 3000, 2)] + ["a/gone"]
    missing = []
    found = list(objects.listed_keys(client, ENDPOINT, "b", "p/", wanted, missing))
    assert len(found) == 1500 and missing == ["a/gone"]
    assert client.heads == 0 and client.lists == 3  # the 3,000 keys under p/a/ only, not the bucket's 6,000


def test_source_check_with_a_seal_also_wants_the_sha256():
    data = b"x" * 100
    good = objects.SourceCheck(info("k", data), sha256=hashlib.sha256(data).hexdigest())
    good.update(data)
    assert good.mismatch() is None
    sealed_otherwise = objects.SourceCheck(info("k", data), sha256="0" * 64)  # md5 agrees, the seal does not
    sealed_otherwise.update(data)
    assert sealed_otherwise.mismatch().startswith("content gives SHA-256 ") and "the bundle's seal says 000" in \
        sealed_otherwise.mismatch()
