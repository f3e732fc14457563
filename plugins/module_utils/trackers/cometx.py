# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The folders ``cometx download`` writes, as a tracker source (kind ``cometx_download``).

``download_dir`` holds ``<workspace>/<project>/<experiment>/`` (the experiment's key, or its name with
``--use-name``), each with what Comet's REST API said of it: ``metadata.json`` (``experimentKey``,
``experimentName``, ``startTimeMillis``, ``endTimeMillis``, ``running``, ``hasCrashed``, ``tags``),
``parameters.json`` (a list of ``{name, valueCurrent}``), ``others.jsonl`` (``{name, valueCurrent}`` a line;
``Name`` is the run name), ``metrics.jsonl`` (``{metricName, metricValue, timestamp, step, epoch}`` a line) or
``metrics_summary.jsonl`` with ``metrics/metric_<count>.jsonl``, ``assets/assets_metadata.jsonl`` with the
files under ``assets/<type>/`` (named by ``diskFileName`` or ``fileName``), ``assets/html/``, and ``run/``
(``output.txt``, ``requirements.txt``, git metadata and patch, code). The Comet project is the experiment
(``<workspace>/<project>``, as kind ``comet_offline`` names it), the experiment key the run id; tags, others,
parameters, metrics, epochs and uploads map as for ``comet_offline`` (trackers/comet.py), console output is the
text series ``console``, and every other file of the folder is an artifact under ``comet/`` at its path in the
folder. Every folder is read once before anything is written: a line that is not JSON fails naming the file
and the line, an asset ``assets_metadata.jsonl`` lists whose file is missing fails naming both. Importable without Ansible; needs nothing outside Python.
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
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.comet import (
    EPOCH_KEY,
    SYSTEM_PREFIX,
    CometOfflineSource,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.comet_archive import NESTED_SEPARATOR

OPTIONS = dict(download_dir=dict(type="path"))
OWN_FILES = ("metadata.json", "parameters.json", "others.jsonl", "metrics.jsonl", "metrics_summary.jsonl")
ASSETS_FILE = "assets/assets_metadata.jsonl"
NATIVE_TYPES = {"image": ("media", "images"), "text-sample": ("text", "text")}  # asset type -> (kind, key)
DATA_TYPES = {"histogram_combined_3d": "histogram", "histogram3d": "histogram", "curve": "plot"}  # keyed by file name
OUTPUT_FILE = "run/output.txt"


def _lines(path):
    """``(line number, object)`` of a JSON-lines file; a line that is not JSON fails naming the file and line."""
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except ValueError as exc:
                raise TrackerError(f"cometx_download: {path} line {number} is not JSON ({exc})") from exc


def _json(path, default):
    if not os.path.isfile(path):
        return default
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except ValueError as exc:
            raise TrackerError(f"cometx_download: {path} is not JSON ({exc})") from exc


def disk_name(asset):
    """Where ``cometx download`` put an asset's file under ``assets/``: ``<type>/<diskFileName or fileName>``,
    with ``/../`` and leading slashes dropped and ``:`` made ``-``, as it does."""
    name = "/" + str(asset.get("diskFileName") or asset.get("fileName") or "")
    name = name.replace("/../", "/").replace(":", "-").lstrip("/")
    return f"{asset.get('type') or 'asset'}/{name}"


class _Folder:
    """One experiment folder: its fields read once, its metrics counted (streamed again when copied)."""

    def __init__(self, path, workspace, project):
        self.path, self.workspace, self.project = path, workspace, project
        self.meta = _json(os.path.join(path, "metadata.json"), {})
        self.params = {p.get("name"): p.get("valueCurrent") for p in _json(os.path.join(path, "parameters.json"), [])
                       if isinstance(p, dict)}
        self.others = {}
        others = os.path.join(path, "others.jsonl")
        if os.path.isfile(others):
            self.others = {line.get("name"): line.get("valueCurrent") for _n, line in _lines(others)}
        self.metrics, self.epochs = {}, {}
        for metric_file in self.metric_files():
            for number, line in _lines(metric_file):
                name = line.get("metricName")
                if not isinstance(name, str):
                    raise TrackerError(f"cometx_download: {metric_file} line {number} names no metricName")
                self.metrics[name] = self.metrics.get(name, 0) + 1
                if line.get("epoch") is not None and line.get("step") is not None:
                    self.epochs.setdefault(line["step"], (line["epoch"], line.get("timestamp")))
        assets = os.path.join(path, ASSETS_FILE)
        self.assets = [line for _n, line in _lines(assets)] if os.path.isfile(assets) else []
        for asset in self.assets:  # a listed file that is missing fails here, before anything is written
            if not asset.get("remote"):
                self.asset_file(asset)

    def metric_files(self):
        files = [os.path.join(self.path, "metrics.jsonl")]
        summary = os.path.join(self.path, "metrics_summary.jsonl")
        if os.path.isfile(summary):
            files += [os.path.join(self.path, "metrics", "metric_%05d.jsonl" % line.get("count", 0))
                      for _n, line in _lines(summary)]
        return [f for f in files if os.path.isfile(f)]

    def file(self, rel):
        full = os.path.realpath(os.path.join(self.path, rel))
        if not full.startswith(os.path.realpath(self.path) + os.sep) or not os.path.isfile(full):
            raise TrackerError(f"cometx_download: {self.path} has no file {rel}")
        return full

    def asset_file(self, asset):
        rel = "assets/" + disk_name(asset)
        if not os.path.isfile(os.path.join(self.path, rel)):
            raise TrackerError(f"cometx_download: {self.path}: the asset {asset.get('fileName')} "
                               f"({asset.get('type') or 'asset'}) is listed in {ASSETS_FILE} but {rel} is missing")
        return self.file(rel)

    def loose_files(self):
        """The folder's files that no other record holds, as paths relative to it."""
        taken = {"assets/assets_metadata.jsonl", OUTPUT_FILE} | set(OWN_FILES)
        taken |= {os.path.relpath(f, self.path).replace(os.sep, "/") for f in self.metric_files()}
        taken |= {"assets/" + disk_name(a) for a in self.assets}
        out = []
        for directory, dirs, names in os.walk(self.path):
            dirs.sort()
            for name in sorted(names):
                rel = os.path.relpath(os.path.join(directory, name), self.path).replace(os.sep, "/")
                if rel not in taken and not rel.startswith("assets/html/"):
                    out.append(rel)
        return out


class CometxDownloadSource(SourceAdapter):
    KIND = "cometx_download"
    OPTIONS = OPTIONS
    REQUIRED = ("download_dir",)

    def __init__(self, download_dir):
        self.root = os.path.abspath(os.path.expanduser(download_dir))
        self.uri = f"cometx-download://{self.root}"
        self._runs = None
        self.lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["download_dir"])

    def folders(self):
        found = glob.glob(os.path.join(glob.escape(self.root), "*", "*", "*", "metadata.json"))
        return sorted(os.path.dirname(f) for f in found)

    def check(self):
        if not os.path.isdir(self.root):
            raise TrackerError(f"cometx_download: {self.root} is not a directory")
        if not self.folders():
            raise TrackerError(f"cometx_download: {self.root} holds no <workspace>/<project>/<experiment>/"
                               "metadata.json (what cometx download writes)")
        self._loaded()  # every folder read once: a damaged file fails here, before anything is written

    def _loaded(self):
        with self.lock:
            if self._runs is None:
                runs = {}
                for path in self.folders():
                    project_dir, _name = os.path.split(path)
                    workspace_dir, project = os.path.split(project_dir)
                    folder = _Folder(path, os.path.basename(workspace_dir), project)
                    key = str(folder.meta.get("experimentKey") or os.path.basename(path))
                    if key in runs:
                        raise TrackerError(f"cometx_download: experiment {key} is in two folders, {runs[key].path} "
                                           f"and {path}; keep one")
                    runs[key] = folder
                self._runs = runs
            return self._runs

    def _folder(self, run_id):
        folder = self._loaded().get(run_id)
        if folder is None:
            raise TrackerError(f"cometx_download: no experiment {run_id} under {self.root}")
        return folder

    def experiments(self, selectors, include_deleted=False):
        patterns = [re.compile(s) for s in selectors or []]
        ids = sorted({CometOfflineSource.experiment_id(f.workspace, f.project) for f in self._loaded().values()})
        return [Experiment(i, i) for i in ids if not patterns or any(p.fullmatch(i) for p in patterns)]

    def runs(self, experiment, include_deleted=False):
        runs = [self._record(key, f) for key, f in self._loaded().items()
                if CometOfflineSource.experiment_id(f.workspace, f.project) == experiment.id]
        return sorted(runs, key=lambda run: (run.start_time or 0, run.id))

    def run(self, run_id):
        return self._record(run_id, self._folder(run_id))

    @staticmethod
    def _record(key, folder):
        meta = folder.meta
        tags = {str(tag): "" for tag in meta.get("tags") or ()}
        tags.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in folder.others.items()
                     if k != "Name"})
        params = {str(k).replace(NESTED_SEPARATOR, "."): v if isinstance(v, str) else json.dumps(v)
                  for k, v in folder.params.items()}
        metrics = sorted(folder.metrics)
        if folder.epochs and EPOCH_KEY not in folder.metrics:
            metrics.append(EPOCH_KEY)
        series = {}
        for asset in folder.assets:
            kind_key = NATIVE_TYPES.get(asset.get("type"))
            if kind_key is None and asset.get("type") in DATA_TYPES:
                kind_key = (DATA_TYPES[asset["type"]], asset.get("fileName"))
            if kind_key and kind_key[1] not in series.setdefault(kind_key[0], []):
                series[kind_key[0]].append(kind_key[1])
        if os.path.isfile(os.path.join(folder.path, OUTPUT_FILE)):
            series.setdefault("text", []).append("console")
        if glob.glob(os.path.join(glob.escape(folder.path), "assets", "html", "*")):
            series.setdefault("text", []).append("html")
        status = "RUNNING" if meta.get("running") else "FAILED" if meta.get("hasCrashed") else "FINISHED"
        return Run(id=key, experiment_id=CometOfflineSource.experiment_id(folder.workspace, folder.project),
                   name=folder.others.get("Name") or meta.get("experimentName") or key,
                   start_time=meta.get("startTimeMillis"), end_time=meta.get("endTimeMillis"), status=status,
                   user=meta.get("userName"), params=params, tags=tags,
                   metric_keys=[m for m in metrics if not m.startswith(SYSTEM_PREFIX)],
                   system_metric_keys=[m for m in metrics if m.startswith(SYSTEM_PREFIX)], series=series)

    def metric_history(self, run, key):
        folder = self._folder(run.id)
        if key == EPOCH_KEY and EPOCH_KEY not in folder.metrics:
            for step, (epoch, stamp) in sorted(folder.epochs.items()):
                yield Point(key, float(epoch), int(stamp or 0), int(step))
            return
        for metric_file in folder.metric_files():
            for _number, line in _lines(metric_file):
                if line.get("metricName") != key:
                    continue
                try:
                    value = float(line.get("metricValue"))
                except (TypeError, ValueError):
                    continue  # a metric value that is not a number: not a point
                step = line.get("step")
                yield Point(key, value, int(line.get("timestamp") or 0), int(step) if step is not None else 0)

    def _asset_series(self, folder, kind, key):
        for asset in folder.assets:
            native = NATIVE_TYPES.get(asset.get("type"))
            step, stamp = asset.get("step"), asset.get("createdAt")
            if native == (kind, key) and kind == "text":
                with open(folder.asset_file(asset), encoding="utf-8", errors="replace") as handle:
                    yield SeriesItem(key, step, stamp, text=handle.read())
            elif native == (kind, key):
                yield SeriesItem(key, step, stamp, file="assets/" + disk_name(asset), caption=asset.get("fileName"))
            elif DATA_TYPES.get(asset.get("type")) == kind and asset.get("fileName") == key:
                with open(folder.asset_file(asset), encoding="utf-8") as handle:
                    try:
                        data = json.load(handle)
                    except ValueError as exc:
                        raise TrackerError(f"cometx_download: {folder.path}: {asset.get('type')} {key} is not "
                                           f"JSON ({exc})") from exc
                yield SeriesItem(key, step, stamp, data=data)

    def series(self, run, kind, key):
        folder = self._folder(run.id)
        if kind == "text" and key == "console":
            with open(folder.file(OUTPUT_FILE), encoding="utf-8", errors="replace") as handle:
                for text in handle:
                    yield SeriesItem(key, None, None, text=text.rstrip("\n"), data={"stream": "stdout"})
            return
        if kind == "text" and key == "html":
            for path in sorted(glob.glob(os.path.join(glob.escape(folder.path), "assets", "html", "*"))):
                with open(path, encoding="utf-8", errors="replace") as handle:
                    yield SeriesItem(key, None, None, text=handle.read())
            return
        yield from self._asset_series(folder, kind, key)

    def series_file(self, run, item, path):
        shutil.copyfile(self._folder(run.id).file(item.file), path)

    def artifacts(self, run):
        folder = self._folder(run.id)
        out = []
        for asset in folder.assets:
            kind = asset.get("type") or "asset"
            if kind in NATIVE_TYPES or kind in DATA_TYPES or asset.get("remote"):
                continue
            full = folder.asset_file(asset)
            name = str(asset.get("fileName")) if kind == "asset" else f"comet/{kind}/{asset.get('fileName')}"
            out.append(Artifact(name, os.path.getsize(full)))
        out.extend(Artifact(f"comet/{rel}", os.path.getsize(os.path.join(folder.path, rel)))
                   for rel in folder.loose_files())
        if any(a.get("remote") for a in folder.assets):
            out.append(Artifact("comet/remote-assets.jsonl", None))
        return out

    def download(self, run, artifact, path):
        folder = self._folder(run.id)
        if artifact.path == "comet/remote-assets.jsonl":
            with open(path, "w", encoding="utf-8") as out:
                for asset in folder.assets:
                    if asset.get("remote"):
                        out.write(json.dumps(asset, sort_keys=True) + "\n")
            return
        for asset in folder.assets:
            kind = asset.get("type") or "asset"
            name = str(asset.get("fileName")) if kind == "asset" else f"comet/{kind}/{asset.get('fileName')}"
            if name == artifact.path and not asset.get("remote"):
                shutil.copyfile(folder.asset_file(asset), path)
                return
        if artifact.path.startswith("comet/"):
            shutil.copyfile(folder.file(artifact.path[len("comet/"):]), path)
            return
        raise TrackerError(f"cometx_download: experiment {run.id} has no asset {artifact.path}")

    def registered_models(self):
        return []

    def model_versions(self, model):
        return []
