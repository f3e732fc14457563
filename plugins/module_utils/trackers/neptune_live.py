# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Neptune 3.x server that still runs, read through Neptune's own query client ``neptune-query`` (kind
``neptune_query``), into the records of an export so it maps as trackers/neptune.py maps one.

``project`` is the Neptune project (``workspace/project``), the one experiment; ``api_key`` the API token (it names
the server). Runs are listed with ``fetch_runs_table`` (every attribute with its type, ``sys/*`` for the run's
fields, the other single values as params, files as artifacts); a series is read with ``fetch_metrics`` or
``fetch_series`` in windows of ``WINDOW`` points from the top (``tail_limit`` below the last window's lowest step),
spooled to a temporary file and handed on in step order, so memory holds one window, never the series; only the
run's own points are read (``lineage_to_the_root=False``: a fork's inherited points stay in its parent). Steps are
Neptune's floats taken as decimals of at most 6 places (the exporter's precision); a run whose steps are fractional
says the least power of ten that makes them whole, found by one pass over its series' steps when it is listed.
Files and file series items are downloaded through signed URLs (``download_files``). A refused token, a missing
project and an unreachable server fail ``check`` before anything is written. Importable without Ansible; reading
needs ``neptune-query``.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import json
import math
import os
import shutil
import socket
import tempfile
import threading
import urllib.parse

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    Artifact,
    Experiment,
    TrackerError,
    decimal_places,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune import NeptuneExportSource
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_export import ExportedRun, param_text

WINDOW = 100_000  # points of one series per request
RETRY_SECONDS = "120"  # neptune-query's own retries give up after this (it waits 30 minutes otherwise)
SERIES_TYPES = ("float_series", "string_series", "histogram_series", "file_series")
SIX = decimal.Decimal("0.000001")


def _library():
    os.environ.setdefault("NEPTUNE_ENABLE_COLORS", "false")  # its messages without terminal escapes
    os.environ.setdefault("NEPTUNE_QUERY_RETRY_SOFT_TIMEOUT", RETRY_SECONDS)
    os.environ.setdefault("NEPTUNE_QUERY_RETRY_HARD_TIMEOUT", RETRY_SECONDS)
    try:
        import neptune_query  # pylint: disable=import-outside-toplevel
        import neptune_query.runs  # pylint: disable=import-outside-toplevel,unused-import
    except ImportError as exc:
        raise TrackerError("reading a Neptune server needs the neptune-query package") from exc
    return neptune_query


def server_address(token):
    """The server an API token names (a token is base64 of JSON with ``api_address``/``api_url``)."""
    try:
        data = json.loads(base64.b64decode(token.strip().encode(), validate=True).decode("utf-8"))
        address = data.get("api_url") or data.get("api_address")
    except (ValueError, UnicodeDecodeError, AttributeError, binascii.Error):
        address = None
    if not isinstance(address, str) or "://" not in address:
        raise TrackerError("neptune_query: the API token is not a Neptune API token (base64 JSON naming the server)")
    return address


def exact_step(step):
    """A Neptune step (a float) as the Decimal of at most 6 places the exporter would write."""
    return decimal.Decimal(repr(float(step))).quantize(SIX).normalize() if step is not None else None


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ms(stamp):
    """A pandas Timestamp or datetime in ms since the epoch (None for a missing one)."""
    if _missing(stamp) or stamp is None or str(stamp) == "NaT":
        return None
    return int(stamp.value // 1_000_000) if hasattr(stamp, "value") else int(stamp.timestamp() * 1000)


def _jsonable(value):
    """A series value as JSON: text, a histogram ``{type, edges, values}``, a file ``{path, size, mime}``."""
    if isinstance(value, str):
        return value
    if hasattr(value, "edges"):
        return {"type": value.type, "edges": list(value.edges), "values": list(value.values)}
    return {"path": value.path, "size": value.size_bytes, "mime": value.mime_type}


class NeptuneQuerySource(NeptuneExportSource):
    KIND = "neptune_query"
    LIBRARY = ("neptune_query", "neptune-query")
    OPTIONS = {}  # project and api_key, declared by the Neptune offline and W&B API sources
    REQUIRED = ("project", "api_key")

    def __init__(self, project, api_token):  # pylint: disable=super-init-not-called
        self.project, self.token = project, api_token
        self.files = None
        self.uri = f"neptune://{project}"
        self._runs = None
        self._file_refs = {}  # storage path -> neptune_query File, for downloads
        self.lock = threading.Lock()
        self.nq = None

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["project"], settings["api_key"])

    def _client(self):
        if self.nq is None:
            self.nq = _library()
            self.nq.set_api_token(self.token)
        return self.nq.runs

    def _call(self, what, func, *args, **kwargs):
        """``func(...)``, its failure a TrackerError naming the project and what was asked (never the token)."""
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # neptune-query raises many kinds
            text = " ".join(str(exc).split()).replace(self.token, "***")[:500] or type(exc).__name__
            raise TrackerError(f"neptune_query: {what} in {self.project}: {type(exc).__name__}: {text}") from exc

    def check(self):
        if self.project.count("/") != 1:
            raise TrackerError(f"neptune_query: project {self.project!r} is not workspace/project")
        address = server_address(self.token)
        parts = urllib.parse.urlsplit(address)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname, port), timeout=15).close()
        except OSError as exc:
            raise TrackerError(f"neptune_query: the server the API token names, {address}, cannot be reached: {exc}") from exc
        self._call("listing the runs", self._client().list_runs, project=self.project)

    def experiments(self, selectors, include_deleted=False):
        found = super().experiments(selectors, include_deleted)
        return found or ([Experiment(self.project, self.project)] if not self._loaded() else [])

    def _loaded(self):
        with self.lock:
            if self._runs is None:
                runs = {}
                table = self._call("listing the runs and their attributes", self._client().fetch_runs_table,
                                   project=self.project, attributes=".*", type_suffix_in_column_names=True,
                                   sort_by="sys/creation_time", sort_direction="asc")
                for run_id, row in table.iterrows():
                    runs[str(run_id)] = self._exported(str(run_id), row)
                self._runs = runs
            return self._runs

    def _exported(self, run_id, row):
        out = ExportedRun(self.project, run_id, [], project_id=self.project)
        for column, value in row.items():
            name, _sep, kind = str(column).rpartition(":")
            if kind in SERIES_TYPES:
                if not isinstance(value, float) or not math.isnan(value):
                    out.series[name] = (kind, None)
                continue
            if _missing(value) or (kind == "datetime" and _ms(value) is None):
                continue
            if kind == "file":
                self._file_refs[value.path] = value
                out.files[name] = ("file", value.path)
            else:
                if kind == "datetime":
                    value = value.to_pydatetime()
                elif kind == "int":  # a column with a missing value is float64 in the table
                    value = int(value)
                if name.startswith("sys/"):
                    out.sys[name] = value
                else:
                    out.params[name] = param_text(kind, value)
        for name, (kind, _count) in list(out.series.items()):  # the steps' places: one pass over each series
            for step, _stamp, _value, _kind in self._windows(out, name, kind):
                out.decimals = max(out.decimals, min(6, decimal_places(step)))
        return out

    def run(self, run_id):
        """One run read again from the server (a run still being logged has new points since it was listed)."""
        table = self._call(f"reading run {run_id}", self._client().fetch_runs_table, project=self.project,
                           runs=[run_id], attributes=".*", type_suffix_in_column_names=True)
        if not len(table):
            raise TrackerError(f"neptune_query: no run {run_id} in {self.project}")
        found = self._exported(run_id, next(table.iterrows())[1])
        with self.lock:
            if self._runs is not None:
                self._runs[run_id] = found
        return self._record(found)

    def _rows(self, found, key):
        return self._windows(found, key, found.series[key][0])

    def _windows(self, found, key, kind):
        """``(step, timestamp ms, value, kind)`` of one series in step order, ``WINDOW`` points a request from the
        top, each window spooled as a JSON line and the lines read back last first."""
        client = self._client()
        fetch = client.fetch_metrics if kind == "float_series" else client.fetch_series
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as spool:
            offsets, upper = [], None
            while True:
                frame = self._call(f"reading series {key} of run {found.run_id}", fetch, project=self.project,
                                   runs=[found.run_id], attributes=[key], include_time="absolute",
                                   step_range=(None, upper), lineage_to_the_root=False, tail_limit=WINDOW)
                points = self._points(frame, key, upper)
                if points:
                    offsets.append(spool.tell())
                    spool.write(json.dumps(points) + "\n")
                if len(frame) < WINDOW or not points:
                    break
                upper = points[0][0]
            for offset in reversed(offsets):
                spool.seek(offset)
                for step, stamp, value in json.loads(spool.readline()):
                    yield exact_step(step), stamp, value, kind

    def _points(self, frame, key, upper):
        """``[step, ms, value]`` of a window's frame in step order, without the points at or above ``upper``."""
        out = []
        if frame is None or not len(frame):
            return out
        values = frame[(key, "value")] if (key, "value") in frame.columns else frame[key]
        stamps = frame[(key, "absolute_time")] if (key, "absolute_time") in frame.columns else None
        for index, value in values.items():
            step = float(index[1] if isinstance(index, tuple) else index)
            if _missing(value) or (upper is not None and step >= upper):
                continue
            stamp = _ms(stamps[index]) if stamps is not None else None
            if not isinstance(value, (int, float, str)) and hasattr(value, "path"):
                self._file_refs[value.path] = value
            out.append([step, stamp, value if isinstance(value, (int, float, str)) else _jsonable(value)])
        out.sort(key=lambda point: point[0])
        return out

    def _download(self, run, path, what, dest):
        ref = self._file_refs.get(path)
        if ref is None:
            raise TrackerError(f"neptune_query: run {run.id}: {what} names {path}, which the server did not list")
        with tempfile.TemporaryDirectory(prefix="mlops-neptune-") as scratch:
            result = self._call(f"downloading {path} of run {run.id}", self._client().download_files, files=[ref],
                                destination=scratch)
            got = [v for v in result.to_numpy().ravel() if isinstance(v, str) and os.path.isfile(v)]
            if not got:
                raise TrackerError(f"neptune_query: run {run.id}: {what} {path} could not be downloaded (not found)")
            shutil.move(got[0], dest)

    def series_file(self, run, item, path):
        self._download(run, item.file, f"file series {item.key}", path)

    def artifacts(self, run):
        return [Artifact(name, getattr(self._file_refs.get(rel), "size_bytes", None))
                for name, (_kind, rel) in sorted(self._found(run).files.items())]

    def download(self, run, artifact, path):
        kind_rel = self._found(run).files.get(artifact.path)
        if kind_rel is None:
            raise TrackerError(f"neptune_query: run {run.id} has no file attribute {artifact.path}")
        self._download(run, kind_rel[1], f"file attribute {artifact.path}", path)
