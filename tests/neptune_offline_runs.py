"""Offline folders written by the ``neptune`` 1.x client itself (``mode="offline"``), for the tests.

The client writes ``.neptune/`` under its working directory and runs background threads, so each folder is
written by a child process in the directory given.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

LOSS_POINTS = 1200
T0 = 1_700_000_000
WEIGHTS = bytes(range(256)) * 10

SCRIPT = textwrap.dedent("""
    import datetime, sys
    import neptune
    from neptune.types import File
    from PIL import Image

    off = dict(capture_stdout=False, capture_stderr=False, capture_hardware_metrics=False, capture_traceback=False,
               git_ref=False, source_files=[])
    run = neptune.init_run(mode="offline", project="ws/proj", name="baseline", tags=["b", "a"],
                           description="the first", **off)
    run["parameters"] = {"lr": 0.01, "epochs": 3, "optimizer": "adam"}
    run["parameters/when"] = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    run["parameters/scratch"] = "gone"
    del run["parameters/scratch"]
    for n in range(LOSS_POINTS):
        run["train/loss"].append(1.0 / (n + 1), step=n / 4, timestamp=T0 + n / 100)
    run["train/acc"].append(0.1)
    run["train/acc"].append(0.2)
    run["train/log"].append("epoch 0", step=0)
    run["train/log"].append("epoch 1", step=1)
    run["samples/img"].append(File.as_image(Image.new("RGB", (2, 2), (255, 0, 0))), step=1)
    run["model/weights"].upload(WEIGHTS_PATH)
    run["model/notes"].upload(File.from_content(b"copied by the client", extension="txt"))
    run.stop()
    second = neptune.init_run(mode="offline", project="ws/proj", name="second", **off)
    for n in range(5):
        second["train/loss"].append(0.5, step=n)
    second.stop()
""")


def write_with(python, script, directory, env):
    """Run a Neptune client's ``script`` with ``python`` in ``directory`` (after a ``weights.bin`` there, named
    to it as WEIGHTS_PATH with LOSS_POINTS and T0); returns the ``.neptune`` directory it wrote."""
    os.makedirs(directory, exist_ok=True)
    weights = os.path.join(str(directory), "weights.bin")
    with open(weights, "wb") as handle:
        handle.write(WEIGHTS)
    script = f"LOSS_POINTS, T0, WEIGHTS_PATH = {LOSS_POINTS}, {T0}, {weights!r}\n" + script
    done = subprocess.run([python, "-c", script], cwd=str(directory), env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return os.path.join(str(directory), ".neptune")


def write(directory):
    """Two offline runs written by the client in ``directory``; returns its ``.neptune`` directory."""
    env = dict(os.environ, NEPTUNE_MODE="offline")
    env.pop("NEPTUNE_API_TOKEN", None)
    return write_with(sys.executable, SCRIPT, directory, env)
