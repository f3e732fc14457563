# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The step log in the state file: each named step of a migration, running, done or failed, with
a summary and progress, so a restarted migration skips what is done and re-runs what was running.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time

from ansible_collections.mlops.migration.plugins.module_utils.state.store import STEP_STATES, LedgerError, open_state


class StepLog:
    """The steps table of the state file: one row per named step."""

    def __init__(self, path, readonly=False):
        self.db = open_state(path, readonly)
        self.lock = threading.Lock()
        self.path, self.readonly = path, readonly

    def get(self, name):
        """{"state", "summary", "progress", "started", "finished"} of a step, or None."""
        try:
            row = self.db.execute("SELECT state, summary, progress, started, finished FROM steps WHERE name=?",
                                  (name,)).fetchone()
        except sqlite3.OperationalError:  # a read-only view of a state file that has no steps yet
            return None
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the state file {self.path}: {exc}") from exc
        if row is None:
            return None
        return {"state": row[0], "summary": json.loads(row[1]), "progress": json.loads(row[2]),
                "started": row[3], "finished": row[4]}

    def set(self, name, state, summary=None, progress=None, run=None):
        """Record the step's new state; returns whether anything changed. A finished step (done or failed) of a
        named ``run`` (a playbook run: its start time) is also kept in the run's history."""
        if state not in STEP_STATES:
            raise LedgerError(f"step {name}: state must be one of {', '.join(STEP_STATES)}, not {state!r}")
        old = self.get(name)
        now = time.time()
        summary = summary if summary is not None else (old["summary"] if old and state != "running" else {})
        progress = progress if progress is not None else (old["progress"] if old else {})
        if old and old["state"] == state and old["summary"] == summary and old["progress"] == progress:
            return False
        if self.readonly:
            return True
        started = now if state == "running" and (not old or old["state"] != "running") else (old or {}).get("started")
        finished = now if state in ("done", "failed") else None
        try:
            with self.lock, self.db:
                self.db.execute("INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (name, state, json.dumps(summary, sort_keys=True),
                                 json.dumps(progress, sort_keys=True), started, finished, now))
                if run and finished:
                    self.db.execute("INSERT OR REPLACE INTO step_runs VALUES (?, ?, ?, ?, ?, ?)",
                                    (run, name, state, json.dumps(summary, sort_keys=True), started, finished))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write the state file {self.path}: {exc}") from exc
        return True

    def all(self):
        try:
            rows = self.db.execute("SELECT name FROM steps ORDER BY started, name").fetchall()
        except sqlite3.OperationalError:
            return {}
        return {row[0]: self.get(row[0]) for row in rows}

    def history(self):
        """``{run: {step: {"state", "summary", "started", "finished"}}}`` of every named run, oldest run first."""
        try:
            rows = self.db.execute("SELECT run, name, state, summary, started, finished FROM step_runs "
                                   "ORDER BY run, started, name").fetchall()
        except sqlite3.OperationalError:  # a state file from before the history
            return {}
        runs = {}
        for run, name, state, summary, started, finished in rows:
            runs.setdefault(run, {})[name] = {"state": state, "summary": json.loads(summary), "started": started,
                                              "finished": finished}
        return runs

    def close(self):
        self.db.close()
