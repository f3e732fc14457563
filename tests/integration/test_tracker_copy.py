"""tracker_copy through ansible-playbook between the two real MLflow servers."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from tests import mlflow_records

pytestmark = pytest.mark.integration
TASK = "copy"


def play(mlflow_pair, state_dir, **options):
    args = {"source": {"tracking_uri": mlflow_pair["source"].tracking_uri},
            "target": {"tracking_uri": mlflow_pair["target"].tracking_uri}, "state_dir": state_dir, **options}
    return [{"name": "copy", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": TASK, "mlops.migration.tracker_copy": args}]}]


def copies(client, name):
    """{source run id: target Run} for the target experiment ``name`` (active runs only)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return {}
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    found = {}
    for run in runs:
        source_id = run.data.tags["mlops.migration.source_run_id"]
        assert source_id not in found, f"run {source_id} copied twice"
        found[source_id] = run
    return found


def assert_same_run(source, target, source_id, run, copied):
    """The copy ``run`` has the source run's name, times, status, user, params, tags (the parent as the copy of
    the parent, among ``copied``) and every metric point; returns the source run."""
    original = source.get_run(source_id)
    assert (run.info.run_name, run.info.start_time, run.info.end_time, run.info.status, run.info.user_id) == (
        original.info.run_name, original.info.start_time, original.info.end_time, original.info.status,
        original.info.user_id)
    assert run.data.params == original.data.params
    ours = {k: v for k, v in run.data.tags.items() if not k.startswith("mlops.migration.")}
    parent = original.data.tags.get("mlflow.parentRunId")
    if parent:
        assert ours.pop("mlflow.parentRunId") == copied[parent].info.run_id
    assert ours == {k: v for k, v in original.data.tags.items() if k != "mlflow.parentRunId"}
    for key in original.data.metrics:
        theirs = [(m.step, m.timestamp, m.value) for m in target.get_metric_history(run.info.run_id, key)]
        mine = [(m.step, m.timestamp, m.value) for m in source.get_metric_history(source_id, key)]
        assert sorted(theirs) == sorted(mine)
    return original


@pytest.fixture
def experiment(mlflow_pair):
    name = f"exp-{uuid.uuid4().hex[:8]}"
    exp_id, ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=4, metrics=3, steps=1200)
    return name, exp_id, ids


def test_copy_keeps_every_field_and_a_rerun_changes_nothing(playbook, mlflow_pair, experiment, tmp_path):
    name, _exp_id, ids = experiment
    state = str(tmp_path / "state")
    options = {"experiments": [name]}
    checked = playbook(play(mlflow_pair, state, **options), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 4 and not os.path.exists(os.path.join(state, "migration-state.sqlite"))
    target = MlflowClient(mlflow_pair["target"].tracking_uri)
    assert target.get_experiment_by_name(name) is None

    first = playbook(play(mlflow_pair, state, **options)).task(TASK)["result"]
    assert first["changed"]
    assert (first["runs"]["copied"], first["versions"]["copied"], first["failed_count"]) == (4, 2, 0)
    assert first["points_copied"] == 4 * 3 * 1200
    source = MlflowClient(mlflow_pair["source"].tracking_uri)
    copied = copies(target, name)
    assert set(copied) == set(ids)
    for source_id, run in copied.items():
        original = assert_same_run(source, target, source_id, run, copied)
        assert run.data.params["modèle"] == "réseau-ü"
        assert [(d.dataset.name, d.dataset.digest, d.dataset.source, [(t.key, t.value) for t in d.tags])
                for d in run.inputs.dataset_inputs] == [
            (d.dataset.name, d.dataset.digest, d.dataset.source, [(t.key, t.value) for t in d.tags])
            for d in original.inputs.dataset_inputs]
        assert run.inputs.dataset_inputs
        listing = [a.path for a in target.list_artifacts(run.info.run_id, "outputs/set1/deep/er")]
        assert listing == ["outputs/set1/deep/er/file-1.bin"]
    exp = target.get_experiment_by_name(name)
    assert exp.tags["mlflow.note.content"] == "the déscription" and exp.tags["project"] == "ünïcode"
    model = target.get_registered_model(f"{name}-model")
    assert model.aliases == {"champion": "2"} and model.description == "the best"
    versions = {v.version: v for v in target.search_model_versions(f"name='{name}-model'")}
    assert versions["1"].run_id == copied[ids[0]].info.run_id
    assert versions["2"].source == f"runs:/{copied[ids[1]].info.run_id}/outputs/set0"

    again = playbook(play(mlflow_pair, state, **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 4 and again["points_copied"] == 0


def test_new_runs_and_points_of_a_running_run_move_on_rerun(playbook, mlflow_pair, tmp_path):
    name = f"live-{uuid.uuid4().hex[:8]}"
    exp_id, _ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=1, steps=10, model=False)
    source = MlflowClient(mlflow_pair["source"].tracking_uri)
    live = mlflow_records.add_run(source, exp_id, 7, metrics=1, steps=20, artifacts=0, finish=False)
    state = str(tmp_path / "state")
    first = playbook(play(mlflow_pair, state, experiments=[name])).task(TASK)["result"]
    assert first["runs"]["copied"] == 2
    # a check: the run still running has logged nothing since, so nothing would be written (a verify pass says so)
    idle = playbook(play(mlflow_pair, state, experiments=[name]), check=True).task(TASK)["result"]
    assert (idle["runs"]["updated"], idle["runs"]["skipped"], idle["changed"]) == (0, 2, False)

    mlflow_records.log_points(source, live, "metric_0", 15, start=20)
    grown = playbook(play(mlflow_pair, state, experiments=[name]), check=True).task(TASK)["result"]
    assert (grown["runs"]["updated"], grown["runs"]["skipped"]) == (1, 1)
    source.set_terminated(live, "FINISHED", mlflow_records.BASE_TIME + 999_000)
    mlflow_records.add_run(source, exp_id, 8, metrics=1, steps=5, artifacts=0)
    second = playbook(play(mlflow_pair, state, experiments=[name])).task(TASK)["result"]
    assert (second["runs"]["copied"], second["runs"]["updated"], second["runs"]["skipped"]) == (1, 1, 1)
    assert second["points_copied"] == 15 + 5
    target = MlflowClient(mlflow_pair["target"].tracking_uri)
    copy = copies(target, name)[live]
    assert len(target.get_metric_history(copy.info.run_id, "metric_0")) == 35
    assert (copy.info.status, copy.info.end_time) == ("FINISHED", mlflow_records.BASE_TIME + 999_000)


def test_deleted_runs_move_only_with_include_deleted(playbook, mlflow_pair, tmp_path):
    name = f"del-{uuid.uuid4().hex[:8]}"
    _exp_id, ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=2, steps=5, artifacts=0,
                                       nested=False, model=False)
    MlflowClient(mlflow_pair["source"].tracking_uri).delete_run(ids[1])
    skipped = playbook(play(mlflow_pair, str(tmp_path / "a"), experiments=[name])).task(TASK)["result"]
    assert skipped["runs"]["found"] == 1
    kept = playbook(play(mlflow_pair, str(tmp_path / "b"), experiments=[name], include_deleted=True,
                         name_prefix="all-")).task(TASK)["result"]
    assert kept["runs"]["copied"] == 2
    target = MlflowClient(mlflow_pair["target"].tracking_uri)
    exp = target.get_experiment_by_name("all-" + name)
    deleted = target.search_runs([exp.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.data.tags["mlops.migration.source_run_id"] for r in deleted] == [ids[1]]


def test_killed_copy_resumes_without_duplicates(playbook, mlflow_pair, tmp_path):
    name = f"kill-{uuid.uuid4().hex[:8]}"
    mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=8, metrics=2, steps=3000, artifacts=1,
                        nested=False, model=False)
    state = str(tmp_path / "state")
    script = tmp_path / "first_run.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {os.path.join(os.getcwd(), ".build", "collections")!r})
        from ansible_collections.mlops.migration.plugins.module_utils.state.ledger import Ledger
        from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier
        from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import MlflowSource, MlflowTarget
        source = MlflowSource({mlflow_pair["source"].tracking_uri!r})
        target = MlflowTarget({mlflow_pair["target"].tracking_uri!r})
        from ansible_collections.mlops.migration.plugins.module_utils.state.leases import HeldLease
        path = {os.path.join(state, "migration-state.sqlite")!r}
        ledger = Ledger(path, source.uri, target.uri)
        with HeldLease(path, f"tracker_copy {{source.uri}} -> {{target.uri}}"):  # as tracker_copy holds it
            open({str(tmp_path / "held")!r}, "w").close()
            while not os.path.exists({str(tmp_path / "go")!r}):
                time.sleep(0.05)
            Copier(source, target, ledger, parallel=1).copy([{name!r}])
    """))
    proc = subprocess.Popen([sys.executable, str(script)])  # pylint: disable=consider-using-with
    target = MlflowClient(mlflow_pair["target"].tracking_uri)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (tmp_path / "held").exists():
        time.sleep(0.1)
    # a second copy on the same ledger while the first runs is refused, naming the first (the ledger's lease)
    second = playbook(play(mlflow_pair, state, experiments=[name]), expect_rc=2).task(TASK)["result"]
    assert f"is being run by pid {proc.pid} (pid {proc.pid} on host" in second["msg"], second["msg"]
    assert second["lease_holder"]["pid"] == proc.pid
    (tmp_path / "go").touch()
    while time.monotonic() < deadline and len(copies(target, name)) < 3:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(copies(target, name))
    assert 3 <= before < 8, f"the kill came too late or too early: {before} runs"

    resumed = playbook(play(mlflow_pair, state, experiments=[name])).task(TASK)["result"]
    assert any(f"took the ledger's lease over from pid {proc.pid}" in w for w in resumed["warnings"])  # it died
    assert resumed["runs"]["copied"] + resumed["runs"]["skipped"] == 8
    assert resumed["runs"]["copied"] >= 8 - before  # the half-written run is redone too
    final = copies(target, name)  # raises on a duplicate
    assert len(final) == 8
    for run in final.values():
        assert len(target.get_metric_history(run.info.run_id, "metric_1")) == 3000


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  (the http.server name)
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error_code": "UNAUTHENTICATED", "message": "bad token"}')

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_bad_uri_and_bad_token_are_explained(playbook, mlflow_pair, tmp_path):
    state = str(tmp_path / "state")
    nowhere = play(mlflow_pair, state)
    nowhere[0]["tasks"][0]["mlops.migration.tracker_copy"]["source"]["tracking_uri"] = "http://127.0.0.1:9"
    run = playbook(nowhere, expect_rc=2)
    assert "cannot reach MLflow at http://127.0.0.1:9" in run.task(TASK)["result"]["msg"]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)  # a server that refuses every token
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        refused = play(mlflow_pair, state)
        refused[0]["tasks"][0]["mlops.migration.tracker_copy"]["target"] = {
            "tracking_uri": f"http://127.0.0.1:{server.server_address[1]}", "token": "wrong"}
        run = playbook(refused, expect_rc=2)
        message = run.task(TASK)["result"]["msg"]
        assert "refused the credentials (HTTP 401)" in message and "wrong" not in message
    finally:
        server.shutdown()
        server.server_close()
    assert not os.path.exists(os.path.join(state, "migration-state.sqlite"))


def test_models_with_quotes_in_their_names_are_copied(playbook, mlflow_pair, tmp_path):
    """MLflow filter strings have no escapes: such names must be quoted right, never spliced into a filter."""
    name = f"quotes-{uuid.uuid4().hex[:8]}"
    _exp_id, ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=1, metrics=1, steps=3,
                                       artifacts=1, nested=False, model=False)
    source = MlflowClient(mlflow_pair["source"].tracking_uri)
    models = [f"{name} bob's model", f'{name} say "hi"', f"{name} x' OR name LIKE '%", f"{name} both ' and \""]
    for model in models:
        source.create_registered_model(model)
        source.create_model_version(model, f"runs:/{ids[0]}/outputs/set0", run_id=ids[0])
    result = playbook(play(mlflow_pair, str(tmp_path / "state"), experiments=[name])).task(TASK)["result"]
    assert result["models"]["copied"] == len(models) and result["failed_count"] == 0
    target = MlflowClient(mlflow_pair["target"].tracking_uri)
    for model in models:
        versions = target.get_registered_model(model).latest_versions
        assert [v.version for v in versions] == ["1"], model


def test_runs_of_one_experiment_log_the_same_dataset_at_once(mlflow_pair):
    """Eight copies in parallel, one dataset: the server's create-once race never fails a run."""
    from concurrent.futures import ThreadPoolExecutor  # pylint: disable=import-outside-toplevel

    from mlflow.entities import Dataset, DatasetInput  # pylint: disable=import-outside-toplevel

    from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import (  # pylint: disable=C0415
        MlflowTarget,
    )

    client = MlflowClient(mlflow_pair["target"].tracking_uri)
    exp_id = client.create_experiment(f"race-{uuid.uuid4().hex[:8]}")
    runs = [client.create_run(exp_id).info.run_id for _run in range(8)]
    dataset = DatasetInput(Dataset("shared", "d0000001", "local", source="s3://b/train.csv"), [])
    target = MlflowTarget(mlflow_pair["target"].tracking_uri)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda run_id: target.log_inputs(run_id, [dataset]), runs))
    for run_id in runs:
        assert [d.dataset.name for d in client.get_run(run_id).inputs.dataset_inputs] == ["shared"]
