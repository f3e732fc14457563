# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration's state file (SQLite, ``<state_dir>/migration-state.sqlite``): where it is, its
schema, and opening it (read-only views of a file that does not exist yet are empty).

Three tables live in it: ``objects``, the copy ledger (state/ledger.py), ``steps``, the step
log (state/steps.py), and ``step_runs``, each finished step of each run (the report's history).
"""

from __future__ import annotations

import os
import sqlite3

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
);
CREATE TABLE IF NOT EXISTS step_runs (
    run TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}',
    started REAL,
    finished REAL,
    PRIMARY KEY (run, name)
)
"""


class LedgerError(MigrationError):
    """The state file cannot be opened, read or written."""


def open_state(path, readonly=False):
    """A connection to the state file at ``path``, usable from several threads (callers lock)."""
    try:
        if readonly:
            if not os.path.exists(path):
                db = sqlite3.connect(":memory:", check_same_thread=False)
            else:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            db = sqlite3.connect(path, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            # every commit on disk before it returns (WAL + FULL: the log is fsynced at each commit), so a step
            # recorded done, a ledger entry or a lease survives a power cut
            db.execute("PRAGMA synchronous=FULL")
        if not readonly or not os.path.exists(path):
            db.executescript(SCHEMA)
    except (sqlite3.Error, OSError) as exc:
        raise LedgerError(f"cannot open the migration state file {path}: {exc}") from exc
    return db
