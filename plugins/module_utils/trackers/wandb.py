# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""W&B offline runs as a tracker source (kind ``wandb_offline``): the ``offline-run-<time>-<id>`` folders
under ``wandb_dir`` (a ``wandb/`` directory, or the directory holding it), each read with
trackers/wandb_offline.py. The W&B project is the experiment; a run's files under ``files/`` are its
artifacts (media files are also its media series' files). Every W&B convention lives here and in
wandb_offline.py. Importable without Ansible; reading needs the ``wandb`` package (its protobuf classes).
"""

from __future__ import annotations

import glob
import os
import re
import shutil

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    Artifact,
    Experiment,
    SourceAdapter,
    TrackerError,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_log import WandbLogError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_offline import read_run, series_kind

OPTIONS = dict(wandb_dir=dict(type="path"))
FOLDER = "offline-run-*-*"


class WandbOfflineSource(SourceAdapter):
    KIND = "wandb_offline"
    LIBRARY = ("wandb", "wandb")
    OPTIONS = OPTIONS
    REQUIRED = ("wandb_dir",)

    def __init__(self, wandb_dir):
        self.root = os.path.abspath(os.path.expanduser(wandb_dir))
        self.uri = f"wandb-offline://{self.root}"
        self._runs = None  # run id -> (folder, OfflineRun), read once

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["wandb_dir"])

    def folders(self):
        """The offline run folders, in name order (their names start with the time they were made)."""
        found = glob.glob(os.path.join(self.root, FOLDER)) + glob.glob(os.path.join(self.root, "wandb", FOLDER))
        return sorted((f for f in found if os.path.isdir(f)), key=os.path.basename)

    def check(self):
        if not os.path.isdir(self.root):
            raise TrackerError(f"wandb_offline: {self.root} is not a directory")
        if not self.folders():
            raise TrackerError(f"wandb_offline: {self.root} holds no offline-run-<time>-<id> folder")

    def _loaded(self):
        if self._runs is None:
            runs = {}
            for folder in self.folders():
                try:
                    found = read_run(folder)
                except WandbLogError as exc:
                    raise TrackerError(f"wandb_offline: {exc}") from exc
                if found.run.id in runs:
                    raise TrackerError(f"wandb_offline: run {found.run.id} is in two folders, {runs[found.run.id][0]} "
                                       f"and {folder}; keep one")
                runs[found.run.id] = (folder, found)
            self._runs = runs
        return self._runs

    def experiments(self, selectors, include_deleted=False):
        patterns = [re.compile(s) for s in selectors or []]
        names = sorted({found.run.experiment_id for _folder, found in self._loaded().values()})
        return [Experiment(name, name) for name in names if not patterns or any(p.fullmatch(name) for p in patterns)]

    def runs(self, experiment, include_deleted=False):
        runs = [found.run for _folder, found in self._loaded().values() if found.run.experiment_id == experiment.id]
        return sorted(runs, key=lambda run: (run.start_time or 0, run.id))

    def run(self, run_id):
        if run_id not in self._loaded():
            raise TrackerError(f"wandb_offline: no run {run_id} under {self.root}")
        folder = self._loaded()[run_id][0]
        try:
            found = read_run(folder)  # fresh: an offline run may still be written to
        except WandbLogError as exc:
            raise TrackerError(f"wandb_offline: {exc}") from exc
        self._runs[run_id] = (folder, found)
        return found.run

    def _found(self, run):
        return self._loaded()[run.id][1]

    def metric_history(self, run, key):
        return iter(self._found(run).points.get(key, ()))

    def series(self, run, kind, key):
        return (item for item in self._found(run).series if item.key == key and series_kind(item) == kind)

    def series_file(self, run, item, path):
        shutil.copyfile(self._file(run, item.file), path)

    def artifacts(self, run):
        base = os.path.join(self._loaded()[run.id][0], "files")
        out = []
        for directory, dirs, names in os.walk(base):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(directory, name)
                out.append(Artifact(os.path.relpath(full, base).replace(os.sep, "/"), os.path.getsize(full)))
        return out

    def download(self, run, artifact, path):
        shutil.copyfile(self._file(run, artifact.path), path)

    def _file(self, run, rel):
        base = os.path.realpath(os.path.join(self._loaded()[run.id][0], "files"))
        full = os.path.realpath(os.path.join(base, rel or ""))
        if not full.startswith(base + os.sep) or not os.path.isfile(full):
            raise TrackerError(f"wandb_offline: run {run.id} has no file {rel}")
        return full

    def registered_models(self):
        return []

    def model_versions(self, model):
        return []
