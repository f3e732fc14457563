# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leases in the state file: who runs a step (or copies into a ledger) now, so a second runner is refused.

A lease is one row of the ``leases`` table: its name (a step's name, or ``tracker_copy <source> -> <target>``),
the holder's ``owner`` (a run id), ``host``, ``pid`` and that process's start time (so a reused pid is not taken
for the holder), when it was taken and its last ``heartbeat``. Taking a lease is one ``BEGIN IMMEDIATE``
transaction: read the row, decide, write; two runners cannot both win.

A holder is alive when

- it runs on this host (the host name matches): its pid exists and started when the lease says (``/proc``);
- it runs elsewhere: its heartbeat is younger than the lease's timeout.

A dead holder's lease is taken over (the result names it); a live one's refuses with a message naming it.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.state.store import LedgerError, open_state

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_started TEXT,
    acquired REAL NOT NULL,
    heartbeat REAL NOT NULL
)
"""
FIELDS = ("name", "owner", "host", "pid", "pid_started", "acquired", "heartbeat")


class LeaseHeld(MigrationError):
    """Another runner, alive, holds the lease."""

    def __init__(self, message, holder):
        super().__init__(message, {"lease_holder": holder})
        self.holder = holder


def process_started(pid):
    """The start time of a process on this host (clock ticks since boot, as /proc says), or None when it is gone."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    if not fields or fields[0] in ("Z", "X"):  # a zombie has finished: its parent has not been told yet
        return None
    return fields[19] if len(fields) > 19 else None


def process_identity(pid=None, owner=None):
    """``{"owner", "host", "pid", "pid_started"}`` of a process on this host (this one by default)."""
    pid = os.getpid() if pid is None else int(pid)
    return {"owner": owner or f"pid {pid}", "host": socket.gethostname(), "pid": pid, "pid_started": process_started(pid)}


def alive(holder, timeout, now=None, here=None):
    """Whether a lease's holder still runs (see the module's docstring)."""
    if (here or socket.gethostname()) == holder["host"]:
        started = process_started(holder["pid"])
        return started is not None and (not holder.get("pid_started") or started == holder["pid_started"])
    return (now or time.time()) - holder["heartbeat"] < timeout


def describe(holder, now=None):
    """``run <owner> (pid N on host H, since ..., last heartbeat S s ago)``."""
    now = now or time.time()
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["acquired"]))
    return (f"{holder['owner']} (pid {holder['pid']} on host {holder['host']}, since {since}, "
            f"last heartbeat {max(0, now - holder['heartbeat']):.0f} s ago)")


def same_holder(one, other):
    return all(one.get(key) == other.get(key) for key in ("owner", "host", "pid"))


class Leases:
    """The leases of one state file."""

    def __init__(self, path, readonly=False):
        self.path = path
        self.db = open_state(path, readonly)
        self.db.isolation_level = None  # transactions by hand: BEGIN IMMEDIATE
        self.lock = threading.Lock()
        if not readonly:  # a read-only look (check mode, a query) adds no table to a state file
            try:
                self.db.executescript(SCHEMA)
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot write the state file {path}: {exc}") from exc

    def holder(self, name):
        """The lease's row as a dict, or None."""
        try:
            row = self.db.execute(f"SELECT {', '.join(FIELDS)} FROM leases WHERE name=?", (name,)).fetchone()
        except sqlite3.OperationalError:  # a read-only view of a state file from before leases
            return None
        return dict(zip(FIELDS, row)) if row else None

    def _transaction(self, name, work):
        with self.lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self.holder(name))
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self.db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot write the lease {name!r} in the state file {self.path}: {exc}") from exc

    def acquire(self, name, me, timeout, what=None):
        """Take the lease ``name`` for ``me`` (a process_identity dict); returns the dead holder taken over, or
        None. Raises LeaseHeld when a live holder has it; holding it already only renews the heartbeat."""
        what = what or name

        def work(holder):
            now = time.time()
            if holder and same_holder(holder, me):
                self.db.execute("UPDATE leases SET heartbeat=? WHERE name=?", (now, name))
                return None
            if holder and alive(holder, timeout, now):
                raise LeaseHeld(f"{what} is being run by {describe(holder, now)}; refused, to not run it twice. Wait "
                                f"for it to finish; a holder that is dead is taken over by the next run (at once on its "
                                f"own host, after {timeout:.0f} s without a heartbeat from another)", holder)
            self.db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (name, me["owner"], me["host"], me["pid"], me.get("pid_started"), now, now))
            return holder
        return self._transaction(name, work)

    def beat(self, name, me):
        """Renew the heartbeat; False when ``me`` no longer holds the lease."""
        def work(holder):
            if not holder or not same_holder(holder, me):
                return False
            self.db.execute("UPDATE leases SET heartbeat=? WHERE name=?", (time.time(), name))
            return True
        return self._transaction(name, work)

    def release(self, name, me):
        """Give the lease up; returns the holder that has it instead of ``me`` (None when released or free)."""
        def work(holder):
            if holder and not same_holder(holder, me):
                return holder
            self.db.execute("DELETE FROM leases WHERE name=?", (name,))
            return None
        return self._transaction(name, work)

    def close(self):
        self.db.close()


class HeldLease:
    """``with HeldLease(path, name, timeout, what):`` this process holds the lease while the block runs, its heartbeat
    renewed every ``timeout / 4`` seconds by a thread (a long copy is never taken for dead), released at the end."""

    def __init__(self, path, name, timeout=60.0, what=None):
        self.path, self.name, self.timeout = path, name, timeout
        self.what = what or name
        self.me = process_identity()
        self.taken_over = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        leases = Leases(self.path)
        try:
            self.taken_over = leases.acquire(self.name, self.me, self.timeout, self.what)
        finally:
            leases.close()
        self._thread = threading.Thread(target=self._beat, name="mlops-lease", daemon=True)
        self._thread.start()
        return self

    def _beat(self):
        leases = Leases(self.path)
        try:
            while not self._stop.wait(self.timeout / 4):
                try:
                    leases.beat(self.name, self.me)
                except LedgerError:
                    pass  # a busy file: the next beat comes long before the timeout
        finally:
            leases.close()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        leases = Leases(self.path)
        try:
            leases.release(self.name, self.me)
        finally:
            leases.close()
        return False
