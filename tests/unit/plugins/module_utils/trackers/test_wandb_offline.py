"""An offline run the W&B SDK writes inside the test, read into neutral records: run fields, nested config and
its flattening, every history point with its step and timestamp (sparse metrics too), summary, an image and a
histogram as series items, console lines, files and the exit status."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_offline import flatten, read_run, run_log

pytest.importorskip("wandb", reason="wandb is in test-requirements.txt: make deps installs it")

WRITE = """
import sys, time
import numpy as np
import wandb
run = wandb.init(mode="offline", project="vision", id="run0002", name="resnet", group="sweep-1", job_type="train",
                 tags=["baseline", "gpu"], notes="the baseline", dir=sys.argv[1],
                 config={"lr": 0.001, "optimizer": {"name": "adam", "betas": [0.9, 0.999]}})
for step in range(1200):
    row = {"loss": 1.0 / (step + 1)}
    if step % 100 == 0:
        row["val/acc"] = step / 1200
    if step == 5:
        row["sample"] = wandb.Image(np.zeros((8, 8, 3), dtype=np.uint8), caption="zeros")
    if step == 10:
        row["weights"] = wandb.Histogram(np.arange(100))
    run.log(row, step=step)
run.summary["best_acc"] = 0.93
print("epoch done")
run.finish()
"""


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb-run")
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(root))
    started = int(__import__("time").time() * 1000)
    subprocess.run([sys.executable, "-c", WRITE, str(root)], env=env, check=True, timeout=300, cwd=root)
    folders = glob.glob(os.path.join(root, "wandb", "offline-run-*-run0002"))
    assert len(folders) == 1
    return read_run(folders[0]), started, folders[0]


def test_run_fields_config_and_summary(offline_run):
    found, started, _folder = offline_run
    run = found.run
    assert (run.id, run.name, run.experiment_id, run.group, run.job_type, run.description) == (
        "run0002", "resnet", "vision", "sweep-1", "train", "the baseline")
    assert run.tags == {"baseline": "", "gpu": ""} and run.status == "FINISHED"
    assert started - 5000 <= run.start_time <= run.end_time
    assert run.config == {"lr": 0.001, "optimizer": {"name": "adam", "betas": [0.9, 0.999]}}
    assert run.params == {"lr": "0.001", "optimizer.name": "adam", "optimizer.betas": "[0.9, 0.999]"}
    assert run.summary["best_acc"] == 0.93 and "_runtime" not in run.summary


def test_every_point_with_its_step_and_timestamp(offline_run):
    found, started, _folder = offline_run
    loss = found.points["loss"]
    assert [p.step for p in loss] == list(range(1200))
    assert loss[3].value == pytest.approx(0.25)
    stamps = [p.timestamp for p in loss]
    assert stamps == sorted(stamps) and stamps[0] >= started - 5000
    assert [p.step for p in found.points["val/acc"]] == list(range(0, 1200, 100))  # sparse, not filled in
    assert found.run.metric_keys == ["loss", "val/acc"]


def test_media_histogram_console_and_files(offline_run):
    found, _started, folder = offline_run
    by_key = {}
    for item in found.series:
        by_key.setdefault(item.key, []).append(item)
    image = by_key["sample"][0]
    assert image.step == 5 and image.caption == "zeros" and image.file.startswith("media/images/")
    assert os.path.isfile(os.path.join(folder, "files", image.file))
    histogram = by_key["weights"][0]
    assert histogram.step == 10 and len(histogram.data["values"]) == len(histogram.data["edges"]) - 1
    assert sum(histogram.data["values"]) == 100
    assert "epoch done" in "".join(item.text for item in by_key["console"])
    assert found.run.series["media"] == ["sample"] and found.run.series["histogram"] == ["weights"]
    assert "requirements.txt" in found.files


def test_flatten_keeps_leaves_as_json():
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": [1, 2], "f": {}}) == {
        "a.b": "1", "a.c.d": "x", "e": "[1, 2]", "f": json.dumps({})}


def test_a_folder_without_a_log_is_named(tmp_path):
    with pytest.raises(Exception, match="holds 0 run-<id>.wandb files"):
        run_log(str(tmp_path))
