# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClearML offline sessions as a tracker source and target (kind ``clearml_offline``): the ``offline-<id>.zip``
files (or their unpacked folders) the ClearML SDK writes in offline mode, in ``clearml_dir``, which
``clearml-task --import-offline-session`` / ``Task.import_offline_session`` loads into any ClearML server.

A session holds ``task.json`` (the task document the SDK keeps: name, ``project_name``, type, comment, tags,
hyperparams, configuration, execution with its artifacts, ``offline_folder`` - the folder the session was
written in -, ``offline_output_models``), ``metrics.jsonl`` and ``log.jsonl`` (one JSON list of events a line,
as the SDK sends them to ``events.add_batch``: scalars, plots, debug images; console lines) and ``data/`` (the
artifacts', output models' and debug samples' files, under ``<project>/<task name>.<task id>/``). It maps as
trackers/clearml_records.py says; the project is the experiment (its id is its name: a session has no project
id).

Written sessions (``ClearmlOfflineTarget``) are laid out as the SDK lays them out (the task id ``offline-`` and
32 hex digits derived from the source run's id, so a re-copy replaces its zip): scalars, debug samples (the
file in ``data/``), plotly plots and console lines as the SDK's own events, points with their timestamps;
params as hyperparameters (``<section>/<name>``; a name without a section in ``General``); artifacts as the
SDK's artifacts (``artifacts/<key>/<file>``, with size and SHA-256). ClearML's import gives a task its own
creation time and status, so the source's times, status, user, key-value tags, parent, fork step, summary,
nested config and the source's names of params and metrics are kept in the configuration object
``mlops.migration`` (JSON), and every series also in its side file under ``mlops-migration/`` (an artifact),
which a copy reads back exactly. Projects and registered models are side files in ``clearml_dir``
(trackers/side_registry.py). Importable without Ansible; nothing outside Python is needed either way.
"""

from __future__ import annotations

import collections
import glob
import hashlib
import json
import mimetypes
import os
import re
import shutil
import threading
import zipfile

from ansible_collections.mlops.migration.plugins.module_utils.checksums import sha256_file
from ansible_collections.mlops.migration.plugins.module_utils.paths import confined
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    SOURCE_RUN_TAG,
    TargetAdapter,
    TrackerError,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.clearml_records import (
    CONSOLE,
    IMAGE,
    LOG,
    MONITOR_PREFIX,
    OPTIONS as RECORD_OPTIONS,
    PLOT,
    RECORD_NAME,
    SCALAR,
    SUMMARY_ITER,
    SUMMARY_TITLE,
    ClearmlTaskSource,
    UrlFetcher,
    artifact_path,
    check_task_filter,
    metric_key,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.held_run import SpooledRun, ZipPerRunTarget
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_files import SERIES_DIR
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_registry import SideRegistry

OPTIONS = dict(clearml_dir=dict(type="path"), **RECORD_OPTIONS)
TASK_JSON, METRICS, LOGS, DATA = "task.json", "metrics.jsonl", "log.jsonl", "data/"
TASK_TYPES = ("training", "testing", "inference", "data_processing", "application", "monitor", "controller",
              "optimizer", "service", "qc", "custom")
DEFAULT_SECTION = "General"
BATCH = 500  # events a line, as the SDK flushes them
WORKER = "mlops-migration"
HEX32 = re.compile(r"[0-9a-f]{32}")


def task_id_for(source_id):
    """The offline task id of a copy: ``offline-`` and the source id when it is 32 hex digits (as ClearML's and
    MLflow's are), else 32 hex digits of its SHA-256."""
    text = str(source_id)
    if HEX32.fullmatch(text):
        return "offline-" + text
    return "offline-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class _Session:
    """One session as read: task.json, where its files are, and the (title, series) of its events by type."""

    def __init__(self, path):
        self.path = path
        self.is_zip = os.path.isfile(path)
        names = self._names()
        if TASK_JSON not in names:
            raise TrackerError(f"clearml_offline: {path} holds no {TASK_JSON}: not a ClearML offline session")
        try:
            self.task = json.loads(self.read(TASK_JSON).decode("utf-8"))
        except ValueError as exc:
            raise TrackerError(f"clearml_offline: {path}: {TASK_JSON} is not JSON ({exc})") from exc
        if not isinstance(self.task, dict) or not self.task.get("id"):
            raise TrackerError(f"clearml_offline: {path}: {TASK_JSON} names no task id")
        self.names = names
        self.folder = str(self.task.get("offline_folder") or "").rstrip("/")
        samples = [n for n in names if n.startswith(DATA) and "/metrics/" in n]
        if METRICS not in names and (samples or ClearmlTaskSource.record_of(self.task)):
            raise TrackerError(f"clearml_offline: {path}: task {self.task['id']}: its events file {METRICS} is "
                               f"missing, though the session holds {'debug samples' if samples else 'metrics'}")
        self.keys = {SCALAR: set(), PLOT: set(), IMAGE: set(), LOG: set()}
        stamps = []  # the first and last event's time
        for event in self.events(METRICS):
            self._seen(stamps, event)
            if event.get("type") in self.keys:
                self.keys[event["type"]].add((event.get("metric"), event.get("variant")))
                if event.get("type") == IMAGE:
                    self.member_of(event.get("url") or "", f"debug sample {metric_key(event)} at iteration "
                                   f"{event.get('iter')}")
        for event in self.events(LOGS):
            self.keys[LOG].add((CONSOLE, CONSOLE))
            self._seen(stamps, event)
        # a session has no status or times: it is completed (as its import marks it), from its first event to its last
        self.task.setdefault("status", "completed")
        if stamps:
            self.task.setdefault("started", stamps[0])
            self.task.setdefault("completed", stamps[1])

    @staticmethod
    def _seen(stamps, event):
        stamp = event.get("timestamp")
        if isinstance(stamp, (int, float)) and stamp > 0:
            if not stamps:
                stamps[:] = [stamp, stamp]
            stamps[0], stamps[1] = min(stamps[0], stamp), max(stamps[1], stamp)

    def _names(self):
        if self.is_zip:
            try:
                with zipfile.ZipFile(self.path) as archive:
                    return set(archive.namelist())
            except (zipfile.BadZipFile, OSError) as exc:
                raise TrackerError(f"clearml_offline: {self.path} is not a zip archive ({exc})") from exc
        out = set()
        for root, _dirs, files in os.walk(self.path):
            out.update(os.path.relpath(os.path.join(root, f), self.path).replace(os.sep, "/") for f in files)
        return out

    def read(self, name):
        if self.is_zip:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(name)
        with open(os.path.join(self.path, name), "rb") as handle:
            return handle.read()

    def copy(self, name, dest):
        if name not in self.names:
            raise TrackerError(f"clearml_offline: {self.path}: task {self.task['id']} has no file {name}")
        if self.is_zip:
            with zipfile.ZipFile(self.path) as archive, archive.open(name) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)
        else:
            shutil.copyfile(os.path.join(self.path, name), dest)

    def _lines(self, name):
        if name not in self.names:
            return
        if self.is_zip:
            with zipfile.ZipFile(self.path) as archive, archive.open(name) as raw:
                yield from raw
        else:
            with open(os.path.join(self.path, name), "rb") as raw:
                yield from raw

    def events(self, name):
        """Every event of ``metrics.jsonl`` or ``log.jsonl``, in the order the SDK wrote them."""
        for number, line in enumerate(self._lines(name), 1):
            if not line.strip():
                continue
            try:
                batch = json.loads(line)
            except ValueError as exc:
                raise TrackerError(f"clearml_offline: {self.path}: {name} line {number} is not a JSON list of "
                                   f"events ({exc}); the session is damaged") from exc
            if not isinstance(batch, list):
                raise TrackerError(f"clearml_offline: {self.path}: {name} line {number} is not a JSON list")
            yield from (event for event in batch if isinstance(event, dict))

    def member_of(self, url, what):
        """The session's file a path under ``offline_folder`` names; TrackerError when it is missing."""
        prefix = self.folder + "/"
        member = url[len(prefix):] if self.folder and url.startswith(prefix) else None
        if member is None or member not in self.names:
            raise TrackerError(f"clearml_offline: {self.path}: task {self.task['id']}: {what}: the file "
                               f"{url or '(none)'} is not in the session")
        return member


class ClearmlOfflineSource(SideRegistry, ClearmlTaskSource):
    KIND = "clearml_offline"
    OPTIONS = OPTIONS
    REQUIRED = ("clearml_dir",)

    def __init__(self, clearml_dir, task_filter=None, url_map=None, s3=None):
        self.root = os.path.abspath(os.path.expanduser(clearml_dir))
        self.uri = f"clearml-offline://{self.root}"
        self.task_filter = check_task_filter(task_filter)
        self.fetcher = UrlFetcher(url_map, s3)
        self._sessions = None  # task id -> _Session
        self.lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["clearml_dir"], settings.get("task_filter"), settings.get("url_map"), settings.get("s3"))

    def paths(self):
        found = glob.glob(os.path.join(glob.escape(self.root), "*.zip"))
        found += [os.path.dirname(p) for p in glob.glob(os.path.join(glob.escape(self.root), "*", TASK_JSON))]
        return sorted(p for p in found if not os.path.basename(p).startswith("."))

    def check(self):
        if not os.path.isdir(self.root):
            raise TrackerError(f"clearml_offline: {self.root} is not a directory")
        if not self.paths():
            raise TrackerError(f"clearml_offline: {self.root} holds no ClearML offline session (offline-<id>.zip "
                               "or a folder with task.json)")
        for session in self._loaded().values():  # every session read once: a damaged one fails before any write
            for url, _digest, _size, what in self._artifact_urls(session.task).values():
                if url and session.folder and url.startswith(session.folder + "/"):
                    session.member_of(url, what)

    def _loaded(self):
        with self.lock:
            if self._sessions is None:
                sessions = {}
                for path in self.paths():
                    session = _Session(path)
                    ident = session.task["id"]
                    if ident in sessions:
                        if sessions[ident].is_zip == session.is_zip:
                            raise TrackerError(f"clearml_offline: task {ident} is in {sessions[ident].path} and "
                                               f"{path}; keep one")
                        if session.is_zip:
                            continue  # the folder and the zip the SDK made of it: the folder is read
                    sessions[ident] = session
                self._sessions = sessions
            return self._sessions

    def _session(self, task_id):
        session = self._loaded().get(task_id)
        if session is None:
            raise TrackerError(f"clearml_offline: no task {task_id} in {self.root}")
        return session

    # what a reader gives ----------------------------------------------------------------------

    def project_ids(self):
        return {s.task.get("project_name") or "" for s in self._loaded().values() if self._wanted(s.task)}

    def _project_docs(self):
        return [{"id": p, "name": p} for p in self.project_ids()]

    def _task_docs(self, project):
        return [s.task for s in self._loaded().values() if (s.task.get("project_name") or "") == project.id]

    def _task_doc(self, task_id):
        return self._session(task_id).task

    def _keys(self, task, event_type):
        return self._session(task["id"]).keys[event_type]

    def _events(self, task, event_type, metric=None, variant=None):
        session = self._session(task["id"])
        for event in session.events(LOGS if event_type == LOG else METRICS):
            if event.get("type") != event_type:
                continue
            if metric is not None and event.get("metric") != metric:
                continue
            if variant is not None and event.get("variant") != variant:
                continue
            yield event

    def _fetch(self, url, path, what):
        session = None
        for found in self._loaded().values():
            if found.folder and url.startswith(found.folder + "/"):
                session = found
                break
        if session is None:
            self.fetcher.fetch(url, path, what)
            return
        session.copy(session.member_of(url, what), path)

    def _output_models(self, task):
        out = []
        for model in task.get("offline_output_models") or ():
            weights = (model.get("weights") or {})
            url = weights.get("weights_filename") or weights.get("register_uri")
            out.append({"name": (model.get("init") or {}).get("name") or model.get("id"), "uri": url})
        return out

    def _side_member(self, task, name):
        """The session and member of a side file (an artifact) of a task this collection wrote."""
        session = self._session(task["id"])
        for found in (task.get("execution") or {}).get("artifacts") or ():
            if artifact_path(found.get("key") or "", found.get("uri")) == name:
                return session, session.member_of(found.get("uri") or "", f"side file {name}")
        return session, None

    def _file(self, task, name, path):
        session, member = self._side_member(task, name)
        if member is None:
            raise TrackerError(f"clearml_offline: {session.path}: task {task['id']} has no side file {name}")
        session.copy(member, path)

    def _side_text(self, task, name):
        session, member = self._side_member(task, name)
        return None if member is None else session.read(member).decode("utf-8")

    def artifacts(self, run):
        return [a for a in super().artifacts(run) if not a.path.startswith(SERIES_DIR + "/")]


class _Pending(SpooledRun):
    """One run until it is written; the series items ClearML shows natively are kept in ``native`` too."""

    def __init__(self, spool, task_id, project, run, tags, parent_id):
        super().__init__(spool, task_id, run, tags, parent_id)
        self.project = project
        self.native = []  # (kind, key, SeriesItem, local file or None) written as the SDK's events too

    def added(self, kind, key, item, local):
        if kind == "media" or (kind == "text" and key == CONSOLE) or (
                kind == "plot" and isinstance(item.data, dict) and "data" in item.data):
            self.native.append((kind, key, item, local))


def _split(key):
    """(title, series) of a metric or series key: ``a/b`` -> (a, b); ``a`` -> (a, a), as ClearML names a plain value."""
    metric, sep, variant = key.partition("/")
    return (metric, variant) if sep and metric and variant else (key, key)


def artifact_keys(paths):
    """``{artifact path: ClearML artifact key}``: a path's directory where no other path shares it (the file keeps
    its name inside, as the SDK lays out ``<key>/<file>``), the whole path otherwise; clearml_records.artifact_path
    makes the path of each again."""
    shared = collections.Counter(os.path.dirname(p) for p in paths)
    return {p: os.path.dirname(p) if os.path.dirname(p) and shared[os.path.dirname(p)] == 1 else p for p in paths}


def _section(name):
    section, sep, rest = name.partition("/")
    return (section, rest) if sep and section and rest else (DEFAULT_SECTION, name)


class _SessionWriter:
    """Writes one held run as a session folder laid out as the SDK lays it out, then zips it."""

    def __init__(self, pending, folder):
        os.makedirs(folder)
        self.pending, self.folder = pending, folder
        self.tid = pending.ident
        self.base = f"{pending.project}/{pending.run.name}.{self.tid}".lstrip("/")
        self.metrics_out = open(os.path.join(folder, METRICS), "w", encoding="utf-8")  # pylint: disable=consider-using-with
        self.logs_out = open(os.path.join(folder, LOGS), "w", encoding="utf-8")  # pylint: disable=consider-using-with
        self.batches = {METRICS: [], LOGS: []}

    def _event(self, kind, timestamp, **fields):
        event = {"timestamp": int(timestamp or 0), "type": kind, "task": self.tid}
        event.update(fields)
        event["method"] = "get"  # as the SDK writes its events
        name = LOGS if kind == LOG else METRICS
        self.batches[name].append(event)
        if len(self.batches[name]) >= BATCH:
            self._flush(name)

    def _flush(self, name):
        if self.batches[name]:
            (self.logs_out if name == LOGS else self.metrics_out).write(json.dumps(self.batches[name]) + "\n")
            self.batches[name] = []

    def _data(self, relative, local, copy=False):
        """Put ``local`` at ``data/<relative>``; its path as the SDK records it (under offline_folder)."""
        dest = confined(os.path.join(self.folder, "data"), relative, "file")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        (shutil.copyfile if copy else shutil.move)(local, dest)
        return f"{self.folder}/data/{relative}"

    def write(self, zip_path):
        pending, run = self.pending, self.pending.run
        written_metrics = {}
        for key, step, stamp, value in pending.spooled_points():
            metric, variant = _split(key)
            if written_metrics.setdefault(f"{metric}/{variant}", key) != key:
                raise TrackerError(f"clearml_offline: run {run.id}: metrics {key} and "
                                   f"{written_metrics[metric + '/' + variant]} would both be {metric}/{variant}")
            self._event(SCALAR, stamp, iter=int(step), metric=metric, variant=variant, value=value)
        for name, value in sorted(pending.summary.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._event(SCALAR, run.end_time or run.start_time, iter=SUMMARY_ITER, metric=SUMMARY_TITLE,
                            variant=name, value=value)
        counters = collections.Counter()
        for kind, key, item, local in pending.native:
            metric, variant = _split(key)
            step = int(item.step) if item.step is not None else 0
            if kind == "media" and local:
                ext = os.path.splitext(item.file or "")[1] or ".bin"
                relative = f"{self.base}/metrics/{metric}/{variant}/{metric}_{variant}_{counters[key]:08d}{ext}"
                counters[key] += 1
                url = self._data(relative, local, copy=True)
                self._event(IMAGE, item.timestamp, iter=step, metric=metric, variant=variant, key=relative, url=url)
            elif kind == "plot":
                self._event(PLOT, item.timestamp, iter=step, metric=metric, variant=variant,
                            plot_str=json.dumps(item.data))
            elif kind == "text":
                data = item.data if isinstance(item.data, dict) else {}
                self._event(LOG, item.timestamp, level=data.get("level") or "info",
                            worker=data.get("worker") or WORKER, msg=item.text or "")
        self._flush(METRICS)
        self._flush(LOGS)
        self.metrics_out.close()
        self.logs_out.close()
        task = self._task(written_metrics)
        with open(os.path.join(self.folder, TASK_JSON), "w", encoding="utf-8") as handle:
            json.dump(task, handle, ensure_ascii=True, sort_keys=True)
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for dirpath, _dirs, files in os.walk(self.folder):
                for name in sorted(files):
                    full = os.path.join(dirpath, name)
                    archive.write(full, os.path.relpath(full, self.folder).replace(os.sep, "/"))
        return zip_path

    def _task(self, written_metrics):
        pending, run = self.pending, self.pending.run
        hyperparams, renamed = {}, {}
        for name, value in sorted(pending.params.items()):
            section, param = _section(name)
            if f"{section}/{param}" != name:
                renamed[f"{section}/{param}"] = name
            hyperparams.setdefault(section, {})[param] = {"section": section, "name": param, "value": str(value),
                                                          "type": "str", "description": ""}
        artifacts = []
        keys = artifact_keys(list(pending.assets))
        for key, local in pending.assets.items():
            size, digest = os.path.getsize(local), sha256_file(local)
            relative = f"{self.base}/artifacts/{keys[key]}/{os.path.basename(key)}"
            uri = self._data(relative, local)
            artifacts.append({"key": keys[key], "type": "custom", "mode": "output", "uri": uri, "content_size": size,
                              "hash": digest, "timestamp": int((run.end_time or run.start_time or 0) // 1000),
                              "type_data": {"content_type": mimetypes.guess_type(key)[0] or "application/octet-stream",
                                            "preview": f"{os.path.basename(key)} - {size} bytes\n"}})
        record = {"start_time": run.start_time, "end_time": pending.end_time, "status": pending.status,
                  "user": run.user, "lifecycle": run.lifecycle, "parent_id": pending.parent_id,
                  "fork_step": run.fork_step, "group": run.group, "job_type": run.job_type,
                  "tags": {k: v for k, v in pending.tags.items() if v != ""}, "params": renamed,
                  "metrics": dict(written_metrics),
                  "series": pending.series_keys, "summary": pending.summary, "config": pending.config,
                  "source_run": pending.tags.get(SOURCE_RUN_TAG)}
        for key in pending.metric_keys:  # a metric without points still has its name
            metric, variant = _split(key)
            record["metrics"].setdefault(f"{metric}/{variant}", key)
        job_type = run.job_type if run.job_type in TASK_TYPES else "training"
        return {"id": self.tid, "name": run.name, "project_name": pending.project, "type": job_type,
                "comment": run.description or "", "tags": [k for k, v in pending.tags.items() if v == ""],
                "hyperparams": hyperparams,
                "configuration": {RECORD_NAME: {"name": RECORD_NAME, "type": "json", "description":
                                                "what ClearML has no field for, kept by mlops.migration",
                                                "value": json.dumps(record, sort_keys=True, default=str)}},
                "execution": {"artifacts": artifacts, "docker_cmd": "", "model": "", "model_desc": {},
                              "model_labels": {}, "parameters": {}},
                "output": {}, "script": {}, "offline_folder": self.folder, "offline_output_models": []}


class ClearmlOfflineTarget(ZipPerRunTarget, ClearmlOfflineSource, TargetAdapter):
    """Writes one offline session zip per run, laid out as the ClearML SDK lays one out. A run is held back until
    the copy has handed over all of it, then written at once (APPENDS is False)."""

    APPENDS = False
    SYSTEM_PREFIX = MONITOR_PREFIX
    OWN_ARTIFACTS = SERIES_DIR + "/"
    WHAT = "sessions"

    def __init__(self, clearml_dir, task_filter=None, url_map=None, s3=None):
        super().__init__(clearml_dir, task_filter, url_map, s3)
        self.pending = {}
        self.full = collections.OrderedDict()

    def _read(self, path):
        return _Session(path)

    def _loaded(self):
        with self.lock:
            self._sessions = None  # sessions are written while a copy runs: read them again
            if not os.path.isdir(self.root):
                return {}
            return super()._loaded()

    def _session(self, task_id):
        return self.written(task_id)

    def ensure_experiment(self, experiment, name, tags):
        return self.remember_experiment(name, experiment, name, tags)

    def find_runs_by_tag(self, experiment_id, key, value):
        if key == SOURCE_RUN_TAG:  # a copy's task id follows from its source's id
            tid = task_id_for(value)
            return [tid] if os.path.isfile(os.path.join(self.root, f"{tid}.zip")) else []
        return [s.task["id"] for s in self._loaded().values()
                if s.task.get("project_name") == experiment_id and self.run(s.task["id"]).tags.get(key) == value]

    def create_run(self, experiment_id, run, tags, parent_id=None):
        tid = task_id_for(run.id)
        with self.lock:
            self.pending[tid] = _Pending(self.spool_for(tid), tid, experiment_id, run, tags, parent_id)
        return tid

    def _write_zip(self, pending, scratch):
        zip_path = os.path.join(scratch, f"{pending.ident}.zip")
        return _SessionWriter(pending, os.path.join(scratch, "session")).write(zip_path)
