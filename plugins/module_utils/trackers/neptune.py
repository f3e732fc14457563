# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An export of Neptune's ``neptune-exporter`` as a tracker source (kind ``neptune_export``).

``export_dir`` is the exporter's data directory (``<project>/<run>_part_<N>.parquet``, read with
trackers/neptune_export.py), ``files_dir`` its files directory (the files attributes name). A Neptune
project is the experiment; a run's ``sys/*`` attributes give its fields (``sys/name``, ``sys/creation_time``,
``sys/modification_time``, ``sys/owner``, ``sys/tags``, ``sys/description``, ``sys/failed``, the fork parent
``sys/forking/parent`` and step ``sys/forking/step``; ``sys/experiment/name`` becomes the tag
``mlops.migration.neptune_experiment``), the other single values its params, float series its metrics,
string series text series, histogram series histogram series, file series media series, and files and
file sets its artifacts (at their attribute paths). Steps are Neptune's decimals, exact: a run whose steps
are fractional says the least power of ten that makes them whole (``Run.step_scale``), and a target that
keeps whole steps multiplies them by it (the copy records the factor). A run whose export was cut off
(no ``part_0``) is refused before anything is written. Importable without Ansible; needs ``pyarrow``.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import threading

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    Artifact,
    Experiment,
    Point,
    Run,
    SeriesItem,
    SourceAdapter,
    TrackerError,
    epoch_ms,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_export import (
    read_run,
    run_parts,
    series_rows,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_offline import read_folder
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_offline import series_rows as offline_series_rows
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_scale import STORE_FILE, read_store
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_scale import series_rows as scale_series_rows

OPTIONS = dict(export_dir=dict(type="path"), files_dir=dict(type="path"))
EXPERIMENT_TAG = "mlops.migration.neptune_experiment"
SERIES_KINDS = {"string_series": "text", "histogram_series": "histogram", "file_series": "media"}


def _step(step):
    """A Neptune step (a Decimal) as an int when whole, else the Decimal itself."""
    if step is None:
        return None
    return int(step) if step == step.to_integral_value() else step


class NeptuneExportSource(SourceAdapter):
    KIND = "neptune_export"
    LIBRARY = ("pyarrow", "pyarrow")
    OPTIONS = OPTIONS
    REQUIRED = ("export_dir",)

    def __init__(self, export_dir, files_dir=None):
        self.root = os.path.abspath(os.path.expanduser(export_dir))
        default_files = os.path.join(os.path.dirname(self.root), "files")
        self.files = os.path.abspath(os.path.expanduser(files_dir)) if files_dir else default_files
        self.uri = f"neptune-export://{self.root}"
        self._runs = None  # run id -> ExportedRun (no series values), read once
        self.lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["export_dir"], settings.get("files_dir"))

    def check(self):
        if not os.path.isdir(self.root):
            raise TrackerError(f"neptune_export: {self.root} is not a directory")
        complete, cut_off = run_parts(self.root)
        if cut_off:
            raise TrackerError(f"neptune_export: the export of {len(cut_off)} run(s) was cut off (no part_0): "
                               + ", ".join(f"{p}/{r}" for p, r in cut_off[:10]) + "; export them again")
        if not complete:
            raise TrackerError(f"neptune_export: {self.root} holds no <project>/<run>_part_0.parquet")

    def _loaded(self):
        with self.lock:
            if self._runs is None:
                runs = {}
                for (project, prefix), parts in run_parts(self.root)[0].items():
                    found = read_run(project, prefix, parts)
                    if found.run_id in runs:
                        raise TrackerError(f"neptune_export: run {found.run_id} is exported twice, as "
                                           f"{runs[found.run_id].parts[0]} and {parts[0]}")
                    runs[found.run_id] = found
                self._runs = runs
            return self._runs

    def _found(self, run):
        found = self._loaded().get(run.id)
        if found is None:
            raise TrackerError(f"neptune_export: no run {run.id} under {self.root}")
        return found

    def experiments(self, selectors, include_deleted=False):
        patterns = [re.compile(s) for s in selectors or []]
        projects = sorted({self._project(found) for found in self._loaded().values()})
        return [Experiment(p, p) for p in projects if not patterns or any(x.fullmatch(p) for x in patterns)]

    @staticmethod
    def _project(found):
        return found.project_id or found.project

    def runs(self, experiment, include_deleted=False):
        runs = [self._record(found) for found in self._loaded().values() if self._project(found) == experiment.id]
        return sorted(runs, key=lambda run: (run.start_time or 0, run.id))

    def run(self, run_id):
        found = self._loaded().get(run_id)
        if found is None:
            raise TrackerError(f"neptune_export: no run {run_id} under {self.root}")
        return self._record(found)

    def _record(self, found):
        sys_ = found.sys
        tags = {tag: "" for tag in sys_.get("sys/tags") or ()}
        if sys_.get("sys/experiment/name"):
            tags[EXPERIMENT_TAG] = sys_["sys/experiment/name"]
        series = {}
        for name, (kind, _count) in sorted(found.series.items()):
            if kind in SERIES_KINDS:
                series.setdefault(SERIES_KINDS[kind], []).append(name)
        fork = sys_.get("sys/forking/step")
        start = epoch_ms(sys_.get("sys/creation_time"))
        end = epoch_ms(sys_.get("sys/modification_time") or sys_.get("sys/ping_time"))
        return Run(id=found.run_id, experiment_id=self._project(found), name=sys_.get("sys/name") or found.run_id,
                   start_time=start, end_time=end if end is not None else start,
                   status="FAILED" if sys_.get("sys/failed") else "FINISHED", user=sys_.get("sys/owner"),
                   params=dict(found.params), tags=tags,
                   metric_keys=sorted(n for n, (k, _c) in found.series.items() if k == "float_series"),
                   parent_id=sys_.get("sys/forking/parent") or None,
                   fork_step=float(fork) if fork is not None else None,
                   description=sys_.get("sys/description") or None, series=series, step_scale=10 ** found.decimals)

    def _rows(self, found, key):
        """``(step, timestamp ms, value, attribute type)`` of one series of ``found``."""
        return series_rows(found.parts, key)

    def metric_history(self, run, key):
        for step, stamp, value, _kind in self._rows(self._found(run), key):
            if value is not None:
                yield Point(key, float(value), stamp, _step(step))

    def series(self, run, kind, key):
        for step, stamp, value, source_kind in self._rows(self._found(run), key):
            if value is None:
                continue
            if source_kind == "string_series":
                yield SeriesItem(key, _step(step), stamp, text=value)
            elif source_kind == "histogram_series":
                histogram = {"edges": value.get("edges"), "values": value.get("values"), "type": value.get("type")}
                yield SeriesItem(key, _step(step), stamp, data=histogram)
            elif source_kind == "file_series":
                yield SeriesItem(key, _step(step), stamp, file=value.get("path"))

    def _path(self, run, rel, what):
        """A file under ``files_dir`` that an attribute names, which must exist and stay inside it."""
        base = os.path.realpath(self.files)
        full = os.path.realpath(os.path.join(base, rel or ""))
        if not full.startswith(base + os.sep):
            raise TrackerError(f"neptune_export: run {run.id}: {what} names {rel}, outside {base}")
        if not os.path.exists(full):
            raise TrackerError(f"neptune_export: run {run.id}: {what} names {rel}, which is not in {base}")
        return full

    def series_file(self, run, item, path):
        shutil.copyfile(self._path(run, item.file, f"file series {item.key}"), path)

    def artifacts(self, run):
        out = []
        for name, (kind, rel) in sorted(self._found(run).files.items()):
            full = self._path(run, rel, f"{kind} attribute {name}")
            if os.path.isdir(full):  # a file set: its files under the attribute's path
                for directory, dirs, names in os.walk(full):
                    dirs.sort()
                    for each in sorted(names):
                        inner = os.path.relpath(os.path.join(directory, each), full).replace(os.sep, "/")
                        out.append(Artifact(f"{name}/{inner}", os.path.getsize(os.path.join(directory, each))))
            else:
                out.append(Artifact(name, os.path.getsize(full)))
        return out

    def download(self, run, artifact, path):
        files = self._found(run).files
        name = artifact.path
        while name and name not in files:  # a file of a file set: its attribute is a leading part of the path
            name = name.rpartition("/")[0]
        if not name:
            raise TrackerError(f"neptune_export: run {run.id} has no file attribute for {artifact.path}")
        kind, rel = files[name]
        full = self._path(run, rel, f"{kind} attribute {name}")
        if name != artifact.path:
            full = self._path(run, os.path.join(rel, artifact.path[len(name) + 1:]), f"{kind} attribute {name}")
        shutil.copyfile(full, path)

    def registered_models(self):
        return []

    def model_versions(self, model):
        return []


UNMAPPED_FILE = "neptune/unmapped-operations.jsonl"


class NeptuneOfflineSource(NeptuneExportSource):
    """The offline folders of the ``neptune`` 1.x client (kind ``neptune_offline``), read with
    trackers/neptune_offline.py into the records of an export, so they map as above. ``neptune_dir`` is the
    ``.neptune`` directory (or the directory holding it, or its ``offline/``); the client does not record the
    project of an offline run (``neptune sync --project`` names it), so ``project`` names the experiment
    (``neptune-offline`` when omitted). The run id is the client's container id (a Neptune ``sys/id`` is given
    only at sync). A file series' images come from the queue itself; uploaded files from where the client
    read them, or its ``upload_path/`` copy. Operations of kinds with no record of their own are kept, with
    their file and line, in the artifact ``neptune/unmapped-operations.jsonl``. Model containers are not read."""

    KIND = "neptune_offline"
    LIBRARY = None
    OPTIONS = dict(neptune_dir=dict(type="path"), project=dict(type="str"))
    REQUIRED = ("neptune_dir",)

    def __init__(self, neptune_dir, project=None):  # pylint: disable=super-init-not-called
        self.root = os.path.abspath(os.path.expanduser(neptune_dir))
        self.project = project or "neptune-offline"
        self.files = self.root
        self.uri = f"neptune-offline://{self.root}"
        self._runs = None
        self.lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["neptune_dir"], settings.get("project"))

    def folders(self):
        """The run folders: ``run__<id>__...`` under ``offline/`` (of ``.neptune/``), whichever ``root`` is."""
        out = []
        for base in (self.root, os.path.join(self.root, "offline"), os.path.join(self.root, ".neptune", "offline")):
            out.extend(p for p in glob.glob(os.path.join(glob.escape(base), "run__*")) if os.path.isdir(p))
        return sorted(set(out))

    STORES = "offline run folder (.neptune/offline/run__<id>__...)"  # what folders() finds, for messages

    def _read_one(self, path):
        return read_folder(path, self.project)

    def check(self):
        if not os.path.isdir(self.root):
            raise TrackerError(f"{self.KIND}: {self.root} is not a directory")
        if not self.folders():
            raise TrackerError(f"{self.KIND}: {self.root} holds no {self.STORES}")
        self._loaded()  # every store read once: a damaged one fails here, before anything is written

    def _loaded(self):
        with self.lock:
            if self._runs is None:
                runs, places = {}, {}
                for path in self.folders():
                    found = self._read_one(path)
                    if found.run_id in runs:
                        raise TrackerError(f"{self.KIND}: run {found.run_id} is in two places, {places[found.run_id]} "
                                           f"and {path}; keep one")
                    runs[found.run_id], places[found.run_id] = found, path
                self._runs = runs
            return self._runs

    def _rows(self, found, key):
        return offline_series_rows(found, key)

    def series(self, run, kind, key):
        if kind != "media":
            yield from super().series(run, kind, key)
            return
        for index, (step, stamp, value, _kind) in enumerate(self._rows(self._found(run), key)):
            yield SeriesItem(key, _step(step), stamp, file=f"{index:06d}-{(value or {}).get('name') or 'image'}.png",
                             caption=(value or {}).get("description"))

    def series_file(self, run, item, path):
        index = int(item.file.partition("-")[0])
        for number, (_step_, _stamp, value, _kind) in enumerate(self._rows(self._found(run), item.key)):
            if number == index:
                with open(path, "wb") as out:
                    out.write(value["data"])
                return
        raise TrackerError(f"{self.KIND}: run {run.id}: file series {item.key} has no item {index}")

    def _path(self, run, rel, what):
        if not rel or not os.path.isfile(rel):
            raise TrackerError(f"{self.KIND}: run {run.id}: {what} names {rel}, which is not there (the client "
                               "uploads a file from where it was when logged: put it back there)")
        return rel

    def artifacts(self, run):
        found = self._found(run)
        out = []
        for name, (kind, rel) in sorted(found.files.items()):
            if kind == "file_set":
                out.extend(Artifact(f"{name}/{os.path.basename(p)}", os.path.getsize(self._path(run, p, f"file set {name}")))
                           for p in found.file_sets[name])
            else:
                out.append(Artifact(name, os.path.getsize(self._path(run, rel, f"file attribute {name}"))))
        if found.unmapped:
            out.append(Artifact(UNMAPPED_FILE, None))
        return out

    def download(self, run, artifact, path):
        found = self._found(run)
        if artifact.path == UNMAPPED_FILE:
            with open(path, "w", encoding="utf-8") as out:
                for queue, line, obj in found.unmapped:
                    out.write(json.dumps({"file": os.path.basename(queue), "line": line, "operation": obj},
                                         sort_keys=True, default=str) + "\n")
            return
        if artifact.path in found.files and found.files[artifact.path][0] == "file":
            shutil.copyfile(self._path(run, found.files[artifact.path][1], f"file attribute {artifact.path}"), path)
            return
        name, _sep, base = artifact.path.rpartition("/")
        for member in found.file_sets.get(name, ()):
            if os.path.basename(member) == base:
                shutil.copyfile(self._path(run, member, f"file set {name}"), path)
                return
        raise TrackerError(f"{self.KIND}: run {run.id} has no file attribute for {artifact.path}")


class NeptuneScaleSource(NeptuneOfflineSource):
    """The offline stores of ``neptune-scale`` (kind ``neptune_scale``), read with trackers/neptune_scale.py into the
    records of an export, so they map as above. ``neptune_dir`` is the ``.neptune`` directory (or the directory
    holding it) whose ``<project>_<run>_<time>/run_operations.sqlite3`` stores hold the runs; each store names its
    project and run id. A run's experiment is ``sys/experiment/name`` (the tag, as for an export); a fork keeps
    its parent and fork step. Files come from the local paths their upload requests name."""

    KIND = "neptune_scale"
    OPTIONS = dict(neptune_dir=dict(type="path"))
    STORES = f"neptune-scale store (.neptune/<project>_<run>_<time>/{STORE_FILE})"

    def __init__(self, neptune_dir):
        super().__init__(neptune_dir)
        self.uri = f"neptune-scale://{self.root}"

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["neptune_dir"])

    def folders(self):
        out = []
        for base in (self.root, os.path.join(self.root, ".neptune")):
            out.extend(glob.glob(os.path.join(glob.escape(base), "*", STORE_FILE)))
        return sorted(set(p for p in out if os.path.isfile(p)))

    def _read_one(self, path):
        return read_store(path)

    def _rows(self, found, key):
        return scale_series_rows(found, key)

    def series(self, run, kind, key):
        return NeptuneExportSource.series(self, run, kind, key)

    def series_file(self, run, item, path):
        shutil.copyfile(self._path(run, item.file, f"file series {item.key}"), path)
