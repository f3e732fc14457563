# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A reader of the offline store of ``neptune-scale`` (``.neptune/<project>_<run>_<time>/run_operations.sqlite3``),
into the records trackers/neptune_export.py reads from an export, so one adapter serves every Neptune form.

The store is SQLite: ``metadata`` (``project``, ``run_id``), ``run_operations`` (``sequence_id``,
``operation_type`` 1 for the run's creation, 0 for an update, ``operation`` the protobuf message) and
``file_upload_requests`` (the local ``source_path`` of each uploaded file's ``destination``). The messages are
neptune-api's ``neptune.ingest.v1.Run`` and ``UpdateRunSnapshot``, decoded here from the protobuf wire format
(the field numbers are those of neptune-api 0.24's ``common.proto``; nothing outside Python is needed):
a run's family, experiment, creation time and fork point; per update its step (``whole`` and ``micro``, exact
as a Decimal), timestamp, assignments, string-set changes and series appends (floats, ints, strings,
histograms, file references). Preview appends (not final) are left out. ``read_store`` makes one pass and keeps
everything but the series points; ``series_rows`` streams one series again. A message that cannot be decoded
fails naming the store and its sequence id. Importable without Ansible.
"""

from __future__ import annotations

import datetime
import os
import sqlite3
import struct
from decimal import Decimal

from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_export import ExportError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_offline import OfflineRun

STORE_FILE = "run_operations.sqlite3"
CREATE, UPDATE = 1, 0
SET_ADD, SET_REMOVE = 1, 2


class WireError(ValueError):
    """Bytes that are not the protobuf message they should be."""


def _varint(buf, pos):
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise WireError("a varint runs past the end")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise WireError("a varint longer than 10 bytes")


def fields(buf):
    """``(field number, wire type, value)`` of a message: an int for a varint, bytes for the rest."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise WireError(f"wire type {wire} of field {number} is not one protobuf 3 writes")
        if pos > len(buf):
            raise WireError(f"field {number} runs past the end")
        yield number, wire, value


def _signed(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _doubles(wire, value):
    if wire == 1:
        return [struct.unpack("<d", value)[0]]
    return list(struct.unpack(f"<{len(value) // 8}d", value))  # packed


def _uints(wire, value):
    if wire == 0:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        number, pos = _varint(value, pos)
        out.append(number)
    return out


def _text(value):
    return bytes(value).decode("utf-8")


def timestamp_ms(buf):
    seconds = nanos = 0
    for number, _wire, value in fields(buf):
        if number == 1:
            seconds = _signed(value)
        elif number == 2:
            nanos = value
    return seconds * 1000 + (nanos + 500_000) // 1_000_000  # to the nearest ms: the SDK goes through float seconds


def step(buf):
    """A Step message (``whole``, ``micro``) as an exact Decimal."""
    whole = micro = 0
    for number, _wire, value in fields(buf):
        if number == 1:
            whole = value
        elif number == 2:
            micro = value
    return Decimal(whole) + Decimal(micro).scaleb(-6)


def _histogram(buf):
    edges, counts, densities = [], None, None
    for number, wire, value in fields(buf):
        if number == 1:
            edges.extend(_doubles(wire, value))
        elif number in (4, 5):
            found = []
            for inner, inner_wire, inner_value in fields(value):
                if inner == 1:
                    found.extend(_uints(inner_wire, inner_value) if number == 4 else _doubles(inner_wire, inner_value))
            if number == 4:
                counts = found
            else:
                densities = found
    kind = "COUNTING" if counts is not None else "DENSITY"
    return {"type": kind, "edges": edges, "values": counts if counts is not None else densities or []}


def value(buf):
    """A Value message as ``(attribute type, value)``."""
    for number, wire, raw in fields(buf):
        if number == 1:
            return "float", _doubles(wire, raw)[0]
        if number == 3:
            return "int", _signed(raw)
        if number == 5:
            return "bool", bool(raw)
        if number == 6:
            return "string", _text(raw)
        if number == 8:
            moment = datetime.datetime.fromtimestamp(timestamp_ms(raw) / 1000, tz=datetime.timezone.utc)
            return "datetime", moment
        if number == 12:
            return "string_set", sorted(_text(v) for n, _w, v in fields(raw) if n == 1)
        if number == 13:
            ref = {1: "path", 2: "size_bytes", 3: "mime_type"}
            return "file", {ref[n]: (_text(v) if n != 2 else v) for n, _w, v in fields(raw) if n in ref}
        if number == 14:
            return "histogram", _histogram(raw)
    return None, None


def _entry(buf):
    key = payload = None
    for number, _wire, raw in fields(buf):
        if number == 1:
            key = _text(raw)
        elif number == 2:
            payload = raw
    return key, payload


def update(buf):
    """An UpdateRunSnapshot as a dict: ``step``, ``timestamp``, ``preview``, ``assign``, ``sets``, ``append``."""
    out = {"step": None, "timestamp": None, "preview": False, "assign": [], "sets": [], "append": []}
    for number, _wire, raw in fields(buf):
        if number == 1:
            out["step"] = step(raw)
        elif number == 2:
            out["timestamp"] = timestamp_ms(raw)
        elif number == 10:
            out["preview"] = any(n == 1 and v for n, _w, v in fields(raw))
        elif number in (4, 8):
            key, payload = _entry(raw)
            out["assign" if number == 4 else "append"].append((key, value(payload or b"")))
        elif number == 5:
            key, payload = _entry(raw)
            changes = []
            for set_field, _w, modify in fields(payload or b""):
                if set_field == 1:  # ModifyStringSet
                    for entry_field, _w2, entry in fields(modify):
                        if entry_field == 1:
                            member, op = None, None
                            for n, _w3, v in fields(entry):
                                if n == 1:
                                    member = _text(v)
                                elif n == 2:
                                    op = v
                            changes.append((member, op))
            out["sets"].append((key, changes))
    return out


def create(buf):
    """A Run message as a dict: ``run_id``, ``family``, ``experiment``, ``creation``, ``fork_parent``, ``fork_step``,
    ``owner``."""
    out = {"run_id": None, "family": None, "experiment": None, "creation": None, "fork_parent": None,
           "fork_step": None, "owner": None}
    for number, _wire, raw in fields(buf):
        if number == 1:
            out["run_id"] = _text(raw)
        elif number == 4:
            out["family"] = _text(raw)
        elif number == 5:
            out["experiment"] = _text(raw)
        elif number == 3:
            out["creation"] = timestamp_ms(raw)
        elif number == 2:
            for n, _w, v in fields(raw):
                if n == 2:
                    out["fork_parent"] = _text(v)
                elif n == 4:
                    out["fork_step"] = step(v)
        elif number == 6:
            out["owner"] = next((_text(v) for n, _w, v in fields(raw) if n in (1, 2)), None)
    return out


def _connect(path):
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.execute("SELECT count(*) FROM run_operations").fetchone()
        return db
    except sqlite3.Error as exc:
        raise ExportError(f"{path}: not a neptune-scale offline store ({exc})") from exc


def _operations(path, db):
    for sequence, kind, blob in db.execute("SELECT sequence_id, operation_type, operation FROM run_operations "
                                           "ORDER BY sequence_id"):
        try:
            yield sequence, kind, (create(blob) if kind == CREATE else update(blob))
        except (WireError, UnicodeDecodeError, struct.error) as exc:
            raise ExportError(f"{path}: operation {sequence} cannot be decoded ({exc}); the store is damaged") from exc


SERIES_TYPES = {"float": "float_series", "int": "float_series", "string": "string_series",
                "histogram": "histogram_series", "file": "file_series"}


class ScaleRun(OfflineRun):
    """An ExportedRun read from a neptune-scale store: ``parts`` is the store; ``sources`` the local file of
    each uploaded destination."""

    def __init__(self, store, run_id, project):
        super().__init__(os.path.dirname(store), run_id, project)
        self.parts = [store]
        self.sources = {}


def read_store(path):
    """The ScaleRun of one store: one pass, series counted and not kept."""
    db = _connect(path)
    try:
        meta = db.execute("SELECT project, run_id FROM metadata ORDER BY id DESC LIMIT 1").fetchone()
        if meta is None:
            raise ExportError(f"{path}: the store names no project and run (its metadata table is empty)")
        run = ScaleRun(path, meta[1], meta[0])
        run.project_id = meta[0]
        for source, destination in db.execute("SELECT source_path, destination FROM file_upload_requests"):
            run.sources[destination] = source
        sets, last = {}, None
        for sequence, kind, op in _operations(path, db):
            run.rows += 1
            if kind == CREATE:
                _created(run, op)
                continue
            last = op["timestamp"] if op["timestamp"] is not None else last
            for key, (attr_type, payload) in op["assign"]:
                _assign(run, key, attr_type, payload, sequence, path)
            for key, changes in op["sets"]:
                current = sets.setdefault(key, set())
                for member, change in changes:
                    if change == SET_ADD:
                        current.add(member)
                    elif change == SET_REMOVE:
                        current.discard(member)
            if op["preview"]:
                continue
            for key, (attr_type, _payload) in op["append"]:
                series_type = SERIES_TYPES.get(attr_type)
                if series_type is None:
                    raise ExportError(f"{path}: operation {sequence} appends a {attr_type} to {key}, which is not a series")
                known = run.series.get(key)
                run.series[key] = (series_type, (known[1] if known else 0) + 1)
                if op["step"] is not None:
                    exponent = op["step"].normalize().as_tuple().exponent
                    run.decimals = max(run.decimals, min(6, -exponent if isinstance(exponent, int) and exponent < 0 else 0))
        for key, members in sets.items():
            if key.startswith("sys/"):
                run.sys[key] = sorted(members)
            else:
                run.params[key] = ",".join(sorted(members))
        if last is not None:
            run.sys.setdefault("sys/modification_time", datetime.datetime.fromtimestamp(last / 1000, tz=datetime.timezone.utc))
        return run
    finally:
        db.close()


def _created(run, op):
    if op["creation"] is not None:
        run.sys["sys/creation_time"] = datetime.datetime.fromtimestamp(op["creation"] / 1000, tz=datetime.timezone.utc)
    if op["experiment"]:
        run.sys["sys/experiment/name"] = op["experiment"]
    if op["owner"]:
        run.sys["sys/owner"] = op["owner"]
    if op["fork_parent"]:
        run.sys["sys/forking/parent"] = op["fork_parent"]
        run.sys["sys/forking/step"] = op["fork_step"]


def _assign(run, key, attr_type, payload, sequence, path):
    if attr_type == "file":
        source = run.sources.get(payload.get("path"))
        if source is None:
            raise ExportError(f"{path}: operation {sequence} assigns the file {payload.get('path')} to {key}, "
                              "and the store has no upload request for it")
        run.files[key] = ("file", source)
    elif key.startswith("sys/"):
        run.sys[key] = payload
    elif attr_type == "string_set":
        run.params[key] = ",".join(payload)
    elif attr_type == "datetime":
        run.params[key] = payload.isoformat()
    elif attr_type == "bool":
        run.params[key] = "true" if payload else "false"
    elif attr_type is not None:
        run.params[key] = str(payload)


def series_rows(run, attribute_path):
    """``(step, timestamp ms, value, attribute type)`` of one series (final appends only; ``step`` a Decimal; a file's
    value ``{"path": its local source}``)."""
    db = _connect(run.parts[0])
    try:
        for _sequence, kind, op in _operations(run.parts[0], db):
            if kind != UPDATE or op["preview"]:
                continue
            for key, (attr_type, payload) in op["append"]:
                if key != attribute_path:
                    continue
                series_type = SERIES_TYPES[attr_type]
                if series_type == "file_series":
                    payload = {"path": run.sources.get(payload.get("path"), payload.get("path"))}
                yield op["step"], op["timestamp"], payload, series_type
    finally:
        db.close()
