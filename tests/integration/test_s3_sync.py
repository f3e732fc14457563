"""s3_sync through ansible-playbook between the two real SeaweedFS endpoints."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

pytestmark = pytest.mark.integration
# Edge keys, multipart ETags, Content-MD5 refusal, listings and round trips: on both S3 servers.
S3_IMPLEMENTATIONS = ("seaweedfs", "minio")

TASK = "s3 sync"
MIB = 1024 * 1024
EDGE_KEYS = {
    "plain.txt": b"plain",
    "with space/and+plus%25.txt": b"space plus percent",
    "unicode/Ü ñ 中文.bin": "ü".encode() * 100,
    "deep/" + "/".join(f"l{i}" for i in range(12)) + "/leaf": b"deep",
    "zero-byte": b"",
    "marker-dir/": b"",
    "clearml-data/ProjectA/published-train-mnist-2.2bb892d3fe154e19bdd43209b0e09d1a/models/mnist.pt": os.urandom(300_000),
}


def conn(server, bucket, **extra):
    return dict(endpoint_url=server.endpoint_url, access_key=server.access_key,
                secret_key=server.secret_key, bucket=bucket, **extra)


def play(s3_pair, src_bucket, dst_bucket, source_prefix=None, target_prefix=None, **options):
    prefixes = ({"prefix": source_prefix} if source_prefix is not None else {},
                {"prefix": target_prefix} if target_prefix is not None else {})
    args = dict(source=conn(s3_pair["source"], src_bucket, **prefixes[0]),
                target=conn(s3_pair["target"], dst_bucket, **prefixes[1]))
    args.update(options)
    return [{"name": "s3_sync", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": TASK, "mlops.migration.s3_sync": args}]}]


def put_multipart(client, bucket, key, parts):
    """Upload like a foreign tool would: multipart, no md5 metadata."""
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)
    done = []
    for number, data in enumerate(parts, 1):
        reply = client.upload_part(Bucket=bucket, Key=key, PartNumber=number, UploadId=upload["UploadId"], Body=data)
        done.append({"ETag": reply["ETag"], "PartNumber": number})
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": done})


def contents(client, bucket, prefix=""):
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"][len(prefix):]] = hashlib.md5(body).hexdigest()
    return found


@pytest.fixture
def buckets(s3_pair):
    name = f"b-{uuid.uuid4().hex[:10]}"
    src, dst = s3_pair["source"].client(), s3_pair["target"].client()
    src.create_bucket(Bucket=name)
    dst.create_bucket(Bucket=name + "-t")
    return name, name + "-t", src, dst


def test_edge_keys_and_multipart_round_trip_then_rerun_and_check(playbook, s3_pair, buckets, ssh_stack):
    sb, tb, src, dst = buckets
    for key, data in EDGE_KEYS.items():
        src.put_object(Bucket=sb, Key=key, Body=data)
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1234)]
    put_multipart(src, sb, "models/big multipart.pt", parts)
    assert src.head_object(Bucket=sb, Key="models/big multipart.pt")["ETag"].strip('"').endswith("-4")

    first = playbook(play(s3_pair, sb, tb, part_size_mb=6, multipart_threshold_mb=8))
    result = first.task(TASK)["result"]
    assert result["changed"] is True
    assert (result["found"], result["copied"], result["verified"], result["failed_count"]) == (8, 8, 8, 0)
    assert result["verified_by"] == {"md5": 7, "multipart-etag": 1}
    assert contents(dst, tb) == contents(src, sb)
    head = dst.head_object(Bucket=tb, Key="models/big multipart.pt")
    # uploaded in the source's own parts (not part_size_mb), so the copy has the source's very ETag
    assert head["ETag"] == src.head_object(Bucket=sb, Key="models/big multipart.pt")["ETag"]
    assert head["Metadata"]["mlops-source-etag"].endswith("-4")
    assert "md5chksum" not in head["Metadata"]  # the source's md5 was unknown: verified by ETag arithmetic
    assert dst.head_object(Bucket=tb, Key="plain.txt")["Metadata"] == {}  # its ETag says it all

    again = playbook(play(s3_pair, sb, tb, part_size_mb=6, multipart_threshold_mb=8))
    result = again.task(TASK)["result"]
    assert (result["changed"], result["copied"], result["already_present"]) == (False, 0, 8)

    src.put_object(Bucket=sb, Key="new/one.txt", Body=b"new")
    checked = playbook(play(s3_pair, sb, tb), check=True)
    result = checked.task(TASK)["result"]
    assert (result["changed"], result["copied"], result["to_copy"]) == (True, 1, ["new/one.txt"])
    assert "new/one.txt" not in contents(dst, tb)


def test_prefix_mapping_and_delete_extra(playbook, s3_pair, buckets):
    sb, tb, src, dst = buckets
    for key in ("old/a.txt", "old/sub/b.txt", "other/c.txt"):
        src.put_object(Bucket=sb, Key=key, Body=key.encode())
    dst.put_object(Bucket=tb, Key="new/stale.txt", Body=b"stale")
    dst.put_object(Bucket=tb, Key="keep/untouched.txt", Body=b"outside the prefix")

    checked = playbook(play(s3_pair, sb, tb, source_prefix="old/", target_prefix="new/", delete_extra=True),
                       check=True)
    assert checked.task(TASK)["result"]["to_delete"] == ["new/stale.txt"]
    assert "new/stale.txt" in contents(dst, tb)

    run = playbook(play(s3_pair, sb, tb, source_prefix="old/", target_prefix="new/", delete_extra=True))
    result = run.task(TASK)["result"]
    assert (result["copied"], result["deleted"]) == (2, 1)
    assert sorted(contents(dst, tb)) == ["keep/untouched.txt", "new/a.txt", "new/sub/b.txt"]


def test_shards_split_the_keyspace(playbook, s3_pair, buckets):
    sb, tb, src, dst = buckets
    for i in range(40):
        src.put_object(Bucket=sb, Key=f"k/{i:03d}", Body=str(i).encode())
    counts = []
    for index in range(3):
        run = playbook(play(s3_pair, sb, tb, shard_index=index, shard_count=3))
        counts.append(run.task(TASK)["result"]["copied"])
    assert sum(counts) == 40 and all(0 < c < 40 for c in counts)
    assert contents(dst, tb) == contents(src, sb)


def test_killed_run_resumes_without_duplicates(playbook, s3_pair, buckets, tmp_path):
    sb, tb, src, dst = buckets
    for i in range(12):
        put_multipart(src, sb, f"models/m{i:02d}.pt", [os.urandom(5 * MIB), os.urandom(2 * MIB)])
    script = tmp_path / "first_run.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.join(os.getcwd(), ".build", "collections")!r})
        from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import Endpoint, Location
        from ansible_collections.mlops.migration.plugins.module_utils.s3.sync import sync
        ends = []
        for info, bucket in (({s3_pair["source"].describe()!r}, {sb!r}), ({s3_pair["target"].describe()!r}, {tb!r})):
            e = Endpoint(info["endpoint_url"], info["access_key"], info["secret_key"])
            ends.append(Location(e.client(), e, bucket))
        sync(ends[0], ends[1], parallel=1, part_size=5 * 1024 * 1024, threshold=5 * 1024 * 1024)
    """))
    proc = subprocess.Popen([sys.executable, str(script)])  # pylint: disable=consider-using-with
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(contents(dst, tb)) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    landed = contents(dst, tb)
    assert 3 <= len(landed) < 12, f"the kill came too late or too early: {len(landed)} objects"

    resumed = playbook(play(s3_pair, sb, tb))
    result = resumed.task(TASK)["result"]
    assert result["copied"] == 12 - len(landed)
    assert result["already_present"] == len(landed)
    assert contents(dst, tb) == contents(src, sb)


def test_missing_bucket_is_named_before_any_write(playbook, s3_pair, buckets):
    sb, _tb, src, _dst = buckets
    src.put_object(Bucket=sb, Key="x", Body=b"x")
    run = playbook(play(s3_pair, sb, "no-such-bucket-here"), expect_rc=2)
    msg = run.task(TASK)["result"]["msg"]
    assert msg == f"bucket no-such-bucket-here does not exist at {s3_pair['target'].endpoint_url}"


def test_wrong_credentials_are_named(playbook, s3_pair, buckets):
    sb, tb, _src, _dst = buckets
    plays = play(s3_pair, sb, tb)
    plays[0]["tasks"][0]["mlops.migration.s3_sync"]["source"]["secret_key"] = "wrong"
    run = playbook(plays, expect_rc=2)
    result = run.task(TASK)["result"]
    assert "rejected the credentials" in result["msg"] and s3_pair["source"].endpoint_url in result["msg"]
    assert "wrong" not in str(result)


def test_unreachable_endpoint_is_named(playbook, s3_pair, buckets):
    sb, tb, _src, _dst = buckets
    plays = play(s3_pair, sb, tb)
    plays[0]["tasks"][0]["mlops.migration.s3_sync"]["target"]["endpoint_url"] = "http://127.0.0.1:1"
    run = playbook(plays, expect_rc=2)
    assert run.task(TASK)["result"]["msg"].startswith("cannot reach http://127.0.0.1:1")
