# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An export written by Neptune's ``neptune-exporter`` read into neutral records (trackers/base.py).

The export is ``<data dir>/<project>/<run>_part_<N>.parquet``: one row per attribute value, with the columns
of ``SCHEMA`` (``step`` a decimal with 6 places, times in ms). The exporter renames ``part_0`` last, so a
run without it was cut off and is reported, never read. Files an attribute names (``file_value.path``) are
under the files directory. Every file is read row group by row group (``pyarrow``), so memory stays bounded
by a row group, not a run:

- ``read_run`` makes one pass over a run's parts and keeps what is not a series: the ``sys/*`` attributes
  (name, creation time, owner, tags, description, failed, experiment name, fork parent and step), the other
  single values as params (``string_set`` values joined with commas, datetimes in ISO 8601), files and file
  sets, and, per series attribute, its type and point count;
- ``series_rows`` streams one series attribute's rows (step as a ``Decimal``, timestamp in ms, value), the
  rows of other attributes skipped in bulk (``pyarrow.compute``).

A file whose columns are not the exporter's is refused naming the file and the column. Importable without
Ansible; reading needs ``pyarrow``.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError

SCHEMA = (  # column, arrow type as pyarrow prints it
    ("project_id", "string"), ("run_id", "string"), ("attribute_path", "string"), ("attribute_type", "string"),
    ("step", "decimal128(18, 6)"), ("timestamp", "timestamp[ms, tz=UTC]"), ("int_value", "int64"),
    ("float_value", "double"), ("string_value", "string"), ("bool_value", "bool"),
    ("datetime_value", "timestamp[ms, tz=UTC]"), ("string_set_value", "list<item: string>"),
    ("file_value", "struct<path: string>"),
    ("histogram_value", "struct<type: string, edges: list<item: double>, values: list<item: double>>"),
)
VALUE_COLUMN = {"float": "float_value", "int": "int_value", "string": "string_value", "bool": "bool_value",
                "datetime": "datetime_value", "string_set": "string_set_value", "file": "file_value",
                "file_set": "file_value", "artifact": "file_value", "float_series": "float_value",
                "string_series": "string_value", "histogram_series": "histogram_value", "file_series": "file_value"}
SERIES_TYPES = ("float_series", "string_series", "histogram_series", "file_series")
FILE_TYPES = ("file", "file_set", "artifact")
PART = re.compile(r"^(?P<run>.+)_part_(?P<part>\d+)\.parquet$")
BATCH_ROWS = 65_536


class ExportError(TrackerError):
    """A neptune-exporter export that cannot be read as one (the file, and the column or row, named)."""


@dataclass
class ExportedRun:
    project: str
    run_id: str
    parts: list  # the run's Parquet files, part 0 first
    sys: dict = field(default_factory=dict)  # sys/* attribute path -> value
    params: dict = field(default_factory=dict)  # other single values, as text
    files: dict = field(default_factory=dict)  # attribute path -> (type, path under the files directory)
    series: dict = field(default_factory=dict)  # attribute path -> (type, rows)
    decimals: int = 0  # the most decimal places a step of the run has (0 to 6)
    rows: int = 0
    project_id: str | None = None  # the Neptune project (workspace/project) the rows name


def _arrow():
    try:
        import pyarrow  # pylint: disable=import-outside-toplevel
        import pyarrow.compute  # pylint: disable=import-outside-toplevel,unused-import
        import pyarrow.parquet  # pylint: disable=import-outside-toplevel,unused-import
    except ImportError as exc:
        raise TrackerError("reading a neptune-exporter export needs the pyarrow package") from exc
    if pyarrow.default_memory_pool().backend_name != "system":
        # the C library's allocator: jemalloc keeps the pages of the row groups several threads decoded (measured:
        # a copy of 8 runs x 100,000 points, 4 at a time, peaked at 367 MB with jemalloc, 311 MB with this)
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    return pyarrow


def check_schema(path, schema):
    """Refuse a Parquet file whose columns are not the exporter's (ExportError naming the file and column)."""
    have = {f.name: str(f.type).replace("list<element: ", "list<item: ") for f in schema}  # Parquet's list name
    for name, kind in SCHEMA:
        if name not in have:
            raise ExportError(f"{path} is not a neptune-exporter file: it has no column {name}")
        if have[name] != kind:
            raise ExportError(f"{path} is not a neptune-exporter file: column {name} is {have[name]}, not {kind}")


def run_parts(data_dir):
    """``(complete, cut_off)``: ``{(project dir, run prefix): [parts, part 0 first]}`` of the runs whose part 0
    exists, and the ``(project dir, run prefix)`` of runs with later parts only (an export cut short)."""
    found = {}
    for path in glob.glob(os.path.join(data_dir, "*", "*_part_*.parquet")):
        match = PART.match(os.path.basename(path))
        if match:
            key = (os.path.basename(os.path.dirname(path)), match.group("run"))
            found.setdefault(key, []).append((int(match.group("part")), path))
    complete, cut_off = {}, []
    for key, parts in sorted(found.items()):
        parts.sort()
        if parts[0][0] == 0:
            complete[key] = [path for _n, path in parts]
        else:
            cut_off.append(key)
    return complete, cut_off


def _batches(parts, columns):
    pyarrow = _arrow()
    for path in parts:
        try:
            handle = pyarrow.parquet.ParquetFile(path)
        except (OSError, pyarrow.ArrowException) as exc:
            raise ExportError(f"{path} cannot be read as Parquet: {exc}") from exc
        check_schema(path, handle.schema_arrow)
        try:
            for batch in handle.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                yield path, batch
        except (OSError, pyarrow.ArrowException) as exc:
            raise ExportError(f"{path} is corrupt: {exc}") from exc


def param_text(kind, value):
    """A single value as param text: sets joined with commas, datetimes in ISO 8601, booleans true/false."""
    if kind == "string_set":
        return ",".join(sorted(value or ()))
    if kind == "datetime":
        return value.isoformat() if value is not None else None
    if kind == "bool":
        return "true" if value else "false"
    return None if value is None else str(value)


def _decimals(pyarrow, steps, least):
    """The fewest decimal places (``least`` to 6) that hold every one of ``steps`` exactly."""
    for places in range(least, 6):
        try:
            pyarrow.compute.cast(steps, pyarrow.decimal128(18, places), safe=True)
            return places
        except pyarrow.ArrowInvalid:
            continue
    return 6


def read_run(project, run_prefix, parts):
    """The ExportedRun of one run's parts: one pass, series counted and not kept."""
    pyarrow = _arrow()
    out = ExportedRun(project, run_prefix, parts)
    columns = [name for name, _kind in SCHEMA if name != "timestamp"]
    for path, batch in _batches(parts, columns):
        kinds = batch.column("attribute_type")
        single = batch.filter(pyarrow.compute.invert(pyarrow.compute.is_in(kinds, pyarrow.array(SERIES_TYPES))))
        for offset, row in enumerate(single.to_pylist()):
            out.run_id = row["run_id"] or out.run_id
            out.project_id = row["project_id"] or out.project_id
            kind, name = row["attribute_type"], row["attribute_path"]
            column = VALUE_COLUMN.get(kind)
            if column is None:
                raise ExportError(f"{path}: attribute {name} has the type {kind!r}, which neptune-exporter "
                                  f"does not write (row {out.rows + offset})")
            value = row[column]
            if kind in FILE_TYPES:
                if not value or not value.get("path"):
                    raise ExportError(f"{path}: file attribute {name} names no file (row {out.rows + offset})")
                out.files[name] = (kind, value["path"])
            elif name.startswith("sys/"):
                out.sys[name] = value
            else:
                out.params[name] = param_text(kind, value)
        counted = batch.filter(pyarrow.compute.is_in(kinds, pyarrow.array(SERIES_TYPES)))
        if counted.num_rows:
            out.decimals = max(out.decimals, _decimals(pyarrow, counted.column("step"), out.decimals))
            groups = pyarrow.Table.from_batches([counted]).group_by(["attribute_path", "attribute_type"]).aggregate(
                [([], "count_all")])
            for name, kind, count in zip(*(groups.column(c).to_pylist() for c in
                                           ("attribute_path", "attribute_type", "count_all"))):
                known = out.series.get(name)
                if known and known[0] != kind:
                    raise ExportError(f"{path}: series {name} is both {known[0]} and {kind}")
                out.series[name] = (kind, (known[1] if known else 0) + count)
        out.rows += batch.num_rows
    return out


def series_rows(parts, attribute_path):
    """``(step, timestamp ms, value, attribute type)`` of one series attribute, in file order; ``step`` a Decimal."""
    pyarrow = _arrow()
    columns = ["attribute_path", "attribute_type", "step", "timestamp", "float_value", "string_value",
               "histogram_value", "file_value"]
    for _path, batch in _batches(parts, columns):
        wanted = batch.filter(pyarrow.compute.equal(batch.column("attribute_path"), attribute_path))
        if not wanted.num_rows:
            continue
        kinds = wanted.column("attribute_type").to_pylist()
        stamps = pyarrow.compute.cast(wanted.column("timestamp"), pyarrow.int64()).to_pylist()  # exact ms
        values = wanted.column(VALUE_COLUMN.get(kinds[0], "float_value")).to_pylist()
        yield from zip(wanted.column("step").to_pylist(), stamps, values, kinds)
