# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration's state file (SQLite, ``<state_dir>/migration-state.sqlite``): the copy ledger and the step log.

The copy ledger records, for every object copied, source id -> target id.

An object is ``started`` when its target exists and ``complete`` only after it verified. A
re-run skips complete objects, deletes and redoes started ones, and uses the mapping to remap
references (parent runs, model version sources). ``detail`` holds what an incremental sync
needs (points already copied per metric, whether the source was still running).

The step log records each named step of a migration: running, done or failed, with a summary
and progress, so a restarted migration skips what is done and re-runs what was running.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

STATE_FILE = "migration-state.sqlite"
STEP_STATES = ("running", "done", "failed")
SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    target TEXT NOT NULL,
    target_id TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    updated REAL NOT NULL,
    PRIMARY KEY (kind, source, source_id, target)
);
CREATE TABLE IF NOT EXISTS steps (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}',
    progress TEXT NOT NULL DEFAULT '{}',
    started REAL,
    finished REAL,
    updated REAL NOT NULL
)
"""


class LedgerError(MigrationError):
    """The ledger file cannot be opened or written."""


class Entry:
    __slots__ = ("target_id", "state", "detail")

    def __init__(self, target_id, state, detail):
        self.target_id, self.state, self.detail = target_id, state, detail

    @property
    def complete(self):
        return self.state == "complete"


class Ledger:
    """Thread-safe access to one ledger file for one (source, target) pair."""

    def __init__(self, path, source, target, readonly=False):
        self.path, self.source, self.target = path, source, target
        self.lock = threading.Lock()
        try:
            if readonly:
                if not os.path.exists(path):
                    self.db = sqlite3.connect(":memory:", check_same_thread=False)
                else:
                    self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            else:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                self.db = sqlite3.connect(path, check_same_thread=False, timeout=30)
                self.db.execute("PRAGMA journal_mode=WAL")
            if not readonly or not os.path.exists(path):
                self.db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open the migration state file {path}: {exc}") from exc
        self.readonly = readonly

    def get(self, kind, source_id):
        with self.lock:
            try:
                row = self.db.execute(
                    "SELECT target_id, state, detail FROM objects WHERE kind=? AND source=? AND source_id=? AND target=?",
                    (kind, self.source, source_id, self.target)).fetchone()
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot read the ledger {self.path}: {exc}") from exc
        return Entry(row[0], row[1], json.loads(row[2])) if row else None

    def target_id(self, kind, source_id):
        entry = self.get(kind, source_id)
        return entry.target_id if entry else None

    def record(self, kind, source_id, target_id, state, detail=None):
        if self.readonly:
            return
        with self.lock:
            try:
                with self.db:
                    self.db.execute(
                        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (kind, self.source, source_id, self.target, target_id, state,
                         json.dumps(detail or {}, sort_keys=True), time.time()))
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot write the ledger {self.path}: {exc}") from exc

    def forget(self, kind, source_id):
        if self.readonly:
            return
        with self.lock, self.db:
            self.db.execute("DELETE FROM objects WHERE kind=? AND source=? AND source_id=? AND target=?",
                            (kind, self.source, source_id, self.target))

    def close(self):
        self.db.close()


class StepLog:
    """The steps table of the state file: one row per named step."""

    def __init__(self, path, readonly=False):
        self.ledger = Ledger(path, "", "", readonly=readonly)
        self.path = path

    def get(self, name):
        """{"state", "summary", "progress", "started", "finished"} of a step, or None."""
        try:
            row = self.ledger.db.execute("SELECT state, summary, progress, started, finished FROM steps WHERE name=?",
                                         (name,)).fetchone()
        except sqlite3.OperationalError:  # a read-only view of a state file that has no steps yet
            return None
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the state file {self.path}: {exc}") from exc
        if row is None:
            return None
        return {"state": row[0], "summary": json.loads(row[1]), "progress": json.loads(row[2]),
                "started": row[3], "finished": row[4]}

    def set(self, name, state, summary=None, progress=None):
        """Record the step's new state; returns whether anything changed."""
        if state not in STEP_STATES:
            raise LedgerError(f"step {name}: state must be one of {', '.join(STEP_STATES)}, not {state!r}")
        old = self.get(name)
        now = time.time()
        summary = summary if summary is not None else (old["summary"] if old and state != "running" else {})
        progress = progress if progress is not None else (old["progress"] if old else {})
        if old and old["state"] == state and old["summary"] == summary and old["progress"] == progress:
            return False
        if self.ledger.readonly:
            return True
        started = now if state == "running" and (not old or old["state"] != "running") else (old or {}).get("started")
        finished = now if state in ("done", "failed") else None
        try:
            with self.ledger.lock, self.ledger.db:
                self.ledger.db.execute("INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?)",
                                       (name, state, json.dumps(summary, sort_keys=True),
                                        json.dumps(progress, sort_keys=True), started, finished, now))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write the state file {self.path}: {exc}") from exc
        return True

    def all(self):
        try:
            rows = self.ledger.db.execute("SELECT name FROM steps ORDER BY started, name").fetchall()
        except sqlite3.OperationalError:
            return {}
        return {row[0]: self.get(row[0]) for row in rows}

    def close(self):
        self.ledger.close()
