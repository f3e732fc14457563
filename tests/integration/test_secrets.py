"""A password given inside a URI appears nowhere: not in results, -vvv output, log, progress files,
state file, ledger, report or the target's run tags (FerretDB, MLflow and the ssh hosts of the stack)."""

from __future__ import annotations

import os
import secrets
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tests import mlflow_records

pytestmark = pytest.mark.integration


def with_userinfo(uri, user, password):
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest}"


def test_passwords_inside_uris_leak_nowhere(playbook, ssh_stack, mongo_pair, mlflow_pair):
    name = f"secrets_{uuid.uuid4().hex[:8]}"
    mlflow_secret = "UriPw-" + secrets.token_hex(8)
    with mongo_pair["source"].client() as client:
        client[name].task.insert_many([{"_id": f"t{n}", "n": n} for n in range(5)])
    experiment = f"secrets-{uuid.uuid4().hex[:6]}"
    mlflow_records.seed(mlflow_pair["source"].tracking_uri, experiment, runs=2, metrics=1, steps=3, artifacts=1,
                        nested=False, model=False)
    root = ssh_stack["ssh"]["source"].root
    state_dir, dest = os.path.join(root, name, "state"), os.path.join(root, name, "backup")
    trackers = {side: {"tracking_uri": with_userinfo(mlflow_pair[side].tracking_uri, "migrator", mlflow_secret)}
                for side in ("source", "target")}
    tasks = [
        {"name": "backup", "register": "backup",
         "mlops.migration.mongo_backup": {"uri": mongo_pair["source"].uri, "databases": [name], "dest": dest}},
        {"name": "restore", "register": "restore", "mlops.migration.mongo_restore": {
            "uri": mongo_pair["target"].uri, "src": dest, "progress_file": f"{state_dir}/mongo.progress.json"}},
        {"name": "preflight", "mlops.migration.preflight_check": {"kind": "mongo", "uri": mongo_pair["target"].uri}},
        {"name": "copy", "register": "copy", "mlops.migration.tracker_copy": {
            **trackers, "experiments": [experiment], "state_dir": state_dir,
            "progress_file": f"{state_dir}/trackers.progress.json"}},
        {"name": "mongo step", "mlops.migration.migration_step": {
            "state_dir": state_dir, "name": "mongo", "state": "done",
            "results": [{"module": "mongo_backup", "result": "{{ backup }}"},
                        {"module": "mongo_restore", "result": "{{ restore }}"}]}},
        {"name": "trackers step", "mlops.migration.migration_step": {
            "state_dir": state_dir, "name": "trackers", "state": "done",
            "results": [{"module": "tracker_copy", "result": "{{ copy }}"}]}},
        {"name": "report", "mlops.migration.migration_report": {"state_dir": state_dir, "steps": ["mongo", "trackers"]}},
    ]
    run = playbook([{"name": "secrets", "hosts": "source", "gather_facts": False, "tasks": tasks}], args=("-vvv",))
    assert run.task("copy")["result"]["runs"]["copied"] == 2
    assert run.task("restore")["result"]["totals"]["inserted"] == 5

    passwords = {"MongoDB source": mongo_pair["source"].password, "MongoDB target": mongo_pair["target"].password,
                 "MLflow": mlflow_secret}
    written = {}
    for folder, _dirs, files in os.walk(state_dir):
        for file in files:
            with open(os.path.join(folder, file), "rb") as handle:
                written[os.path.relpath(os.path.join(folder, file), state_dir)] = handle.read()
    assert {"migration-state.sqlite", "migration.log", "report.md", "report.html", "mongo.progress.json",
            "trackers.progress.json"} <= set(written)
    target = MlflowClient(mlflow_pair["target"].tracking_uri)
    copied = target.search_runs([target.get_experiment_by_name(experiment).experiment_id])
    tags = " ".join(v for r in copied for v in r.data.tags.values())
    assert mlflow_pair["source"].tracking_uri in tags  # the source is named, without its userinfo
    for what, password in passwords.items():
        assert password not in run.stdout + run.stderr, f"the {what} password is in the -vvv output"
        assert password not in str(run.results), f"the {what} password is in a registered result"
        for file, data in written.items():
            assert password.encode() not in data, f"the {what} password is in {file}"
        assert password not in tags, f"the {what} password is in the target's run tags"
