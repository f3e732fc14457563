"""Run ``ansible-playbook`` as a user would, and read back what each task returned."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)


@dataclass
class PlaybookRun:
    returncode: int
    stdout: str
    stderr: str
    results: list = field(default_factory=list)

    def task(self, name, host=None):
        """The recorded result of the one task called ``name`` (role tasks also as ``role : name``)."""
        found = [r for r in self.results
                 if (r["task"] == name or r["task"].endswith(f" : {name}")) and (host is None or r["host"] == host)]
        assert len(found) == 1, f"expected one result for task {name!r}, got {len(found)}:\n{self.stdout}"
        return found[0]

    @property
    def changed(self):
        return [r for r in self.results if r["result"].get("changed")]

    @property
    def failed(self):
        return [r for r in self.results if r["status"] in ("failed", "unreachable")]


def _command(playbook, inventory, tmp_path, extra_vars=None, check=False, diff=False, args=(), env_vars=None):
    """argv and environment for one ansible-playbook run; plays given as a list go to a file."""
    if not isinstance(playbook, str):
        path = os.path.join(tmp_path, f"play-{len(os.listdir(tmp_path))}.yml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(playbook, handle, sort_keys=False, allow_unicode=True)
        playbook = path
    results_file = os.path.join(tmp_path, f"results-{len(os.listdir(tmp_path))}.jsonl")
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="record_results",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_LOCAL_TEMP=os.path.join(tmp_path, "ansible-local"),
        MLOPS_TEST_RESULTS=results_file,
        PATH=BIN + os.pathsep + env.get("PATH", ""),
    )
    env.update(env_vars or {})
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, playbook, *args]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    return argv, env, results_file


def start_playbook(playbook, inventory, tmp_path, output=None, **kwargs):
    """Start ansible-playbook without waiting, for tests that interrupt a run; its output goes to the file
    ``output`` (written as it runs) when given."""
    argv, env, _results = _command(playbook, inventory, tmp_path, **kwargs)
    sink = open(output, "wb") if output else subprocess.DEVNULL  # pylint: disable=consider-using-with
    try:
        # its own session, so a test can kill the run with everything it started (os.killpg)
        return subprocess.Popen(argv, cwd=REPO, env=dict(env, PYTHONUNBUFFERED="1"), stdout=sink,  # pylint: disable=consider-using-with
                                stderr=subprocess.STDOUT if output else subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    finally:
        if output:
            sink.close()  # the child holds its own copy


def run_playbook(playbook, inventory, tmp_path, expect_rc=0, **kwargs):
    """Run a playbook (a path, or a list of plays written to a file) and collect its results."""
    argv, env, results_file = _command(playbook, inventory, tmp_path, **kwargs)
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
                          stdin=subprocess.DEVNULL)
    results = []
    if os.path.exists(results_file):
        with open(results_file, encoding="utf-8") as handle:
            results = [json.loads(line) for line in handle]
    run = PlaybookRun(proc.returncode, proc.stdout, proc.stderr, results)
    if expect_rc is not None:
        assert proc.returncode == expect_rc, (
            f"ansible-playbook exited {proc.returncode}, expected {expect_rc}\n"
            f"--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    return run


def run_molecule(role, inventory_file, **env_vars):
    """``molecule test`` of the role's default scenario against the loopback stack; asserts it passed,
    idempotence included (the verify step is asserted when the scenario has one)."""
    env = dict(os.environ, MLOPS_STACK_INVENTORY=inventory_file,
               MLOPS_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), NO_COLOR="1",
               PATH=BIN + os.pathsep + os.environ["PATH"], **env_vars)
    scenario = os.path.join(REPO, "roles", role)
    proc = subprocess.run([os.path.join(BIN, "molecule"), "test"], cwd=scenario, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    assert re.search(r"idempotence\W+Executed: Successful", output), output[-5000:]
    if os.path.exists(os.path.join(scenario, "molecule", "default", "verify.yml")):
        assert re.search(r"verify\W+Executed: Successful", output), output[-5000:]


def role_play(role, role_vars, hosts="source"):
    """One play that includes ``mlops.migration.<role>`` with ``role_vars`` (its task is named ``run``)."""
    return [{"name": role, "hosts": hosts, "gather_facts": False, "tasks": [
        {"name": "run", "ansible.builtin.include_role": {"name": f"mlops.migration.{role}"}, "vars": role_vars}]}]
