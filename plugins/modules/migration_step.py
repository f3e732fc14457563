#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_step
short_description: Record or query the state of a named migration step, so a restarted migration skips what is done
version_added: 0.1.0
description:
  - Keeps one row per named step in the migration's state file
    (C(<state_dir>/migration-state.sqlite), shared with the M(mlops.migration.tracker_copy) ledger).
  - V(running), V(done) and V(failed) record the step's state with a summary and progress;
    V(query) returns the step's state and whether to skip it.
  - A step is skipped (RV(skip)) only when it is V(done) and O(force) is false. A step that was
    V(running) when a run died is not done, so it runs again.
  - Every change of a step's state is logged as one line (with its counts when done, its error when
    failed) to C(migration.log) in O(state_dir) and to stderr.
  - V(running) takes the step's lease in the state file (owner, host, pid, heartbeat); a second runner of the same
    step is refused with a message naming the holder while the holder lives, and takes the lease over once it is
    dead - at once when the holder ran on the state file's host and its process is gone, after O(lease_timeout)
    seconds without a heartbeat when it ran elsewhere. V(done) and V(failed) give the lease up; they are refused
    while another live runner holds it.
author:
  - mlops.migration developers (@mlops-migration)
options:
  state_dir:
    description: Directory of the state file on the host that runs the module.
    type: path
    required: true
  name:
    description: The step's name, for example C(s3) or C(files_bulk).
    type: str
    required: true
  state:
    description: Record the step as V(running), V(done) or V(failed), or only V(query) it.
    type: str
    choices: [query, running, done, failed]
    default: query
  summary:
    description: What the step did (counts, times), kept with V(done) and V(failed).
    type: dict
  progress:
    description:
      - Where a running step's progress is, for C(playbooks/status.yml) - C(host) and C(file) of the
        O(ignore:progress_file) a module rewrites - or the counts themselves (C(done), C(total), C(bytes)).
    type: dict
  results:
    description:
      - Results of the step's modules as registered, each C({module, result}) with optional C(kind) (a label
        prefix), C(verification) (true for a check-mode pass after the copy, whose present objects
        count as verified) and C(fields) (the only columns the entry adds to).
      - With V(done) or V(failed) they are summed into counts per object kind (found, filtered out,
        copied, present, verified, failed, first failures) kept as the summary's C(objects), which
        M(mlops.migration.migration_report) shows.
    type: list
    elements: dict
  host_results:
    description:
      - The same results by host (a list of results per host name), instead of O(results); the summary then also
        keeps, per host, the seconds, bytes and objects copied (the report's timeline).
    type: dict
  run:
    description:
      - The playbook run this record belongs to (its start time, as the main job sets it); a finished step is also
        kept in the run's history, which the report shows beside later runs.
    type: str
  owner:
    description:
      - Who runs the step, for its lease. The action plugin fills it in from the controller (its host name, the
        C(ansible-playbook) process's pid and start time, O(run) as the id) when it is not given.
    type: dict
    suboptions:
      id:
        description: The runner's name in messages (a run id).
        type: str
      host:
        description: Host name of the runner's process.
        type: str
      pid:
        description: The runner's process id.
        type: int
      pid_started:
        description: The process's start time (C(/proc/<pid>/stat)), so a reused pid is not taken for the runner.
        type: str
  lease_timeout:
    description:
      - Seconds without a heartbeat after which the lease of a runner on another host counts as dead. Each record
        of the step renews the heartbeat, and the play's progress follower renews it while a long module runs.
    type: float
    default: 900
  force:
    description: Report RV(skip) as false even for a done step, to run everything again (the two-stage case).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports whether the record would change; writes nothing.
  diff_mode:
    support: none
    description: The step's state is returned instead.
"""

EXAMPLES = r"""
- name: Is the S3 step done already?
  mlops.migration.migration_step:
    state_dir: /var/lib/mlops-migration
    name: s3
    force: "{{ migration_force | default(false) }}"
  register: s3_step

- name: Mark it running
  when: not s3_step.skip
  mlops.migration.migration_step:
    state_dir: /var/lib/mlops-migration
    name: s3
    state: running
"""

RETURN = r"""
step:
  description: The step's record after the task (C(state), C(summary), C(progress), C(started), C(finished)); null when unknown.
  returned: always
  type: dict
done:
  description: Whether the step is done.
  returned: always
  type: bool
skip:
  description: Whether a migration should skip the step (done, and O(force) false).
  returned: always
  type: bool
lease:
  description:
    - The step's lease after the task (C(owner), C(host), C(pid), C(acquired), C(heartbeat)), null when nobody holds
      it; with C(taken_over), the dead runner's lease this one took.
  returned: always
  type: dict
table:
  description: The step's counts per object kind as a compact table (from O(results)).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.state.leases import (
    alive,
    describe,
    LeaseHeld,
    Leases,
    process_identity,
    same_holder,
)
from ansible_collections.mlops.migration.plugins.module_utils.state.steps import StepLog
from ansible_collections.mlops.migration.plugins.module_utils.state.store import STATE_FILE
from ansible_collections.mlops.migration.plugins.module_utils.state.progress import log_event
from ansible_collections.mlops.migration.plugins.module_utils.state.report import (
    host_totals,
    missing_references,
    render_table,
    ReportError,
    summarize,
)


def step_event(name, state, summary):
    """The log line of a step's new state: its counts when done, its error when failed."""
    text = f"step {name}: {state}"
    objects = (summary or {}).get("objects") or {}
    if state == "done" and objects:
        parts = []
        for kind, counts in sorted(objects.items()):
            shown = [f"{key} {value}" for key, value in counts.items() if key != "failures" and value is not None]
            parts.append(f"{kind}: " + ", ".join(shown))
        text += "; " + "; ".join(parts)
    if state == "failed" and (summary or {}).get("error"):
        text += f"; {summary['error']}"
    return text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state_dir=dict(type="path", required=True),
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["query", "running", "done", "failed"], default="query"),
            summary=dict(type="dict"),
            progress=dict(type="dict"),
            force=dict(type="bool", default=False),
            results=dict(type="list", elements="dict"),
            host_results=dict(type="dict"),
            run=dict(type="str"),
            owner=dict(type="dict", options=dict(id=dict(type="str"), host=dict(type="str"), pid=dict(type="int"),
                                                 pid_started=dict(type="str"))),
            lease_timeout=dict(type="float", default=900.0),
        ),
        mutually_exclusive=[("results", "host_results")],
        supports_check_mode=True,
    )
    params = module.params
    path = os.path.join(params["state_dir"], STATE_FILE)
    readonly = module.check_mode or params["state"] == "query"
    summary = params["summary"]
    results = params["results"]
    try:
        if params["host_results"] is not None:
            results = [entry for entries in params["host_results"].values() for entry in entries or []]
        if results is not None:
            summary = dict(summary or {}, objects=summarize(results))
            if params["host_results"] is not None:
                summary["hosts"] = host_totals(params["host_results"])
            missing = missing_references(results)
            if missing:
                summary["missing"] = missing
        lease, taken_over = None, None
        if not readonly:
            lease, taken_over = step_lease(path, params)
        steps = StepLog(path, readonly=readonly)
        try:
            changed = False
            if params["state"] != "query":
                changed = steps.set(params["name"], params["state"], summary, params["progress"], params["run"])
                if changed and not module.check_mode:
                    log_event(params["state_dir"], step_event(params["name"], params["state"], summary))
            step = steps.get(params["name"])
        finally:
            steps.close()
        if not readonly and params["state"] != "running":
            lease = release_lease(path, params)
        elif readonly and os.path.exists(path):
            leases = Leases(path, readonly=True)
            try:
                lease = leases.holder(params["name"])
            finally:
                leases.close()
    except LeaseHeld as exc:
        module.fail_json(msg=str(exc), lease_holder=exc.holder)
    except (MigrationError, ReportError) as exc:
        module.fail_json(msg=str(exc))
    if taken_over:
        changed = True
        lease = dict(lease, taken_over=taken_over)
        module.warn(f"step {params['name']}: took the lease over from {describe(taken_over)}, which is no longer running")
    if module.check_mode and params["state"] != "query":  # what the record would be
        step = dict(step or {"started": None, "finished": None}, state=params["state"],
                    summary=summary if summary is not None else (step or {}).get("summary", {}),
                    progress=params["progress"] if params["progress"] is not None else (step or {}).get("progress", {}))
    done = bool(step and step["state"] == "done")
    table = render_table([params["name"]], {params["name"]: step}) if step else []
    module.exit_json(changed=changed, step=step, done=done, skip=done and not params["force"], table=table, lease=lease)


def runner(params):
    """The runner's identity for the lease (process_identity's shape), from O(owner)."""
    owner = params["owner"] or {}
    if owner.get("pid") is None:  # the module called without the action plugin: its own process stands in
        return process_identity(owner=params["run"])
    return {"owner": owner.get("id") or params["run"] or f"pid {owner['pid']}", "host": owner.get("host") or "",
            "pid": owner["pid"], "pid_started": owner.get("pid_started")}


def step_lease(path, params):
    """Take the step's lease (running) or check it is still this runner's (done, failed): (lease, taken over)."""
    me = runner(params)
    leases = Leases(path)
    try:
        what = f"step {params['name']}"
        if params["state"] == "running":
            taken_over = leases.acquire(params["name"], me, params["lease_timeout"], what)
            return leases.holder(params["name"]), taken_over
        holder = leases.holder(params["name"])
        if holder and not same_holder(holder, me) and alive(holder, params["lease_timeout"]):
            raise LeaseHeld(f"{what} cannot be recorded {params['state']}: its lease is held by {describe(holder)}, "
                            "which runs it now; this run's record of it is refused", holder)
        return holder, None
    finally:
        leases.close()


def release_lease(path, params):
    """Give the step's lease up; a dead runner's lease left on it goes too. Returns None (nobody holds it)."""
    me = runner(params)
    leases = Leases(path)
    try:
        other = leases.release(params["name"], me)
        if other and not alive(other, params["lease_timeout"]):
            leases.acquire(params["name"], me, params["lease_timeout"])
            leases.release(params["name"], me)
    finally:
        leases.close()


if __name__ == "__main__":
    main()
