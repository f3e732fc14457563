# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The target methods of a tracker that holds each run back until the copy has handed over all of it, then
writes it whole (W&B offline runs, Comet offline archives: their SDKs write a run from start to end).

``HeldRunTarget`` is a mixin, listed before the tracker's source class: the class using it has ``KIND``,
``lock``, ``pending`` (run id -> the held run, which has ``params``, ``tags``, ``summary``, ``config``,
``status``, ``end_time``, ``add_points``, ``add_series`` and ``add_artifact``) and ``_write(run_id)``, which
writes a held run and forgets it. Importable without Ansible.
"""

from __future__ import annotations

import threading

from ansible_collections.mlops.migration.plugins.module_utils.paths import UnsafePath
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError


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
