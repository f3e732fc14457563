"""The s3_migrate role on the sshd hosts and SeaweedFS endpoints: bundle and direct modes."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.integration.ansible_run import role_play, run_molecule
from tests.integration.test_s3_sync import EDGE_KEYS, MIB, contents, put_multipart

pytestmark = pytest.mark.integration


def endpoint(server, bucket, prefix=""):
    return {"endpoint_url": server.endpoint_url, "access_key": server.access_key,
            "secret_key": server.secret_key, "bucket": bucket, "prefix": prefix}


@pytest.fixture
def seeded(s3_pair):
    bucket = f"r-{uuid.uuid4().hex[:10]}"
    client = s3_pair["source"].client()
    client.create_bucket(Bucket=bucket)
    for key, data in EDGE_KEYS.items():
        client.put_object(Bucket=bucket, Key="proj/" + key, Body=data)
    put_multipart(client, bucket, "proj/models/multi.pt", [os.urandom(5 * MIB), b"tail"])
    return bucket, client


def test_bundle_mode_runs_rerun_clean_and_check_writes_nothing(playbook, s3_pair, ssh_stack, seeded, tmp_path):
    bucket, client = seeded
    role_vars = {
        "s3_migrate_source": endpoint(s3_pair["source"], bucket, "proj/"),
        "s3_migrate_target": endpoint(s3_pair["target"], bucket + "-t", "moved/"),
        "s3_migrate_create_bucket": True,
        "s3_migrate_bundle_dir": os.path.join(ssh_stack["ssh"]["source"].root, bucket, "bundle"),
        "s3_migrate_landing_dir": os.path.join(ssh_stack["ssh"]["target"].root, bucket, "incoming"),
        "s3_migrate_carry_dir": str(tmp_path / "carry"),
    }
    checked = playbook(role_play("s3_migrate", role_vars), check=True)
    assert checked.task("Export the objects to a bundle on the source host")["result"]["copied"] == 7
    assert not os.path.exists(role_vars["s3_migrate_bundle_dir"])
    assert bucket + "-t" not in [b["Name"] for b in s3_pair["target"].client().list_buckets()["Buckets"]]

    first = playbook(role_play("s3_migrate", role_vars))
    imported = first.task("Import the bundle into the target bucket")["result"]
    assert (imported["copied"], imported["verified"], imported["failed_count"]) == (8, 8, 0)
    assert contents(s3_pair["target"].client(), bucket + "-t", "moved/") == contents(client, bucket, "proj/")

    again = playbook(role_play("s3_migrate", role_vars))
    assert [r["task"] for r in again.changed] == []


def test_direct_mode(playbook, s3_pair, seeded):
    bucket, client = seeded
    s3_pair["target"].client().create_bucket(Bucket=bucket + "-d")
    role_vars = {"s3_migrate_mode": "direct",
                 "s3_migrate_source": endpoint(s3_pair["source"], bucket, "proj/"),
                 "s3_migrate_target": endpoint(s3_pair["target"], bucket + "-d")}
    run = playbook(role_play("s3_migrate", role_vars))
    assert run.task("Stream the objects bucket to bucket")["result"]["verified"] == 8
    assert contents(s3_pair["target"].client(), bucket + "-d") == contents(client, bucket, "proj/")


@pytest.mark.parametrize("role_vars,complaint", [
    ({"s3_migrate_source": {"endpoint_url": "http://x"}, "s3_migrate_target": {"bucket": "b"}}, "bucket"),
    ({"s3_migrate_mode": "teleport", "s3_migrate_source": {"bucket": "a"}, "s3_migrate_target": {"bucket": "b"}},
     "s3_migrate_mode"),
])
def test_bad_variables_fail_before_any_work(playbook, role_vars, complaint):
    run = playbook(role_play("s3_migrate", role_vars), expect_rc=2)
    assert run.failed[0]["action"] == "ansible.builtin.validate_argument_spec"
    assert complaint in run.failed[0]["result"]["msg"]


def test_molecule_default_scenario(ssh_stack, s3_pair, seeded, tmp_path):
    bucket, _client = seeded
    state = tmp_path / "s3-stack.json"
    state.write_text(json.dumps({"s3": {side: server.describe() for side, server in s3_pair.items()}}))
    run_molecule("s3_migrate", ssh_stack.inventory_file, MLOPS_STACK_STATE=str(state), MLOPS_S3_BUCKET=bucket)
