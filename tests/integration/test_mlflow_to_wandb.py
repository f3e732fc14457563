"""MLflow runs (on the real MLflow server) copied by tracker_copy into W&B offline run folders written through the
W&B SDK, then, as on the far side of an air gap, the folders copied into the other MLflow server: every field
comes back as it was (names, original start and end times, status, user, params, tags, every point with its
step and timestamp, artifacts by md5), `wandb sync --dry-run` accepts the folders, a re-run changes nothing,
check mode writes nothing, a run copied while running is written again whole, and a killed copy resumes
without a duplicate folder."""

from __future__ import annotations

import glob
import hashlib
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tests import mlflow_records
from tests.integration.test_tracker_copy import assert_same_run, copies

pytestmark = pytest.mark.integration
TASK = "copy"


def play(source, target, state_dir, **options):
    args = {"source": source, "target": target, "state_dir": state_dir, **options}
    return [{"name": "copy", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": TASK, "mlops.migration.tracker_copy": args}]}]


def folders(root):
    return sorted(glob.glob(os.path.join(root, "wandb", "offline-run-*-*")))


def md5s(client, run_id, path=None):
    out = {}
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            out.update(md5s(client, run_id, info.path))
        else:
            with open(client.download_artifacts(run_id, info.path), "rb") as handle:
                out[info.path] = hashlib.md5(handle.read()).hexdigest()
    return out


def assert_back_equal(source, target, experiment, ids):
    """The runs ``ids`` came back into ``experiment`` at ``target`` as they are at ``source``: every field,
    every point, every artifact (the side files of the hop aside)."""
    returned = copies(target, experiment)
    assert set(returned) == set(ids)
    for source_id, run in returned.items():
        assert_same_run(source, target, source_id, run, returned)
        mine = md5s(source, source_id)
        theirs = {k: v for k, v in md5s(target, run.info.run_id).items() if not k.startswith("mlops-migration/")}
        assert theirs == mine and mine
    assert target.get_experiment_by_name(experiment).tags["mlflow.note.content"] == "the déscription"


def test_mlflow_runs_to_wandb_offline_and_back_field_by_field(playbook, mlflow_pair, tmp_path):
    name = f"tow-{uuid.uuid4().hex[:8]}"
    _exp_id, ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=3, metrics=2, steps=1200)
    source_uri, back_uri = mlflow_pair["source"].tracking_uri, mlflow_pair["target"].tracking_uri
    root = str(tmp_path / "offline")
    wandb_target = {"kind": "wandb_offline", "wandb_dir": root}
    checked = playbook(play({"tracking_uri": source_uri}, wandb_target, str(tmp_path / "s1"), experiments=[name]),
                       check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 3 and not os.path.exists(root)

    first = playbook(play({"tracking_uri": source_uri}, wandb_target, str(tmp_path / "s1"),
                          experiments=[name])).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (3, 0), first["failures"]
    assert first["points_copied"] == 3 * 2 * 1200
    written = folders(root)
    assert sorted(f.rsplit("-", 1)[1] for f in written) == sorted(ids)  # the source run ids kept
    assert not os.path.exists(os.path.join(root, ".mlops-migration-spool"))
    dry = subprocess.run([os.path.join(os.path.dirname(sys.executable), "wandb"), "sync", "--dry-run", *written],
                         capture_output=True, text=True, timeout=120, check=False)
    assert dry.returncode == 0 and "Would sync 3 run(s)" in dry.stdout + dry.stderr, dry.stdout + dry.stderr
    again = playbook(play({"tracking_uri": source_uri}, wandb_target, str(tmp_path / "s1"),
                          experiments=[name])).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 3 and folders(root) == written

    # the far side of the air gap: the folders into the other MLflow server
    back = playbook(play({"kind": "wandb_offline", "wandb_dir": root}, {"tracking_uri": back_uri},
                         str(tmp_path / "s2"), experiments=[name], name_prefix="back-")).task(TASK)["result"]
    assert (back["runs"]["copied"], back["failed_count"]) == (3, 0), back["failures"]
    assert_back_equal(MlflowClient(source_uri), MlflowClient(back_uri), "back-" + name, ids)


def test_a_running_run_is_written_again_whole(playbook, mlflow_pair, tmp_path):
    name = f"liw-{uuid.uuid4().hex[:8]}"
    exp_id, _ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=1, steps=10, artifacts=0,
                                       model=False)
    client = MlflowClient(mlflow_pair["source"].tracking_uri)
    live = mlflow_records.add_run(client, exp_id, 7, metrics=1, steps=20, artifacts=0, finish=False)
    root = str(tmp_path / "offline")
    options = dict(experiments=[name])
    source, target = {"tracking_uri": mlflow_pair["source"].tracking_uri}, {"kind": "wandb_offline", "wandb_dir": root}
    first = playbook(play(source, target, str(tmp_path / "s"), **options)).task(TASK)["result"]
    assert first["runs"]["copied"] == 2
    mlflow_records.log_points(client, live, "metric_0", 15, start=20)
    client.set_terminated(live, "FINISHED", mlflow_records.BASE_TIME + 999_000)
    second = playbook(play(source, target, str(tmp_path / "s"), **options)).task(TASK)["result"]
    assert (second["runs"]["updated"], second["runs"]["skipped"], second["failed_count"]) == (1, 1, 0)
    assert len([f for f in folders(root) if f.endswith(live)]) == 1
    sys.path.insert(0, os.path.join(os.getcwd(), ".build", "collections"))
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb import WandbOfflineSource
    reader = WandbOfflineSource(root)
    copy = reader.run(live)
    assert (copy.status, copy.end_time) == ("FINISHED", mlflow_records.BASE_TIME + 999_000)
    assert [p.step for p in reader.metric_history(copy, "metric_0")] == list(range(35))


def _zip_names(root):
    """The ids of the runs a Comet or ClearML target wrote: its archives' names."""
    return [os.path.basename(path)[:-4] for path in sorted(glob.glob(os.path.join(root, "*.zip")))]


# a file-based target: (module, target class, source class, directory option, ids of the runs written there)
KILLED_TARGETS = {
    "wandb_offline": ("wandb", "WandbOfflineTarget", "WandbOfflineSource", "wandb_dir",
                      lambda root: [f.rsplit("-", 1)[1] for f in folders(root)]),
    "comet_offline": ("comet", "CometOfflineTarget", "CometOfflineSource", "comet_dir", _zip_names),
    "clearml_offline": ("clearml_offline", "ClearmlOfflineTarget", "ClearmlOfflineSource", "clearml_dir", _zip_names),
}


@pytest.mark.parametrize("kind", sorted(KILLED_TARGETS))
def test_killed_copy_to_a_file_based_target_resumes_without_duplicates(playbook, mlflow_pair, tmp_path, kind):
    module, target_class, source_class, option, written = KILLED_TARGETS[kind]
    name = f"kiw-{uuid.uuid4().hex[:8]}"
    mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=6, metrics=2, steps=2000, artifacts=1,
                        nested=False, model=False)
    state, root = str(tmp_path / "state"), str(tmp_path / "offline")
    script = tmp_path / "first_run.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.join(os.getcwd(), ".build", "collections")!r})
        from ansible_collections.mlops.migration.plugins.module_utils.state.ledger import Ledger
        from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier
        from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import MlflowSource
        from ansible_collections.mlops.migration.plugins.module_utils.trackers.{module} import {target_class}
        source = MlflowSource({mlflow_pair["source"].tracking_uri!r})
        target = {target_class}({root!r})
        ledger = Ledger({os.path.join(state, "migration-state.sqlite")!r}, source.uri, target.uri)
        Copier(source, target, ledger, parallel=1).copy([{name!r}])
    """))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)  # pylint: disable=consider-using-with
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(written(root)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the copy and the SDK's service process
    proc.wait()
    before = len(written(root))
    assert 2 <= before < 6, f"the kill came too late or too early: {before} runs"

    resumed = playbook(play({"tracking_uri": mlflow_pair["source"].tracking_uri}, {"kind": kind, option: root},
                            state, experiments=[name])).task(TASK)["result"]
    assert resumed["runs"]["copied"] + resumed["runs"]["skipped"] == 6 and resumed["failed_count"] == 0
    ids = written(root)
    assert len(ids) == len(set(ids)) == 6  # one per run, none twice
    sys.path.insert(0, os.path.join(os.getcwd(), ".build", "collections"))
    reader = getattr(importlib.import_module(f"ansible_collections.mlops.migration.plugins.module_utils.trackers."
                                             f"{module}"), source_class)(root)
    for run_id in ids:
        assert len(list(reader.metric_history(reader.run(run_id), "metric_1"))) == 2000


def test_with_a_server_given_each_run_is_synced_under_its_own_id(playbook, mlflow_pair, tmp_path):
    """The thin ``wandb sync`` step, up to the W&B server: no W&B server runs here, so the run folders go to the
    loopback stand-in of its API (tests/wandb_api_server.py), which answers the sync's first calls (UpsertBucket)
    but not its uploads; the sync is seen to name each run's own id, project and entity, and its failure fails
    the run, naming the folder, which stays for a sync by hand."""
    from tests.wandb_api_server import WandbApiServer  # pylint: disable=import-outside-toplevel

    name = f"sy-{uuid.uuid4().hex[:8]}"
    _exp, ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=1, steps=5, artifacts=0,
                                    model=False)
    root = str(tmp_path / "offline")
    with WandbApiServer([], api_key="k" * 40) as server:
        target = {"kind": "wandb_offline", "wandb_dir": root, "entity": "team", "base_url": server.url,
                  "api_key": "k" * 40}
        result = playbook(play({"tracking_uri": mlflow_pair["source"].tracking_uri}, target, str(tmp_path / "s"),
                               experiments=[name]), expect_rc=2).task(TASK)["result"]
        seen = [variables for op, variables in server.seen if op == "UpsertBucket"]
    assert result["failed_count"] == 1 and "wandb sync of" in str(result["failures"]), result
    assert "by hand" in str(result["failures"]) and "k" * 40 not in str(result)
    assert seen and all((v["name"], v["project"], v["entity"]) == (ids[0], name, "team") for v in seen)
    assert [f for f in folders(root) if f.endswith(ids[0])]  # the folder stays


def test_a_signed_offline_folder_edited_on_the_way_is_refused_before_anything_is_read(playbook, mlflow_pair, tmp_path):
    name = f"sig-{uuid.uuid4().hex[:8]}"
    mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=1, metrics=1, steps=20, model=False)
    root = str(tmp_path / "offline")
    key = {"algorithm": "hmac-sha256", "key": "air-gap"}
    out = play({"tracking_uri": mlflow_pair["source"].tracking_uri}, {"kind": "wandb_offline", "wandb_dir": root},
               str(tmp_path / "s1"), experiments=[name], sign=key)
    assert playbook(out).task(TASK)["result"]["changed"]
    assert os.path.exists(os.path.join(root, "SHA256SUMS.sig"))
    assert not playbook(out).task(TASK)["result"]["changed"]  # nothing new: the seal as it was

    back = play({"kind": "wandb_offline", "wandb_dir": root}, {"tracking_uri": mlflow_pair["target"].tracking_uri},
                str(tmp_path / "s2"), experiments=[name], name_prefix="sig-", verify_signature=key)
    record = sorted(glob.glob(os.path.join(folders(root)[0], "*.wandb")))[0]
    with open(record, "ab") as handle:  # a record appended on the way
        handle.write(b"\0" * 8)
    refused = playbook(back, expect_rc=2).task(TASK)["result"]["msg"]
    assert "does not match its SHA256SUMS" in refused and os.path.relpath(record, root) in refused, refused
    assert MlflowClient(mlflow_pair["target"].tracking_uri).get_experiment_by_name("sig-" + name) is None
    with open(record, "r+b") as handle:  # the file as it was: a wrong key still refuses it
        handle.truncate(os.path.getsize(record) - 8)
    wrong = play({"kind": "wandb_offline", "wandb_dir": root}, {"tracking_uri": mlflow_pair["target"].tracking_uri},
                 str(tmp_path / "s2"), experiments=[name], name_prefix="sig-", verify_signature=dict(key, key="other"))
    assert "or the key differs" in playbook(wrong, expect_rc=2).task(TASK)["result"]["msg"]
    accepted = playbook(back).task(TASK)["result"]
    assert accepted["runs"]["copied"] == 1
