"""preflight_check through ansible-playbook against the real servers: what it notes, and each refusal."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.integration


def check_play(**args):
    return [{"name": "preflight", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": "check", "mlops.migration.preflight_check": args}]}]


@pytest.fixture(scope="module")
def bucket(s3_pair):
    info = s3_pair["source"].describe()
    import boto3  # pylint: disable=import-outside-toplevel
    client = boto3.client("s3", endpoint_url=info["endpoint_url"], aws_access_key_id=info["access_key"],
                          aws_secret_access_key=info["secret_key"], region_name=info["region"])
    client.create_bucket(Bucket="preflight")
    return info


def s3_args(info, extra=None):
    location = {"endpoint_url": info["endpoint_url"], "access_key": info["access_key"],
                "secret_key": info["secret_key"], "bucket": "preflight"}
    location.update({k: v for k, v in (extra or {}).items() if k != "create_bucket"})
    return {"kind": "s3", "s3": location, **({"create_bucket": extra["create_bucket"]} if "create_bucket" in (extra or {}) else {})}


def test_s3_bucket_credentials_and_creation(playbook, bucket):
    found = playbook(check_play(**s3_args(bucket)), check=True).task("check")["result"]
    assert found["checked"]["bucket_exists"] and not found["changed"]
    missing = playbook(check_play(**s3_args(bucket, {"bucket": "nope"})), expect_rc=2).task("check")["result"]
    assert "bucket nope does not exist" in missing["msg"]
    creatable = playbook(check_play(**s3_args(bucket, {"bucket": "nope", "create_bucket": True}))).task("check")["result"]
    assert creatable["checked"]["bucket_exists"] is False
    wrong = playbook(check_play(**s3_args(bucket, {"secret_key": "wrong"})), expect_rc=2).task("check")["result"]
    assert "rejected the credentials" in wrong["msg"] and "wrong" not in wrong["msg"]
    down = playbook(check_play(**s3_args(bucket, {"endpoint_url": "http://127.0.0.1:9"})), expect_rc=2)
    assert "cannot reach http://127.0.0.1:9" in down.task("check")["result"]["msg"]


def test_mongo_version_and_unreachable_server(playbook, mongo_pair):
    found = playbook(check_play(kind="mongo", uri=mongo_pair["source"].uri)).task("check")["result"]
    assert found["checked"]["version"]
    down = playbook(check_play(kind="mongo", uri="mongodb://127.0.0.1:9/", connect_timeout=2), expect_rc=2)
    assert "cannot reach MongoDB at 127.0.0.1:9" in down.task("check")["result"]["msg"]


def test_tracker_and_disk(playbook, mlflow_pair, ssh_stack):
    found = playbook(check_play(kind="tracker", tracker={"tracking_uri": mlflow_pair["source"].tracking_uri})
                     ).task("check")["result"]
    assert found["checked"]["endpoint"] == mlflow_pair["source"].tracking_uri
    assert found["checked"]["version"][0].isdigit()
    down = playbook(check_play(kind="tracker", tracker={"kind": "mlflow", "tracking_uri": "http://127.0.0.1:9"}),
                    expect_rc=2)
    assert "cannot reach MLflow at http://127.0.0.1:9" in down.task("check")["result"]["msg"]
    path = os.path.join(ssh_stack["ssh"]["source"].root, "not", "yet")
    room = playbook(check_play(kind="disk", path=path, min_free_mb=1)).task("check")["result"]
    assert room["checked"]["free_mb"] >= 1 and not os.path.exists(path)
    full = playbook(check_play(kind="disk", path=path, min_free_mb=10 ** 9), expect_rc=2).task("check")["result"]
    assert "the migration needs 1000000000 MiB" in full["msg"]
    no_bucket = playbook(check_play(kind="s3", s3={"endpoint_url": "http://127.0.0.1:9"}), expect_rc=2).task("check")["result"]
    assert "bucket" in no_bucket["msg"]


def test_search_server_version_and_unreachable_server(playbook, search_pair):
    found = playbook(check_play(kind="search", search={"url": search_pair["source"].url})).task("check")["result"]
    assert found["checked"]["distribution"] == "opensearch" and found["checked"]["version"].startswith("2.")
    down = playbook(check_play(kind="search", search={"url": "http://127.0.0.1:9", "timeout": 5}), expect_rc=2)
    assert "cannot reach the search server http://127.0.0.1:9" in down.task("check")["result"]["msg"]
