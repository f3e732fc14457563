"""The tracker_migrate role between the two MLflow servers: molecule scenario and variable checks."""

from __future__ import annotations

import json
import uuid

import pytest

from tests import mlflow_records
from tests.integration.ansible_run import role_play, run_molecule

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("role_vars,complaint", [
    ({"tracker_migrate_target": {"tracking_uri": "http://x"}}, "tracker_migrate_source"),
    ({"tracker_migrate_source": {}, "tracker_migrate_target": {}, "tracker_migrate_include": ["everything"]},
     "tracker_migrate_include"),
])
def test_bad_variables_fail_before_any_work(playbook, role_vars, complaint):
    run = playbook(role_play("tracker_migrate", role_vars), expect_rc=2)
    assert run.failed[0]["action"] == "ansible.builtin.validate_argument_spec"
    assert complaint in run.failed[0]["result"]["msg"]


def test_an_unreachable_tracker_stops_the_copy_before_it_writes(playbook, mlflow_pair, tmp_path):
    role_vars = {"tracker_migrate_source": {"tracking_uri": "http://127.0.0.1:9"},
                 "tracker_migrate_target": {"tracking_uri": mlflow_pair["target"].tracking_uri},
                 "tracker_migrate_state_dir": str(tmp_path / "state")}
    from mlflow.tracking import MlflowClient  # pylint: disable=import-outside-toplevel

    target = MlflowClient(mlflow_pair["target"].tracking_uri)
    before = len(target.search_experiments())
    run = playbook(role_play("tracker_migrate", role_vars), expect_rc=2)
    assert run.failed[0]["task"].endswith("Copy the records, each run verified before the ledger marks it complete")
    assert "cannot reach MLflow at http://127.0.0.1:9" in run.failed[0]["result"]["msg"]
    assert not (tmp_path / "state").exists()  # no ledger, no lease
    assert len(target.search_experiments()) == before


def test_molecule_default_scenario(ssh_stack, mlflow_pair, tmp_path):
    name = f"mol-{uuid.uuid4().hex[:8]}"
    mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=3, steps=20)
    state = tmp_path / "mlflow-stack.json"
    state.write_text(json.dumps({"mlflow": {side: server.describe() for side, server in mlflow_pair.items()}}))
    run_molecule("tracker_migrate", ssh_stack.inventory_file, MLOPS_STACK_STATE=str(state),
                 MLOPS_MLFLOW_EXPERIMENT=name)


def test_the_role_moves_mlflow_runs_into_wandb_offline_folders(playbook, mlflow_pair, tmp_path):
    name = f"rw-{uuid.uuid4().hex[:8]}"
    _exp, ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=2, steps=30, model=False)
    root = tmp_path / "offline"
    role_vars = {"tracker_migrate_source": {"tracking_uri": mlflow_pair["source"].tracking_uri},
                 "tracker_migrate_target": {"kind": "wandb_offline", "wandb_dir": str(root)},
                 "tracker_migrate_experiments": [name], "tracker_migrate_state_dir": str(tmp_path / "state")}
    playbook(role_play("tracker_migrate", role_vars), check=True)
    assert not root.exists()  # check mode: the preflight counted, nothing was written
    first = playbook(role_play("tracker_migrate", role_vars))
    assert first.changed and not first.failed
    assert sorted(p.name.rsplit("-", 1)[1] for p in (root / "wandb").glob("offline-run-*")) == sorted(ids)
    again = playbook(role_play("tracker_migrate", role_vars))
    assert not again.changed and not again.failed


def _neptune_export(root):
    from tests.integration.test_neptune_to_mlflow import PROJECT, export  # pylint: disable=import-outside-toplevel

    return export(root), PROJECT, ["RUN-1", "RUN-2"]


def _comet_archives(root):
    from tests import comet_archives  # pylint: disable=import-outside-toplevel

    comet_archives.write_full(root / "comet", root)
    comet_archives.write_small(root / "comet")
    return {"kind": "comet_offline", "comet_dir": str(root / "comet")}, "ws/proj", ["a" * 32, "b" * 32]


@pytest.mark.parametrize("written", [_neptune_export, _comet_archives], ids=["neptune_export", "comet_offline"])
def test_the_role_moves_a_file_based_tracker_into_mlflow(playbook, mlflow_pair, tmp_path, written):
    from mlflow.tracking import MlflowClient  # pylint: disable=import-outside-toplevel

    source, experiment, run_ids = written(tmp_path / "source")
    prefix = f"rn-{uuid.uuid4().hex[:6]}-"
    role_vars = {"tracker_migrate_source": source,
                 "tracker_migrate_target": {"tracking_uri": mlflow_pair["target"].tracking_uri},
                 "tracker_migrate_experiments": [experiment], "tracker_migrate_name_prefix": prefix,
                 "tracker_migrate_state_dir": str(tmp_path / "state")}
    client = MlflowClient(mlflow_pair["target"].tracking_uri)
    playbook(role_play("tracker_migrate", role_vars), check=True)
    assert client.get_experiment_by_name(prefix + experiment) is None  # check mode wrote nothing
    first = playbook(role_play("tracker_migrate", role_vars))
    assert first.changed and not first.failed
    runs = client.search_runs([client.get_experiment_by_name(prefix + experiment).experiment_id])
    assert sorted(r.data.tags["mlops.migration.source_run_id"] for r in runs) == run_ids
    again = playbook(role_play("tracker_migrate", role_vars))
    assert not again.changed and not again.failed
