# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress lines in the play's own output while a long module runs.

A module's ``progress_file`` (module_utils/state/progress.py) is rewritten while it works, but Ansible shows
a task only when it ends. The action plugin of each long-running module (``plugins/action/<module>.py``)
therefore starts the module as an async job on its host - the same async_wrapper ``async:`` uses - and,
until the job is finished, reads the progress file every ``migration_progress_interval`` seconds (a variable,
default 30; 0 turns it off) and prints one line: done/total, bytes, rate, ETA. The lines are Ansible display
messages, so they appear in ``ansible-playbook``'s output and, as an AWX/AAP job's output is that same
stream, in the job output while the task runs; a callback plugin could not do this (it hears of a task
only when it ends) and a role-level ``async`` + ``async_status`` loop would print retries, not progress.

The task's result is the module's own, as if it had run directly. Without a ``progress_file``, in check
mode, or for a task that sets ``async`` itself, the module runs as usual.

Each look at the job also touches a heartbeat file beside the progress file; the module stops itself when the
heartbeat is older than ``migration_progress_heartbeat`` seconds (default 60, at least 10; module_utils/state/progress.py),
so a play that is killed or cancelled (Ctrl-C, an AWX cancel) leaves no job running on, as a module run over an
ssh session stops with the session.

While it follows a job, it also renews the heartbeat of the running step's lease (``migration_step_lease``:
module_utils/state/leases.py) every ``LEASE_EVERY`` seconds, when the state file is on the controller, so a step
that runs for hours is not taken for dead by a second runner on another controller.
"""

from __future__ import annotations

import json
import os
import shlex
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.state.leases import Leases
from ansible_collections.mlops.migration.plugins.module_utils.state.report import size_text

display = Display()

INTERVAL_VAR = "migration_progress_interval"
DEFAULT_INTERVAL = 30.0
HEARTBEAT_VAR = "migration_progress_heartbeat"
DEFAULT_HEARTBEAT = 60.0
MIN_HEARTBEAT = 10.0
JOB_LIMIT = 30 * 24 * 3600  # seconds an async job may run: a migration may take days
STATUS_EVERY = 2.0  # seconds between two looks at the job
LEASE_EVERY = 60.0  # seconds between two renewals of the step's lease (its timeout is 900 by default)
JOB_KEYS = ("ansible_job_id", "finished", "started", "results_file", "stdout_lines", "stderr_lines")


def progress_line(record):
    """One line of a progress record: ``what: done/total unit (share), bytes, rate, ETA``."""
    unit = record.get("unit") or "objects"
    total = record.get("total")
    done = record.get("done") or 0
    parts = [f"{done:,}/{total:,} {unit}" + (f" ({done / total:.0%})" if total else "") if total is not None
             else f"{done:,} {unit}"]
    if record.get("bytes"):
        parts.append(size_text(record["bytes"]))
    parts.append(f"{record.get('rate') or 0:,.1f} {unit}/s")
    if record.get("bytes_rate"):
        parts.append(f"{size_text(record['bytes_rate'])}/s")
    eta = record.get("eta_seconds")
    if eta is not None:
        minutes, seconds = divmod(int(eta), 60)
        parts.append(f"ETA {minutes}m{seconds:02d}s" if minutes else f"ETA {seconds}s")
    return f"{record.get('what') or 'progress'}: " + ", ".join(parts)


class ProgressAction(ActionBase):
    """Runs the module, as an async job polled for its progress when it has a progress file."""

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        progress_file = self._task.args.get("progress_file")
        try:
            interval = float(self._templar.template(task_vars.get(INTERVAL_VAR, DEFAULT_INTERVAL)))
        except (TypeError, ValueError):
            interval = DEFAULT_INTERVAL
        if (not progress_file or interval <= 0 or self._task.async_val or self._play_context.check_mode
                or self._connection.has_native_async):
            result.update(self._execute_module(task_vars=task_vars, wrap_async=bool(self._task.async_val)))
            if not self._task.async_val:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        try:
            heartbeat = float(self._templar.template(task_vars.get(HEARTBEAT_VAR, DEFAULT_HEARTBEAT)))
        except (TypeError, ValueError):
            heartbeat = DEFAULT_HEARTBEAT
        heartbeat = max(heartbeat, MIN_HEARTBEAT)  # several looks at the job, each a round trip, fit in it
        beat = f"{progress_file}.heartbeat"
        self._remote(f"mkdir -p {shlex.quote(progress_file.rpartition('/')[0] or '.')} && touch {shlex.quote(beat)}")
        self._task.async_val = JOB_LIMIT
        self._task.environment = list(self._task.environment or []) + [
            {"MLOPS_MIGRATION_HEARTBEAT": beat, "MLOPS_MIGRATION_HEARTBEAT_TIMEOUT": str(heartbeat)}]
        try:
            started = self._execute_module(task_vars=task_vars, wrap_async=True)
        finally:
            self._task.async_val = 0  # the executor must not poll the job a second time
            self._task.environment = self._task.environment[:-1]
        jid = started.get("ansible_job_id")
        if started.get("failed") or not jid:
            result.update(started)
            return result
        result.update(self._follow(jid, progress_file, beat, interval, task_vars))
        return result

    def _remote(self, command):
        """Run a shell command on the task's host (no module: a heartbeat must be cheap); its stdout."""
        return self._low_level_execute_command(command, sudoable=True).get("stdout") or ""

    def _async_dir(self):
        return self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))

    def _follow(self, jid, progress_file, beat, interval, task_vars):
        """Wait for the job, touching its heartbeat and printing its progress every ``interval`` seconds; the
        module's result."""
        async_dir = self._async_dir()
        host = self._task.delegate_to or task_vars.get("inventory_hostname")
        shown, last = time.monotonic(), None  # the first line after one interval
        try:
            lease = self._templar.template(task_vars.get("migration_step_lease") or {})
        except Exception:  # pylint: disable=broad-except  # a role used outside the main job: no step, no lease
            lease = {}
        renewed = time.monotonic()
        pause = 0.25  # short jobs are seen ending soon; then a look every STATUS_EVERY seconds
        while True:
            due = time.monotonic() - shown >= interval
            text = self._remote(f"touch {shlex.quote(beat)}" + (f"; cat {shlex.quote(progress_file)} 2>/dev/null" if due else ""))
            status = self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                          module_args={"jid": jid, "_async_dir": async_dir})
            if status.get("finished") or status.get("failed") and not status.get("started"):
                break
            if lease and time.monotonic() - renewed >= LEASE_EVERY:
                renewed = time.monotonic()
                renew_lease(lease)
            if due:
                shown = time.monotonic()
                record = _record(text)
                if record and record != last:
                    last = record
                    display.display(f"[{host}] {progress_line(record)}")
            time.sleep(pause)
            pause = min(pause * 2, STATUS_EVERY)
        self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                             module_args={"jid": jid, "mode": "cleanup", "_async_dir": async_dir})
        self._remote(f"rm -f {shlex.quote(beat)}")
        self._remove_tmp_path(self._connection._shell.tmpdir)
        result = {key: value for key, value in status.items() if key not in JOB_KEYS + ("stderr",)}
        if result.get("failed") and status.get("stderr"):
            result["module_stderr"] = status["stderr"]  # as a module run without async reports it
        return result


def renew_lease(lease):
    """Renew a step's lease in the controller's state file; a lease lost or a busy file only warns."""
    try:
        leases = Leases(os.path.expanduser(lease["file"]))
        try:
            if not leases.beat(lease["name"], lease["owner"]):
                display.warning(f"step {lease['name']}: this run no longer holds its lease")
        finally:
            leases.close()
    except (MigrationError, KeyError, TypeError) as exc:
        display.warning(f"step lease not renewed: {exc}")


def _record(text):
    """A running job's progress record from the progress file's text, or None."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) and not record.get("finished") else None
