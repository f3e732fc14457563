"""The loopback stack itself: each server is real, answers as the modules will need, binds loopback only."""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json
import urllib.error
import urllib.request

import psutil
import pytest

from ansible_collections.mlops.migration.plugins.module_utils.checksums import multipart_etag_of_fileobj, normalize_etag

pytestmark = pytest.mark.integration
S3_IMPLEMENTATIONS = ("seaweedfs", "minio")


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


@pytest.mark.mongo_implementation("ferretdb", "mongoeco")
def test_mongo_round_trips_bson_types_and_reports_duplicates(mongo_pair):
    import pymongo  # pylint: disable=import-outside-toplevel
    from bson import Binary, Decimal128, ObjectId, encode  # pylint: disable=import-outside-toplevel

    source = mongo_pair["source"]
    with source.client() as client:
        coll = client.backend.task
        doc = {"_id": ObjectId(), "created": datetime.datetime(2024, 1, 2, 3, 4, 5, 123000),
               "blob": Binary(b"\x00\x01", 0), "uuid": Binary(b"0" * 16, 4), "nested": {"a": [1, {"b": "x"}]}}
        if source.server != "ferretdb":  # types FerretDB v1 cannot store (MONGO_WIRE_QUIRKS.md)
            doc.update(score=Decimal128("0.10"), matrix=[[1, 2], [3]])
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
    if source.runs_here:
        assert_loopback_only(source.process.pid)


def test_ferretdb_differs_from_mongodb_as_documented(mongo_pair):
    """Each row of MONGO_WIRE_QUIRKS.md's FerretDB table, so an upgrade that changes one is noticed."""
    import pymongo  # pylint: disable=import-outside-toplevel
    from bson import Code, Decimal128, MaxKey, MinKey  # pylint: disable=import-outside-toplevel

    source = mongo_pair["source"]
    if source.server != "ferretdb":
        pytest.skip(f"MONGO_URI_SOURCE points at another server ({source.server}): FerretDB's quirks do not apply")
    with source.client() as client:
        coll = client.quirks.docs
        assert client.admin.command("buildInfo")["version"] == "7.0.42"  # the MongoDB version it claims
        refused = {}
        for name, doc in {"nested array": {"v": [[1]]}, "dollar key": {"v": {"$a": 1}},
                          "dotted key": {"v": {"a.b": 1}}}.items():
            with pytest.raises(pymongo.errors.WriteError) as error:
                coll.insert_one(doc)
            refused[name] = error.value.code
        assert refused == {"nested array": 2, "dollar key": 2, "dotted key": 2}
        coll.insert_one({"_id": "negzero", "v": -0.0})
        assert str(coll.find_one({"_id": "negzero"})["v"]) == "0.0"  # the sign of zero is lost
        with pytest.raises(pymongo.errors.OperationFailure) as ttl:
            coll.create_index("when", expireAfterSeconds=60)
        assert ttl.value.code == 238  # NotImplemented
        coll.insert_many([{"_id": n} for n in range(5000)])  # a large insert_many is taken whole
        assert coll.count_documents({"_id": {"$type": "int"}}) == 5000
    for value in (Decimal128("1.5"), float("nan"), Code("f()"), Code("f()", {"a": 1}), MinKey(), MaxKey()):
        with source.client() as client:  # the server panics in the connection's handler and drops it
            with pytest.raises(pymongo.errors.AutoReconnect):
                client.quirks.docs.insert_one({"v": value})
    with source.client() as client:
        assert client.quirks.docs.count_documents({"_id": "negzero"}) == 1  # and it serves the next client


def test_opensearch_indexes_searches_scrolls_and_bulk_loads(search_pair):
    source, target = search_pair["source"], search_pair["target"]
    info = source.request("GET", "/")
    assert info["version"]["distribution"] == "opensearch" and info["version"]["number"].startswith("2.19.")
    index = "events-log-stackcheck"
    source.request("PUT", f"/{index}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                                        "mappings": {"properties": {"task": {"type": "keyword"},
                                                                    "url": {"type": "keyword"},
                                                                    "iter": {"type": "long"}}}})
    lines = []
    for n in range(250):
        lines += [json.dumps({"index": {"_index": index, "_id": f"e{n}"}}),
                  json.dumps({"task": f"t{n % 5}", "iter": n, "url": f"s3://old/{n}.png"})]
    bulk = source.request("POST", "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode(),
                          content_type="application/x-ndjson")
    assert not bulk["errors"] and len(bulk["items"]) == 250
    found = source.request("POST", f"/{index}/_search", {"query": {"term": {"task": "t3"}}, "size": 0})
    assert found["hits"]["total"]["value"] == 50
    page = source.request("POST", f"/{index}/_search?scroll=1m", {"size": 100, "sort": ["_doc"]})
    seen = [hit["_id"] for hit in page["hits"]["hits"]]
    while page["hits"]["hits"]:
        page = source.request("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": page["_scroll_id"]})
        seen += [hit["_id"] for hit in page["hits"]["hits"]]
    source.request("DELETE", "/_search/scroll", {"scroll_id": page["_scroll_id"]})
    assert sorted(seen) == sorted(f"e{n}" for n in range(250))
    updated = source.request("POST", f"/{index}/_update_by_query?refresh=true", {
        "query": {"prefix": {"url": "s3://old/"}},
        "script": {"lang": "painless", "source": "ctx._source.url = params.to + ctx._source.url.substring(params.cut)",
                   "params": {"to": "s3://new/", "cut": len("s3://old/")}}})
    assert updated["updated"] == 250
    assert source.request("GET", f"/{index}/_doc/e7")["_source"]["url"] == "s3://new/7.png"
    with pytest.raises(urllib.error.HTTPError) as missing:
        target.request("GET", f"/{index}/_count")
    assert missing.value.code == 404
    assert_loopback_only(source.process.pid)


def test_a_server_that_does_not_come_up_fails_with_its_log_tail(tmp_path):
    from tests.stack.mongo_servers import FerretDBServer  # pylint: disable=import-outside-toplevel
    from tests.stack.process import StackError  # pylint: disable=import-outside-toplevel

    class Misconfigured(FerretDBServer):
        def command(self):
            argv, env, log_name = super().command()
            return argv + ["--no-such-flag"], env, log_name

    with pytest.raises(StackError) as error:
        Misconfigured("source", str(tmp_path)).start(timeout=30)
    assert "exited with" in str(error.value) and "--no-such-flag" in str(error.value)
