# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The target methods of a tracker that holds each run back until the copy has handed over all of it, then
writes it whole (W&B offline runs, Comet offline archives, ClearML offline sessions: a run is written from start
to end); ``SpooledRun``, a run held back on disk; ``ZipPerRunTarget``, a target writing a zip per run.

``HeldRunTarget`` is a mixin, listed before the tracker's source class: the class using it has ``KIND``,
``lock``, ``pending`` (run id -> the held run, which has ``params``, ``tags``, ``summary``, ``config``,
``status``, ``end_time``, ``add_points``, ``add_series`` and ``add_artifact``) and ``_write(run_id)``, which
writes a held run and forgets it. Importable without Ansible.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import tempfile
import threading

from ansible_collections.mlops.migration.plugins.module_utils.paths import UnsafePath, confined
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_files import (
    SERIES_DIR,
    SeriesFile,
    input_record,
    series_path,
)


class HeldRunTarget:
    """Hands what the copy writes to the run held back, and writes the run when the copy is done with it."""

    pending = None  # the class using the mixin gives each instance its own dict (and lock); KIND is its own
    lock = threading.RLock()

    def _write(self, run_id):
        raise NotImplementedError

    def _pending(self, run_id):
        if run_id not in self.pending:
            raise TrackerError(f"{self.KIND}: run {run_id} was not started by this copy")
        return self.pending[run_id]

    def log_batch(self, run_id, params=(), tags=(), points=()):
        pending = self._pending(run_id)
        pending.params.update(params)
        pending.tags.update(tags)
        pending.add_points(points)

    def log_series(self, run_id, kind, key, items, fetch):
        try:
            return self._pending(run_id).add_series(kind, key, items, fetch)
        except UnsafePath as exc:
            raise TrackerError(f"{self.KIND}: run {run_id}: {exc}") from exc

    def series_count(self, run, kind, key):
        return sum(1 for _item in self.series(run, kind, key))

    def log_summary(self, run_id, summary, config):
        pending = self._pending(run_id)
        pending.summary = dict(summary or {})
        pending.config = config if config else None

    def upload(self, run_id, artifact, path):
        try:
            self._pending(run_id).add_artifact(artifact.path, path)
        except UnsafePath as exc:
            raise TrackerError(f"{self.KIND}: run {run_id}: {exc}") from exc

    def finish_run(self, run_id, status, end_time):
        pending = self._pending(run_id)
        pending.status, pending.end_time = status, end_time

    def done(self, run_id):
        with self.lock:
            if run_id in self.pending:
                self._write(run_id)


class SpooledRun:
    """One run held back until it is written: points in a JSON-lines spool (``points.jsonl``: key, step,
    timestamp, value a line), files in ``<spool>/files`` (``assets``: path at the target -> local file, series side
    files among them), the rest in memory. ``added(kind, key, item)`` is told of every series item written (a target
    that also writes some natively keeps them there); ``local_of(kind, key, n, item)`` is where the ``n``-th item's
    file of a series went."""

    def __init__(self, spool, ident, run, tags, parent_id):
        shutil.rmtree(spool, ignore_errors=True)
        self.spool, self.files = spool, os.path.join(spool, "files")
        os.makedirs(self.files)
        os.makedirs(os.path.join(spool, "items"))
        self.ident, self.run, self.parent_id = ident, run, parent_id
        self.tags, self.params, self.summary, self.config = dict(tags), {}, {}, None
        self.status, self.end_time = "RUNNING", None
        self.assets = collections.OrderedDict()
        self.series_keys, self.metric_keys = {}, []
        self.points = open(os.path.join(spool, "points.jsonl"), "w", encoding="utf-8")  # pylint: disable=consider-using-with

    def add_points(self, points):
        for point in points:
            if point.key not in self.metric_keys:
                self.metric_keys.append(point.key)
            self.points.write(json.dumps([point.key, point.step, point.timestamp, point.value]) + "\n")

    def spooled_points(self):
        """The points handed over, in order, as ``(key, step, timestamp, value)`` (the spool closed first)."""
        if not self.points.closed:
            self.points.close()
        with open(os.path.join(self.spool, "points.jsonl"), encoding="utf-8") as lines:
            for line in lines:
                yield tuple(json.loads(line))

    def put(self, local, path):
        dest = confined(self.files, path, "file")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.move(local, dest)
        self.assets[path] = dest

    def add_series(self, kind, key, items, fetch):
        keys = self.series_keys.setdefault(kind, [])
        if key not in keys:
            keys.append(key)
        side = SeriesFile(kind, key, os.path.join(self.spool, "items"), self.put)
        for item in items:
            number = side.count
            side.add(item, fetch)
            self.added(kind, key, item, self.local_of(kind, key, number, item))
        return side.close()

    def added(self, kind, key, item, local):
        """A series item was written to the side files (``local``: its file there, or None)."""

    def local_of(self, kind, key, number, item):
        """The local file of the ``number``-th item of a series (one with a file), or None."""
        if not item.file:
            return None
        return self.assets.get(series_path(kind, f"{key}/{number:06d}-{os.path.basename(item.file) or 'file'}", ""))

    def add_artifact(self, path, local):
        if path.startswith(SERIES_DIR + "/"):
            raise UnsafePath(f"artifact {path} is under {SERIES_DIR}/, where this collection keeps its side files")
        dest = confined(self.files, "artifacts/" + path, "artifact")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(local, dest)
        self.assets[path] = dest

    def discard(self):
        if not self.points.closed:
            self.points.close()
        shutil.rmtree(self.spool, ignore_errors=True)


class ZipPerRunTarget(HeldRunTarget):
    """A held-run target that writes each run as ``<root>/<run id>.zip`` (Comet archives, ClearML sessions): the
    spool under ``<root>/.mlops-migration-spool/<run id>``, the zip moved into ``root`` only when whole, the last
    ``KEPT`` written zips' readers kept. The class using it has ``root``, ``lock``, ``pending``, ``full`` (an
    OrderedDict), ``WHAT`` (what a zip holds, for messages), ``_read(path)`` (a reader of one zip; a source class's own, listed
after this one) and
    ``_write_zip(pending, scratch)``, which writes the run's zip in the directory ``scratch`` and returns its path."""

    SPOOL_DIR = ".mlops-migration-spool"
    WHAT = "runs"
    KEPT = 8
    full = None

    def _write_zip(self, pending, scratch):
        raise NotImplementedError

    def check(self):
        existing = self.root
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
            raise TrackerError(f"{self.KIND}: {existing} is not a writable directory, so {self.root} cannot hold "
                               f"{self.WHAT}")

    def spool_for(self, run_id):
        self.full.pop(run_id, None)
        return os.path.join(self.root, self.SPOOL_DIR, run_id)

    def written(self, run_id):
        """The reader of the run's zip (written first when it is still held back)."""
        with self.lock:
            if run_id in self.pending:
                self._write(run_id)
            if run_id not in self.full:
                path = os.path.join(self.root, f"{run_id}.zip")
                if not os.path.isfile(path):
                    raise TrackerError(f"{self.KIND}: no run {run_id} in {self.root}")
                self.full[run_id] = self._read(path)
                while len(self.full) > self.KEPT:
                    self.full.popitem(last=False)
            return self.full[run_id]

    def _write(self, run_id):
        pending = self.pending.pop(run_id)
        scratch = tempfile.mkdtemp(dir=pending.spool)
        try:
            made = self._write_zip(pending, scratch)
            os.replace(made, os.path.join(self.root, f"{run_id}.zip"))  # a zip in root is whole
        except UnsafePath as exc:
            raise TrackerError(f"{self.KIND}: run {pending.run.id}: {exc}") from exc
        finally:
            pending.discard()
            try:
                os.rmdir(os.path.join(self.root, self.SPOOL_DIR))  # when no other run is spooled
            except OSError:
                pass

    def delete_run(self, run_id):
        with self.lock:
            if run_id in self.pending:
                self.pending.pop(run_id).discard()
            self.full.pop(run_id, None)
            path = os.path.join(self.root, f"{run_id}.zip")
            if os.path.isfile(path):
                os.unlink(path)

    def log_inputs(self, run_id, inputs):
        """The dataset inputs, kept as the side file mlops-migration/inputs.json."""
        pending = self._pending(run_id)
        local = os.path.join(pending.spool, "inputs.json")
        with open(local, "w", encoding="utf-8") as handle:
            json.dump([input_record(i) for i in inputs], handle, sort_keys=True)
        pending.put(local, SERIES_DIR + "/inputs.json")
