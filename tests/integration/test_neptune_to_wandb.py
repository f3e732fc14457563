"""A neptune-exporter export (written with pyarrow to the exporter's schema) copied by tracker_copy into W&B offline
run folders through the W&B SDK, read back with the collection's W&B reader: run fields, params, every point
with its step times the run's step scale (W&B steps are whole) and timestamp, the fork's parent and step kept."""

from __future__ import annotations

import glob
import os
import sys

import pytest

from tests.integration.test_mlflow_to_wandb import play
from tests.integration.test_neptune_to_mlflow import PROJECT, T0, _ms, export

pytestmark = pytest.mark.integration
TASK = "copy"


def test_a_neptune_export_into_wandb_offline_runs(playbook, tmp_path):
    source = export(tmp_path / "export")
    root = str(tmp_path / "offline")
    target = {"kind": "wandb_offline", "wandb_dir": root, "entity": "team"}
    first = playbook(play(source, target, str(tmp_path / "s"), experiments=[PROJECT])).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0), first
    sys.path.insert(0, os.path.join(os.getcwd(), ".build", "collections"))
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb import WandbOfflineSource  # noqa

    reader = WandbOfflineSource(root)
    parent, fork = reader.run("RUN-1"), reader.run("RUN-2")
    assert (parent.name, parent.start_time, parent.status, parent.user) == ("baseline", _ms(T0), "FINISHED", "alice")
    assert parent.params["parameters/optimizer"] == "adam" and parent.tags["mlops.migration.step_scale"] == "100"
    loss = [(p.step, p.timestamp, p.value) for p in reader.metric_history(parent, "train/loss")]
    assert [s for s, _t, _v in loss] == [25 * n for n in range(1200)]
    assert all(t == _ms(T0) + 10 * (s // 25) and v == pytest.approx(1 / (s // 25 + 1)) for s, t, v in loss)
    assert [item.text for item in reader.series(parent, "text", "train/log")] == ["epoch 0", "epoch 1", "epoch 2"]
    images = list(reader.series(parent, "media", "samples/img"))  # not decodable images: kept as side-file items
    assert [item.step for item in images] == [0, 100]
    for n, item in enumerate(images):
        reader.series_file(parent, item, str(tmp_path / "img"))
        assert (tmp_path / "img").read_bytes() == b"\x89PNG" + bytes([n]) * 40
    # the fork continues its parent's step axis (both scaled by 100), and the SDK wrote it as W&B's own fork
    # (fork_from "RUN-1?_step=250": the run record's branch point), which wandb sync hands to the server
    assert (fork.parent_id, fork.fork_step) == ("RUN-1", 250)
    assert [p.step for p in reader.metric_history(fork, "train/loss")] == list(range(300, 1000, 100))
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_offline import read_run  # noqa

    (folder,) = [f for f in glob.glob(os.path.join(root, "wandb", "offline-run-*")) if f.endswith("-RUN-2")]
    as_written = read_run(folder).run  # the SDK's records alone, before the migration record is applied
    assert (as_written.parent_id, as_written.fork_step) == ("RUN-1", 250.0)
    again = playbook(play(source, target, str(tmp_path / "s"), experiments=[PROJECT])).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 2
