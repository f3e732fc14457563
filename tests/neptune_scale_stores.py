"""Offline stores written by ``neptune-scale`` itself (``Run(mode="offline")``), for the tests.

neptune-scale pins a protobuf older than the one wandb needs, so it lives in its own interpreter
(``.venv-neptune-scale``, made by ``make deps``) and each store is written by a child process of it in the
directory given.
"""

from __future__ import annotations

import os
import textwrap

from tests.neptune_offline_runs import LOSS_POINTS, T0, WEIGHTS, write_with
from tests.stack import builds

PYTHON = os.path.join(builds.REPO, ".venv-neptune-scale", "bin", "python")
__all__ = ["LOSS_POINTS", "T0", "WEIGHTS", "write"]  # the data's shape, the same as neptune_offline_runs'

SCRIPT = textwrap.dedent("""
    import datetime, sys
    from neptune_scale import Run
    from neptune_scale.types import Histogram

    run = Run(run_id="run-1", project="ws/proj", mode="offline", experiment_name="exp-1")
    run.log_configs({"parameters/lr": 0.01, "parameters/epochs": 3, "parameters/optimizer": "adam",
                     "parameters/when": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)})
    run.add_tags(["b", "a", "gone"])
    run.remove_tags(["gone"])
    for n in range(LOSS_POINTS):
        moment = datetime.datetime.fromtimestamp(T0 + n / 100, tz=datetime.timezone.utc)
        run.log_metrics({"train/loss": 1.0 / (n + 1)}, step=n / 4, timestamp=moment)
    run.log_string_series({"train/log": "epoch 0"}, step=0)
    run.log_string_series({"train/log": "epoch 1"}, step=1)
    run.log_histograms({"train/hist": Histogram(bin_edges=[0, 1, 2], counts=[3, 4])}, step=1)
    run.assign_files({"model/weights": WEIGHTS_PATH})
    run.log_files({"samples/img": WEIGHTS_PATH}, step=2)
    run.close()
    fork = Run(run_id="run-2", project="ws/proj", mode="offline", fork_run_id="run-1", fork_step=2.5)
    for n in range(3, 10):
        fork.log_metrics({"train/loss": 0.5}, step=n)
    fork.close()
""")


def write(directory):
    """Two runs (the second forked from the first at step 2.5) written in ``directory``; returns its ``.neptune``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEPTUNE_")}
    return write_with(PYTHON, SCRIPT, directory, env)
