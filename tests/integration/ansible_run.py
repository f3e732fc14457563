"""Run ``ansible-playbook`` as a user would, and read back what each task returned."""

from __future__ import annotations

import json
import os
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


def _command(playbook, inventory, tmp_path, extra_vars=None, check=False, diff=False, args=()):
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
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, playbook, *args]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    return argv, env, results_file


def start_playbook(playbook, inventory, tmp_path, **kwargs):
    """Start ansible-playbook without waiting, for tests that interrupt a run."""
    argv, env, _results = _command(playbook, inventory, tmp_path, **kwargs)
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


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
