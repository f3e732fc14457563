"""migration_step through ansible-playbook on the source ssh host: record, query, skip, force, check mode."""

from __future__ import annotations

import os

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind, Counts
from ansible_collections.mlops.migration.plugins.module_utils.state.leases import process_identity

pytestmark = pytest.mark.integration


def step_play(state_dir, **args):
    return [{"name": "step", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": "step", "mlops.migration.migration_step": {"state_dir": state_dir, "name": "s3",
                                                                           **args}}]}]


def test_a_step_is_skipped_once_done_unless_forced(playbook, ssh_stack):
    state_dir = os.path.join(ssh_stack["ssh"]["source"].root, "steps-state")
    path = os.path.join(state_dir, "migration-state.sqlite")

    unknown = playbook(step_play(state_dir)).task("step")["result"]
    assert (unknown["changed"], unknown["done"], unknown["skip"], unknown["step"]) == (False, False, False, None)
    checked = playbook(step_play(state_dir, state="running"), check=True).task("step")["result"]
    assert checked["changed"] and not os.path.exists(path)

    running = playbook(step_play(state_dir, state="running", progress={"done": 3, "total": 9}))
    assert running.task("step")["result"]["step"]["progress"] == {"done": 3, "total": 9}
    died = playbook(step_play(state_dir)).task("step")["result"]  # a run that died while the step ran
    assert (died["done"], died["skip"]) == (False, False)

    finished = playbook(step_play(state_dir, state="done", summary={"copied": 9}))
    assert finished.task("step")["result"]["changed"]
    again = playbook(step_play(state_dir, state="done", summary={"copied": 9}))
    assert not again.task("step")["result"]["changed"]
    query = playbook(step_play(state_dir)).task("step")["result"]
    assert (query["done"], query["skip"], query["step"]["summary"]) == (True, True, {"copied": 9})
    forced = playbook(step_play(state_dir, force=True)).task("step")["result"]
    assert (forced["done"], forced["skip"]) == (True, False)


def test_an_unwritable_state_dir_is_explained(playbook, ssh_stack):
    blocker = os.path.join(ssh_stack["ssh"]["source"].root, "steps-blocker")
    with open(blocker, "w", encoding="utf-8") as handle:
        handle.write("a file, not a directory")
    run = playbook(step_play(blocker, state="running"), expect_rc=2)
    assert "cannot open the migration state file" in run.task("step")["result"]["msg"]


def s3_result(**counts):
    """A result as the S3 modules return it: counts by kind (module_utils/counts.py)."""
    return by_kind({"s3 objects": Counts(failed=0, **counts)})


def test_results_are_summed_per_object_kind_and_bad_results_refused(playbook, ssh_stack):
    state_dir = os.path.join(ssh_stack["ssh"]["source"].root, "steps-results")
    results = [{"result": s3_result(found=3, copied=2, present=1, verified=2)}]
    done = playbook(step_play(state_dir, state="done", results=results)).task("step")["result"]
    assert done["step"]["summary"]["objects"]["s3 objects"]["copied"] == 2
    assert done["table"][-1].split()[:5] == ["s3", "s3", "objects", "3", "-"]
    refused = playbook(step_play(state_dir, state="done", results=[{"module": "rsync", "result": {"rc": 0}}]),
                       expect_rc=2)
    assert "the result has no counts by kind" in refused.task("step")["result"]["msg"]


def report_play(state_dir, **args):
    return [{"name": "report", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": "report", "mlops.migration.migration_report": {
                 "state_dir": state_dir, "steps": ["s3", "mongo"], **args}}]}]


def test_the_report_is_written_once_and_not_in_check_mode(playbook, ssh_stack):
    state_dir = os.path.join(ssh_stack["ssh"]["source"].root, "report-state")
    playbook(step_play(state_dir, state="done", results=[{"result": s3_result(found=5, copied=5, present=0, verified=5)}]))
    checked = playbook(report_play(state_dir), check=True).task("report")["result"]
    assert checked["changed"] and not os.path.exists(os.path.join(state_dir, "report.md"))
    written = playbook(report_play(state_dir)).task("report")["result"]
    assert written["changed"]
    with open(os.path.join(state_dir, "report.md"), encoding="utf-8") as handle:
        text = handle.read()
    assert "| s3 | done |" in text and "| mongo | not run |  |  |" in text and "| s3 | s3 objects | 5 |" in text
    assert os.path.exists(os.path.join(state_dir, "report.html"))
    assert not playbook(report_play(state_dir)).task("report")["result"]["changed"]
    status = playbook(report_play(state_dir, state="status")).task("report")["result"]
    assert not status["changed"] and status["running"] == []
    assert [line.split()[:2] for line in status["table"][1:]] == [["s3", "done"], ["mongo", "not"]]


def test_state_changes_are_logged_in_the_state_dir(playbook, ssh_stack):
    state_dir = os.path.join(ssh_stack["ssh"]["source"].root, "steps-log")
    playbook(step_play(state_dir, state="running"))
    playbook(step_play(state_dir, state="failed", summary={"error": "bucket x does not exist"}))
    playbook(step_play(state_dir, state="failed", summary={"error": "bucket x does not exist"}))  # no change
    playbook(step_play(state_dir, state="done", results=[{"result": s3_result(found=2, copied=2, present=0, verified=2)}]))
    with open(os.path.join(state_dir, "migration.log"), encoding="utf-8") as handle:
        lines = [line.split(" ", 2)[2].rstrip("\n") for line in handle]
    assert lines == ["step s3: running", "step s3: failed; bucket x does not exist",
                     "step s3: done; s3 objects: found 2, copied 2, present 0, verified 2, failed 0"]


def live_owner(run_id="run held-by-test"):
    """This test's own process as the runner of a step (alive while the test runs)."""
    me = process_identity()
    return {"id": run_id, "host": me["host"], "pid": me["pid"], "pid_started": me["pid_started"]}


def test_a_second_runner_is_refused_while_the_first_lives_and_takes_over_when_it_died(playbook, ssh_stack):
    state_dir = os.path.join(ssh_stack["ssh"]["source"].root, "steps-leases")
    held = playbook(step_play(state_dir, state="running", owner=live_owner())).task("step")["result"]
    assert held["lease"]["owner"] == "run held-by-test" and held["lease"]["pid"] == os.getpid()

    refused = playbook(step_play(state_dir, state="running", run="second"), expect_rc=2).task("step")["result"]
    assert "step s3 is being run by run held-by-test" in refused["msg"] and f"pid {os.getpid()}" in refused["msg"]
    assert refused["lease_holder"]["owner"] == "run held-by-test"
    not_done = playbook(step_play(state_dir, state="done", run="second"), expect_rc=2).task("step")["result"]
    assert "cannot be recorded done: its lease is held by run held-by-test" in not_done["msg"]
    assert playbook(step_play(state_dir)).task("step")["result"]["step"]["state"] == "running"  # nothing written
    checked = playbook(step_play(state_dir, state="running", run="second"), check=True).task("step")["result"]
    assert checked["lease"]["owner"] == "run held-by-test"  # check mode writes nothing and takes nothing

    # the holder dies (a process that has ended stands in for it): the next run takes the lease over at once
    dead = dict(live_owner("run that died"), pid=os.getpid(), pid_started="1")  # this pid, another start time
    playbook(step_play(state_dir, state="done", owner=live_owner()))  # the first holder finishes and lets go
    assert playbook(step_play(state_dir)).task("step")["result"]["lease"] is None
    playbook(step_play(state_dir, state="running", owner=dead))
    taken = playbook(step_play(state_dir, state="running", run="third"))
    result = taken.task("step")["result"]
    assert result["lease"]["taken_over"]["owner"] == "run that died" and result["lease"]["owner"] == "run third"
    assert any("took the lease over from run that died" in w for w in result["warnings"]) and result["changed"]
    done = playbook(step_play(state_dir, state="done", run="fourth")).task("step")["result"]  # its holder is gone too
    assert done["lease"] is None and done["step"]["state"] == "done"
