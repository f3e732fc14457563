"""The live W&B API (``kind: wandb_api``, read with ``wandb.Api()``) copied by tracker_copy into a real MLflow server.

No W&B server runs on these machines, so the API is tests/wandb_api_server.py: a loopback stand-in answering
the GraphQL operations the W&B SDK sends, in the W&B API's response shapes (it lists which, and how it pages
history as the W&B server does). What it serves is what a W&B server holds for runs the W&B SDK wrote offline
in this test (``from_offline``). Covered: sign-in (a refused key), projects, runs with server-side filters,
history per metric page by page (sparse metrics), media, console logs, run files with md5, 429 answers with
Retry-After, the request limit, logged artifacts, history held in a parquet export (read by byte ranges); the
copy equals the copy of the same runs read from their offline folders.
"""

from __future__ import annotations

import glob
import json
import os
import socket

import pytest
from mlflow.tracking import MlflowClient

from tests.integration.test_mlflow_to_wandb import md5s
from tests.integration.test_tracker_copy import copies
from tests.integration.test_wandb_to_mlflow import play, write_logged, write_runs
from tests.wandb_api_server import WandbApiServer, from_offline

pytestmark = pytest.mark.integration
TASK = "copy"
KEY = "k" * 40
# tags that differ by design: where the run was read from, and what only the API knows (its state and user)
DIFFERENT = ("mlops.migration.source_uri", "mlops.migration.source_experiment_id", "mlops.migration.wandb_state",
             "mlflow.user")


@pytest.fixture(scope="module")
def wandb_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb-api-source")
    project = write_runs(root, "wa")
    return str(root), project, sorted(glob.glob(os.path.join(root, "wandb", "offline-run-*")))


@pytest.fixture
def server(wandb_folders):
    with WandbApiServer([from_offline(folder) for folder in wandb_folders[2]], api_key=KEY) as running:
        yield running


def api_source(server, **options):
    return {"kind": "wandb_api", "base_url": server.url, "api_key": KEY, "entity": server.entity, **options}


def _history(client, run_id, key):
    return sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))


def test_live_api_runs_into_mlflow_equal_to_their_offline_folders(playbook, mlflow_pair, wandb_folders, server,
                                                                  tmp_path):
    root, project, _folders = wandb_folders
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    state = str(tmp_path / "state")
    checked = playbook(play(api_source(server), target, state, experiments=[project], name_prefix="api-"),
                       check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 2 and client.get_experiment_by_name(f"api-{project}") is None

    first = playbook(play(api_source(server), target, state, experiments=[project],
                          name_prefix="api-")).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0), first
    assert first["points_copied"] == 2 * (1200 + 12)
    offline = playbook(play({"kind": "wandb_offline", "wandb_dir": root}, target, str(tmp_path / "state-offline"),
                            experiments=[project], name_prefix="off-")).task(TASK)["result"]
    assert offline["failed_count"] == 0
    from_api, from_folders = copies(client, f"api-{project}"), copies(client, f"off-{project}")
    assert set(from_api) == set(from_folders) == {f"wb{i}{project[-6:]}" for i in range(2)}
    for run_id, run in from_api.items():
        twin = from_folders[run_id]
        assert run.info.run_name == twin.info.run_name and run.info.status == twin.info.status == "FINISHED"
        assert abs(run.info.start_time - twin.info.start_time) < 1000  # the API's createdAt is to the second
        assert abs(run.info.end_time - twin.info.end_time) < 1500  # that, plus the summary's _runtime
        assert run.data.params == twin.data.params and run.data.params["optimizer.name"] == "adam"
        assert {k: v for k, v in run.data.tags.items() if k not in DIFFERENT} == \
            {k: v for k, v in twin.data.tags.items() if k not in DIFFERENT}
        assert run.data.tags["mlops.migration.wandb_state"] == "finished" and run.data.tags["mlflow.user"] == "tester"
        for key in ("loss", "val/acc"):
            assert _history(client, run.info.run_id, key) == _history(client, twin.info.run_id, key)
        assert len(_history(client, run.info.run_id, "val/acc")) == 12  # sparse: every 100th step, none filled in
        files = md5s(client, run.info.run_id)  # every artifact and side file, byte for byte
        assert files == md5s(client, twin.info.run_id)
        assert {"mlops-migration/media/sample.jsonl", "mlops-migration/text/console.jsonl",
                "mlops-migration/summary.json", "mlops-migration/config.json"} <= set(files)

    again = playbook(play(api_source(server), target, state, experiments=[project],
                          name_prefix="api-")).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 2 and again["points_copied"] == 0


def test_rate_limits_are_waited_out_and_requests_stay_within_the_limit(playbook, mlflow_pair, wandb_folders, server,
                                                                       tmp_path):
    _root, project, _folders = wandb_folders
    server.throttle = 1  # the first request of every operation is answered 429, Retry-After: 1
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    result = playbook(play(api_source(server, max_requests=1, run_filters={"state": "finished"}), target,
                           str(tmp_path / "state"), experiments=[project], name_prefix="limited-", parallel=4)
                      ).task(TASK)["result"]
    assert (result["runs"]["copied"], result["failed_count"]) == (2, 0), result
    assert result["points_copied"] == 2 * (1200 + 12)
    assert sum(server.throttled.values()) >= 5 and server.throttled["SampledHistoryPage"] == 1
    assert server.most_in_flight == 1, server.overlaps  # max_requests: 1 across 4 parallel runs
    # the server's own filter: no run is crashed, so none is listed
    none = playbook(play(api_source(server, run_filters={"state": "crashed"}), target, str(tmp_path / "state2"),
                         experiments=[project], name_prefix="crashed-")).task(TASK)["result"]
    assert none["runs"]["found"] == 0 and none["failed_count"] == 0


def test_history_in_a_parquet_export_is_read_through_it(playbook, mlflow_pair, wandb_folders, tmp_path):
    _root, project, folders = wandb_folders
    docs = [from_offline(folder) for folder in folders]
    for doc in docs:  # exported: the numbers, in one parquet file per run that the SDK reads by byte ranges
        doc.rows = [{k: v for k, v in row.items() if isinstance(v, (int, float))} for row in doc.rows]
        doc.exported = True
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    with WandbApiServer(docs, api_key=KEY) as server:
        result = playbook(play(api_source(server), target, str(tmp_path / "s"), experiments=[project],
                               name_prefix="exported-", include=["metrics", "params"])).task(TASK)["result"]
        assert (result["runs"]["copied"], result["failed_count"]) == (2, 0), result
        assert server.requests["SampledHistoryPage"] == 0 and server.requests["file download"] > 0
    client = MlflowClient(target["tracking_uri"])
    for run_id, run in copies(client, f"exported-{project}").items():
        index = int(run_id[2])
        loss = _history(client, run.info.run_id, "loss")
        assert [step for step, _stamp, _value in loss] == list(range(1200))
        assert all(abs(value - 1.0 / (step + 1 + index)) < 1e-9 for step, _stamp, value in loss)
        assert [step for step, _stamp, _value in _history(client, run.info.run_id, "val/acc")] == list(
            range(0, 1200, 100))


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_key_a_missing_project_and_no_server_fail_before_any_write(
        playbook, mlflow_pair, wandb_folders, server, tmp_path):
    _root, project, _folders = wandb_folders
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    wrong = playbook(play(dict(api_source(server), api_key="x" * 40), target, str(tmp_path / "s1"),
                          experiments=[project], name_prefix="wrong-"), expect_rc=2).task(TASK)["result"]
    assert "credentials" in wrong["msg"] and "x" * 40 not in str(wrong)
    missing = playbook(play(api_source(server), target, str(tmp_path / "s2"), experiments=["no-such-project"]),
                       expect_rc=2).task(TASK)["result"]
    assert "has no project no-such-project" in missing["msg"] and project in missing["msg"]
    gone = playbook(play(dict(api_source(server), base_url=f"http://127.0.0.1:{_closed_port()}"), target,
                         str(tmp_path / "s3"), experiments=[project], name_prefix="gone-"), expect_rc=2)
    assert "wandb_api: cannot reach 127.0.0.1:" in gone.task(TASK)["result"]["msg"]
    names = {e.name for e in client.search_experiments()}  # the server is shared with other tests: exact names
    assert not names & {f"wrong-{project}", f"gone-{project}", "no-such-project"}


def test_logged_artifacts_come_from_the_server_as_from_the_offline_folder(playbook, mlflow_pair, tmp_path):
    root, _data, project = write_logged(tmp_path, "wal")
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    folders = glob.glob(os.path.join(root, "wandb", "offline-run-*"))
    with WandbApiServer([from_offline(folder) for folder in folders], api_key=KEY) as server:
        result = playbook(play(api_source(server), target, str(tmp_path / "s1"), experiments=[project],
                               name_prefix="api-")).task(TASK)["result"]
        assert (result["runs"]["copied"], result["failed_count"]) == (1, 0), result
        assert server.requests["ArtifactMembershipFiles"] >= 1 and server.requests["file download"] >= 2
    offline = playbook(play({"kind": "wandb_offline", "wandb_dir": str(root)}, target, str(tmp_path / "s2"),
                            experiments=[project], name_prefix="off-")).task(TASK)["result"]
    assert offline["failed_count"] == 0
    run = copies(client, f"api-{project}")["logged" + project[-6:]]
    twin = copies(client, f"off-{project}")["logged" + project[-6:]]
    files, twin_files = md5s(client, run.info.run_id), md5s(client, twin.info.run_id)
    about_path = "wandb-artifacts/model-x.json"
    assert {"wandb-artifacts/model-x/weights.bin", "wandb-artifacts/model-x/sub/card.txt", about_path} <= set(files)
    files.pop(about_path)
    twin_files.pop(about_path)
    assert files == twin_files
    with open(client.download_artifacts(run.info.run_id, about_path)) as mine, \
            open(client.download_artifacts(twin.info.run_id, about_path)) as theirs:
        about, twin_about = json.load(mine), json.load(theirs)
    same = ("name", "type", "digest", "description", "metadata")
    assert {k: about[k] for k in same} == {k: twin_about[k] for k in same}
    assert (about["type"], about["metadata"], sorted(about["aliases"])) == ("model", {"epochs": 3}, ["best", "latest"])
    assert [(f["path"], f["md5"], f["size"]) for f in about["files"]] == sorted(
        (f["path"], f["md5"], f["size"]) for f in twin_about["files"])
