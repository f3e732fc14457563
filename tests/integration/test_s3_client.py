"""The built-in S3 client (module_utils/s3/client.py) against a real SeaweedFS, checked with boto3."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import uuid

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import check_bucket, Endpoint, S3Error
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import list_objects
from ansible_collections.mlops.migration.plugins.module_utils.s3.client import (
    BotoClient,
    ClientError,
    EndpointConnectionError,
    S3Client,
)

pytestmark = pytest.mark.integration
# Edge keys, multipart ETags, Content-MD5 refusal, listings and round trips: on both S3 servers.
S3_IMPLEMENTATIONS = ("seaweedfs", "minio")

KEYS = {
    "plain.txt": b"plain",
    "with space/and+plus%25.txt": b"space plus percent",
    "unicode/Ü ñ 中文.bin": "ü".encode() * 100,
    "odd/a=b&c;d,e'(f)[g]!*$@~.txt": b"reserved characters",
    "zero-byte": b"",
    "marker-dir/": b"",
    "deep/" + "/".join(f"l{i}" for i in range(12)) + "/leaf": b"deep",
}


def b64md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def server(s3_pair):
    return s3_pair["source"]


@pytest.fixture
def client(server):
    with S3Client(server.endpoint_url, server.access_key, server.secret_key) as made:
        yield made


@pytest.fixture
def bucket(client):
    name = f"c-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    return name


def test_every_call_agrees_with_boto3(server, client, bucket):
    boto = server.client()
    for key, data in KEYS.items():
        reply = client.put_object(Bucket=bucket, Key=key, Body=data, ContentMD5=b64md5(data),
                                  Metadata={"md5chksum": b64md5(data)})
        assert reply["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    assert bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]
    client.head_bucket(Bucket=bucket)

    # listing: keys decoded byte for byte, pages joined, the same as boto3 sees
    mine = [(o.key, o.size, o.etag) for o in list_objects(client, Endpoint(server.endpoint_url), bucket)]
    theirs = [(o["Key"], o["Size"], o["ETag"].strip('"')) for o in boto.list_objects_v2(Bucket=bucket)["Contents"]]
    assert mine == theirs and sorted(k for k, _s, _e in mine) == sorted(KEYS)
    first = client.list_objects_v2(Bucket=bucket, MaxKeys=2)
    assert first["IsTruncated"] and len(first["Contents"]) == 2 and first["NextContinuationToken"]
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="unicode/")["Contents"]] == [
        "unicode/Ü ñ 中文.bin"]

    for key, data in KEYS.items():
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == len(data) and head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
        # the same metadata as boto3 reads (SeaweedFS keeps none on a directory marker)
        assert head["Metadata"] == boto.head_object(Bucket=bucket, Key=key)["Metadata"]
        assert key == "marker-dir/" or head["Metadata"] == {"md5chksum": b64md5(data)}
        assert boto.get_object(Bucket=bucket, Key=key)["Body"].read() == data  # boto3 reads what we wrote
        with client.get_object(Bucket=bucket, Key=key)["Body"] as body:
            assert body.read() == data

    # multipart: parts with Content-MD5, metadata on the upload, part sizes by HEAD ?partNumber
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024), b"tail" * 1000]
    upload = client.create_multipart_upload(Bucket=bucket, Key="big/model.pt", Metadata={"md5chksum": "x"})
    done = []
    for number, data in enumerate(parts, 1):
        reply = client.upload_part(Bucket=bucket, Key="big/model.pt", UploadId=upload["UploadId"],
                                   PartNumber=number, Body=data, ContentMD5=b64md5(data))
        done.append({"ETag": reply["ETag"], "PartNumber": number})
    reply = client.complete_multipart_upload(Bucket=bucket, Key="big/model.pt", UploadId=upload["UploadId"],
                                             MultipartUpload={"Parts": done})
    assert reply["ETag"].strip('"').endswith("-3")
    assert client.head_object(Bucket=bucket, Key="big/model.pt", PartNumber=1)["ContentLength"] == 5 * 1024 * 1024
    assert boto.head_object(Bucket=bucket, Key="big/model.pt")["Metadata"] == {"md5chksum": "x"}
    assert boto.get_object(Bucket=bucket, Key="big/model.pt")["Body"].read() == b"".join(parts)

    # a body closed half read does not poison the pool: the next call still works
    body = client.get_object(Bucket=bucket, Key="big/model.pt")["Body"]
    assert len(body.read(1000)) == 1000
    body.close()
    assert client.get_object(Bucket=bucket, Key="plain.txt")["Body"].read() == b"plain"

    # an aborted upload leaves nothing
    upload = client.create_multipart_upload(Bucket=bucket, Key="aborted")
    client.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload["UploadId"])

    reply = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in KEYS], "Quiet": True})
    assert reply["Errors"] == []
    client.delete_object(Bucket=bucket, Key="big/model.pt")
    assert boto.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_a_wrong_content_md5_is_refused_and_nothing_is_stored(client, bucket):
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=bucket, Key="bad", Body=b"data", ContentMD5=b64md5(b"other"))
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(ClientError) as caught:
        client.head_object(Bucket=bucket, Key="bad")
    assert caught.value.response["Error"]["Code"] == "404"


def test_errors_name_the_bucket_and_the_cause(server, client):
    endpoint = Endpoint(server.endpoint_url, server.access_key, server.secret_key)
    with pytest.raises(S3Error, match="bucket no-such-bucket does not exist"):
        check_bucket(client, endpoint, "no-such-bucket")
    with pytest.raises(S3Error, match="does not exist"):
        list(list_objects(client, endpoint, "no-such-bucket"))
    wrong = S3Client(server.endpoint_url, server.access_key, "wrong-secret")
    with pytest.raises(S3Error, match="rejected the credentials"):
        check_bucket(wrong, endpoint, "no-such-bucket")
    with pytest.raises(ClientError) as caught:
        wrong.list_buckets()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = S3Client(f"http://127.0.0.1:{port}", "a", "b")
    with pytest.raises(EndpointConnectionError, match=f"127.0.0.1:{port}"):
        closed.list_buckets()
    with pytest.raises(S3Error, match=f"cannot reach http://127.0.0.1:{port}"):
        check_bucket(closed, Endpoint(f"http://127.0.0.1:{port}", "a", "b"), "x")


def test_endpoint_picks_the_client(server, tmp_path, monkeypatch):
    keys = dict(endpoint_url=server.endpoint_url, access_key=server.access_key, secret_key=server.secret_key)
    assert isinstance(Endpoint(**keys).client(), S3Client)
    assert isinstance(Endpoint(**keys, client_kind="boto3").client(), BotoClient)
    with pytest.raises(S3Error, match="client=builtin needs endpoint_url, access_key and secret_key"):
        Endpoint(server.endpoint_url, client_kind="builtin").client()

    # without keys: boto3's credential chain (here a shared credentials file), errors translated
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {server.access_key}\n"
                           f"aws_secret_access_key = {server.secret_key}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    endpoint = Endpoint(server.endpoint_url)
    chained = endpoint.client()
    assert isinstance(chained, BotoClient)
    with pytest.raises(S3Error, match="bucket no-such-bucket does not exist"):
        check_bucket(chained, endpoint, "no-such-bucket")
    with pytest.raises(ValueError, match="not an http"):
        S3Client("s3.example.org", "a", "b")
