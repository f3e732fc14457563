"""S3 at platform scale on the real servers: key ranges over two transfer hosts (each listing only its range),
worker processes inside one s3_sync run, and a killed multipart copy resumed part by part."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.ansible_run import role_play
from tests.integration.test_s3_migrate_role import endpoint
from tests.integration.test_s3_sync import contents, MIB, play, TASK

pytestmark = pytest.mark.integration
SYNC_TASK = "Stream the objects bucket to bucket"
PREFIXES, PER_PREFIX = 40, 100  # 4,000 objects: four listing pages for one host, two for each of two


def seed(client, bucket, prefixes=PREFIXES, per_prefix=PER_PREFIX):
    client.create_bucket(Bucket=bucket)
    keys = [f"runs/{p:02d}/metric-{i:03d}.json" for p in range(prefixes) for i in range(per_prefix)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=key.encode()), keys))
    return keys


@pytest.fixture
def many(s3_pair):
    bucket = f"k-{uuid.uuid4().hex[:10]}"
    client = s3_pair["source"].client()
    return bucket, client, seed(client, bucket)


def test_two_hosts_list_one_key_range_each_and_copy_every_object_once(playbook, s3_pair, many, tmp_path):
    bucket, client, keys = many
    target = s3_pair["target"].client()
    ranges_file = str(tmp_path / "ranges.json")
    role_vars = {"s3_migrate_mode": "direct", "s3_migrate_create_bucket": True,
                 "s3_migrate_source": endpoint(s3_pair["source"], bucket),
                 "s3_migrate_target": endpoint(s3_pair["target"], bucket + "-r"),
                 "s3_migrate_ranges_file": ranges_file}

    target.create_bucket(Bucket=bucket + "-r")
    checked = playbook(role_play("s3_migrate", role_vars, hosts="source:target"), check=True)
    assert sum(checked.task(SYNC_TASK, host)["result"]["copied"] for host in ("source-host", "target-host")) == len(keys)
    assert not os.path.exists(ranges_file) and contents(target, bucket + "-r") == {}

    first = playbook(role_play("s3_migrate", role_vars, hosts="source:target"))
    cut = first.task("Cut the keys into one range per host")["result"]
    assert cut["basis"] == "sampled" and cut["requests"] == 2  # the bucket's level, then runs/'s 40 prefixes
    results = [first.task(SYNC_TASK, host)["result"] for host in ("source-host", "target-host")]
    assert [r["copied"] for r in results] == [r["found"] for r in results]
    assert sum(r["copied"] for r in results) == len(keys) and all(r["copied"] >= len(keys) // 3 for r in results)
    assert contents(target, bucket + "-r") == contents(client, bucket)  # every object, each once
    with open(ranges_file, encoding="utf-8") as handle:
        recorded = json.load(handle)
    assert recorded["ranges"] == cut["ranges"] and [r["listed"] for r in recorded["listed"]] == [r["found"] for r in results]

    # one host alone into another bucket: the listing requests it makes, against each ranged host's
    single = playbook(role_play("s3_migrate", dict(role_vars, s3_migrate_target=endpoint(s3_pair["target"], bucket + "-one"))))
    alone = single.task(SYNC_TASK)["result"]["requests"]["source"]["ListObjectsV2"]
    per_host = [r["requests"]["source"]["ListObjectsV2"] for r in results]
    # half each, and a range that ends before the bucket does reads one more page to see its end
    assert alone == 4 and per_host in ([3, 2], [2, 2]), (alone, per_host)

    again = playbook(role_play("s3_migrate", role_vars, hosts="source:target"))
    assert [r["task"] for r in again.changed] == []
    assert again.task("Cut the keys into one range per host")["result"]["basis"] == "recorded"

    # three hosts' worth of ranges from the same file: cut at the quantiles of what the two hosts listed
    three = playbook([{"name": "cut", "hosts": "source", "gather_facts": False, "tasks": [{
        "name": "cut", "mlops.migration.s3_key_ranges": {
            "source": endpoint(s3_pair["source"], bucket), "count": 3, "path": ranges_file}}]}])
    replanned = three.task("cut")["result"]
    assert replanned["basis"] == "previous" and replanned["requests"] == 0 and len(replanned["ranges"]) == 3
    sizes = [sum(1 for key in keys if (r["after"] is None or key > r["after"]) and (r["upto"] is None or key <= r["upto"]))
             for r in replanned["ranges"]]
    assert sum(sizes) == len(keys) and max(sizes) - min(sizes) <= len(keys) // 10, sizes


@pytest.mark.parametrize("how", ["serial", "slices"])
def test_serial_batches_and_job_slices_split_alike(playbook, s3_pair, tmp_path, how):
    """``serial: 1`` runs the hosts one batch at a time; an AWX sliced job runs each slice as its own job (here: the
    play twice, limited to one host each time) with the whole group as the shard hosts. Each host takes its own
    range of the one recorded cut: every object copied once."""
    bucket = f"s-{uuid.uuid4().hex[:10]}"
    client = s3_pair["source"].client()
    keys = seed(client, bucket, prefixes=40, per_prefix=5)
    s3_pair["target"].client().create_bucket(Bucket=bucket + "-s")
    role_vars = {"s3_migrate_mode": "direct", "s3_migrate_source": endpoint(s3_pair["source"], bucket),
                 "s3_migrate_target": endpoint(s3_pair["target"], bucket + "-s"),
                 "s3_migrate_ranges_file": str(tmp_path / "ranges.json"),
                 "s3_migrate_shard_hosts": ["source-host", "target-host"]}
    plays = role_play("s3_migrate", role_vars, hosts="source:target")
    if how == "serial":
        plays[0]["serial"] = 1
        runs = [playbook(plays)]
    else:
        runs = [playbook(plays, args=["--limit", host]) for host in ("source-host", "target-host")]
    copied = [run.task(SYNC_TASK, host)["result"]["copied"] for run in runs for host in ("source-host", "target-host")
              if any(r["host"] == host and r["task"].endswith(SYNC_TASK) for r in run.results)]
    assert len(copied) == 2 and sum(copied) == len(keys) and all(copied), copied
    bases = [r["result"].get("basis") for run in runs for r in run.results if r["task"].endswith("Cut the keys into one range per host")
             and not r["result"].get("skipped")]
    assert bases == ["sampled", "recorded"], bases  # the second batch or slice read the first one's cut
    assert contents(s3_pair["target"].client(), bucket + "-s") == contents(client, bucket)


def test_worker_processes_share_one_run_and_add_up(playbook, s3_pair, many, tmp_path):
    bucket, client, keys = many
    progress = tmp_path / "progress.json"
    run = playbook(play(s3_pair, bucket, bucket + "-p", create_bucket=True, processes=3, parallel=4,
                        progress_file=str(progress)))
    result = run.task(TASK)["result"]
    assert result["processes"] == 3
    assert (result["found"], result["copied"], result["verified"]) == (len(keys), len(keys), len(keys))
    assert result["listing"]["listed"] == len(keys)
    # three ranges of 1,333 or so: two pages each, and one more for a range that ends before the bucket does
    assert result["requests"]["source"]["ListObjectsV2"] <= 8
    assert contents(s3_pair["target"].client(), bucket + "-p") == contents(client, bucket)
    with open(progress, encoding="utf-8") as handle:
        record = json.load(handle)
    assert record["finished"] and record["done"] == len(keys)

    again = playbook(play(s3_pair, bucket, bucket + "-p", processes=3))
    result = again.task(TASK)["result"]
    assert (result["copied"], result["already_present"], again.task(TASK)["result"]["changed"]) == (0, len(keys), False)


KILLED_COPY = """
import sys, time
sys.path.insert(0, {collections!r})
from ansible_collections.mlops.migration.plugins.module_utils.s3 import client as s3_client
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import Endpoint, Location
from ansible_collections.mlops.migration.plugins.module_utils.s3.sync import sync
sent = s3_client.S3Client.upload_part
def slow_part(self, *args, **kwargs):  # the run to be killed sends a part every 0.2 s, so it can be cut half-way
    time.sleep(0.2)
    return sent(self, *args, **kwargs)
s3_client.S3Client.upload_part = slow_part
ends = []
for info, bucket in (({source!r}, {sb!r}), ({target!r}, {tb!r})):
    e = Endpoint(info["endpoint_url"], info["access_key"], info["secret_key"])
    ends.append(Location(e.client(), e, bucket))
sync(ends[0], ends[1], parallel=1, part_size=5 * 1024 * 1024, threshold=5 * 1024 * 1024)
"""


def kill_half_way(s3_pair, sb, tb, key, parts, tmp_path):
    """A sync of the one object killed once half its parts are at the target; the parts there."""
    target = s3_pair["target"].client()
    script = tmp_path / "killed_copy.py"
    script.write_text(textwrap.dedent(KILLED_COPY.format(
        collections=os.path.join(os.getcwd(), ".build", "collections"), source=s3_pair["source"].describe(),
        target=s3_pair["target"].describe(), sb=sb, tb=tb)))
    proc = subprocess.Popen([sys.executable, str(script)])  # pylint: disable=consider-using-with
    held, deadline = [], time.monotonic() + 120
    try:
        while time.monotonic() < deadline and len(held) < parts // 2:
            uploads = target.list_multipart_uploads(Bucket=tb).get("Uploads", [])
            if uploads:
                held = target.list_parts(Bucket=tb, Key=key, UploadId=uploads[0]["UploadId"]).get("Parts", [])
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert parts // 2 <= len(held) < parts, f"the kill came at {len(held)} of {parts} parts"
    uploads = target.list_multipart_uploads(Bucket=tb).get("Uploads", [])
    return len(target.list_parts(Bucket=tb, Key=key, UploadId=uploads[0]["UploadId"])["Parts"])


@pytest.mark.s3_implementation("seaweedfs", "minio")  # each lists uploads and parts its own way
@pytest.mark.parametrize("changed_source", [False, True], ids=["same-source", "source-changed-meanwhile"])
def test_a_killed_multipart_copy_resumes_its_upload(playbook, s3_pair, tmp_path, changed_source):
    sb = f"m-{uuid.uuid4().hex[:10]}"
    tb = sb + "-t"
    source, target = s3_pair["source"].client(), s3_pair["target"].client()
    source.create_bucket(Bucket=sb)
    target.create_bucket(Bucket=tb)
    key, parts = "models/big.pt", 16
    source.put_object(Bucket=sb, Key=key, Body=os.urandom(parts * 5 * MIB))
    held = kill_half_way(s3_pair, sb, tb, key, parts, tmp_path)
    if changed_source:  # a new version of the object, same size: no part held is of use, nor the upload's metadata
        source.put_object(Bucket=sb, Key=key, Body=os.urandom(parts * 5 * MIB))

    resumed = playbook(play(s3_pair, sb, tb, part_size_mb=5, multipart_threshold_mb=5, parallel=1))
    result = resumed.task(TASK)["result"]
    assert (result["copied"], result["verified"], result["bytes"]) == (1, 1, parts * 5 * MIB)
    if changed_source:
        assert result["bytes_resumed"] == 0 and result["requests"]["target"]["UploadPart"] == parts
    else:  # the parts already there are not sent again: only the rest are
        assert result["bytes_resumed"] == held * 5 * MIB
        assert result["requests"]["target"]["UploadPart"] == parts - held
    assert contents(target, tb) == contents(source, sb)
    assert target.list_multipart_uploads(Bucket=tb).get("Uploads", []) == []
    again = playbook(play(s3_pair, sb, tb, part_size_mb=5, multipart_threshold_mb=5))
    assert again.task(TASK)["result"]["already_present"] == 1


def test_bad_ranges_input_is_refused_before_any_write(playbook, s3_pair, many, tmp_path):
    bucket, _client, _keys = many
    missing = playbook([{"name": "cut", "hosts": "source", "gather_facts": False, "tasks": [{
        "name": "cut", "mlops.migration.s3_key_ranges": {
            "source": endpoint(s3_pair["source"], "no-such-bucket-here"), "count": 2,
            "path": str(tmp_path / "r.json")}}]}], expect_rc=2)
    assert "no-such-bucket-here" in missing.task("cut")["result"]["msg"]
    assert not os.path.exists(tmp_path / "r.json")
    (tmp_path / "bad.json").write_text("{not json")
    corrupt = playbook([{"name": "cut", "hosts": "source", "gather_facts": False, "tasks": [{
        "name": "cut", "mlops.migration.s3_key_ranges": {
            "source": endpoint(s3_pair["source"], bucket), "count": 2, "path": str(tmp_path / "bad.json")}}]}],
        expect_rc=2)
    assert "is not JSON" in corrupt.task("cut")["result"]["msg"]
    backwards = playbook(play(s3_pair, bucket, bucket + "-x", create_bucket=True, key_after="runs/20/",
                              key_upto="runs/10/"), expect_rc=2)
    assert "must come after key_after" in backwards.task(TASK)["result"]["msg"]
    assert bucket + "-x" not in [b["Name"] for b in s3_pair["target"].client().list_buckets()["Buckets"]]
