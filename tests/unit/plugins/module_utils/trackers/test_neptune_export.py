"""Unit tests of module_utils/trackers/neptune_export.py: Parquet written with pyarrow to neptune-exporter's
schema (the exporter itself needs a Neptune server to write anything), read back run by run and series by
series; a foreign schema, an unknown attribute type and a run cut off are refused or reported."""

import datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_export import (
    ExportError,
    read_run,
    run_parts,
    series_rows,
)
from tests.neptune_exports import EXPORT_SCHEMA, row, write

UTC = datetime.timezone.utc
T0 = datetime.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def run_rows():
    rows = [row("sys/name", "string", string_value="baseline"), row("sys/creation_time", "datetime", datetime_value=T0),
            row("sys/tags", "string_set", string_set_value=["b", "a"]),
            row("sys/forking/parent", "string", string_value="RUN-0"), row("sys/forking/step", "float", float_value=2.5),
            row("parameters/lr", "float", float_value=0.01), row("parameters/epochs", "int", int_value=3),
            row("parameters/ok", "bool", bool_value=True), row("parameters/when", "datetime", datetime_value=T0),
            row("model/weights", "file", file_value={"path": "ws_proj/RUN-1/model/weights"})]
    rows += [row("train/loss", "float_series", step=Decimal(n) / 4, timestamp=T0 + datetime.timedelta(milliseconds=n),
                 float_value=1.0 / (n + 1)) for n in range(1200)]
    rows += [row("train/log", "string_series", step=Decimal(n), timestamp=T0, string_value=f"line {n}")
             for n in range(3)]
    rows.append(row("train/hist", "histogram_series", step=Decimal(1), timestamp=T0,
                    histogram_value={"type": "COUNTING", "edges": [0.0, 1.0, 2.0], "values": [3.0, 4.0]}))
    return rows


def test_a_run_is_read_in_one_pass_and_its_series_one_at_a_time(tmp_path):
    write(tmp_path / "ws_proj", "RUN-1_part_0.parquet", run_rows(), row_group=100)
    complete, cut_off = run_parts(str(tmp_path))
    assert list(complete) == [("ws_proj", "RUN-1")] and cut_off == []
    found = read_run("ws_proj", "RUN-1", complete["ws_proj", "RUN-1"])
    assert (found.run_id, found.sys["sys/name"], found.sys["sys/forking/parent"]) == ("RUN-1", "baseline", "RUN-0")
    assert found.sys["sys/tags"] == ["b", "a"] and found.sys["sys/creation_time"] == T0
    assert found.params == {"parameters/lr": "0.01", "parameters/epochs": "3", "parameters/ok": "true",
                            "parameters/when": T0.isoformat()}
    assert found.files == {"model/weights": ("file", "ws_proj/RUN-1/model/weights")}
    assert found.series == {"train/loss": ("float_series", 1200), "train/log": ("string_series", 3),
                            "train/hist": ("histogram_series", 1)}
    assert found.decimals == 2  # steps in quarters: two places make every one whole
    loss = list(series_rows(complete["ws_proj", "RUN-1"], "train/loss"))
    assert len(loss) == 1200 and loss[5][0] == Decimal("1.25")  # the fractional step exactly
    assert loss[5][1] == round(T0.timestamp() * 1000) + 5 and loss[5][2] == pytest.approx(1 / 6)
    (step, _stamp, hist, kind), = series_rows(complete["ws_proj", "RUN-1"], "train/hist")
    assert (step, kind, hist["edges"], hist["values"]) == (Decimal(1), "histogram_series", [0, 1, 2], [3, 4])


def test_later_parts_follow_and_a_run_without_part_0_is_cut_off(tmp_path):
    rows = run_rows()
    write(tmp_path / "ws_proj", "RUN-1_part_0.parquet", rows[:600])
    write(tmp_path / "ws_proj", "RUN-1_part_1.parquet", rows[600:])
    write(tmp_path / "ws_proj", "RUN-2_part_1.parquet", rows[:10])
    (tmp_path / "ws_proj" / "RUN-3_part_0.parquet.tmp").write_bytes(b"half written")
    complete, cut_off = run_parts(str(tmp_path))
    assert list(complete) == [("ws_proj", "RUN-1")] and cut_off == [("ws_proj", "RUN-2")]
    assert read_run("ws_proj", "RUN-1", complete["ws_proj", "RUN-1"]).series["train/loss"] == ("float_series", 1200)
    assert len(list(series_rows(complete["ws_proj", "RUN-1"], "train/loss"))) == 1200


def test_a_foreign_schema_and_an_unknown_type_are_refused_naming_the_file(tmp_path):
    foreign = pa.schema([f if f.name != "step" else pa.field("step", pa.float64()) for f in EXPORT_SCHEMA])
    write(tmp_path / "p", "R_part_0.parquet", [row("a", "float", float_value=1.0)], schema=foreign)
    with pytest.raises(ExportError, match=r"R_part_0.parquet is not a neptune-exporter file: column step is double"):
        read_run("p", "R", [str(tmp_path / "p" / "R_part_0.parquet")])
    write(tmp_path / "q", "R_part_0.parquet", [row("a", "float", float_value=1.0), row("b", "vector")])
    with pytest.raises(ExportError, match=r"attribute b has the type 'vector'.*row 1"):
        read_run("q", "R", [str(tmp_path / "q" / "R_part_0.parquet")])
    (tmp_path / "q" / "S_part_0.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ExportError, match="S_part_0.parquet cannot be read as Parquet"):
        read_run("q", "S", [str(tmp_path / "q" / "S_part_0.parquet")])
