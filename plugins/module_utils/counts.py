# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one result vocabulary of every data-moving module.

A module returns, besides its own keys, ``kinds``: for each kind of object it moved (``s3 objects``,
``files``, ``documents backend.task``, ``tracker runs`` ...) a counts record, and ``counts``: the
records of all kinds added up. A record holds

    found         objects at the source (after the module's own selection)
    filtered_out  objects found but left out by a filter of the plan
    copied        objects written (in check mode: that would be written)
    present       objects already at the target with the same content, not written again
    verified      objects checked at the target after they were written (or found there, by a check)
    failed        objects that could not be moved or do not verify
    bytes         bytes written
    seconds       wall time
    failures      the first failures, each ``{"object": ..., "reason": ...}``
    pending       in check mode, the first objects that would be written
    dry_run       whether the record comes from a check-mode pass (``copied`` then means "would copy")

A count a module does not measure is None (the report shows ``-``), never a guessed 0. The
report adds records up by kind and needs to know nothing else about the module.
"""

from __future__ import annotations

NUMBERS = ("found", "filtered_out", "copied", "present", "verified", "failed", "bytes", "seconds")
FAILURES_KEPT = 20
PENDING_KEPT = 100


class Counts:
    """One counts record; ``add`` sums another into it, ``fail`` counts and keeps a failure."""

    __slots__ = NUMBERS + ("failures", "pending", "dry_run")

    def __init__(self, dry_run=False, **values):
        unknown = set(values) - set(NUMBERS) - {"failures", "pending"}
        if unknown:
            raise TypeError(f"not a count: {', '.join(sorted(unknown))}")
        for name in NUMBERS:
            setattr(self, name, values.get(name))
        self.failures = [_failure(f) for f in values.get("failures") or []][:FAILURES_KEPT]
        self.pending = list(values.get("pending") or [])[:PENDING_KEPT]
        self.dry_run = bool(dry_run)

    def fail(self, obj, reason, n=1):
        self.failed = (self.failed or 0) + n
        if len(self.failures) < FAILURES_KEPT:
            self.failures.append({"object": str(obj), "reason": str(reason)})

    def add(self, other):
        other = other if isinstance(other, Counts) else Counts.from_dict(other)
        for name in NUMBERS:
            value = getattr(other, name)
            if value is not None:
                setattr(self, name, round((getattr(self, name) or 0) + value, 3))
        self.failures.extend(other.failures[:max(0, FAILURES_KEPT - len(self.failures))])
        self.pending.extend(other.pending[:max(0, PENDING_KEPT - len(self.pending))])
        self.dry_run = self.dry_run or other.dry_run
        return self

    def as_dict(self):
        out = {name: getattr(self, name) for name in NUMBERS}
        out.update(failures=list(self.failures), pending=list(self.pending), dry_run=self.dry_run)
        return out

    @classmethod
    def from_dict(cls, record):
        if not isinstance(record, dict):
            raise TypeError(f"a counts record is a dict, not {type(record).__name__}")
        values = {name: record.get(name) for name in NUMBERS + ("failures", "pending")}
        return cls(dry_run=record.get("dry_run", False), **values)


def _failure(entry):
    if isinstance(entry, dict):
        return {"object": str(entry.get("object")), "reason": str(entry.get("reason"))}
    return {"object": str(entry), "reason": ""}


def by_kind(kinds, seconds=None):
    """``{"kinds": {kind: record}, "counts": the records added up}``, to merge into a module's result."""
    total = Counts()
    records = {}
    for kind, record in kinds.items():
        record = record if isinstance(record, Counts) else Counts.from_dict(record)
        records[kind] = record.as_dict()
        total.add(record)
    if seconds is not None:
        total.seconds = seconds
    return {"kinds": records, "counts": total.as_dict()}
