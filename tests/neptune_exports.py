"""Exports in the layout and schema of Neptune's ``neptune-exporter``, written with pyarrow (the exporter itself
needs a Neptune server to write anything): ``<data>/<project dir>/<run>_part_<N>.parquet``, one row per value."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

EXPORT_SCHEMA = pa.schema([  # the exporter's, as its storage module declares it
    ("project_id", pa.string()), ("run_id", pa.string()), ("attribute_path", pa.string()),
    ("attribute_type", pa.string()), ("step", pa.decimal128(18, 6)), ("timestamp", pa.timestamp("ms", tz="UTC")),
    ("int_value", pa.int64()), ("float_value", pa.float64()), ("string_value", pa.string()),
    ("bool_value", pa.bool_()), ("datetime_value", pa.timestamp("ms", tz="UTC")),
    ("string_set_value", pa.list_(pa.string())), ("file_value", pa.struct([("path", pa.string())])),
    ("histogram_value", pa.struct([("type", pa.string()), ("edges", pa.list_(pa.float64())),
                                   ("values", pa.list_(pa.float64()))])),
])


def row(path, kind, project="ws/proj", run="RUN-1", **values):
    """One attribute value (or series point) of a run."""
    out = {name: None for name in EXPORT_SCHEMA.names}
    out.update(project_id=project, run_id=run, attribute_path=path, attribute_type=kind, **values)
    return out


def write(directory, name, rows, schema=EXPORT_SCHEMA, row_group=None):
    """One Parquet part of the export (``directory`` the project's, ``name`` ``<run>_part_<N>.parquet``)."""
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), directory / name, row_group_size=row_group)
