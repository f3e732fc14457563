# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Comet offline archives as a tracker source and target (kind ``comet_offline``): the ``<experiment key>.zip``
files of Comet's ``OfflineExperiment`` in ``comet_dir``, read with trackers/comet_archive.py and written
through the ``comet_ml`` SDK, ready for ``comet upload`` (which samples a metric to
``COMET_OFFLINE_SAMPLING_SIZE`` points, 15,000 unless it is raised).

The Comet project is the experiment (``<workspace>/<project>`` when the archive names a workspace), the
experiment key the run id. A run's tags are Comet's tags (as tags without a value) and its others (key-value
tags); its params Comet's parameters (a nested parameter's ``a|b`` becomes ``a.b``, the dotted form MLflow
takes, and the nesting is the run's config); metrics its metric points (names starting ``sys.`` are system metrics; a point's epoch makes
the metric ``epoch`` at its step); text samples the text series ``text``, HTML the text series ``html``,
console output the text series ``console``, images the media series ``images``, 3D histograms histogram
series and curves plot series (named by their file names), assets its artifacts (other uploads under
``comet/<upload type>/``), and messages of kinds without a place the artifact ``comet/unmapped-messages.jsonl``.

An archive this collection writes holds what Comet has no place for as assets under ``mlops-migration/``:
``record.json`` (start and end time, status, user, lifecycle, parent, fork step, description, group, job type,
key-value tags Comet cannot hold as others, which others, metric keys and series keys are the source's: the
SDK adds some of its own), ``summary.json`` (summary and nested
config) and the series side files (trackers/side_files.py); reading such an archive puts them back. Points
keep their timestamps (written as the SDK's own metric messages with the point's time). Projects and
registered models are side files in ``comet_dir`` (trackers/side_registry.py). Importable without Ansible;
reading needs nothing outside Python, writing needs ``comet_ml``.
"""

from __future__ import annotations

import collections
import glob
import hashlib
import importlib
import json
import os
import re
import threading
import zipfile

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    Artifact,
    Point,
    Run,
    SeriesItem,
    SOURCE_RUN_TAG,
    SourceAdapter,
    TargetAdapter,
    TrackerError,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.comet_archive import (
    NESTED_SEPARATOR,
    SDK_OTHERS,
    CometArchiveError,
    copy_member,
    metric_points,
    read_archive,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.held_run import SpooledRun, ZipPerRunTarget
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_files import (
    SERIES_DIR,
    read_series,
    series_path,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_registry import SideRegistry

OPTIONS = dict(comet_dir=dict(type="path"), workspace=dict(type="str"))
RECORD_FILE = SERIES_DIR + "/record.json"
SUMMARY_FILE = SERIES_DIR + "/summary.json"
UNMAPPED_FILE = "comet/unmapped-messages.jsonl"
EPOCH_KEY = "epoch"
SYSTEM_PREFIX = "sys."
ERROR_TAG = "mlops.migration.comet_sdk_error"  # the SDK's own error report in the archive
NATIVE = {"text-sample": ("text", "text"), "visualization": ("media", "images")}  # upload type -> (kind, key)
BY_FILE_NAME = {"histogram3d": "histogram", "curve": "plot"}  # upload type -> kind, keyed by file name
KEY_RE = re.compile(r"[A-Za-z0-9]{32,50}")
PROJECT_BAD = re.compile(r"[^A-Za-z0-9_. -]")
SDK_LOCK = threading.Lock()  # one SDK experiment at a time in this process
QUIET = {"COMET_LOGGING_CONSOLE": "CRITICAL", "COMET_DISABLE_ANNOUNCEMENT": "true",
         "COMET_ERROR_TRACKING_ENABLE": "false"}
SDK_OFF = dict(auto_metric_logging=False, auto_param_logging=False, auto_output_logging=False, log_code=False,
               log_graph=False, log_git_metadata=False, log_git_patch=False, log_env_details=False, log_env_gpu=False,
               log_env_cpu=False, log_env_host=False, log_env_network=False, log_env_disk=False, parse_args=False,
               display_summary_level=0)
RESTORED = ("start_time", "end_time", "status", "user", "lifecycle", "parent_id", "fork_step", "description",
            "group", "job_type")


def key_for(source_id):
    """The Comet experiment key of a copy: the source's id when Comet takes it (32-50 letters and digits)."""
    text = str(source_id)
    return text if KEY_RE.fullmatch(text) else hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def project_for(name):
    """A Comet project name for an experiment name (characters Comet does not take become ``-``)."""
    return PROJECT_BAD.sub("-", str(name)).strip()[:100] or "uncategorized"


def _param_text(value):
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _nest(params):
    tree = {}
    for name, value in params.items():
        *parents, leaf = name.split(NESTED_SEPARATOR)
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[leaf] = value
    return tree


class _Indexed:
    """One archive as read: the CometRun, its record, and where its artifacts and side files are."""

    def __init__(self, path, found):
        self.path, self.found = path, found
        self.assets = collections.OrderedDict()  # artifact path -> member (a later upload of a name wins)
        self.side = {}  # asset name under mlops-migration/ -> member
        for upload in found.uploads:
            if upload.file_name.startswith(SERIES_DIR + "/"):
                self.side[upload.file_name] = upload.member
            elif upload.upload_type == "asset":
                self.assets[upload.file_name] = upload.member
            elif upload.upload_type not in NATIVE and upload.upload_type not in BY_FILE_NAME:
                self.assets[f"comet/{upload.upload_type}/{upload.file_name}"] = upload.member
        self.record = self._json(RECORD_FILE)
        self.summary = self._json(SUMMARY_FILE) or {}

    def _json(self, name):
        member = self.side.get(name)
        if member is None:
            return None
        with zipfile.ZipFile(self.path) as archive:
            try:
                return json.loads(archive.read(member).decode("utf-8"))
            except (ValueError, zipfile.BadZipFile) as exc:
                raise TrackerError(f"comet_offline: {self.path}: {name} cannot be read ({exc})") from exc

    def member_text(self, member):
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(member).decode("utf-8", errors="replace")


class CometOfflineSource(SideRegistry, SourceAdapter):
    KIND = "comet_offline"
    OPTIONS = OPTIONS
    REQUIRED = ("comet_dir",)

    def __init__(self, comet_dir, workspace=None):
        self.root = os.path.abspath(os.path.expanduser(comet_dir))
        self.workspace = workspace
        self.uri = f"comet-offline://{self.root}"
        self._runs = None  # key -> _Indexed, read once
        self.lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["comet_dir"], settings.get("workspace"))

    def archives(self):
        return sorted(p for p in glob.glob(os.path.join(glob.escape(self.root), "*.zip")) if os.path.isfile(p))

    def check(self):
        if not os.path.isdir(self.root):
            raise TrackerError(f"comet_offline: {self.root} is not a directory")
        if not self.archives():
            raise TrackerError(f"comet_offline: {self.root} holds no Comet offline archive (<experiment key>.zip)")
        self._loaded()  # every archive read once: a damaged one fails here, before anything is written

    @staticmethod
    def _read(path):
        try:
            return _Indexed(path, read_archive(path))
        except CometArchiveError as exc:
            raise TrackerError(f"comet_offline: {exc}") from exc

    def _loaded(self):
        with self.lock:
            if self._runs is None:
                runs = {}
                for path in self.archives():
                    indexed = self._read(path)
                    if self.workspace and indexed.found.workspace not in (None, self.workspace):
                        continue
                    key = indexed.found.key
                    if key in runs:
                        raise TrackerError(f"comet_offline: experiment {key} is in two archives, {runs[key].path} "
                                           f"and {path}; keep one")
                    runs[key] = indexed
                self._runs = runs
            return self._runs

    def _indexed(self, run_id):
        indexed = self._loaded().get(run_id)
        if indexed is None:
            raise TrackerError(f"comet_offline: no experiment {run_id} in {self.root}")
        return indexed

    @staticmethod
    def experiment_id(workspace, project):
        project = project or "uncategorized"
        return f"{workspace}/{project}" if workspace else project

    def project_ids(self):
        return {self._record(i).experiment_id for i in self._loaded().values()}

    def runs(self, experiment, include_deleted=False):
        runs = [self._record(i) for i in self._loaded().values()]
        runs = [r for r in runs if r.experiment_id == experiment.id and (include_deleted or r.lifecycle != "deleted")]
        return sorted(runs, key=lambda run: (run.start_time or 0, run.id))

    def run(self, run_id):
        return self._record(self._indexed(run_id))

    def _record(self, indexed):
        found, record = indexed.found, indexed.record
        tags = {tag: "" for tag in found.tags}
        tags.update({key: _param_text(value) for key, value in found.others.items()})
        if found.error:
            tags[ERROR_TAG] = found.error
        params = {name.replace(NESTED_SEPARATOR, "."): _param_text(value) for name, value in found.params.items()}
        metrics = sorted(found.metrics)
        if found.epochs and EPOCH_KEY not in found.metrics:
            metrics.append(EPOCH_KEY)
        series = {}
        for upload in found.uploads:
            if upload.file_name.startswith(SERIES_DIR + "/"):
                continue
            if upload.upload_type in NATIVE:
                kind, key = NATIVE[upload.upload_type]
            elif upload.upload_type in BY_FILE_NAME:
                kind, key = BY_FILE_NAME[upload.upload_type], upload.file_name
            else:
                continue
            if key not in series.setdefault(kind, []):
                series[kind].append(key)
        for key, present in (("html", found.html), ("console", found.output)):
            if present:
                series.setdefault("text", []).append(key)
        run = Run(id=found.key, experiment_id=self.experiment_id(found.workspace, found.project),
                  name=found.name or found.key, start_time=found.start_time, end_time=found.stop_time,
                  status="FINISHED", user=None, params=params, tags=tags,
                  metric_keys=[m for m in metrics if not m.startswith(SYSTEM_PREFIX)],
                  system_metric_keys=[m for m in metrics if m.startswith(SYSTEM_PREFIX)],
                  config=_nest(found.params) if found.nested else None, series=series,
                  summary=dict(indexed.summary.get("summary") or {}))
        if record is not None:  # an archive this collection wrote: what Comet had no place for
            for name in RESTORED:
                if name in record:
                    setattr(run, name, record[name])
            written = set(record.get("others") or ())  # others the SDK adds itself are not the source's
            run.tags = {k: v for k, v in run.tags.items() if k not in found.others or k in written}
            run.tags.update(record.get("tags") or {})
            keys = set(record.get("metrics") or ())
            run.metric_keys = [m for m in run.metric_keys if m in keys]
            run.system_metric_keys = [m for m in run.system_metric_keys if m in keys]
            run.config = indexed.summary.get("config")
            for kind, keys_ in (record.get("series") or {}).items():
                run.series.setdefault(kind, []).extend(k for k in keys_ if k not in run.series[kind])
        return run

    def metric_history(self, run, key):
        indexed = self._indexed(run.id)
        if key == EPOCH_KEY and EPOCH_KEY not in indexed.found.metrics:
            for step, (epoch, stamp) in sorted(indexed.found.epochs.items()):
                yield Point(key, float(epoch), stamp or 0, int(step))
            return
        try:
            for step, stamp, value, _epoch in metric_points(indexed.path, key):
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    continue  # a metric value that is not a number (Comet keeps such as text): not a point
                yield Point(key, number, stamp or 0, int(step) if step is not None else 0)
        except CometArchiveError as exc:
            raise TrackerError(f"comet_offline: {exc}") from exc

    def series(self, run, kind, key):
        indexed = self._indexed(run.id)
        side = indexed.side.get(series_path(kind, key))
        if side is not None:
            yield from read_series(key, indexed.member_text(side).splitlines())
            return
        found = indexed.found
        if kind == "text" and key == "html":
            yield from (SeriesItem(key, None, stamp, text=text) for stamp, text in found.html)
        elif kind == "text" and key == "console":
            yield from (SeriesItem(key, None, stamp, text=text, data={"stream": "stderr" if err else "stdout"})
                        for stamp, text, err in found.output)
        for upload in found.uploads:
            if upload.file_name.startswith(SERIES_DIR + "/"):
                continue
            native = NATIVE.get(upload.upload_type)
            if native == (kind, key) and kind == "text":
                yield SeriesItem(key, upload.step, upload.timestamp, text=indexed.member_text(upload.member))
            elif native == (kind, key):
                yield SeriesItem(key, upload.step, upload.timestamp, file=f"{upload.member}/{upload.file_name}",
                                 caption=upload.file_name)
            elif BY_FILE_NAME.get(upload.upload_type) == kind and upload.file_name == key:
                try:
                    data = json.loads(indexed.member_text(upload.member))
                except ValueError as exc:
                    raise TrackerError(f"comet_offline: {indexed.path}: {upload.upload_type} {key} (line "
                                       f"{upload.line}) is not JSON ({exc})") from exc
                yield SeriesItem(key, upload.step, upload.timestamp, data=data)

    def series_file(self, run, item, path):
        indexed = self._indexed(run.id)
        member = indexed.side.get(item.file) or (item.file or "").partition("/")[0]
        self._copy(indexed, member, path)

    def _copy(self, indexed, member, path):
        try:
            copy_member(indexed.path, member, path)
        except CometArchiveError as exc:
            raise TrackerError(f"comet_offline: {exc}") from exc

    def artifacts(self, run):
        indexed = self._indexed(run.id)
        with zipfile.ZipFile(indexed.path) as archive:
            out = [Artifact(path, archive.getinfo(member).file_size) for path, member in indexed.assets.items()]
        if indexed.found.unmapped:
            out.append(Artifact(UNMAPPED_FILE, None))
        return out

    def download(self, run, artifact, path):
        indexed = self._indexed(run.id)
        if artifact.path == UNMAPPED_FILE and indexed.found.unmapped:
            with open(path, "w", encoding="utf-8") as out:
                for line, message in indexed.found.unmapped:
                    out.write(json.dumps({"line": line, "message": message}, sort_keys=True) + "\n")
            return
        member = indexed.assets.get(artifact.path)
        if member is None:
            raise TrackerError(f"comet_offline: experiment {run.id} has no asset {artifact.path}")
        self._copy(indexed, member, path)


class _Pending(SpooledRun):
    """One run until it is written."""

    def __init__(self, spool, key, project, run, tags, parent_id):
        super().__init__(spool, key, run, tags, parent_id)
        self.project = project

    def record(self):
        run = self.run
        others = {k: v for k, v in self.tags.items() if v != "" and k not in SDK_OTHERS}
        return {"start_time": run.start_time, "end_time": self.end_time, "status": self.status, "user": run.user,
                "lifecycle": run.lifecycle, "parent_id": self.parent_id, "fork_step": run.fork_step,
                "description": run.description, "group": run.group, "job_type": run.job_type,
                "tags": {k: v for k, v in self.tags.items() if v != "" and k not in others},
                "metrics": sorted(self.metric_keys), "series": self.series_keys, "others": sorted(others)}, others


def write_archive(pending, out_dir, workspace):
    """Write the run through the SDK into ``out_dir``; the archive's path."""
    os.environ.update({k: v for k, v in QUIET.items() if k not in os.environ})
    import comet_ml  # pylint: disable=import-outside-toplevel
    from comet_ml.messages import MetricMessage  # pylint: disable=import-outside-toplevel

    record, others = pending.record()
    with open(os.path.join(pending.spool, "record.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, sort_keys=True)
    with open(os.path.join(pending.spool, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump({"summary": pending.summary, "config": pending.config}, handle, sort_keys=True, default=str)
    experiment = comet_ml.OfflineExperiment(project_name=pending.project, workspace=workspace,
                                            offline_directory=out_dir, experiment_key=pending.ident, **SDK_OFF)
    try:
        experiment.set_name(pending.run.name)
        if pending.run.start_time:
            experiment.start_time = pending.run.start_time  # the archive's start_time (the SDK has no setter)
        labels = [k for k, v in pending.tags.items() if v == ""]
        if labels:
            experiment.add_tags(labels)
        for key, value in sorted(others.items()):
            experiment.log_other(key, value)
        for name, value in sorted(pending.params.items()):
            experiment.log_parameter(name, value)
        for key, step, stamp, value in pending.spooled_points():
            message = MetricMessage(timestamp=stamp)  # the SDK's own metric message, with the point's time
            message.set_metric(key, value, step=step)
            experiment._enqueue_message(message)  # pylint: disable=protected-access
        for name, local in sorted(pending.assets.items()):
            experiment.log_asset(local, file_name=name, copy_to_tmp=True)
        experiment.log_asset(os.path.join(pending.spool, "record.json"), file_name=RECORD_FILE)
        experiment.log_asset(os.path.join(pending.spool, "summary.json"), file_name=SUMMARY_FILE)
    finally:
        experiment.end()
    path = os.path.join(out_dir, f"{pending.ident}.zip")
    if not os.path.isfile(path):
        raise TrackerError(f"comet_offline: the SDK wrote no archive {path} for run {pending.run.id}")
    return path


class CometOfflineTarget(ZipPerRunTarget, CometOfflineSource, TargetAdapter):
    """Writes one offline archive per run through ``comet_ml.OfflineExperiment``, with the experiment key
    derived from the source run's id (so a re-copy replaces the archive instead of adding one). A run is held
    back until the copy has handed over all of it, then written at once (APPENDS is False)."""

    APPENDS = False
    SYSTEM_PREFIX = SYSTEM_PREFIX
    WHAT = "archives"

    def __init__(self, comet_dir, workspace=None):
        super().__init__(comet_dir, workspace)
        self.pending = {}
        self.full = collections.OrderedDict()

    def check(self):
        super().check()
        try:
            importlib.import_module("comet_ml")
        except ImportError as exc:
            raise TrackerError("comet_offline: writing archives needs the comet_ml package (pip install "
                               f"comet_ml): {exc}") from exc

    def _indexed(self, run_id):
        return self.written(run_id)

    def _loaded(self):
        with self.lock:
            self._runs = None  # archives are written while a copy runs: read them again
            return super()._loaded()

    def ensure_experiment(self, experiment, name, tags):
        return self.remember_experiment(self.experiment_id(self.workspace, self.project_name(experiment, name)),
                                        experiment, name, tags)

    def project_name(self, experiment, name):
        """The Comet project of a copy of ``experiment`` named ``name`` (its name with the copy's prefix). Into a
        target workspace, a ``<workspace>/<project>`` name (Comet's and Neptune's) keeps its project part only: the
        project is re-homed in the target's workspace; any other name becomes a project as it is."""
        parts = (experiment.name or "").split("/")
        if self.workspace and len(parts) == 2 and all(parts) and name.endswith(experiment.name):
            return project_for(name[:len(name) - len(experiment.name)] + parts[1])
        return project_for(name)

    def find_runs_by_tag(self, experiment_id, key, value):
        if key == SOURCE_RUN_TAG:  # a copy's key follows from its source's id
            return [key_for(value)] if os.path.isfile(os.path.join(self.root, f"{key_for(value)}.zip")) else []
        return [run.id for run in (self._record(i) for i in self._loaded().values())
                if run.experiment_id == experiment_id and run.tags.get(key) == value]

    def create_run(self, experiment_id, run, tags, parent_id=None):
        key = key_for(run.id)
        project = experiment_id.rpartition("/")[2] if self.workspace else experiment_id
        with self.lock:
            self.pending[key] = _Pending(self.spool_for(key), key, project, run, tags, parent_id)
        return key

    def _write_zip(self, pending, scratch):
        try:
            with SDK_LOCK:
                return write_archive(pending, scratch, self.workspace)
        except TrackerError:
            raise
        except Exception as exc:  # pylint: disable=broad-except  # the SDK's errors are many; the run fails
            raise TrackerError(f"comet_offline: writing run {pending.run.id} with the comet_ml SDK failed: "
                               f"{exc}") from exc
