"""ClearML offline sessions written by the ClearML SDK itself (``Task.set_offline(True)``), for the tests and the
benchmark. Each is written by a child interpreter (the SDK keeps one task per process, and patches stdout and
atexit), in ``CLEARML_CACHE_DIR``; the SDK leaves ``offline/offline-<id>.zip`` there."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import zipfile

LOSS_POINTS = 1200
IMAGES = 3
CONSOLE_LINES = ("epoch 0 done", "epoch 1 done", "training finished")
WEIGHTS = b"\x00weights\x01" * 500
NOTES = "a note about the data\n" * 20

TASK_SCRIPT = r'''
import json, os, sys
import numpy as np
from clearml import Task, OutputModel

# clearml 2.1.12 cannot write an output model offline: OutputModel.update_weights asks the offline stand-in
# model whether it is published ("'DummyModel' object has no attribute 'locked'"); an offline model never is.
OutputModel.published = property(lambda self: False)
spec = json.loads(sys.argv[1])
Task.set_offline(True)
task = Task.init(project_name=spec["project"], task_name=spec["name"], task_type=spec.get("type", "training"),
                 auto_connect_frameworks=False, auto_resource_monitoring=False, auto_connect_arg_parser=False,
                 auto_connect_streams=False, reuse_last_task_id=False)
task.set_comment(spec.get("comment", ""))
task.add_tags(spec.get("tags", []))
for section, values in spec.get("hyperparams", {}).items():
    task.connect(values, name=section)
for name, value in spec.get("configuration", {}).items():
    task.connect_configuration(value, name=name)
logger = task.get_logger()
for it in range(spec.get("points", 0)):
    for variant, scale in (("train", 1.0), ("val", 2.0)):
        logger.report_scalar("loss", variant, value=scale / (it + 1), iteration=it)
for it in range(spec.get("images", 0)):
    image = np.full((8, 8, 3), it * 40, dtype=np.uint8)
    logger.report_image("samples", "input", iteration=it, image=image)
if spec.get("plot"):
    logger.report_plotly("confusion", "matrix", iteration=0, figure={
        "data": [{"type": "heatmap", "z": [[1, 2], [3, 4]]}],
        "layout": {"title": "confusion", "images": [{"source": spec["plot"], "x": 0, "y": 0}]}})
for line in spec.get("console", []):
    logger.report_text(line)
for value_name, value in spec.get("single_values", {}).items():
    logger.report_single_value(value_name, value)
for key, path in spec.get("file_artifacts", {}).items():
    task.upload_artifact(key, artifact_object=path)
for key, value in spec.get("object_artifacts", {}).items():
    task.upload_artifact(key, artifact_object=value)
if spec.get("model"):
    model = OutputModel(task=task, name=spec["model"]["name"], framework="PyTorch")
    model.update_weights(weights_filename=spec["model"]["path"], iteration=spec.get("points", 1) - 1)
task.close()
'''


def write_task(cache_dir, spec):
    """Have the SDK write one task (``spec``: project, name, and what to report); the session zip's path."""
    os.makedirs(cache_dir, exist_ok=True)
    before = set(glob.glob(os.path.join(cache_dir, "offline", "*.zip")))
    env = dict(os.environ, CLEARML_CACHE_DIR=str(cache_dir), CLEARML_OFFLINE_MODE="1", CLEARML_LOG_LEVEL="ERROR")
    done = subprocess.run([sys.executable, "-c", TASK_SCRIPT, json.dumps(spec)], cwd=str(cache_dir), env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    made = sorted(set(glob.glob(os.path.join(cache_dir, "offline", "*.zip"))) - before)
    assert len(made) == 1, (made, done.stdout + done.stderr)
    return made[0]


def full_spec(scratch, project="vision/detection", name="baseline", plot_image=None):
    """Everything the issue's test task has: 1,200-iteration scalars in two series, a plot with an image, debug
    samples, console lines, hyperparameters in two sections, a configuration object, two artifacts, an output
    model, and a single value."""
    os.makedirs(scratch, exist_ok=True)
    notes, weights = os.path.join(scratch, "notes.txt"), os.path.join(scratch, "best.pt")
    with open(notes, "w", encoding="utf-8") as handle:
        handle.write(NOTES)
    with open(weights, "wb") as handle:
        handle.write(WEIGHTS)
    return {"project": project, "name": name, "comment": "the baseline run", "tags": ["nightly", "gpu"],
            "hyperparams": {"General": {"lr": 0.01, "layers": 3}, "Optimizer": {"name": "adam", "beta": 0.9}},
            "configuration": {"model_cfg": {"backbone": {"depth": 4, "width": 64}}},
            "points": LOSS_POINTS, "images": IMAGES, "plot": plot_image or "https://example.com/plot-image.png",
            "console": list(CONSOLE_LINES), "single_values": {"accuracy": 0.93},
            "file_artifacts": {"notes": notes}, "object_artifacts": {"summary": {"best_epoch": 7}},
            "model": {"name": "best", "path": weights}}


def session_json(path, name):
    """A member of a session zip: task.json as a dict, or the events of a ``.jsonl`` file as a list."""
    with zipfile.ZipFile(path) as archive:
        text = archive.read(name).decode("utf-8")
    if name.endswith(".jsonl"):
        return [event for line in text.splitlines() if line.strip() for event in json.loads(line)]
    return json.loads(text)
