"""The loopback stack itself: each server is real, answers as the modules will need, binds loopback only."""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json
import urllib.request

import psutil
import pytest

from ansible_collections.mlops.migration.plugins.module_utils.checksums import (
    multipart_etag_of_fileobj,
    normalize_etag,
)

pytestmark = pytest.mark.integration


def listening_addresses(pid):
    proc = psutil.Process(pid)
    addresses = set()
    for member in [proc] + proc.children(recursive=True):
        try:
            connections = member.net_connections(kind="inet")
        except psutil.NoSuchProcess:  # a per-connection child (sshd) that has just ended
            continue
        addresses.update(conn.laddr.ip for conn in connections if conn.status == psutil.CONN_LISTEN)
    return addresses


def assert_loopback_only(pid):
    addresses = listening_addresses(pid)
    assert addresses, f"pid {pid} listens on nothing"
    assert all(ip.startswith("127.") or ip == "::1" for ip in addresses), addresses


def test_ssh_hosts_are_two_loopback_hosts(ssh_stack):
    hosts = ssh_stack["ssh"]
    assert (hosts["source"].host, hosts["target"].host) == ("127.0.0.2", "127.0.0.3")
    for host in hosts.values():
        assert host.run("hostname >/dev/null && rsync --version | head -n 1").stdout.startswith("rsync")
        assert_loopback_only(host.process.pid)


def test_s3_endpoints_check_credentials_and_content_md5(s3_pair):
    from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel

    source, target = s3_pair["source"], s3_pair["target"]
    assert source.endpoint_url != target.endpoint_url
    s3 = source.client()
    s3.create_bucket(Bucket="stack-check")
    body = b"hello"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket="stack-check", Key="dir with space/ü+%.txt", Body=body, ContentMD5=good)
    head = s3.head_object(Bucket="stack-check", Key="dir with space/ü+%.txt")
    assert normalize_etag(head["ETag"]) == hashlib.md5(body).hexdigest()

    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as bad_digest:
        s3.put_object(Bucket="stack-check", Key="x", Body=body, ContentMD5=wrong)
    assert bad_digest.value.response["Error"]["Code"] == "BadDigest"

    source.secret_key, real = "wrong-secret", source.secret_key
    try:
        with pytest.raises(ClientError) as denied:
            source.client().list_buckets()
    finally:
        source.secret_key = real
    assert denied.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")
    assert "stack-check" not in [b["Name"] for b in target.client().list_buckets()["Buckets"]]
    assert_loopback_only(source.process.pid)


def test_s3_multipart_etag_matches_our_helper(s3_pair):
    s3 = s3_pair["target"].client()
    s3.create_bucket(Bucket="multipart-check")
    part_size = 5 * 1024 * 1024
    data = bytes(range(256)) * (part_size * 3 // 256) + b"tail"
    upload = s3.create_multipart_upload(Bucket="multipart-check", Key="big")
    parts = []
    for number, offset in enumerate(range(0, len(data), part_size), 1):
        chunk = data[offset:offset + part_size]
        reply = s3.upload_part(Bucket="multipart-check", Key="big", PartNumber=number,
                               UploadId=upload["UploadId"], Body=chunk,
                               ContentMD5=base64.b64encode(hashlib.md5(chunk).digest()).decode())
        parts.append({"ETag": reply["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(Bucket="multipart-check", Key="big", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    etag = normalize_etag(s3.head_object(Bucket="multipart-check", Key="big")["ETag"])
    assert etag.endswith("-4")
    assert etag == multipart_etag_of_fileobj(io.BytesIO(data), part_size)
    assert s3.head_object(Bucket="multipart-check", Key="big", PartNumber=2)["ContentLength"] == part_size


def test_mlflow_servers_are_independent(mlflow_pair):
    def call(server, path, payload=None):
        request = urllib.request.Request(
            f"{server.tracking_uri}/api/2.0/mlflow/{path}",
            data=json.dumps(payload).encode() if payload is not None else None,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    source, target = mlflow_pair["source"], mlflow_pair["target"]
    created = call(source, "experiments/create", {"name": "stack-check"})
    assert created["experiment_id"]
    found = call(source, "experiments/get-by-name?experiment_name=stack-check")
    assert found["experiment"]["name"] == "stack-check"
    with pytest.raises(urllib.error.HTTPError) as missing:
        call(target, "experiments/get-by-name?experiment_name=stack-check")
    assert missing.value.code == 404
    assert_loopback_only(source.process.pid)


def test_mongo_round_trips_bson_types_and_reports_duplicates(mongo_pair):
    import pymongo  # pylint: disable=import-outside-toplevel
    from bson import Binary, Decimal128, ObjectId, encode  # pylint: disable=import-outside-toplevel

    source = mongo_pair["source"]
    with source.client() as client:
        coll = client.backend.task
        doc = {"_id": ObjectId(), "created": datetime.datetime(2024, 1, 2, 3, 4, 5, 123000),
               "score": Decimal128("0.10"), "blob": Binary(b"\x00\x01", 0),
               "uuid": Binary(b"0" * 16, 4), "nested": {"a": [1, [2, 3], {"b": "x"}]}}
        coll.insert_one(doc)
        assert encode(coll.find_one({"_id": doc["_id"]})) == encode(doc)
        with pytest.raises(pymongo.errors.BulkWriteError) as dup:
            coll.insert_many([{"_id": 1}, {"_id": 1}, {"_id": 2}], ordered=False)
        assert dup.value.details["nInserted"] == 2
        assert [e["code"] for e in dup.value.details["writeErrors"]] == [11000]
    with pytest.raises(pymongo.errors.OperationFailure):
        with pymongo.MongoClient(source.uri.replace(source.password, "wrong"),
                                 serverSelectionTimeoutMS=3000) as bad:
            bad.admin.command("ping")
    with mongo_pair["target"].client() as other:
        assert other.backend.task.count_documents({}) == 0
    if source.is_wire_server:
        assert_loopback_only(source.process.pid)
