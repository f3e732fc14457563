"""The mongo_migrate role on the sshd hosts and the stack's MongoDB servers (FerretDB): full and project scope, molecule."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests import clearml_documents as clearml
from tests.integration.ansible_run import role_play, run_molecule

pytestmark = pytest.mark.integration


@pytest.fixture
def seeded(mongo_pair):
    name = f"backend_{uuid.uuid4().hex[:8]}"
    data = clearml.backend(seed=3)
    with mongo_pair["source"].client() as client:
        for coll, docs in data.items():
            client[name][coll].insert_many(docs)
    return name, data


def places(ssh_stack, name, tmp_path):
    return {"mongo_migrate_backup_dir": os.path.join(ssh_stack["ssh"]["source"].root, name, "backup"),
            "mongo_migrate_landing_dir": os.path.join(ssh_stack["ssh"]["target"].root, name, "incoming"),
            "mongo_migrate_carry_dir": str(tmp_path / "carry")}


def test_project_scope_moves_the_project_its_tasks_and_models(playbook, mongo_pair, ssh_stack, seeded, tmp_path):
    name, data = seeded
    proj = data["project"][2]
    role_vars = {"mongo_migrate_source": {"uri": mongo_pair["source"].uri},
                 "mongo_migrate_target": {"uri": mongo_pair["target"].uri},
                 "mongo_migrate_scope": "project", "mongo_migrate_scope_id": proj["_id"], "mongo_migrate_db": name,
                 **places(ssh_stack, name, tmp_path)}
    checked = playbook(role_play("mongo_migrate", role_vars), check=True)
    assert checked.task("Back up the source database on the source host")["result"]["documents"] > 0
    assert not os.path.exists(role_vars["mongo_migrate_backup_dir"])

    run = playbook(role_play("mongo_migrate", role_vars))
    restored = run.task("Restore the backup into the target database")["result"]["totals"]
    tasks = [t for t in data["task"] if t["project"] == proj["_id"]]
    models = [m for m in data["model"] if m["task"] in {t["_id"] for t in tasks}]
    assert restored["inserted"] == 1 + len(tasks) + len(models)
    with mongo_pair["target"].client() as client:
        assert client[name].project.distinct("_id") == [proj["_id"]]
        assert sorted(client[name].task.distinct("_id")) == sorted(t["_id"] for t in tasks)
        assert sorted(client[name].model.distinct("_id")) == sorted(m["_id"] for m in models)

    again = playbook(role_play("mongo_migrate", role_vars))
    assert [r["task"] for r in again.changed] == []


@pytest.mark.parametrize("role_vars,complaint", [
    ({"mongo_migrate_target": {"uri": "mongodb://x"}}, "mongo_migrate_source"),
    ({"mongo_migrate_source": {}, "mongo_migrate_target": {}, "mongo_migrate_scope": "team"}, "mongo_migrate_scope"),
])
def test_bad_variables_fail_before_any_work(playbook, role_vars, complaint):
    run = playbook(role_play("mongo_migrate", role_vars), expect_rc=2)
    assert run.failed[0]["action"] == "ansible.builtin.validate_argument_spec"
    assert complaint in run.failed[0]["result"]["msg"]


def test_a_subset_without_an_id_is_refused(playbook):
    role_vars = {"mongo_migrate_source": {}, "mongo_migrate_target": {}, "mongo_migrate_scope": "user"}
    run = playbook(role_play("mongo_migrate", role_vars), expect_rc=2)
    assert "needs mongo_migrate_scope_id" in run.failed[0]["result"]["msg"]


def test_molecule_default_scenario(ssh_stack, mongo_pair, seeded, tmp_path):
    name, _data = seeded
    state = tmp_path / "mongo-stack.json"
    state.write_text(json.dumps({"mongo": {side: {"uri": server.uri} for side, server in mongo_pair.items()}}))
    run_molecule("mongo_migrate", ssh_stack.inventory_file, MLOPS_STACK_STATE=str(state), MLOPS_MONGO_DB=name)
