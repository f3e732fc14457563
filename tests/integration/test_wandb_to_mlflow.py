"""W&B offline runs (written by the W&B SDK itself, offline, inside the test) copied by tracker_copy into a real
MLflow server: run fields, params from the nested config, every point with its step and original timestamp
(sparse metrics as logged), summary, media and console series, files as artifacts; a re-run changes nothing;
check mode writes nothing; a file cannot be a W&B target; a cut-off run log is refused naming its offset."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tests.integration.test_tracker_copy import copies

pytestmark = pytest.mark.integration
TASK = "copy"
WRITE = """
import sys
import numpy as np
import wandb
for index in range(2):
    run = wandb.init(mode="offline", project=sys.argv[2], id=f"wb{index}{sys.argv[2][-6:]}", name=f"run-{index}",
                     group="sweep", job_type="train", tags=["baseline"], notes=f"run {index}", dir=sys.argv[1],
                     config={"lr": 0.01 * (index + 1), "optimizer": {"name": "adam"}})
    for step in range(1200):
        row = {"loss": 1.0 / (step + 1 + index)}
        if step % 100 == 0:
            row["val/acc"] = step / 1200
        if step == 5:
            row["sample"] = wandb.Image(np.full((8, 8, 3), index, dtype=np.uint8), caption="sample")
        run.log(row, step=step)
    run.summary["best_acc"] = 0.9 + index / 100
    print(f"run {index} done")
    run.finish()
"""


def write_runs(root, prefix):
    """The W&B SDK writes WRITE's two runs offline under ``root``; returns their project."""
    project = f"{prefix}-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(root))
    subprocess.run([sys.executable, "-c", WRITE, str(root), project], env=env, check=True, timeout=600, cwd=root)
    return project


@pytest.fixture(scope="module")
def wandb_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb-source")
    return str(root), write_runs(root, "wb")


def play(source, target, state_dir, **options):
    args = {"source": source, "target": target, "state_dir": state_dir, **options}
    return [{"name": "copy", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": TASK, "mlops.migration.tracker_copy": args}]}]


def test_wandb_offline_runs_into_mlflow_field_by_field(playbook, mlflow_pair, wandb_runs, tmp_path):
    root, project = wandb_runs
    source = {"kind": "wandb_offline", "wandb_dir": root}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    state = str(tmp_path / "state")
    checked = playbook(play(source, target, state, experiments=[project]), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 2 and not os.path.exists(os.path.join(state, "migration-state.sqlite"))
    client = MlflowClient(target["tracking_uri"])
    assert client.get_experiment_by_name(project) is None

    first = playbook(play(source, target, state, experiments=[project])).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0)
    assert first["points_copied"] == 2 * (1200 + 12)
    copied = copies(client, project)
    assert set(copied) == {f"wb{i}{project[-6:]}" for i in range(2)}
    for index in range(2):
        run = copied[f"wb{index}{project[-6:]}"]
        assert run.info.run_name == f"run-{index}" and run.info.status == "FINISHED"
        assert run.info.start_time <= run.info.end_time
        assert run.data.params == {"lr": str(0.01 * (index + 1)), "optimizer.name": "adam"}
        assert run.data.tags["mlflow.note.content"] == f"run {index}" and run.data.tags["baseline"] == ""
        assert (run.data.tags["mlops.migration.group"], run.data.tags["mlops.migration.job_type"]) == ("sweep", "train")
        loss = client.get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in loss) == list(range(1200))
        assert all(abs(m.value - 1.0 / (m.step + 1 + index)) < 1e-9 for m in loss)
        stamps = [m.timestamp for m in sorted(loss, key=lambda m: m.step)]
        assert stamps == sorted(stamps) and stamps[0] >= run.info.start_time - 1000  # the original times, not now
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val/acc")) == list(range(0, 1200, 100))
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "requirements.txt" in artifacts or "output.log" in artifacts, artifacts

    again = playbook(play(source, target, state, experiments=[project])).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 2 and again["points_copied"] == 0


def test_a_file_is_no_wandb_target_and_a_cut_off_log_is_refused(playbook, mlflow_pair, wandb_runs, tmp_path):
    root, project = wandb_runs
    (tmp_path / "a-file").write_text("not a directory")
    refused = playbook(play({"tracking_uri": mlflow_pair["source"].tracking_uri},
                            {"kind": "wandb_offline", "wandb_dir": str(tmp_path / "a-file" / "runs")},
                            str(tmp_path / "s")), expect_rc=2)
    assert "is not a directory" in refused.task(TASK)["result"]["msg"]
    # a copy of one run whose log ends in the middle of a record
    folder = glob.glob(os.path.join(root, "wandb", f"offline-run-*-wb0{project[-6:]}"))[0]
    cut = tmp_path / "cut" / "wandb" / os.path.basename(folder)
    cut.mkdir(parents=True)
    log = glob.glob(os.path.join(folder, "*.wandb"))[0]
    with open(log, "rb") as handle:
        data = handle.read()
    (cut / os.path.basename(log)).write_bytes(data[:len(data) // 2 + 3])
    result = playbook(play({"kind": "wandb_offline", "wandb_dir": str(tmp_path / "cut")},
                           {"tracking_uri": mlflow_pair["target"].tracking_uri}, str(tmp_path / "s2"),
                           experiments=[project]), expect_rc=2).task(TASK)["result"]
    assert "cut off" in result["msg"] and "offset" in result["msg"]


LOGGED = """
import os
import sys
import wandb
files = os.path.join(sys.argv[1], "model")
os.makedirs(os.path.join(files, "sub"))
with open(os.path.join(files, "weights.bin"), "wb") as out:
    out.write(os.urandom(3000))
with open(os.path.join(files, "sub", "card.txt"), "w") as out:
    out.write("a model card")
run = wandb.init(mode="offline", project=sys.argv[2], id="logged" + sys.argv[2][-6:], dir=sys.argv[1])
artifact = wandb.Artifact("model-x", type="model", description="the best", metadata={"epochs": 3})
artifact.add_dir(files)
run.log_artifact(artifact, aliases=["best"])
run.log({"loss": 0.5}, step=0)
run.finish()
"""


def write_logged(tmp_path, prefix):
    """The W&B SDK writes LOGGED's run (an artifact logged with an alias) offline: ``(runs, data dir, project)``,
    the artifact's staging copies under the data dir."""
    root, data = tmp_path / "runs", tmp_path / "data"
    root.mkdir()
    project = f"{prefix}-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DATA_DIR=str(data))
    subprocess.run([sys.executable, "-c", LOGGED, str(root), project], env=env, check=True, timeout=300, cwd=root)
    return root, data, project


def test_logged_artifacts_come_from_the_sdks_staging_copies_found_or_named(playbook, mlflow_pair, tmp_path):
    root, data, project = write_logged(tmp_path, "wl")
    moved = tmp_path / "carried-staging"
    os.rename(data / "artifacts" / "staging", moved)  # the runs crossed the air gap, the staging copies elsewhere
    source = {"kind": "wandb_offline", "wandb_dir": str(root)}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    missing = playbook(play(source, target, str(tmp_path / "s1"), experiments=[project]),
                       expect_rc=2).task(TASK)["result"]
    assert "of logged artifact model-x is missing" in missing["msg"] and "staging_dir" in missing["msg"]

    found = playbook(play(dict(source, staging_dir=str(moved)), target, str(tmp_path / "s1"),
                          experiments=[project])).task(TASK)["result"]
    assert (found["runs"]["copied"], found["failed_count"]) == (1, 0)
    client = MlflowClient(target["tracking_uri"])
    run = copies(client, project)["logged" + project[-6:]]
    with open(client.download_artifacts(run.info.run_id, "wandb-artifacts/model-x/weights.bin"), "rb") as handle:
        assert handle.read() == (root / "model" / "weights.bin").read_bytes()
    with open(client.download_artifacts(run.info.run_id, "wandb-artifacts/model-x/sub/card.txt")) as handle:
        assert handle.read() == "a model card"
    with open(client.download_artifacts(run.info.run_id, "wandb-artifacts/model-x.json")) as handle:
        about = json.load(handle)
    assert (about["type"], about["description"], about["metadata"], sorted(about["aliases"])) == (
        "model", "the best", {"epochs": 3}, ["best", "latest"])


def test_include_and_run_filters_apply_to_wandb_runs(playbook, mlflow_pair, wandb_runs, tmp_path):
    root, project = wandb_runs
    source = {"kind": "wandb_offline", "wandb_dir": root}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    none = playbook(play(source, target, str(tmp_path / "a"), experiments=[project], name_prefix="none-",
                         run_filter={"started_after": 4_102_444_800_000})).task(TASK)["result"]
    assert none["runs"]["found"] == 0 and not none["runs"]["copied"]
    one = playbook(play(source, target, str(tmp_path / "n"), experiments=[project], name_prefix="one-",
                        run_filter={"names": ["run-0"]})).task(TASK)["result"]
    assert (one["runs"]["found"], one["runs"]["copied"]) == (1, 1)
    bad = playbook(play(source, target, str(tmp_path / "bad"), experiments=[project],
                        run_filter={"names": ["run-("]}), expect_rc=2).task(TASK)["result"]
    assert "is not a regular expression" in bad["msg"] and not (tmp_path / "bad").exists()
    some = playbook(play(source, target, str(tmp_path / "b"), experiments=[project], name_prefix="inc-",
                         include=["params", "tags"])).task(TASK)["result"]
    assert (some["runs"]["copied"], some["points_copied"], some["failed_count"]) == (2, 0, 0)
    client = MlflowClient(target["tracking_uri"])
    for run in copies(client, "inc-" + project).values():
        assert run.data.params and not run.data.metrics  # no points, and of the files only the config and summary:
        assert [a.path for a in client.list_artifacts(run.info.run_id, "mlops-migration")] == [
            "mlops-migration/config.json", "mlops-migration/summary.json"]
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["mlops-migration"]
