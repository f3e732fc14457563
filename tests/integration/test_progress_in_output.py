"""Progress in the play's own output while a long module runs, and a killed play leaving no job behind.

The collection's long-running modules run through plugin_utils/progress_action.py. Here a test module
(``progress_job/library/progress_job.py``: it counts for a given time in its progress file, as they do) runs
through that same action, by ansible-playbook over ssh on the stack's source host."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from tests.integration.ansible_run import run_playbook, start_playbook

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
JOB = os.path.join(HERE, "progress_job")
ENV = {"ANSIBLE_LIBRARY": os.path.join(JOB, "library"), "ANSIBLE_ACTION_PLUGINS": os.path.join(JOB, "action_plugins")}
LINE = re.compile(r"^\[source-host\] progress_job: ([\d,]+)/([\d,]+) steps \((\d+)%\), [\d.]+ KiB, [\d.]+ steps/s, .*ETA (?:\d+m)?\d+s$",
                  re.M)


def play(state_dir, seconds):
    return [{"name": "job", "hosts": "source", "gather_facts": False, "tasks": [
        {"name": "job", "progress_job": {"seconds": seconds, "progress_file": f"{state_dir}/job.progress.json"},
         "register": "job"},
        {"name": "result", "ansible.builtin.debug": {"msg": "{{ job.steps }} {{ job.changed }} {{ 'ansible_job_id' in job }}"}}]}]


def test_progress_lines_show_while_the_module_runs_and_the_result_is_the_modules(ssh_stack, tmp_path):
    state_dir = os.path.join(ssh_stack["ssh"]["source"].root, "progress-lines")
    run = run_playbook(play(state_dir, 8), ssh_stack.inventory_file, str(tmp_path), env_vars=ENV,
                       extra_vars={"migration_progress_interval": 1})
    lines = LINE.findall(run.stdout)
    assert len(lines) >= 2, run.stdout
    done = [int(d) for d, _total, _share in lines]
    assert done == sorted(done) and all(total == "80" for _d, total, _s in lines)
    # printed while the task ran: between its heading and its result
    heading, ended = run.stdout.index("TASK [job]"), run.stdout.index("changed: [source-host]")
    assert all(heading < m.start() < ended for m in LINE.finditer(run.stdout))
    assert '"msg": "80 True False"' in run.stdout  # the module's result, without the job's keys
    assert not os.path.exists(f"{state_dir}/job.progress.json.heartbeat")

    quiet = run_playbook(play(state_dir, 1), ssh_stack.inventory_file, str(tmp_path), env_vars=ENV,
                         extra_vars={"migration_progress_interval": 0})
    assert not LINE.findall(quiet.stdout) and '"msg": "10 True False"' in quiet.stdout  # 0: no lines, no job
    checked = run_playbook(play(state_dir, 1), ssh_stack.inventory_file, str(tmp_path), env_vars=ENV, check=True,
                           extra_vars={"migration_progress_interval": 1})
    assert not LINE.findall(checked.stdout)  # check mode runs the module as usual


def _processes_naming(text):
    """The processes whose command line names ``text`` (this test's ansible-playbook and its workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if text.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_a_killed_play_leaves_no_job_running(ssh_stack, tmp_path):
    state_dir = os.path.join(ssh_stack["ssh"]["source"].root, "progress-killed")
    output = tmp_path / "output.txt"
    ansible = start_playbook(play(state_dir, 120), ssh_stack.inventory_file, str(tmp_path), output=str(output),
                             env_vars=ENV, extra_vars={"migration_progress_interval": 1, "migration_progress_heartbeat": 10})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not LINE.search(output.read_text(errors="replace")):
            time.sleep(0.2)
        assert LINE.search(output.read_text(errors="replace")), output.read_text(errors="replace")
    finally:
        # the controller dies: ansible-playbook and its workers (each in a session of its own), as when the machine
        # running the play goes down; the job on the host is then no longer followed
        os.killpg(ansible.pid, signal.SIGKILL)
        for pid in _processes_naming(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)
        ansible.wait(timeout=60)
    with open(f"{state_dir}/job.progress.json", encoding="utf-8") as handle:
        pid = json.load(handle)["pid"]
    log = os.path.join(state_dir, "migration.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(log, encoding="utf-8") as handle:
            if "the controller stopped following this job (no heartbeat for" in handle.read():
                break
        time.sleep(0.5)
    else:
        raise AssertionError("the job went on after the play was killed")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.2)
    assert not os.path.exists(f"/proc/{pid}"), "the module's process is still there"
    with open(f"{state_dir}/job.progress.json", encoding="utf-8") as handle:
        assert json.load(handle)["done"] < 1200  # it stopped long before its 120 s were up
