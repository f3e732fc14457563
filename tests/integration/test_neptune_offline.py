"""Offline folders of the ``neptune`` 1.x client, written inside the test by the client itself (``mode="offline"``;
``neptune sync`` needs a Neptune server, and none runs here), copied by tracker_copy into a real MLflow server
field by field: run fields, params (a deleted one left out), a 1,200-point float series with quarter steps (a
per-run step scale), a series logged without steps, string and image series, an uploaded file and content the
client copied; check mode writes nothing, a re-run changes nothing; a queue cut short is refused naming the file
and the line before anything is written, and a file the queue names but that is gone fails its run, naming it."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tests import neptune_offline_runs
from tests.integration.test_mlflow_to_wandb import md5s, play
from tests.integration.test_tracker_copy import copies

pytestmark = pytest.mark.integration
TASK = "copy"
PROJECT = "ws/proj"


def _source(neptune_dir):
    return {"kind": "neptune_offline", "neptune_dir": neptune_dir, "project": PROJECT}


def test_neptune_offline_runs_into_mlflow_field_by_field(playbook, mlflow_pair, tmp_path):
    source = _source(neptune_offline_runs.write(tmp_path / "work"))
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "no-" + uuid.uuid4().hex[:8]
    state = str(tmp_path / "state")
    options = dict(experiments=[PROJECT], name_prefix=f"{name}-")
    checked = playbook(play(source, target, state, **options), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 2 and client.get_experiment_by_name(f"{name}-{PROJECT}") is None

    first = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0), first
    assert first["points_copied"] == neptune_offline_runs.LOSS_POINTS + 2 + 5
    by_name = {run.info.run_name: run for run in copies(client, f"{name}-{PROJECT}").values()}
    run, second = by_name["baseline"], by_name["second"]
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.note.content"] == "the first"
    assert (run.data.tags["a"], run.data.tags["b"]) == ("", "")
    params = run.data.params
    assert (params["parameters/lr"], params["parameters/epochs"], params["parameters/optimizer"]) == ("0.01", "3", "adam")
    assert params["parameters/when"] == "2024-01-01T00:00:00+00:00" and "parameters/scratch" not in params
    assert run.data.tags["mlops.migration.step_scale"] == "100"  # quarter steps: two places
    loss = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss"))
    t0 = neptune_offline_runs.T0 * 1000
    assert [(s, t) for s, t, _v in loss] == [(25 * n, t0 + 10 * n) for n in range(neptune_offline_runs.LOSS_POINTS)]
    assert all(v == pytest.approx(1 / (s // 25 + 1)) for s, _t, v in loss)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/acc")] == [0, 100]  # 0 and 1, scaled
    files = md5s(client, run.info.run_id)
    assert files["model/weights"] == hashlib.md5(neptune_offline_runs.WEIGHTS).hexdigest()
    assert files["model/notes"] == hashlib.md5(b"copied by the client").hexdigest()
    with open(client.download_artifacts(run.info.run_id, "mlops-migration/text/train/log.jsonl"),
              encoding="utf-8") as lines:
        assert [(json.loads(line)["step"], json.loads(line)["text"]) for line in lines] == [
            (0, "epoch 0"), (100, "epoch 1")]
    images = [p for p in files if p.startswith("mlops-migration/media/samples/img/")]
    assert len(images) == 1
    with open(client.download_artifacts(run.info.run_id, images[0]), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert [m.step for m in client.get_metric_history(second.info.run_id, "train/loss")] == list(range(5))

    again = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 2


def test_a_cut_queue_and_a_missing_file_are_refused(playbook, mlflow_pair, tmp_path):
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    label = uuid.uuid4().hex[:6]
    cut = neptune_offline_runs.write(tmp_path / "cut")
    (queue,) = [q for q in glob.glob(os.path.join(cut, "offline", "*", "data-1.log")) if os.path.getsize(q) > 10_000]
    with open(queue, "rb") as handle:
        data = handle.read()
    with open(queue, "wb") as handle:
        handle.write(data[:-40])  # the last operation cut in the middle
    lines = data[:-40].count(b"\n") + 1
    refused = playbook(play(_source(cut), target, str(tmp_path / "s1"), experiments=[PROJECT],
                            name_prefix=f"cut{label}-"), expect_rc=2).task(TASK)["result"]
    assert f"{queue}: line {lines} is not JSON" in refused["msg"] and "the queue was cut short there" in refused["msg"]
    assert client.get_experiment_by_name(f"cut{label}-{PROJECT}") is None

    gone = neptune_offline_runs.write(tmp_path / "gone")
    os.unlink(tmp_path / "gone" / "weights.bin")
    state = str(tmp_path / "s2")
    for _attempt in range(2):  # the run fails each time, naming the file; it is never marked complete
        result = playbook(play(_source(gone), target, state, experiments=[PROJECT], name_prefix=f"gone{label}-"),
                          expect_rc=2).task(TASK)["result"]
        assert f"file attribute model/weights names {tmp_path / 'gone' / 'weights.bin'}, which is not there" in \
            result["msg"], result["msg"]
