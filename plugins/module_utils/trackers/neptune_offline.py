# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A reader of the offline folders of the ``neptune`` 1.x client (``.neptune/offline/run__<id>__<pid>__<n>/``),
into the records trackers/neptune_export.py reads from an export (``ExportedRun``), so one adapter serves both.

A folder holds ``metadata.json`` (``containerId``, ``containerType``, ``createdAt``) and the client's
operation queue, ``data-<n>.log``: one JSON line an operation, ``{"obj": {"type", "path", ...}, "version",
"at"}``, in the order the client queued them. Files an upload names are at their ``file_path`` (where the
client read them) or, for content the client copied, under the folder's ``upload_path/`` (``tmp_file_name``).
``read_folder`` makes one pass and keeps everything but the series points (their type and count only), applying
the operations as Neptune does: assignments, tag and string-set additions and removals, deletions, clears (a
series keeps only what was logged after its last clear or deletion), a step left out being the last step plus
one. ``series_rows`` streams one series again. A line that is not an operation fails naming the file and the
line (the last line cut short says the queue was cut short); an operation of a kind this reader has no place for
is kept, with its line, for the run's ``neptune/unmapped-operations.jsonl``. Importable without Ansible.
"""

from __future__ import annotations

import base64
import datetime
import glob
import json
import os
import re
from decimal import Decimal

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import decimal_places
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_export import ExportedRun, ExportError, param_text

SINGLE = {"AssignString": "string", "AssignFloat": "float", "AssignInt": "int", "AssignBool": "bool",
          "AssignDatetime": "datetime"}
SERIES = {"LogFloats": "float_series", "LogStrings": "string_series", "LogImages": "file_series"}
CLEARS = ("ClearFloatLog", "ClearStringLog", "ClearImageLog")
SETS = {"AddStrings": True, "RemoveStrings": False}
NO_RECORD = ("ConfigFloatSeries",)  # kinds with nothing to keep
DATA_FILE = re.compile(r"^data-(\d+)\.log$")


def queue_files(folder):
    """The folder's ``data-<n>.log`` files in queue order."""
    found = [(int(m.group(1)), name) for name in os.listdir(folder) for m in [DATA_FILE.match(name)] if m]
    return [os.path.join(folder, name) for _n, name in sorted(found)]


def operations(files):
    """``(file, line number, version, at, obj)`` of the queue, streamed; a line that is not an operation fails naming it."""
    for index, path in enumerate(files):
        with open(path, "rb") as handle:
            for number, raw in enumerate(iter(handle.readline, b""), 1):
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw.decode("utf-8"))
                except ValueError as exc:
                    last = index == len(files) - 1 and not handle.read(1)
                    raise ExportError(f"{path}: line {number} is not JSON ({exc})"
                                      + ("; the queue was cut short there" if last else "")) from exc
                obj = entry.get("obj") if isinstance(entry, dict) else None
                if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) or not isinstance(obj.get("path"), list):
                    raise ExportError(f"{path}: line {number} is not a neptune operation (obj with type and path)")
                yield path, number, entry.get("version"), entry.get("at"), obj


def _decimal(step):
    return Decimal(repr(float(step))) if not isinstance(step, int) else Decimal(step)


def _ms(at):
    return int(round(float(at) * 1000)) if at is not None else None


def _moment(text):
    try:
        return datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


class OfflineRun(ExportedRun):
    """An ExportedRun read from an offline folder: ``parts`` its queue files, ``files`` absolute paths."""

    def __init__(self, folder, run_id, project):
        super().__init__(project, run_id, queue_files(folder))
        self.folder = folder
        self.file_sets = {}  # attribute path -> [absolute file paths]
        self.valid_from = {}  # series path -> the version its points count from (after a clear or deletion)
        self.unmapped = []  # (file, line, obj)


def read_folder(folder, project):
    """The OfflineRun of one offline folder: one pass over its queue, series counted and not kept."""
    meta_path = os.path.join(folder, "metadata.json")
    try:
        with open(meta_path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{folder}: no readable metadata.json ({exc}); not a neptune offline folder") from exc
    run = OfflineRun(folder, str(meta.get("containerId") or os.path.basename(folder)), project)
    run.project_id = project
    if not run.parts:
        raise ExportError(f"{folder}: no data-<n>.log (the client's operation queue)")
    created = _moment(meta.get("createdAt"))
    sets, last_at = {}, None
    for path, number, version, at, obj in operations(run.parts):
        kind, name = obj["type"], "/".join(str(p) for p in obj["path"])
        last_at = at if at is not None else last_at
        run.rows += 1
        if kind in SINGLE:
            value = obj.get("value")
            if kind == "AssignDatetime":
                value = datetime.datetime.fromtimestamp(value / 1000, tz=datetime.timezone.utc) if value is not None else None
            if name.startswith("sys/"):
                run.sys[name] = value
            else:
                run.params[name] = param_text(SINGLE[kind], value)
        elif kind in SETS:
            current = sets.setdefault(name, set())
            values = set(obj.get("values") or ())
            sets[name] = current | values if SETS[kind] else current - values
        elif kind in SERIES:
            series_kind = SERIES[kind]
            known = run.series.get(name)
            if known and known[0] != series_kind:
                raise ExportError(f"{path}: line {number}: series {name} is both {known[0]} and {series_kind}")
            values = obj.get("values") or []
            run.series[name] = (series_kind, (known[1] if known else 0) + len(values))
            for value in values:
                if value.get("step") is not None:
                    run.decimals = max(run.decimals, min(6, decimal_places(_decimal(value["step"]))))
        elif kind in CLEARS or kind == "DeleteAttribute":
            run.valid_from[name] = version
            if name in run.series:
                run.series[name] = (run.series[name][0], 0)
            if kind == "DeleteAttribute":
                for store in (run.params, run.sys, run.files, run.file_sets, sets):
                    store.pop(name, None)
                run.series.pop(name, None)
        elif kind == "UploadFile":
            source = obj.get("file_path") or (os.path.join(folder, "upload_path", obj["tmp_file_name"])
                                              if obj.get("tmp_file_name") else None)
            if not source:
                raise ExportError(f"{path}: line {number}: upload {name} names no file")
            run.files[name] = ("file", source)
        elif kind == "UploadFileSet":
            keep = obj.get("reset") in (False, "False", None)  # the client writes the flag as text
            matched = list(run.file_sets.get(name, [])) if keep else []
            for pattern in obj.get("file_globs") or ():
                matched.extend(sorted(glob.glob(pattern, recursive=True)) or [pattern])
            run.file_sets[name] = matched
            if matched:
                run.files[name] = ("file_set", name)
        elif kind not in NO_RECORD:
            run.unmapped.append((path, number, obj))
    for name, values in sets.items():
        if name.startswith("sys/"):
            run.sys[name] = sorted(values)
        else:
            run.params[name] = ",".join(sorted(values))
    run.series = {name: kind_count for name, kind_count in run.series.items() if kind_count[1]}
    if created is not None:
        run.sys.setdefault("sys/creation_time", created)
    if last_at is not None:
        run.sys.setdefault("sys/modification_time", datetime.datetime.fromtimestamp(float(last_at), tz=datetime.timezone.utc))
    return run


def series_rows(run, attribute_path):
    """``(step, timestamp ms, value, attribute type)`` of one series, as Neptune keeps it: points logged before its
    last clear or deletion left out, a missing step the last one plus one; ``step`` a Decimal; an image's value is
    ``{"data": bytes, "name", "description"}``."""
    start = run.valid_from.get(attribute_path)
    last = None
    for _path, _number, version, _at, obj in operations(run.parts):
        if obj["type"] not in SERIES or "/".join(str(p) for p in obj["path"]) != attribute_path:
            continue
        if start is not None and version is not None and version < start:
            continue
        kind = SERIES[obj["type"]]
        for point in obj.get("values") or ():
            step = _decimal(point["step"]) if point.get("step") is not None else (last + 1 if last is not None else Decimal(0))
            last = step
            value = point.get("value")
            if kind == "file_series" and isinstance(value, dict):
                value = dict(value, data=base64.b64decode(value.get("data") or b""))
            yield step, _ms(point.get("ts")), value, kind
