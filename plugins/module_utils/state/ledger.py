# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy ledger in the state file: for every object copied, source id -> target id.

An object is ``started`` when its target exists and ``complete`` only after it verified. A
re-run skips complete objects, deletes and redoes started ones, and uses the mapping to remap
references (parent runs, model version sources). ``detail`` holds what an incremental sync
needs (points already copied per metric, whether the source was still running).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time

from ansible_collections.mlops.migration.plugins.module_utils.state.store import LedgerError, open_state


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
        self.db = open_state(path, readonly)
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
