"""playbooks/migrate.yml with the oSPARC example plan (inventories/osparc) on the sshd hosts and two PostgreSQL
clusters: preflight, the postgres step, the report, a second run that skips it, and a check run that writes nothing.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from tests import postgres_platform as platform
from tests.integration.ansible_run import REPO, run_playbook
from tests.integration.test_postgres import check_integrity, connect, new_database, rows_of

pytestmark = pytest.mark.integration


def inventory(tmp_path, ssh_stack, source, target, name):
    """inventories/osparc's plan with the loopback hosts and databases in place of the example's."""
    root = tmp_path / f"inventory-{name}"
    (root / "group_vars" / "all").mkdir(parents=True)
    shutil.copy(ssh_stack.inventory_file, root / "hosts.yml")
    shutil.copy(os.path.join(REPO, "inventories", "osparc", "group_vars", "all", "migration.yml"),
                root / "group_vars" / "all" / "migration.yml")
    connections = {"osparc_source_db": source, "osparc_target_db": target, "osparc_s3": None,
                   "osparc_state_dir": str(tmp_path / f"state-{name}"), "osparc_work_dir": str(tmp_path / f"work-{name}")}
    (root / "group_vars" / "all" / "connections.yml").write_text(yaml.safe_dump(connections))
    return str(root)


def deployment_pair(postgres_pair):
    source = new_database(postgres_pair["source"], "inhouse")
    target = new_database(postgres_pair["target"], "cloud")
    for params, name, users in ((source, "inhouse", 3), (target, "cloud", 2)):
        with connect(params) as conn:
            platform.create_schema(conn)
            platform.seed(conn, name, users=users, shared_emails=("shared@example.org",))
    return source, target


def test_the_osparc_plan_runs_as_the_main_job(ssh_stack, postgres_pair, tmp_path):
    source, target = deployment_pair(postgres_pair)
    with connect(target) as conn:
        before = platform.snapshot(conn)
    inv = inventory(tmp_path, ssh_stack, source, target, "check")
    checked = run_playbook("playbooks/migrate.yml", inv, str(tmp_path), check=True)
    assert "source PostgreSQL 15" in checked.stdout or "source PostgreSQL 1" in checked.stdout
    with connect(target) as conn:
        assert platform.snapshot(conn) == before
        assert rows_of(conn, "SELECT to_regnamespace('mlops_migration')")[0][0] is None

    inv = inventory(tmp_path, ssh_stack, source, target, "run")
    first = run_playbook("playbooks/migrate.yml", inv, str(tmp_path))
    merged = first.task("Merge the bundle into the target database")["result"]
    assert [stage["status"] for stage in merged["stages"]] == ["done", "done", "done"]
    assert merged["kinds"]["rows public.projects"]["copied"] == 6
    with connect(target) as conn:
        check_integrity(conn)
        assert rows_of(conn, "SELECT count(*) FROM users")[0][0] == 4
        assert rows_of(conn, "SELECT count(*) FROM projects WHERE id > 100000")[0][0] == 6  # offset by the margin
    report = (tmp_path / "state-run" / "report.md").read_text()
    assert "rows public.projects" in report and "postgres" in report
    state = json.loads((tmp_path / "state-run" / "postgres" / "tip-inhouse-to-cloud" / "ledger.json").read_text())
    assert set(state["stages"]) == {"users", "platform", "studies"}

    second = run_playbook("playbooks/migrate.yml", inv, str(tmp_path))
    assert "postgres finished" in second.stdout and "skipped" in second.stdout
    # forced, the step runs again: the bundle, its carrying and the merge all change nothing
    forced = run_playbook("playbooks/migrate.yml", inv, str(tmp_path), extra_vars={"migration_force": True})
    for task in ("Back up the source tables on the source host", "Merge the bundle into the target database"):
        assert not forced.task(task)["result"]["changed"], task
    assert [s["status"] for s in forced.task("Merge the bundle into the target database")["result"]["stages"]] == \
        ["done before"] * 3
    with connect(target) as conn:
        assert rows_of(conn, "SELECT count(*) FROM projects")[0][0] == 4 + 6
