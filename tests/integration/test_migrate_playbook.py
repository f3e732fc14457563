"""playbooks/migrate.yml end to end on the embedded demo platform (inventories/demo).

One stack (ssh hosts, S3, MongoDB, MLflow, source and target of each) is started for the
module and seeded as ``make demo`` seeds it, plus 600 small objects so the S3 step (one object at a time) runs
long enough to be watched and killed. The tests run in file order: a malformed plan, a check
run, a run killed during the S3 step and resumed, a second run that changes nothing, then a
second migration of the same source in two stages (files, then db).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import time

import pymongo
import pytest
from mlflow.tracking import MlflowClient

from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map
from ansible_collections.mlops.migration.plugins.module_utils.s3.client import S3Client
from tests.integration.ansible_run import run_playbook, start_playbook
from tests.integration.demo_target import check_target, keys, s3_client
from tests.stack import demo_platform

PLAYBOOK = "playbooks/migrate.yml"
STATUS = "playbooks/status.yml"
INVENTORY = "inventories/demo"
BULK_OBJECTS = 600


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with demo_platform.running(str(tmp_path_factory.mktemp("demo-platform"))) as state:
        info = state["s3"]["source"]
        with S3Client(info["endpoint_url"], info["access_key"], info["secret_key"]) as client:
            def put(index):
                client.put_object(Bucket=demo_platform.BUCKET, Key=f"clearml/bulk/part-{index:05d}.bin",
                                  Body=hashlib.sha256(str(index).encode()).digest() * 32)
            for _done in bounded_map(put, range(BULK_OBJECTS), 8):
                pass
        yield state


@pytest.fixture
def run(platform, tmp_path):
    """``run(playbook=PLAYBOOK, **kwargs)`` against inventories/demo on the module's stack."""
    def go(playbook=PLAYBOOK, **kwargs):
        return run_playbook(playbook, INVENTORY, str(tmp_path), env_vars={"MLOPS_DEMO_DIR": platform["workdir"]},
                            **kwargs)
    return go


def steps(state_dir):
    path = os.path.join(state_dir, "migration-state.sqlite")
    if not os.path.exists(path):
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT name, state FROM steps"))
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def recap(output):
    """{host: {ok, changed, failed, ...}} from the PLAY RECAP."""
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M)}


# -- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, named", [
    ({"migration": {"s3": {"mode": "direct", "bukets": []}}}, "bukets"),
    ({"migration": {"mongo": {"source": {}, "target": {}, "scope": "everything"}}}, "scope"),
    ({"migration": {"state_dir": "/tmp/x"}, "migration_type": "fast"}, "migration_type"),
    ({"migration": "not a mapping"}, "migration"),
])
def test_malformed_plan_fails_before_any_host_is_touched(run, extra, named):
    result = run(extra_vars=extra, expect_rc=2)
    assert "the migration plan is malformed" in result.stdout + result.stderr or "Validation" in result.stdout
    assert named in result.stdout
    hosts = recap(result.stdout)
    assert set(hosts) == {"localhost"}, hosts  # no source or target host was reached


def test_wrong_credentials_stop_the_run_at_the_preflight(run, platform):
    wrong = {"endpoint_url": platform["s3"]["target"]["endpoint_url"], "access_key": "nobody",
             "secret_key": "not-the-secret", "region": "us-east-1"}
    result = run(extra_vars={"demo_target_s3": wrong}, expect_rc=2)
    assert "preflight: " in result.stdout and "rejected the credentials" in result.stdout
    assert "not-the-secret" not in result.stdout
    assert "Do the work" not in result.stdout  # no step started
    assert steps(os.path.join(platform["workdir"], "demo-state")) == {}


# -- check mode -------------------------------------------------------------------------------------

def test_check_run_goes_end_to_end_and_writes_nothing(run, platform):
    state_dir = os.path.join(platform["workdir"], "demo-state")
    result = run(check=True)
    assert "TASK [mlops.migration.migration : Do the work: mongo]" in result.stdout
    assert "TASK [mlops.migration.migration : Do the work: trackers]" in result.stdout
    assert steps(state_dir) == {}
    assert not os.path.exists(os.path.join(state_dir, "report.md"))
    assert keys(s3_client(platform, "target"), "target-bucket") == []
    assert "backend" not in pymongo.MongoClient(platform["mongo"]["target"]["uri"]).list_database_names()
    target = MlflowClient(platform["mlflow"]["target"]["tracking_uri"])
    assert [e.name for e in target.search_experiments()] == ["Default"]
    assert not os.path.exists(os.path.join(platform["ssh"]["target"]["root"], "demo-fileserver"))


# -- a run killed during the S3 step, the status seen while it ran, and the resume ------------------

def test_kill_during_s3_step_then_resume(run, platform, tmp_path):
    state_dir = os.path.join(platform["workdir"], "demo-state")
    progress = os.path.join(state_dir, "s3.progress.json")
    # one object at a time, so the S3 step lasts long enough to be watched and killed; its progress printed each second
    output = tmp_path / "ansible-output.txt"
    ansible = start_playbook(PLAYBOOK, INVENTORY, str(tmp_path), env_vars={"MLOPS_DEMO_DIR": platform["workdir"]},
                             extra_vars={"demo_s3_parallel": 1, "migration_progress_interval": 1,
                                         "migration_progress_heartbeat": 10}, output=str(output))
    try:
        deadline = time.monotonic() + 240
        record = None
        while time.monotonic() < deadline and ansible.poll() is None:
            if steps(state_dir).get("s3") == "running" and os.path.exists(progress):
                with open(progress, encoding="utf-8") as handle:
                    try:
                        record = json.load(handle)
                    except ValueError:
                        record = None
                if record and record["done"] >= 50:
                    break
            time.sleep(0.2)
        assert record and record["done"] >= 50, f"the S3 step never got going: {steps(state_dir)} {record}"
        # the copy held where it is (SIGSTOP) while status.yml looks at it, so it cannot end before the kill however
        # slow the machine is; it goes no further, and the kill below ends it
        os.kill(record["pid"], signal.SIGSTOP)

        status = run(STATUS)  # in another "terminal", while the migration runs
        lines = status.stdout
        assert re.search(r"files_bulk\s+done", lines)
        match = re.search(r"s3\s+running\s+(\d+)/(\S+)\s+([\d.]+ \w+)\s+([\d.]+)/s", lines)
        assert match, lines[-3000:]
        assert int(match.group(1)) >= 50
        assert re.search(r"mongo\s+not run", lines)
        assert steps(state_dir).get("s3") == "running", "the S3 step ended before the kill; the test needs a slower step"
        # the play's own output shows the step's progress while it runs (plugin_utils/progress_action.py)
        shown = output.read_text(errors="replace")
        done = [int(n.replace(",", "")) for n in re.findall(
            r"^\[source-host\] s3_sync source-bucket/clearml/ -> target-bucket/clearml/: ([\d,]+) objects, .*/s$", shown, re.M)]
        assert done and done == sorted(done) and done[-1] > 0, shown[-3000:]
        assert "TASK [mlops.migration.s3_migrate : Stream the objects bucket to bucket]" in shown
    finally:
        # the whole run dies at once, the controller and the copy on the host (a job left unfollowed stops itself
        # only after its heartbeat timeout, tested in test_progress_in_output.py; here nothing may copy after the kill)
        if ansible.poll() is None:
            os.killpg(ansible.pid, signal.SIGKILL)
        if record and record.get("pid"):
            kill_and_wait(record["pid"])
        ansible.wait(timeout=60)
    copied_before = len(keys(s3_client(platform, "target"), "target-bucket", "clearml/"))
    source_count = len(keys(s3_client(platform, "source"), "source-bucket", "clearml/"))
    assert 0 < copied_before < source_count
    assert steps(state_dir) == {"files_bulk": "done", "s3": "running"}
    with open(os.path.join(state_dir, "migration.log"), encoding="utf-8") as handle:
        assert "s3_sync source-bucket/clearml/ -> target-bucket/clearml/: started" in handle.read()

    resumed = run()
    assert "files_bulk finished" in resumed.stdout and "skipped" in resumed.stdout
    s3_result = resumed.task("Stream the objects bucket to bucket")["result"]
    assert s3_result["found"] == source_count
    assert s3_result["already_present"] >= copied_before - 8  # objects in flight at the kill may be redone
    assert s3_result["copied"] + s3_result["already_present"] == source_count
    assert s3_result["verified"] == s3_result["copied"]
    assert len(keys(s3_client(platform, "target"), "target-bucket", "clearml/")) == source_count
    assert steps(state_dir) == {name: "done" for name in
                                ("files_bulk", "s3", "mongo", "events", "trackers", "files_delta", "verify")}
    check_target(platform)

    with open(os.path.join(state_dir, "report.md"), encoding="utf-8") as handle:
        report = handle.read()
    assert "| s3 | s3 objects | %d |" % source_count in report
    assert re.search(r"\| mongo \| documents backend.task \| 30 \| 15 \| 15 \| 0 \| 15 \| 0 \|", report), report
    # the events of the 15 tasks that moved: 200 scalars, 8 plots, 6 debug images and 10 console lines each
    assert re.search(r"\| events \| search documents events-training_stats_scalar-acme \| 3000 \| - \| 3000 \| 0 \| 3000 \| 0 \|",
                     report), report
    assert "## First failures\n\nnone" in report
    assert os.path.exists(os.path.join(state_dir, "report.html"))


def kill_and_wait(pid, timeout=30):
    """SIGKILL one process this test's playbook started on the (loopback) host, and wait until it is gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":  # dead, its parent not yet told
                    return
        except FileNotFoundError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still runs {timeout} s after SIGKILL")


def test_second_run_skips_every_step_and_changes_nothing(run, platform):
    result = run()
    for name in ("files_bulk", "s3", "mongo", "events", "trackers", "files_delta", "verify"):
        assert re.search(rf"{name} finished [\d-]+ [\d:]+;\s+skipped", result.stdout), name
    assert all(counts["changed"] == 0 for counts in recap(result.stdout).values()), recap(result.stdout)
    check_target(platform)


# -- two stages: files while the source is live, then db in the downtime window ---------------------

def test_files_then_db(run, platform):
    second = {"demo_name": "two", "demo_target_bucket": "second-bucket", "demo_target_db": "backend_two",
              "demo_experiment_prefix": "two-", "demo_s3_mode": "bundle", "demo_events_mode": "bundle",
              "demo_events_rename": [{"from": "-acme", "to": "-two"}]}  # the air-gap way this time
    state_dir = os.path.join(platform["workdir"], "two-state")
    files = run(extra_vars=dict(second, migration_type="files"))
    assert "steps=files_bulk,s3,verify" in files.stdout
    assert steps(state_dir) == {"files_bulk": "done", "s3": "done", "verify": "done"}
    exported = files.task("Export the objects to a bundle on the source host")["result"]
    imported = files.task("Import the bundle into the target bucket")["result"]
    assert exported["found"] == imported["found"] == imported["copied"] == imported["verified"] > BULK_OBJECTS
    assert os.path.exists(os.path.join(platform["workdir"], "two-work", "incoming", "s3-bundle-0.zip"))
    # sealed and signed (the demo plan's signing key), and checked by the import
    assert os.path.exists(os.path.join(platform["workdir"], "two-work", "s3-bundle-0", "SHA256SUMS.sig"))
    assert len(keys(s3_client(platform, "target"), "second-bucket", "clearml/")) > BULK_OBJECTS
    assert "backend_two" not in pymongo.MongoClient(platform["mongo"]["target"]["uri"]).list_database_names()
    assert MlflowClient(platform["mlflow"]["target"]["tracking_uri"]).get_experiment_by_name("two-demo-training") is None

    db = run(extra_vars=dict(second, migration_type="db"))
    for name in ("files_bulk", "s3"):  # db implies the files: done by the first stage, so skipped
        assert re.search(rf"{name} finished [\d-]+ [\d:]+;\s+skipped", db.stdout), name
    for name in ("mongo", "events", "trackers", "files_delta", "verify"):
        assert f"TASK [mlops.migration.migration : Record the step done: {name}]" in db.stdout, name
    for bundle in ("mongo-backup", "events-bundle"):
        assert os.path.exists(os.path.join(platform["workdir"], "two-work", bundle, "SHA256SUMS.sig")), bundle
    assert steps(state_dir) == {name: "done" for name in
                                ("files_bulk", "s3", "mongo", "events", "trackers", "files_delta", "verify")}
    check_target(platform, bucket="second-bucket", db="backend_two", prefix="two-", fileserver="two-fileserver",
                 company="two")
