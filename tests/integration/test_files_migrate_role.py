"""The files_migrate role: its molecule scenario, and bulk -> delta -> verify on the sshd hosts."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tests.integration.ansible_run import run_molecule

pytestmark = pytest.mark.integration


def test_molecule_default_scenario(ssh_stack):
    run_molecule("files_migrate", ssh_stack.inventory_file)


@pytest.fixture
def layout(ssh_stack):
    source, target = ssh_stack["ssh"]["source"], ssh_stack["ssh"]["target"]
    name = f"role-{uuid.uuid4().hex[:8]}"
    src, dest = os.path.join(source.root, name), os.path.join(target.root, name)
    for rel, data in {"data/a.txt": b"a", "data/sub/b.bin": os.urandom(5000),
                      "models/m1.pt": b"m1", "models/m2.pt": b"m2"}.items():
        os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
        with open(os.path.join(src, rel), "wb") as handle:
            handle.write(data)
    yield src, dest, target
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)


def role_play(stage, src, dest, target, **overrides):
    role_vars = {
        "files_migrate_stage": stage,
        "files_migrate_ssh_private_key_file": target.client_key,
        "files_migrate_known_hosts": target.known_hosts,
        "files_migrate_trees": [{"src": f"{src}/data", "dest": f"{dest}/data"}],
        "files_migrate_file_lists": [{"src": f"{src}/models", "dest": f"{dest}/models", "files": ["m1.pt"]}],
    }
    role_vars.update(overrides)
    return [{"name": f"files {stage}", "hosts": "source", "gather_facts": False, "tasks": [
        {"name": "migrate files", "ansible.builtin.include_role": {"name": "mlops.migration.files_migrate"},
         "vars": role_vars},
        {"name": "summary", "ansible.builtin.debug": {"var": "files_migrate_summary"}}]}]


def summary(run):
    return run.task("summary")["result"]["files_migrate_summary"]


def test_bulk_then_delta_then_verify(playbook, layout):
    src, dest, target = layout

    checked = playbook(role_play("bulk", src, dest, target), check=True)
    assert int(summary(checked)["transferred"]) == 3
    assert not os.path.exists(dest)

    bulk = playbook(role_play("bulk", src, dest, target))
    assert int(summary(bulk)["transferred"]) == 3
    assert int(summary(bulk)["verified"]) == 0

    with open(os.path.join(src, "data/a.txt"), "wb") as handle:
        handle.write(b"A")
    os.unlink(os.path.join(src, "data/sub/b.bin"))
    delta = playbook(role_play("delta", src, dest, target))
    assert (int(summary(delta)["transferred"]), int(summary(delta)["deleted"])) == (1, 1)
    assert int(summary(delta)["verified"]) == 2  # a.txt in the tree, m1.pt in the list
    assert not os.path.exists(os.path.join(dest, "data/sub/b.bin"))

    rerun = playbook(role_play("delta", src, dest, target))
    assert [r["task"] for r in rerun.changed] == []

    verified = playbook(role_play("verify", src, dest, target))
    assert int(summary(verified)["verified"]) == 2
    with open(os.path.join(dest, "models/m1.pt"), "wb") as handle:
        handle.write(b"xx")
    broken = playbook(role_play("verify", src, dest, target), expect_rc=2)
    failed_items = [item for item in broken.failed[0]["result"]["results"] if item.get("failed")]
    assert [item["mismatched"] for item in failed_items] == [["m1.pt"]]
    assert "m1.pt" in failed_items[0]["msg"]


@pytest.mark.parametrize("overrides,complaint", [
    ({"files_migrate_stage": "bluk"}, "files_migrate_stage"),
    ({"files_migrate_trees": [{"src": "/x"}]}, "dest"),
    ({"files_migrate_file_lists": [{"src": "/x", "dest": "/y", "method": "ftp"}]}, "method"),
])
def test_bad_variables_fail_before_any_work(playbook, layout, overrides, complaint):
    src, dest, target = layout
    run = playbook(role_play("bulk", src, dest, target, **overrides), expect_rc=2)
    failure = run.failed[0]
    assert failure["action"] == "ansible.builtin.validate_argument_spec"
    assert complaint in failure["result"]["msg"]
    assert not os.path.exists(dest)
