"""Offline stores of ``neptune-scale``, written inside the test by neptune-scale itself (``mode="offline"``;
``neptune sync`` needs a Neptune server, and none runs here), copied by tracker_copy into a real MLflow server
field by field: params, tags (a removed one left out), the experiment, a 1,200-point float series with quarter
steps and its own timestamps (a per-run step scale), string, histogram and file series, an assigned file, a
forked run nested under its parent; check mode writes nothing, a re-run changes nothing; a store that is not
SQLite and a damaged operation are refused naming the store (and the operation) before anything is written."""

from __future__ import annotations

import glob
import hashlib
import os
import sqlite3
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tests import neptune_scale_stores
from tests.integration.test_mlflow_to_wandb import md5s, play
from tests.integration.test_tracker_copy import copies
from tests.mlflow_records import side_lines

pytestmark = pytest.mark.integration
TASK = "copy"
PROJECT = "ws/proj"


def test_neptune_scale_stores_into_mlflow_field_by_field(playbook, mlflow_pair, tmp_path):
    source = {"kind": "neptune_scale", "neptune_dir": neptune_scale_stores.write(tmp_path / "work")}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "ns-" + uuid.uuid4().hex[:8]
    state = str(tmp_path / "state")
    options = dict(experiments=[PROJECT], name_prefix=f"{name}-")
    checked = playbook(play(source, target, state, **options), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 2 and client.get_experiment_by_name(f"{name}-{PROJECT}") is None

    first = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0), first
    assert first["points_copied"] == neptune_scale_stores.LOSS_POINTS + 7
    runs = copies(client, f"{name}-{PROJECT}")
    parent, fork = runs["run-1"], runs["run-2"]
    params = parent.data.params
    assert (params["parameters/lr"], params["parameters/epochs"], params["parameters/optimizer"]) == ("0.01", "3", "adam")
    assert params["parameters/when"] == "2024-01-01T00:00:00+00:00"
    tags = parent.data.tags
    assert (tags["a"], tags["b"], tags["mlops.migration.neptune_experiment"]) == ("", "", "exp-1") and "gone" not in tags
    assert tags["mlops.migration.step_scale"] == "100"
    loss = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(parent.info.run_id, "train/loss"))
    t0 = neptune_scale_stores.T0 * 1000
    assert [(s, t) for s, t, _v in loss] == [(25 * n, t0 + 10 * n) for n in range(neptune_scale_stores.LOSS_POINTS)]
    assert all(v == pytest.approx(1 / (s // 25 + 1)) for s, _t, v in loss)
    files = md5s(client, parent.info.run_id)
    weights = hashlib.md5(neptune_scale_stores.WEIGHTS).hexdigest()
    assert files["model/weights"] == weights
    assert [files[p] for p in files if p.startswith("mlops-migration/media/samples/img/")] == [weights]
    (histogram,) = side_lines(client, parent.info.run_id, "mlops-migration/histogram/train/hist.jsonl")
    assert (histogram["step"], histogram["data"]["edges"], histogram["data"]["values"]) == (100, [0, 1, 2], [3, 4])
    lines = side_lines(client, parent.info.run_id, "mlops-migration/text/train/log.jsonl")
    assert [line["text"] for line in lines] == ["epoch 0", "epoch 1"]
    assert fork.data.tags["mlflow.parentRunId"] == parent.info.run_id
    # the fork continues its parent's step axis: its steps and fork step are scaled as the parent's are (100)
    assert (fork.data.tags["mlops.migration.fork_step"], fork.data.tags["mlops.migration.step_scale"]) == ("250", "100")
    assert [m.step for m in client.get_metric_history(fork.info.run_id, "train/loss")] == list(range(300, 1000, 100))

    again = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 2


def test_a_store_that_is_not_sqlite_and_a_damaged_operation_are_refused(playbook, mlflow_pair, tmp_path):
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    label = uuid.uuid4().hex[:6]
    garbage = tmp_path / "garbage" / ".neptune" / "ws_proj_run-9_1"
    garbage.mkdir(parents=True)
    (garbage / "run_operations.sqlite3").write_bytes(b"not a database" * 100)
    damaged = neptune_scale_stores.write(tmp_path / "damaged")
    (store,) = glob.glob(os.path.join(damaged, "*_run-1_*", "run_operations.sqlite3"))
    with sqlite3.connect(store) as db:
        db.execute("UPDATE run_operations SET operation = ? WHERE sequence_id = 3", (b"\x0a\xff\xff",))
    for root, complaint in ((tmp_path / "garbage", f"{garbage / 'run_operations.sqlite3'}: not a neptune-scale offline store"),
                            (tmp_path / "damaged", f"{store}: operation 3 cannot be decoded")):
        prefix = f"{root.name}{label}-"
        result = playbook(play({"kind": "neptune_scale", "neptune_dir": str(root)}, target, str(tmp_path / f"s-{root.name}"),
                               experiments=[PROJECT], name_prefix=prefix), expect_rc=2).task(TASK)["result"]
        assert complaint in result["msg"], result["msg"]
        assert client.get_experiment_by_name(prefix + PROJECT) is None
