# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClearML's task documents and events as tracker records, one mapping for every ClearML source (the server's
stores, offline sessions, the live API): they all hold the same task documents and the same event documents.

A project is an experiment (its full name, nested projects joined by ``/`` as ClearML names them, is the
experiment's name; ``path`` holds the parts). A task is a run: name, status (completed, published and closed
-> FINISHED, in_progress -> RUNNING, created and queued -> SCHEDULED, stopped -> KILLED, failed -> FAILED; the
ClearML status kept as the tag ``clearml.status``), user, created/started/completed times, comment as the
description, parent task as the parent run, the task type as the job type (datasets are ``data_processing``,
pipelines ``controller``), tags as tags without a value and system tags as the tag ``clearml.system_tags``
(comma-separated). Hyperparameter sections become params ``<section>/<name>`` and the nested config
``{section: {name: value}}``; configuration objects the artifacts ``clearml/configuration/<name>.txt``; the
task document itself, as the source holds it, the artifact ``clearml/task.json`` (everything the target has no
field for: script, execution, runtime, models). Scalars (title/series) are metrics ``<title>/<series>`` with
iteration and timestamp; titles starting ``:monitor:`` (the SDK's resource monitor) system metrics; single
values (title ``Summary`` at iteration -2**31) the summary. Plots are plot series ``<title>/<series>`` (the
plotly JSON), debug samples media series ``<title>/<series>`` (the file fetched from its URL), console lines
the text series ``console`` (``data``: level and worker). Artifacts and output models are artifacts
``<artifact key>/<file name>`` and ``clearml/models/<model name>/<file name>``, fetched from their URLs (S3, a
fileserver, a local path; ``url_map`` points a URL prefix elsewhere) and checked against the SHA-256 the SDK
recorded.

A task this collection wrote (trackers/clearml_offline.py) holds what ClearML has no field for in its
configuration object ``mlops.migration`` (times, status, user, key-value tags, the source's names of params and
metrics) and the side files under ``mlops-migration/``; reading it puts them back. Importable without Ansible.
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request

from ansible_collections.mlops.migration.plugins.module_utils.checksums import CHUNK_SIZE, sha256_file
from ansible_collections.mlops.migration.plugins.module_utils.mongo.query import FilterError, check_filter, matches
from ansible_collections.mlops.migration.plugins.module_utils.search.events import unpacked_text
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
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_files import SERIES_DIR, read_series, series_path

SCALAR, PLOT, IMAGE, LOG = "training_stats_scalar", "plot", "training_debug_image", "log"
STATUS = {"completed": "FINISHED", "published": "FINISHED", "publishing": "FINISHED", "closed": "FINISHED",
          "in_progress": "RUNNING", "created": "SCHEDULED", "queued": "SCHEDULED", "stopped": "KILLED",
          "failed": "FAILED", "unknown": "FAILED"}
STATUS_TAG = "clearml.status"
SYSTEM_TAGS_TAG = "clearml.system_tags"
SUMMARY_TITLE, SUMMARY_ITER = "Summary", -2 ** 31  # report_single_value's scalars
MONITOR_PREFIX = ":monitor:"
CONSOLE = "console"
RECORD_NAME = "mlops.migration"  # the configuration object of a task this collection wrote
SUMMARY_FILE = SERIES_DIR + "/summary.json"
TASK_FILE = "clearml/task.json"
CONFIG_DIR = "clearml/configuration/"
MODELS_DIR = "clearml/models/"
RESTORED = ("start_time", "end_time", "status", "user", "lifecycle", "parent_id", "fork_step", "group", "job_type")
SHA256 = re.compile(r"[0-9a-f]{64}")
SPOOLED_TASKS = 8  # tasks whose scalars are kept spooled (runs copied side by side, and verified)
KEPT_TASKS = 16  # task documents kept in memory (a run's reads ask for its task many times)

OPTIONS = dict(
    task_filter=dict(type="dict"),
    url_map=dict(type="dict"),
    s3=dict(type="dict", options=dict(endpoint_url=dict(type="str"), access_key=dict(type="str", no_log=True),
                                      secret_key=dict(type="str", no_log=True), region=dict(type="str"),
                                      validate_certs=dict(type="bool", default=True))),
)


def metric_key(event):
    return f"{event.get('metric')}/{event.get('variant')}"


def as_ms(value):
    """A ClearML time (a datetime from MongoDB, an ISO text from the API, ms or None) in ms since the epoch."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return epoch_ms(value)


def jsonable(value):
    """A task document as JSON can hold it (datetimes as ISO text, BSON ids as text)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def task_artifacts(task):
    """The task's artifacts as a list (a server stores them keyed by id, the API and the SDK as a list)."""
    found = (task.get("execution") or {}).get("artifacts") or []
    return list(found.values()) if isinstance(found, dict) else list(found)


def artifact_path(key, uri):
    """The artifact path of a ClearML artifact: ``<key>/<file name>``, or the key alone when it ends with the
    file's name (a file named as its key; a key this collection made of a whole path)."""
    name = os.path.basename(urllib.parse.urlsplit(uri or "").path) or "file"
    return key if key == name or key.endswith("/" + name) else f"{key}/{name}"


def plot_data(event):
    """A plot event's plotly JSON (``plot_str``, or ``plot_data`` compressed as the server stores a large one)."""
    text = event.get("plot_str")
    if text is None and event.get("plot_data"):
        text = unpacked_text(event["plot_data"], "plot_data")
    try:
        return json.loads(text) if text else None
    except ValueError as exc:
        raise TrackerError(f"clearml: task {event.get('task')}: plot {metric_key(event)} at iteration "
                           f"{event.get('iter')} is not JSON ({exc})") from exc


def check_task_filter(query):
    """The task filter, checked (the same MongoDB query language as the mongo step's filters)."""
    if not query:
        return {}
    try:
        check_filter(query, "task_filter")
    except FilterError as exc:
        raise TrackerError(f"clearml: {exc}") from exc
    return dict(query)


class UrlFetcher:
    """Fetches what a URL of a task names: ``url_map`` turns a URL prefix into another (the longest wins; a
    local directory, a ``file://`` URL, an ``http(s)://`` or an ``s3://bucket/prefix``); ``s3`` is the
    connection for ``s3://`` URLs."""

    def __init__(self, url_map=None, s3=None):
        self.url_map = sorted((url_map or {}).items(), key=lambda item: -len(item[0]))
        self.s3_settings = dict(s3 or {})
        self._s3 = None

    def resolve(self, url):
        for prefix, replacement in self.url_map:
            if url.startswith(prefix):
                rest = url[len(prefix):]
                return str(replacement).rstrip("/") + "/" + rest.lstrip("/") if rest else str(replacement)
        return url

    def _client(self):
        if self._s3 is None:
            from ansible_collections.mlops.migration.plugins.module_utils.s3.client import S3Client  # pylint: disable=import-outside-toplevel

            settings = self.s3_settings
            if not settings.get("endpoint_url"):
                raise TrackerError("clearml: an s3:// URL needs the tracker's s3 connection (s3.endpoint_url)")
            self._s3 = S3Client(settings["endpoint_url"], settings.get("access_key"), settings.get("secret_key"),
                                region=settings.get("region") or "us-east-1",
                                validate_certs=settings.get("validate_certs", True))
        return self._s3

    def fetch(self, url, path, what):
        """Write the bytes ``url`` names to ``path``; TrackerError naming ``what`` and the URL otherwise."""
        where = self.resolve(url)
        parts = urllib.parse.urlsplit(where)
        try:
            if parts.scheme in ("", "file"):
                local = urllib.parse.unquote(parts.path) if parts.scheme == "file" else where
                shutil.copyfile(local, path)
            elif parts.scheme in ("http", "https"):
                with urllib.request.build_opener().open(where, timeout=120) as reply, open(path, "wb") as out:
                    shutil.copyfileobj(reply, out, CHUNK_SIZE)
            elif parts.scheme == "s3":
                self._s3_get(parts.netloc, urllib.parse.unquote(parts.path.lstrip("/")), path)
            else:
                raise TrackerError(f"clearml: {what}: URL {url} has a scheme this collection cannot read "
                                   "(file, http, https, s3; url_map can point it at one)")
        except urllib.error.HTTPError as exc:
            raise TrackerError(f"clearml: {what}: {url} answered HTTP {exc.code} ({exc.reason})") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TrackerError(f"clearml: {what}: {url} cannot be read ({getattr(exc, 'reason', exc)})") from exc

    def _s3_get(self, bucket, key, path):
        from ansible_collections.mlops.migration.plugins.module_utils.s3.client import ApiError  # pylint: disable=import-outside-toplevel

        try:
            body = self._client().get_object(Bucket=bucket, Key=key)["Body"]
            with body, open(path, "wb") as out:
                while True:
                    chunk = body.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    out.write(chunk)
        except ApiError as exc:
            raise OSError(f"S3 {bucket}/{key}: {exc}") from exc


class ClearmlTaskSource(SourceAdapter):
    """A ClearML source: the mapping of task documents and events, over what a reader gives (the subclass):

    ``_project_docs()`` the projects (``id``, ``name`` - the full path -, ``description``, ``tags``);
    ``_task_docs(project)`` and ``_fetch_task(task_id)`` task documents (``id`` their id, ``project_name`` their
    project's full name; a reader keeps those it lists with ``_kept``); ``_find_keys(task, event_type)`` the
    (title, series) pairs of the task's events of a type and ``_events(task, event_type, metric, variant)`` those
    events in iteration order (all of the type without metric and variant); ``_fetch(url, path, what)`` and ``_file(task, name, path)`` write a URL's or a
    session's file to ``path``.
    """

    task_filter = None
    lock = threading.RLock()  # a reader gives each instance its own

    # what a reader gives ----------------------------------------------------------------------

    def _project_docs(self):
        raise NotImplementedError

    def _task_docs(self, project):
        raise NotImplementedError

    def _task_doc(self, task_id):
        """The task's document: one of the last KEPT_TASKS read, else ``_fetch_task``'s."""
        with self.lock:
            kept = self.__dict__.setdefault("_kept_tasks", collections.OrderedDict())
            if task_id in kept:
                return kept[task_id]
        return self._kept(self._fetch_task(task_id))

    def _kept(self, task):
        """Keep ``task`` (a document just read) among the last KEPT_TASKS; returns it."""
        with self.lock:
            kept = self.__dict__.setdefault("_kept_tasks", collections.OrderedDict())
            kept[task["id"]] = task
            while len(kept) > KEPT_TASKS:
                kept.popitem(last=False)
        return task

    def _fetch_task(self, task_id):
        raise NotImplementedError

    def _keys(self, task, event_type):
        """The (title, series) pairs of the task's events of a type: ``_find_keys``'s, kept for the last tasks."""
        key = (task["id"], event_type)
        with self.lock:
            kept = self.__dict__.setdefault("_kept_keys", collections.OrderedDict())
            if key in kept:
                return kept[key]
        found = self._find_keys(task, event_type)
        with self.lock:
            kept[key] = found
            while len(kept) > KEPT_TASKS * 4:
                kept.popitem(last=False)
        return found

    def _find_keys(self, task, event_type):
        raise NotImplementedError

    def _events(self, task, event_type, metric=None, variant=None):
        raise NotImplementedError

    def _fetch(self, url, path, what):
        raise NotImplementedError

    def _user_name(self, user_id):
        return user_id

    # experiments and runs ---------------------------------------------------------------------

    def experiments(self, selectors, include_deleted=False):
        patterns = [re.compile(s) for s in selectors or []]
        out = []
        for project in sorted(self._project_docs(), key=lambda p: p["name"]):
            if patterns and not any(p.fullmatch(project["name"]) or p.fullmatch(str(project["id"])) for p in patterns):
                continue
            tags = {t: "" for t in project.get("tags") or ()}
            out.append(Experiment(str(project["id"]), project["name"], tags, "active", project.get("description"),
                                  project["name"].split("/")))
        return out

    def _wanted(self, task):
        return not self.task_filter or matches(task, self.task_filter)

    def runs(self, experiment, include_deleted=False):
        docs = [t for t in self._task_docs(experiment) if self._wanted(t)]
        return sorted((self._run_of(t) for t in docs), key=lambda run: (run.start_time or 0, run.id))

    def run(self, run_id):
        return self._run_of(self._task_doc(run_id))

    def _run_of(self, task):
        ident = str(task["id"])
        status = str(task.get("status") or "unknown")
        tags = {t: "" for t in task.get("tags") or ()}
        tags[STATUS_TAG] = status
        if task.get("system_tags"):
            tags[SYSTEM_TAGS_TAG] = ",".join(task["system_tags"])
        params, config = {}, {}
        for section, values in sorted((task.get("hyperparams") or {}).items()):
            for name, param in sorted((values or {}).items()):
                value = param.get("value") if isinstance(param, dict) else param
                value = "" if value is None else str(value)
                params[f"{section}/{name}"] = value
                config.setdefault(section, {})[name] = value
        record = self._record(task)
        scalars = sorted(self._keys(task, SCALAR))
        metrics = [f"{m}/{v}" for m, v in scalars if m != SUMMARY_TITLE]
        series = {}
        plots = [f"{m}/{v}" for m, v in sorted(self._keys(task, PLOT))]
        images = [f"{m}/{v}" for m, v in sorted(self._keys(task, IMAGE))]
        if plots:
            series["plot"] = plots
        if images:
            series["media"] = images
        if self._keys(task, LOG):
            series["text"] = [CONSOLE]
        run = Run(id=ident, experiment_id=str(task.get("project") or task.get("project_name") or ""),
                  name=task.get("name") or ident, start_time=as_ms(task.get("started") or task.get("created")),
                  end_time=as_ms(task.get("completed")), status=STATUS.get(status, "FAILED"),
                  user=self._user_name(task.get("user")), params=params, tags=tags,
                  metric_keys=[k for k in metrics if not k.startswith(MONITOR_PREFIX)],
                  system_metric_keys=[k for k in metrics if k.startswith(MONITOR_PREFIX)],
                  parent_id=str(task["parent"]) if task.get("parent") else None, description=task.get("comment") or None,
                  job_type=task.get("type"), config=config or None, series=series)
        if any(m == SUMMARY_TITLE for m, _v in scalars):
            run.summary = {e["variant"]: e.get("value") for e in self._events(task, SCALAR, SUMMARY_TITLE)
                           if e.get("iter") == SUMMARY_ITER}
        if record is not None:
            self._restore(run, task, record)
        return run

    @staticmethod
    def record_of(task):
        """The ``mlops.migration`` record of a task this collection wrote with metrics, or None."""
        found = ClearmlTaskSource._record(task)
        return found if found and found.get("metrics") else None

    @staticmethod
    def _record(task):
        """The ``mlops.migration`` record of a task this collection wrote, or None."""
        found = (task.get("configuration") or {}).get(RECORD_NAME)
        if not found:
            return None
        try:
            return json.loads(found.get("value") or "{}")
        except ValueError as exc:
            raise TrackerError(f"clearml: task {task.get('id')}: its {RECORD_NAME} configuration is not JSON "
                               f"({exc})") from exc

    def _restore(self, run, task, record):
        for name in RESTORED:
            if name in record:
                setattr(run, name, record[name])
        run.tags = {t: "" for t in task.get("tags") or ()}
        run.tags.update(record.get("tags") or {})
        renamed = record.get("params") or {}
        run.params = {renamed.get(k, k): v for k, v in run.params.items()}
        run.config = record.get("config")
        keys = record.get("metrics") or {}
        run.metric_keys = [keys.get(k, k) for k in run.metric_keys if k in keys]
        run.system_metric_keys = [keys.get(k, k) for k in run.system_metric_keys if k in keys]
        run.series = {kind: list(found) for kind, found in (record.get("series") or {}).items()}
        run.summary = dict(record.get("summary") or {})

    # metrics and series -----------------------------------------------------------------------

    def _scalar_name(self, task, key):
        """(title, series) of a metric key of the task (a copy's record maps its source names back)."""
        record = self._record(task)
        if record is not None:
            written = {v: k for k, v in (record.get("metrics") or {}).items()}
            key = written.get(key, key)
        metric, _sep, variant = key.partition("/")
        return metric, variant

    def metric_history(self, run, key):
        task = self._task_doc(run.id)
        path = self._scalar_spool(task).get(self._scalar_name(task, key))
        if not path:
            return
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                value, stamp, step = json.loads(line)
                yield Point(key, float(value), int(stamp or 0), int(step or 0))

    def _scalar_spool(self, task):
        """``{(title, series): file}`` of the task's scalar points: all of them read in one pass (``_events`` of the
        type, in iteration order) and spooled a series a file, for the last tasks asked for; memory holds a page."""
        with self.lock:
            spools = self.__dict__.setdefault("_spools", collections.OrderedDict())
            if task["id"] in spools:
                spools.move_to_end(task["id"])
                return spools[task["id"]][1]
            directory = tempfile.mkdtemp(prefix="mlops-clearml-scalars-")
            paths, handles = {}, {}
            try:
                for event in self._events(task, SCALAR):
                    pair = (event.get("metric"), event.get("variant"))
                    value = event.get("value")
                    if value is None or (pair[0] == SUMMARY_TITLE and event.get("iter") == SUMMARY_ITER):
                        continue
                    if pair not in handles:
                        paths[pair] = os.path.join(directory, f"{len(paths)}.jsonl")
                        handles[pair] = open(paths[pair], "w", encoding="utf-8")  # pylint: disable=consider-using-with
                    handles[pair].write(json.dumps([value, event.get("timestamp"), event.get("iter")]) + "\n")
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            finally:
                for handle in handles.values():
                    handle.close()
            spools[task["id"]] = (directory, paths)
            while len(spools) > SPOOLED_TASKS:
                shutil.rmtree(spools.popitem(last=False)[1][0], ignore_errors=True)
            return paths

    def close(self):
        """Remove the spooled scalars."""
        with self.lock:
            spools = self.__dict__.get("_spools") or {}
            while spools:
                shutil.rmtree(spools.popitem()[1][0], ignore_errors=True)

    def series(self, run, kind, key):
        task = self._task_doc(run.id)
        if self._record(task) is not None:
            yield from self._side_series(task, kind, key)
            return
        if kind == "text" and key == CONSOLE:
            for event in self._events(task, LOG):
                data = {name: event[name] for name in ("level", "worker") if event.get(name)}
                yield SeriesItem(key, event.get("iter"), event.get("timestamp"), text=event.get("msg") or "",
                                 data=data or None)
        elif kind in ("plot", "media"):
            metric, _sep, variant = key.partition("/")
            for event in self._events(task, PLOT if kind == "plot" else IMAGE, metric, variant):
                if kind == "plot":
                    yield SeriesItem(key, event.get("iter"), event.get("timestamp"), data=plot_data(event))
                else:
                    url = event.get("url") or ""
                    yield SeriesItem(key, event.get("iter"), event.get("timestamp"), file=url,
                                     caption=os.path.basename(urllib.parse.urlsplit(url).path) or None)

    def _side_series(self, task, kind, key):
        local = self._side_text(task, series_path(kind, key))
        if local is not None:
            yield from read_series(key, local.splitlines())

    def _side_text(self, task, name):
        """The text of a side file of a task this collection wrote, or None."""
        raise NotImplementedError

    def series_file(self, run, item, path):
        task = self._task_doc(run.id)
        if self._record(task) is not None and item.file and item.file.startswith(SERIES_DIR + "/"):
            self._file(task, item.file, path)
            return
        self._fetch(item.file, path, f"task {run.id}: debug sample {item.key} at iteration {item.step}")

    def _file(self, task, name, path):
        raise NotImplementedError

    # artifacts --------------------------------------------------------------------------------

    def _artifact_urls(self, task):
        """``{artifact path: (url or None, sha256 or None, size, the object's description)}``."""
        out = {}
        for found in task_artifacts(task):
            uri = found.get("uri") or ""
            path = artifact_path(found["key"], uri)
            digest = found.get("hash") if SHA256.fullmatch(str(found.get("hash") or "")) else None
            out[path] = (uri or None, digest, found.get("content_size"), f"artifact {found['key']}")
        for model in self._output_models(task):
            uri = model.get("uri") or ""
            if uri:
                name = os.path.basename(urllib.parse.urlsplit(uri).path) or "model"
                out[f"{MODELS_DIR}{model.get('name') or model.get('id')}/{name}"] = (
                    uri, None, None, f"output model {model.get('name') or model.get('id')}")
        return out

    def _output_models(self, task):  # pylint: disable=unused-argument
        """The task's output models (``name``, ``uri``)."""
        return []

    def artifacts(self, run):
        task = self._task_doc(run.id)
        found = [Artifact(path, size) for path, (_u, _d, size, _w) in self._artifact_urls(task).items()]
        if self._record(task) is None:
            found.append(Artifact(TASK_FILE, None))
            found += [Artifact(f"{CONFIG_DIR}{name}.txt", None)
                      for name in sorted((task.get("configuration") or {}))]
        return found

    def download(self, run, artifact, path):
        task = self._task_doc(run.id)
        if artifact.path == TASK_FILE and self._record(task) is None:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(jsonable(task), out, sort_keys=True, indent=1)
            return
        if artifact.path.startswith(CONFIG_DIR) and self._record(task) is None:
            name = artifact.path[len(CONFIG_DIR):-len(".txt")]
            found = (task.get("configuration") or {}).get(name) or {}
            with open(path, "w", encoding="utf-8") as out:
                out.write(found.get("value") or "")
            return
        url, digest, _size, what = self._artifact_urls(task).get(artifact.path) or (None, None, None, None)
        if url is None:
            raise TrackerError(f"clearml: task {run.id} has no artifact {artifact.path}")
        self._fetch(url, path, f"task {run.id}: {what}")
        if digest:
            if sha256_file(path) != digest:
                raise TrackerError(f"clearml: task {run.id}: {what}: the bytes at {url} do not match the SHA-256 "
                                   "the task recorded")

    def registered_models(self):
        return []

    def model_versions(self, model):
        return []
