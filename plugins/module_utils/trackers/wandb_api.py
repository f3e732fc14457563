# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live W&B API as a tracker source (kind ``wandb_api``), read with the W&B SDK's ``wandb.Api()``.

A project of ``entity`` is an experiment. Runs are listed with their config, summary and history keys
(``api.runs(..., filters=run_filters)``, W&B's MongoDB-style run filters, then the copy's own filters). Each
metric is read with ``scan_history(keys=[metric, "_timestamp"])``, page by page, one metric at a time, so a
sparse metric never waits on rows where another is missing (the W&B server answers a key set only with rows
holding all of it). Media, histograms and other typed history values are read the same way, per key, into
the series kinds of trackers/base.py (trackers/wandb_offline.py ``history_item``, as for offline runs);
console output comes from ``console_logs()``; the run's files (``files()``) are its artifacts, and its logged
artifacts (``logged_artifacts()``) the artifacts ``wandb-artifacts/<name>/<path>`` with ``<name>.json`` (as
for offline runs), every file downloaded from the server and checked against the md5 it lists. Where the
server holds a run's history in parquet exports, the SDK's ``scan_history`` reads them (by byte ranges, the
columns asked for), so ``download_history_exports`` (whole files to disk) is not used. A run's W&B ``state`` becomes the neutral status
(crashed and preempted runs are FAILED) and is kept in the tag ``mlops.migration.wandb_state``.

Every API call goes through ``_call``: at most ``max_requests`` at once across the copy's parallel runs,
and a failure that is worth retrying (429, 5xx, a reset connection: the SDK's ``wandb-core`` already
honours ``Retry-After``) retried with backoff. Not read from the API: the model registry and system metrics.
Importable without Ansible; reading needs the ``wandb`` package.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import urllib.parse

from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    Artifact,
    Experiment,
    Point,
    Run,
    SeriesItem,
    SourceAdapter,
    TrackerError,
    TransientError,
    epoch_ms,
    retried,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_offline import (
    LOGGED_DIR,
    MEDIA_TYPES,
    ROW_KEYS,
    SUMMARY_LEFT_OUT,
    by_name,
    flatten,
    history_item,
    md5_hex,
    ms_of,
)

OPTIONS = dict(base_url=dict(type="str"), api_key=dict(type="str", no_log=True), run_filters=dict(type="dict"),
               max_requests=dict(type="int"))
DEFAULT_BASE_URL = "https://api.wandb.ai"
STATE_TAG = "mlops.migration.wandb_state"
STATES = {"finished": "FINISHED", "failed": "FAILED", "crashed": "FAILED", "preempted": "FAILED",
          "killed": "KILLED", "running": "RUNNING", "preempting": "RUNNING", "pending": "SCHEDULED"}
PAGE = 1000  # history rows per page (the SDK's own default)
RETRIES = 6
REACH_SECONDS = 10
_END = object()
PATTERN_SIGNS = set(".^$*+?{}[]\\|()")
TRANSIENT = ("429", "500", "502", "503", "504", "rate limit", "timed out", "timeout", "connection reset",
             "connection refused", "temporarily")


def _ms_of_iso(text):
    """An API time (ISO 8601, UTC, with or without a zone) in ms since the epoch; None when there is none."""
    if not text:
        return None
    moment = text if isinstance(text, datetime.datetime) else datetime.datetime.fromisoformat(
        str(text).replace("Z", "+00:00"))
    return epoch_ms(moment)  # the microseconds cut, as the SDK's own records cut nanoseconds


def _series_of(history_keys):
    """``(metric keys, {kind: keys})`` from a run's ``historyKeys`` (each key's value types and counts)."""
    metrics, series = [], {}
    for key, about in sorted(((history_keys or {}).get("keys") or {}).items()):
        if key in ROW_KEYS:
            continue
        for kind in sorted({entry.get("type") for entry in about.get("typeCounts") or ()}):
            if kind == "number":
                metrics.append(key)
                continue
            neutral = ("media" if kind in MEDIA_TYPES else "histogram" if kind == "histogram"
                       else "text" if kind in ("string", "boolean") else "plot")
            if key not in series.setdefault(neutral, []):
                series[neutral].append(key)
    return metrics, series


def _hex(md5):
    """The md5 the API lists (base64) in hex; None when it lists none."""
    return md5_hex(md5) if md5 else None


def _transient(exc):
    text = str(exc).lower()
    return any(word in text for word in TRANSIENT)


class WandbApiSource(SourceAdapter):
    KIND = "wandb_api"
    LIBRARY = ("wandb", "wandb")
    OPTIONS = OPTIONS
    REQUIRED = ("entity",)

    def __init__(self, entity, base_url=None, api_key=None, run_filters=None, max_requests=None):
        self.entity = entity
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("WANDB_API_KEY")
        self.run_filters = dict(run_filters or {})
        self.slots = threading.BoundedSemaphore(max(1, max_requests or 4))
        self.uri = f"wandb-api://{re.sub(r'^https?://', '', self.base_url)}/{entity}"
        self._api = None
        self._runs = {}  # run id -> the SDK's run object, from the listing
        self._artifacts = {}  # run id -> its logged artifacts (``_logged``)
        self.lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["entity"], settings.get("base_url"), settings.get("api_key"), settings.get("run_filters"),
                   settings.get("max_requests"))

    # the API, one call at a time per slot -----------------------------------------------------

    def _call(self, what, func, *args, **kwargs):
        """``func(*args)`` holding one of the ``max_requests`` slots; transient failures retried with backoff."""
        def once():
            with self.slots:
                return func(*args, **kwargs)

        try:
            return retried(once, lambda exc: not isinstance(exc, TrackerError) and _transient(exc),
                           RETRIES)
        except TrackerError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught  # the SDK raises many kinds
            error = TransientError if _transient(exc) else TrackerError
            said = (str(exc).splitlines() or [type(exc).__name__])[0][:400]
            raise error(f"wandb_api {self.base_url}: {what}: {said}") from exc

    def _pages(self, what, iterable):
        """Iterate an SDK paginator, each page fetch (a ``next``) holding a slot and retried."""
        iterator = self._call(what, iter, iterable)
        while True:
            item = self._call(what, next, iterator, _END)
            if item is _END:
                return
            yield item

    @property
    def api(self):
        with self.lock:
            if self._api is None:
                os.environ.setdefault("WANDB_SILENT", "true")
                import wandb  # pylint: disable=import-outside-toplevel

                self._api = self._call("sign in", wandb.Api, overrides={"base_url": self.base_url},
                                       api_key=self.api_key, timeout=60)
            return self._api

    def check(self):
        if not self.api_key:
            raise TrackerError("wandb_api: no API key: give api_key (or set WANDB_API_KEY)")
        place = urllib.parse.urlsplit(self.base_url)
        port = place.port or (443 if place.scheme == "https" else 80)
        try:  # the SDK would retry an unreachable server for its whole timeout, then say it is "busy"
            socket.create_connection((place.hostname, port), timeout=REACH_SECONDS).close()
        except OSError as exc:
            raise TrackerError(f"wandb_api: cannot reach {place.hostname}:{port} ({self.base_url}): {exc}") from exc
        self.api  # pylint: disable=pointless-statement  # signs in: a refused key or unreachable server fails here

    # records ----------------------------------------------------------------------------------

    def experiments(self, selectors, include_deleted=False):
        patterns = [re.compile(s) for s in selectors or []]
        names = sorted(p.name for p in self._pages(f"projects of {self.entity}", self.api.projects(self.entity)))
        missing = [s for s in selectors or [] if not set(s) & PATTERN_SIGNS and s not in names]  # a name, not a pattern
        if missing:
            raise TrackerError(f"wandb_api {self.base_url}: entity {self.entity} has no project "
                               f"{', '.join(missing)} (it has: {', '.join(names[:20]) or 'none'})")
        return [Experiment(name, name) for name in names if not patterns or any(p.fullmatch(name) for p in patterns)]

    def runs(self, experiment, include_deleted=False):
        path = f"{self.entity}/{experiment.id}"
        listed = self._pages(f"runs of {path}", self.api.runs(path, filters=self.run_filters, per_page=100,
                                                              lazy=False))
        out = []
        for sdk_run in listed:
            with self.lock:
                self._runs[sdk_run.id] = sdk_run
            out.append(self._record(sdk_run, experiment.id))
        return sorted(out, key=lambda run: (run.start_time or 0, run.id))

    def run(self, run_id):
        with self.lock:
            known = self._runs.get(run_id)
        if known is None:
            raise TrackerError(f"wandb_api: run {run_id} was not listed")
        fresh = self._call(f"run {run_id}", self.api.run, f"{self.entity}/{known.project}/{run_id}")
        with self.lock:
            self._runs[run_id] = fresh
        return self._record(fresh, known.project)

    def _sdk_run(self, run):
        with self.lock:
            found = self._runs.get(run.id)
        if found is None:
            raise TrackerError(f"wandb_api: run {run.id} was not listed")
        return found

    def _record(self, sdk_run, project):
        attrs = getattr(sdk_run, "_attrs", {}) or {}
        summary = {k: v for k, v in dict(sdk_run.summary_metrics or {}).items() if k not in SUMMARY_LEFT_OUT}
        config = {k: v for k, v in dict(sdk_run.config or {}).items() if k != "_wandb"}
        metrics, series = _series_of(attrs.get("historyKeys"))
        start = _ms_of_iso(attrs.get("createdAt"))
        status = STATES.get(sdk_run.state, "FAILED")
        end = None
        if status not in ("RUNNING", "SCHEDULED"):
            runtime = (sdk_run.summary_metrics or {}).get("_runtime")
            end = start + round(runtime * 1000) if start is not None and isinstance(runtime, (int, float)) \
                else _ms_of_iso(attrs.get("heartbeatAt"))
        if self._has_console(sdk_run):
            series.setdefault("text", []).append("console")
        user = (attrs.get("user") or {}).get("username")
        tags = {tag: "" for tag in sdk_run.tags or ()}
        tags[STATE_TAG] = sdk_run.state
        return Run(id=sdk_run.id, experiment_id=project, name=sdk_run.name or sdk_run.id, start_time=start,
                   end_time=end, status=status, user=user, params=flatten(config), tags=tags, metric_keys=metrics,
                   description=attrs.get("notes") or None, group=sdk_run.group or None,
                   job_type=sdk_run.job_type or None, summary=summary, config=config, series=series)

    def _has_console(self, sdk_run):
        lines = self._pages(f"console of run {sdk_run.id}", sdk_run.console_logs(per_page=1))
        return next(lines, None) is not None

    def _rows(self, run, key):
        """``(step, timestamp ms, value)`` of one history key, every row holding it, page by page."""
        sdk_run = self._sdk_run(run)
        scan = self._call(f"history of run {run.id}", sdk_run.scan_history, keys=[key, "_timestamp"], page_size=PAGE)
        for row in self._pages(f"history {key} of run {run.id}", scan):
            if key in row:
                yield row.get("_step"), ms_of(row.get("_timestamp")), row[key]

    def metric_history(self, run, key):
        for step, stamp, value in self._rows(run, key):
            item = history_item(key, value, step, stamp)
            if isinstance(item, Point):
                yield item

    def series(self, run, kind, key):
        if kind == "text" and key == "console":
            for line in self._pages(f"console of run {run.id}", self._sdk_run(run).console_logs(per_page=PAGE)):
                yield SeriesItem("console", None, _ms_of_iso(line.timestamp), text=line.content,
                                 data={"stream": "stderr" if line.level == "error" else "stdout"})
            return
        for step, stamp, value in self._rows(run, key):
            item = history_item(key, value, step, stamp)
            if isinstance(item, SeriesItem):
                yield item

    def _files(self, run):
        return {f.name: f for f in self._pages(f"files of run {run.id}", self._sdk_run(run).files(per_page=100))}

    def artifacts(self, run):
        out = [Artifact(name, f.size) for name, f in sorted(self._files(run).items())]
        for name, logged in by_name(self._logged(run)).items():
            out.append(Artifact(f"{LOGGED_DIR}/{name}.json", None))
            out.extend(Artifact(f"{LOGGED_DIR}/{name}/{entry['path']}", entry["size"]) for entry in logged["files"])
        return out

    def _logged(self, run):
        """The run's logged artifacts as trackers/wandb_offline.py describes them (each file's md5 in hex), each
        with its SDK objects under ``"sdk"`` (not written out); listed once per run."""
        with self.lock:
            known = self._artifacts.get(run.id)
        if known is not None:
            return known
        out = []
        for sdk in self._pages(f"logged artifacts of run {run.id}", self._sdk_run(run).logged_artifacts(per_page=100)):
            files = {f.name: f for f in self._pages(f"files of artifact {sdk.name}", sdk.files(per_page=100))}
            out.append({"name": sdk.name.split(":")[0], "type": sdk.type, "digest": sdk.digest,
                        "description": sdk.description or None, "metadata": sdk.metadata or {},
                        "aliases": list(sdk.aliases), "version": sdk.version,
                        "files": [{"path": name, "md5": _hex(f.md5), "size": f.size} for name, f in sorted(files.items())],
                        "sdk": files})
        with self.lock:
            self._artifacts[run.id] = out
        return out

    def download(self, run, artifact, path):
        if artifact.path.startswith(LOGGED_DIR + "/"):
            rel = artifact.path[len(LOGGED_DIR) + 1:]
            logged = by_name(self._logged(run))
            if rel.endswith(".json") and rel[:-5] in logged:
                with open(path, "w", encoding="utf-8") as out:
                    json.dump({k: v for k, v in logged[rel[:-5]].items() if k != "sdk"}, out, sort_keys=True, indent=1)
                return
            name, _sep, inner = rel.partition("/")
            found = ((logged.get(name) or {}).get("sdk") or {}).get(inner)
        else:
            found = self._files(run).get(artifact.path)
        if found is None:
            raise TrackerError(f"wandb_api: run {run.id} has no file {artifact.path}")
        self._fetch(run, found, path)

    def series_file(self, run, item, path):
        self.download(run, Artifact(item.file, None), path)

    def _fetch(self, run, sdk_file, path):
        """A run file downloaded by the SDK into ``path``, checked against the md5 the server lists."""
        with tempfile.TemporaryDirectory(prefix="mlops-wandb-api-") as scratch:
            self._call(f"file {sdk_file.name} of run {run.id}", sdk_file.download, root=scratch, replace=True)
            local = os.path.join(scratch, sdk_file.name)
            if not os.path.isfile(local):
                raise TrackerError(f"wandb_api: run {run.id}: file {sdk_file.name} was not downloaded")
            want = _hex(getattr(sdk_file, "md5", None))
            if want and md5_file(local)[0] != want:
                raise TrackerError(f"wandb_api: run {run.id}: file {sdk_file.name} does not match the md5 the "
                                   "server lists")
            shutil.move(local, path)

    def registered_models(self):
        return []

    def model_versions(self, model):
        return []
