"""The live ClearML API as a tracker source, through the ClearML SDK's own API session, against a loopback stand-in
answering with recorded responses shaped by the SDK's own schema classes (tests/clearml_api_server.py: no ClearML
server can run here). Calls covered: auth.login, projects.get_all, tasks.get_all, tasks.get_by_id,
events.get_scalar_metrics_and_variants, events.get_task_events (scalars, plots, debug samples), events.get_task_log,
models.get_all, and file downloads from the URLs the task names. The task is what the ClearML SDK wrote in the test
(an offline session), served as the server keeps an imported task.

Into a real MLflow server: the same run a copy of the session itself makes, field by field (what the server adds -
id, status, user, system tags, times - aside), check mode, a re-run that changes nothing; refused credentials and
an unreachable server fail before any write; an artifact URL that answers 404 fails its task naming it."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tests import clearml_sessions, mlflow_records
from tests.clearml_api_server import ClearmlApiServer
from tests.integration.test_mlflow_to_wandb import md5s, play
from tests.integration.test_tracker_copy import copies

pytestmark = pytest.mark.integration
TASK = "copy"
PROJECT = "vision/detection"


@pytest.fixture
def api(sdk_session):
    with ClearmlApiServer() as server:
        task = server.add_session(sdk_session)
        yield server, task, {"kind": "clearml_api", "api_server": server.url, "access_key": server.access_key,
                             "secret_key": server.secret_key}


def test_api_into_mlflow_equal_to_the_sessions_copy(playbook, mlflow_pair, api, sdk_session, tmp_path):
    server, task, source = api
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "ca-" + uuid.uuid4().hex[:8]
    options = dict(experiments=[PROJECT], name_prefix=f"{name}-")
    checked = playbook(play(source, target, str(tmp_path / "s"), **options), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 1 and client.get_experiment_by_name(f"{name}-{PROJECT}") is None
    first = playbook(play(source, target, str(tmp_path / "s"), **options)).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"], first["points_copied"]) == (1, 0, 2400), first
    assert {"auth.login", "projects.get_all", "tasks.get_all", "events.get_scalar_metrics_and_variants",
            "events.get_task_events", "events.get_task_log", "models.get_all"} <= set(server.calls)
    # the session itself into the same server: what the API gave is what the session holds
    root = tmp_path / "session"
    root.mkdir()
    (root / "s.zip").write_bytes(open(sdk_session, "rb").read())
    offline = playbook(play({"kind": "clearml_offline", "clearml_dir": str(root)}, target, str(tmp_path / "o"),
                            experiments=[PROJECT], name_prefix=f"{name}-off-")).task(TASK)["result"]
    assert offline["failed_count"] == 0
    (run,) = list(copies(client, f"{name}-{PROJECT}").values())
    (twin,) = list(copies(client, f"{name}-off-{PROJECT}").values())
    assert run.data.tags["mlops.migration.source_run_id"] == task["id"]
    assert (run.info.run_name, run.info.status, run.data.params) == (twin.info.run_name, twin.info.status,
                                                                     twin.data.params)
    server_tags = {"clearml.system_tags", "mlops.migration.source_run_id", "mlops.migration.source_experiment_id",
                   "mlops.migration.source_uri", "mlflow.user"}
    assert {k: v for k, v in run.data.tags.items() if k not in server_tags} == {
        k: v for k, v in twin.data.tags.items() if k not in server_tags}
    for key in ("loss/train", "loss/val"):
        mine = [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, key)]
        assert sorted(mine) == sorted((m.step, m.timestamp, m.value)
                                      for m in client.get_metric_history(twin.info.run_id, key)) and len(mine) == 1200
    files, twin_files = md5s(client, run.info.run_id), md5s(client, twin.info.run_id)
    differ = {"clearml/task.json"}  # the server's task document, not the session's
    assert {k: v for k, v in files.items() if k not in differ} == {k: v for k, v in twin_files.items() if k not in differ}
    assert files["clearml/models/best/best.pt"] == hashlib.md5(clearml_sessions.WEIGHTS).hexdigest()
    side = mlflow_records.side_lines(client, run.info.run_id, "mlops-migration/media/samples/input.jsonl")
    assert [line["step"] for line in side] == list(range(clearml_sessions.IMAGES))

    again = playbook(play(source, target, str(tmp_path / "s"), **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 1


def test_bad_api_input_is_refused_naming_it(playbook, mlflow_pair, api, tmp_path):
    server, task, source = api
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    for label, bad, expected in (
            ("key", dict(source, secret_key="wrong"), "Unauthorized (invalid credentials)"),
            ("host", dict(source, api_server="http://127.0.0.1:9"),
             "cannot log in to the ClearML API server http://127.0.0.1:9")):
        name = f"{label}-{uuid.uuid4().hex[:6]}"
        result = playbook(play(bad, target, str(tmp_path / label), experiments=[PROJECT], name_prefix=f"{name}-"),
                          expect_rc=2).task(TASK)["result"]
        assert expected in result["msg"], result["msg"]
        assert client.get_experiment_by_name(f"{name}-{PROJECT}") is None
    notes = next(a for a in task["execution"]["artifacts"] if a["key"] == "notes")
    del server.files[notes["uri"].split("/files/", 1)[1]]
    name = f"gone-{uuid.uuid4().hex[:6]}"
    result = playbook(play(source, target, str(tmp_path / "gone"), experiments=[PROJECT], name_prefix=f"{name}-"),
                      expect_rc=2).task(TASK)["result"]
    assert f"task {task['id']}: artifact notes: {notes['uri']} answered HTTP 404" in result["failures"][0]["reason"]
