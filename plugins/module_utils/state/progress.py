# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of a long transfer, for ``playbooks/status.yml`` to show while it runs.

A module given ``progress_file`` rewrites that JSON file (atomically, at most once per
``interval`` seconds) with items done / total, bytes, rates and an ETA, and appends one line
per significant event to ``migration.log`` beside it (and to stderr).

When the module runs as a job its action plugin follows (plugin_utils/progress_action.py), the plugin touches
a heartbeat file (``MLOPS_MIGRATION_HEARTBEAT`` in the module's environment) each time it looks at the job; a
job whose heartbeat is older than ``MLOPS_MIGRATION_HEARTBEAT_TIMEOUT`` seconds stops itself, as a module run
over an ssh session stops when the session ends: a killed or cancelled play leaves no copy running on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time

LOG_NAME = "migration.log"
HEARTBEAT_ENV = "MLOPS_MIGRATION_HEARTBEAT"
HEARTBEAT_TIMEOUT_ENV = "MLOPS_MIGRATION_HEARTBEAT_TIMEOUT"

PROGRESS_OPTIONS = dict(
    progress_file=dict(type="path"),
)


class Progress:
    """Counts of a running transfer, written to ``path`` as they change."""

    def __init__(self, path, what, unit="objects", interval=1.0, clock=time.time):
        self.path, self.what, self.unit, self.interval, self.clock = path, what, unit, interval, clock
        self.lock = threading.Lock()
        self.started = clock()
        self.done = self.bytes = 0
        self.total = None
        self.written = 0.0
        self.log_path = os.path.join(os.path.dirname(path), LOG_NAME)
        self.host = socket.gethostname()
        self.event(f"{what}: started")
        self.update(force=True)
        watch_controller(self.event)

    def update(self, done=None, total=None, size=None, force=False):
        """Set the counts; the file is rewritten when ``interval`` has passed (or ``force``)."""
        with self.lock:
            if done is not None:
                self.done = done
            if total is not None:
                self.total = total
            if size is not None:
                self.bytes = size
            now = self.clock()
            if not force and now - self.written < self.interval:
                return
            self.written = now
            record = self.snapshot(now)
        write_json_atomic(self.path, record)

    def snapshot(self, now=None):
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        eta = None
        if self.total is not None and rate > 0:
            eta = round(max(self.total - self.done, 0) / rate, 1)
        return {"what": self.what, "unit": self.unit, "done": self.done, "total": self.total,
                "bytes": self.bytes, "rate": round(rate, 2), "bytes_rate": round(self.bytes / elapsed, 1),
                "eta_seconds": eta, "elapsed": round(elapsed, 1), "started": self.started, "updated": now,
                "pid": os.getpid(), "host": self.host, "finished": False}

    def event(self, text):
        """One log line: to ``migration.log`` beside the progress file, and to stderr."""
        log_event(os.path.dirname(self.log_path), text, self.host)

    def finish(self, summary=""):
        record = self.snapshot()
        record["finished"] = True
        write_json_atomic(self.path, record)
        self.event(f"{self.what}: finished, {self.done} {self.unit}, {self.bytes} bytes"
                   + (f"; {summary}" if summary else ""))


def watch_controller(event, environ=None, clock=time.time, stop=None):
    """Stop this process (SIGTERM) once the heartbeat file named in the environment is older than its timeout;
    nothing when the module does not run as a followed job. ``stop`` replaces the signal (tests)."""
    environ = os.environ if environ is None else environ
    path = environ.get(HEARTBEAT_ENV)
    if not path:
        return None
    try:
        timeout = float(environ.get(HEARTBEAT_TIMEOUT_ENV) or 60)
    except ValueError:
        timeout = 60.0

    def watch():
        while True:
            time.sleep(min(5.0, timeout / 3))
            try:
                age = clock() - os.stat(path).st_mtime
            except OSError:
                age = timeout + 1
            if age > timeout:
                event(f"the controller stopped following this job (no heartbeat for {age:.0f} s): stopping")
                (stop or (lambda: os.kill(os.getpid(), signal.SIGTERM)))()
                return

    thread = threading.Thread(target=watch, name="mlops-heartbeat", daemon=True)
    thread.start()
    return thread


def log_event(directory, text, host=None):
    """Append one line to ``<directory>/migration.log`` and write it to stderr."""
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {host or socket.gethostname()} {text}\n"
    sys.stderr.write(line)
    try:
        os.makedirs(directory or ".", exist_ok=True)
        with open(os.path.join(directory, LOG_NAME), "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError:
        pass  # the log is a convenience; a read-only state dir must not fail the work


def start(module, what, unit="objects"):
    """A ``Progress`` when the module's ``progress_file`` option is set and it is not in check mode, else None."""
    path = module.params.get("progress_file")
    return Progress(path, what, unit) if path and not module.check_mode else None


def finish(progress, result, summary_keys=("copied", "already_present", "failed_count")):
    """Mark a module's progress finished with a few of its result counts."""
    if progress is not None:
        progress.finish(", ".join(f"{key} {result[key]}" for key in summary_keys if key in result))


def write_json_atomic(path, record):
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    temp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(record, handle, sort_keys=True)
    os.replace(temp, path)


def read(path):
    """The progress record at ``path``, or None when there is none (yet)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
