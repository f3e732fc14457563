"""A Neptune 3.x server read through Neptune's own query client (kind ``neptune_query``) and copied by tracker_copy
into a real MLflow server and into W&B offline runs.

No Neptune server can run here, so the server is a loopback stand-in (tests/neptune_api_server.py) answering with
recorded responses: bodies built with neptune-query's own protobuf messages and JSON models from the runs below, on
the endpoints neptune-query calls. Checked field by field: run fields from ``sys/*``, params, a 1,200-point float
series with quarter steps read in windows (a per-run step scale, shared by the fork), string, histogram and file
series, a file, tags, a forked run nested under its parent with only its own points; check mode writes nothing; a
re-run changes nothing; a refused token, a missing project, a token that is not one and an unreachable server fail
before anything is written."""

from __future__ import annotations

import datetime
import hashlib
import os
import socket
import sys

import pytest
from mlflow.tracking import MlflowClient

from tests.integration.test_mlflow_to_wandb import md5s, play
from tests.integration.test_tracker_copy import copies
from tests.mlflow_records import side_lines
from tests.neptune_api_server import Project, StoredRun, api_token, serving

pytestmark = pytest.mark.integration
TASK = "copy"
PROJECT = "ws/live"
T0 = int(datetime.datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=datetime.timezone.utc).timestamp() * 1000)
WEIGHTS = bytes(range(256)) * 10
PNG = b"\x89PNG\r\n\x1a\n" + b"live" * 8
LOSS_POINTS = 1200


def project():
    """Two runs of one project: run-1 with every attribute kind, run-2 forked from it at step 2.5."""
    parent = StoredRun("LIVE-1", "run-1", values={
        "sys/name": ("string", "baseline"), "sys/creation_time": ("datetime", T0),
        "sys/modification_time": ("datetime", T0 + 300_000), "sys/owner": ("string", "alice"),
        "sys/tags": ("stringSet", {"a", "b"}), "sys/description": ("string", "the first"),
        "sys/failed": ("bool", False), "sys/experiment/name": ("string", "exp-1"),
        "parameters/lr": ("float", 0.01), "parameters/epochs": ("int", 3), "parameters/optimizer": ("string", "adam"),
        "model/weights": ("fileRef", {"path": "ws/live/run-1/model/weights.bin", "size": len(WEIGHTS)})},
        series={"train/loss": ("floatSeries", [(n / 4, T0 + 10 * n, 1.0 / (n + 1)) for n in range(LOSS_POINTS)]),
                "train/log": ("stringSeries", [(float(n), T0, f"epoch {n}") for n in range(3)]),
                "train/hist": ("histogramSeries", [(1.5, T0, {"type": "COUNTING", "edges": [0.0, 1.0, 2.0],
                                                              "values": [3.0, 4.0]})]),
                "samples/img": ("fileRefSeries", [(0.0, T0, {"path": "ws/live/run-1/img-0.png", "size": len(PNG)})])})
    fork = StoredRun("LIVE-2", "run-2", values={
        "sys/name": ("string", "forked"), "sys/creation_time": ("datetime", T0 + 3_600_000),
        "sys/forking/parent": ("string", "run-1"), "sys/forking/step": ("float", 2.5)},
        series={"train/loss": ("floatSeries", [(float(n), T0, 0.5) for n in range(3, 10)])},
        parent="LIVE-1", fork_step=2.5)
    return Project(PROJECT, [parent, fork], files={"ws/live/run-1/model/weights.bin": WEIGHTS,
                                                   "ws/live/run-1/img-0.png": PNG})


@pytest.fixture(scope="module")
def server():
    with serving([project()]) as running:
        yield running


def test_a_neptune_server_into_mlflow_field_by_field(playbook, mlflow_pair, server, tmp_path):
    source = {"kind": "neptune_query", "project": PROJECT, "api_key": server.token}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "nq-" + tmp_path.name[-8:]
    state = str(tmp_path / "state")
    options = dict(experiments=[PROJECT], name_prefix=f"{name}-")
    checked = playbook(play(source, target, state, **options), check=True)
    assert checked.task(TASK)["result"]["runs"]["copied"] == 2
    assert client.get_experiment_by_name(f"{name}-{PROJECT}") is None and server.token not in checked.stdout

    first = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0), first["failures"]
    assert first["points_copied"] == LOSS_POINTS + 7
    runs = copies(client, f"{name}-{PROJECT}")
    parent, fork = runs["run-1"], runs["run-2"]
    assert (parent.info.run_name, parent.info.status) == ("baseline", "FINISHED")
    assert (parent.info.start_time, parent.info.end_time) == (T0, T0 + 300_000)
    assert parent.data.params == {"parameters/lr": "0.01", "parameters/epochs": "3", "parameters/optimizer": "adam"}
    tags = parent.data.tags
    assert (tags["a"], tags["b"], tags["mlflow.user"], tags["mlflow.note.content"]) == ("", "", "alice", "the first")
    assert (tags["mlops.migration.neptune_experiment"], tags["mlops.migration.step_scale"]) == ("exp-1", "100")
    assert tags["mlops.migration.source_uri"] == f"neptune://{PROJECT}"
    loss = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(parent.info.run_id, "train/loss"))
    assert [s for s, _t, _v in loss] == [25 * n for n in range(LOSS_POINTS)]
    assert all(t == T0 + 10 * (s // 25) and v == pytest.approx(1 / (s // 25 + 1)) for s, t, v in loss)
    files = md5s(client, parent.info.run_id)
    assert files["model/weights"] == hashlib.md5(WEIGHTS).hexdigest()
    assert [files[p] for p in files if p.startswith("mlops-migration/media/samples/img/")] == [hashlib.md5(PNG).hexdigest()]
    (histogram,) = side_lines(client, parent.info.run_id, "mlops-migration/histogram/train/hist.jsonl")
    assert (histogram["step"], histogram["data"]["edges"], histogram["data"]["values"]) == (150, [0, 1, 2], [3, 4])
    lines = side_lines(client, parent.info.run_id, "mlops-migration/text/train/log.jsonl")
    assert [(line["step"], line["text"]) for line in lines] == [(0, "epoch 0"), (100, "epoch 1"), (200, "epoch 2")]
    assert fork.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert (fork.data.tags["mlops.migration.fork_step"], fork.data.tags["mlops.migration.step_scale"]) == ("250", "100")
    # only the fork's own points (its lineage up to the fork step stays in the parent)
    assert [m.step for m in client.get_metric_history(fork.info.run_id, "train/loss")] == list(range(300, 1000, 100))
    lineage = [body["requests"][0]["series"]["lineage"] for path, body in server.requests if path.endswith("/series/float")]
    assert lineage and set(lineage) == {"NONE"}

    again = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 2


def test_a_neptune_server_into_wandb_offline_runs(playbook, server, tmp_path):
    root = str(tmp_path / "offline")
    source = {"kind": "neptune_query", "project": PROJECT, "api_key": server.token}
    result = playbook(play(source, {"kind": "wandb_offline", "wandb_dir": root}, str(tmp_path / "s"),
                           experiments=[PROJECT])).task(TASK)["result"]
    assert (result["runs"]["copied"], result["failed_count"]) == (2, 0), result["failures"]
    sys.path.insert(0, os.path.join(os.getcwd(), ".build", "collections"))
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb import WandbOfflineSource  # noqa

    reader = WandbOfflineSource(root)
    parent, fork = reader.run("run-1"), reader.run("run-2")
    assert [p.step for p in reader.metric_history(parent, "train/loss")] == [25 * n for n in range(LOSS_POINTS)]
    assert (fork.parent_id, fork.fork_step) == ("run-1", 250)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("case, message", [
    ("wrong token", "NeptuneInvalidCredentialsError: Your Neptune API token was rejected by the server"),
    ("missing project", "Project ws/missing not found"),
    ("not a token", "the API token is not a Neptune API token"),
    ("unreachable", "cannot be reached"),
])
def test_bad_input_fails_before_anything_is_written(playbook, mlflow_pair, server, tmp_path, case, message):
    token = {"wrong token": api_token(server.url, "another-key"), "missing project": server.token,
             "not a token": "not-base64-json", "unreachable": api_token(f"http://127.0.0.1:{_free_port()}")}[case]
    source = {"kind": "neptune_query", "project": "ws/missing" if case == "missing project" else PROJECT,
              "api_key": token}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    name = "nqbad-" + tmp_path.name[-8:]
    result = playbook(play(source, target, str(tmp_path / "s"), name_prefix=f"{name}-"), expect_rc=2)
    assert message in result.task(TASK)["result"]["msg"]
    assert token not in result.stdout
    assert not [e for e in MlflowClient(target["tracking_uri"]).search_experiments() if e.name.startswith(name)]


def test_a_series_is_read_in_windows_from_the_top_and_handed_on_in_step_order(server, monkeypatch):
    """Memory holds one window of a series: with 300-point windows the 1,200 points take five requests, each up to
    the last window's lowest step (the bound is inclusive: that point is dropped the second time), and come out
    once each, in step order."""
    from ansible_collections.mlops.migration.plugins.module_utils.trackers import neptune_live  # noqa

    monkeypatch.setattr(neptune_live, "WINDOW", 300)
    source = neptune_live.NeptuneQuerySource(PROJECT, server.token)
    source.check()
    before = len(server.requests)
    parent = source.run("run-1")
    asked = [body["stepRange"]["to"] for path, body in server.requests[before:] if path.endswith("/series/float")]
    assert asked == [None, 225.0, 150.25, 75.5, 0.75]  # the step scan's windows: from the top down
    points = list(source.metric_history(parent, "train/loss"))
    assert [float(p.step) for p in points] == [n / 4 for n in range(LOSS_POINTS)] and parent.step_scale == 100
    assert [p.timestamp for p in points] == [T0 + 10 * n for n in range(LOSS_POINTS)]
