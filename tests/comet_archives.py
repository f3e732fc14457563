"""Comet offline archives written by Comet's own SDK (``comet_ml.OfflineExperiment``), for the tests."""

from __future__ import annotations

import glob
import os
import zipfile

os.environ.setdefault("COMET_LOGGING_CONSOLE", "CRITICAL")
os.environ.setdefault("COMET_DISABLE_ANNOUNCEMENT", "true")
os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")

import comet_ml  # noqa: E402  pylint: disable=wrong-import-position

QUIET = dict(auto_metric_logging=False, auto_param_logging=False, auto_output_logging=False, log_code=False,
             log_graph=False, log_git_metadata=False, log_git_patch=False, log_env_details=False, log_env_gpu=False,
             log_env_cpu=False, log_env_host=False, log_env_network=False, log_env_disk=False, parse_args=False,
             display_summary_level=0)
LOSS_POINTS = 1200
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    + "1f15c4890000000d4944415478da63f8cfc0f01f0005000201e2f6e5bd0000000049454e44ae426082")


def experiment(root, key, project="proj", workspace="ws"):
    os.makedirs(str(root), exist_ok=True)  # the SDK makes the last directory only
    return comet_ml.OfflineExperiment(project_name=project, workspace=workspace, offline_directory=str(root),
                                      experiment_key=key, **QUIET)


def write_full(root, scratch, key="a" * 32):
    """A run with every kind this collection reads: returns the archive's path."""
    exp = experiment(root, key)
    exp.set_name("baseline")
    exp.add_tags(["b", "a"])
    exp.log_parameters({"lr": 0.01, "layers": 3, "opt": {"name": "adam", "beta": 0.9}})
    exp.log_others({"owner": "alice", "seed": 7})
    for step in range(LOSS_POINTS):
        exp.log_metric("train/loss", 1.0 / (step + 1), step=step, epoch=step // 400)
    exp.log_metric("sys.cpu.percent", 12.5, step=0)
    exp.log_text("epoch zero", step=0)
    exp.log_text("epoch one", step=1)
    exp.log_histogram_3d([0.5, 1.5, 1.5], name="weights", step=1)
    exp.log_curve("roc", [0, 1], [0, 1], step=2)
    exp.log_html("<b>report</b>")
    os.makedirs(str(scratch), exist_ok=True)
    model = os.path.join(str(scratch), "model.bin")
    with open(model, "wb") as handle:
        handle.write(bytes(range(256)) * 10)
    exp.log_asset(model, file_name="model/weights.bin")
    image = os.path.join(str(scratch), "sample.png")
    with open(image, "wb") as handle:
        handle.write(PNG)
    exp.log_image(image, name="sample.png", step=3)
    exp.end()
    return os.path.join(str(root), f"{key}.zip")


def write_small(root, key="b" * 32):
    exp = experiment(root, key)
    exp.set_name("second")
    exp.log_parameter("lr", 0.1)
    for step in range(5):
        exp.log_metric("train/loss", 0.5, step=step)
    exp.end()
    return os.path.join(str(root), f"{key}.zip")


def archives(root):
    return sorted(glob.glob(os.path.join(str(root), "*.zip")))


def rewrite(path, change):
    """Rewrite an SDK-written archive with ``change(members: dict name -> bytes)`` (damage for the bad-input tests)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
