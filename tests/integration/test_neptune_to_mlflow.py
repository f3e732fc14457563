"""A neptune-exporter export (Parquet in the exporter's schema, written with pyarrow: the exporter needs a Neptune
server to write one) copied by tracker_copy into a real MLflow server: run fields from ``sys/*``, params,
1,200-point float series with fractional steps (a per-run step scale, recorded), a sparse series, string and
histogram series, a file, a file set, a file series, tags, a forked run nested under its parent; a re-run
changes nothing; check mode writes nothing; a run cut off, a foreign schema and a missing file are refused."""

from __future__ import annotations

import datetime
import hashlib
from decimal import Decimal

import pyarrow as pa
import pytest
from mlflow.tracking import MlflowClient

from tests.integration.test_mlflow_to_wandb import md5s, play
from tests.integration.test_tracker_copy import copies
from tests.mlflow_records import side_lines
from tests.neptune_exports import EXPORT_SCHEMA, row, write

pytestmark = pytest.mark.integration
TASK = "copy"
T0 = datetime.datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=datetime.timezone.utc)
PROJECT = "ws/proj"


def _ms(moment):
    return int((moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds() * 1000)


def export(root, missing_file=False):
    """Two runs of one project: RUN-1 with every attribute kind, RUN-2 forked from it at step 2.5."""
    files = root / "files"
    (files / "ws_proj" / "RUN-1" / "code" / "sub").mkdir(parents=True)
    (files / "ws_proj" / "RUN-1" / "model").mkdir(parents=True)
    (files / "ws_proj" / "RUN-1" / "model" / "weights").write_bytes(bytes(range(256)) * 10)
    (files / "ws_proj" / "RUN-1" / "code" / "train.py").write_text("print('train')\n")
    (files / "ws_proj" / "RUN-1" / "code" / "sub" / "util.py").write_text("X = 1\n")
    for n in range(2):
        (files / "ws_proj" / "RUN-1" / f"img-{n}.png").write_bytes(b"\x89PNG" + bytes([n]) * 40)
    rows = [row("sys/name", "string", string_value="baseline"), row("sys/creation_time", "datetime", datetime_value=T0),
            row("sys/modification_time", "datetime", datetime_value=T0 + datetime.timedelta(minutes=5)),
            row("sys/owner", "string", string_value="alice"), row("sys/tags", "string_set", string_set_value=["b", "a"]),
            row("sys/description", "string", string_value="the first"), row("sys/failed", "bool", bool_value=False),
            row("sys/experiment/name", "string", string_value="exp-1"),
            row("parameters/lr", "float", float_value=0.01), row("parameters/epochs", "int", int_value=3),
            row("parameters/optimizer", "string", string_value="adam"),
            row("model/weights", "file", file_value={"path": "ws_proj/RUN-1/model/weights"}),
            row("source_code", "file_set", file_value={"path": "ws_proj/RUN-1/code"})]
    rows += [row("train/loss", "float_series", step=Decimal(n) / 4, timestamp=T0 + datetime.timedelta(milliseconds=10 * n),
                 float_value=1.0 / (n + 1)) for n in range(1200)]
    rows += [row("train/acc", "float_series", step=Decimal(n), timestamp=T0, float_value=n / 300) for n in range(0, 300, 100)]
    rows += [row("train/log", "string_series", step=Decimal(n), timestamp=T0, string_value=f"epoch {n}") for n in range(3)]
    rows.append(row("train/hist", "histogram_series", step=Decimal("1.5"), timestamp=T0,
                    histogram_value={"type": "COUNTING", "edges": [0.0, 1.0, 2.0], "values": [3.0, 4.0]}))
    rows += [row("samples/img", "file_series", step=Decimal(n), timestamp=T0,
                 file_value={"path": f"ws_proj/RUN-1/img-{n}.png"}) for n in range(2)]
    if missing_file:
        rows.append(row("model/gone", "file", file_value={"path": "ws_proj/RUN-1/nowhere"}))
    write(root / "data" / "ws_proj", "RUN-1_part_0.parquet", rows[:700], row_group=256)
    write(root / "data" / "ws_proj", "RUN-1_part_1.parquet", rows[700:], row_group=256)
    fork = [row("sys/name", "string", run="RUN-2", string_value="forked"),
            row("sys/creation_time", "datetime", run="RUN-2", datetime_value=T0 + datetime.timedelta(hours=1)),
            row("sys/forking/parent", "string", run="RUN-2", string_value="RUN-1"),
            row("sys/forking/step", "float", run="RUN-2", float_value=2.5)]
    fork += [row("train/loss", "float_series", run="RUN-2", step=Decimal(n), timestamp=T0, float_value=0.5)
             for n in range(3, 10)]
    write(root / "data" / "ws_proj", "RUN-2_part_0.parquet", fork)
    return {"kind": "neptune_export", "export_dir": str(root / "data"), "files_dir": str(files)}


def test_a_neptune_export_into_mlflow_field_by_field(playbook, mlflow_pair, tmp_path):
    source = export(tmp_path / "export")
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "np-" + tmp_path.name[-8:]
    state = str(tmp_path / "state")
    options = dict(experiments=[PROJECT], name_prefix=f"{name}-")
    checked = playbook(play(source, target, state, **options), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 2 and client.get_experiment_by_name(f"{name}-{PROJECT}") is None

    first = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0), first
    assert first["points_copied"] == 1200 + 3 + 7
    runs = copies(client, f"{name}-{PROJECT}")
    parent, fork = runs["RUN-1"], runs["RUN-2"]
    assert (parent.info.run_name, parent.info.status) == ("baseline", "FINISHED")
    assert (parent.info.start_time, parent.info.end_time) == (_ms(T0), _ms(T0) + 300_000)
    assert parent.data.params == {"parameters/lr": "0.01", "parameters/epochs": "3", "parameters/optimizer": "adam"}
    tags = parent.data.tags
    assert (tags["a"], tags["b"], tags["mlflow.user"], tags["mlflow.note.content"]) == ("", "", "alice", "the first")
    assert tags["mlops.migration.neptune_experiment"] == "exp-1"
    assert tags["mlops.migration.step_scale"] == "100"  # quarter steps (and a step of 1.5): two places
    loss = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(parent.info.run_id, "train/loss"))
    assert [s for s, _t, _v in loss] == [25 * n for n in range(1200)]
    assert all(t == _ms(T0) + 10 * (s // 25) and v == pytest.approx(1 / (s // 25 + 1)) for s, t, v in loss)
    assert [m.step for m in client.get_metric_history(parent.info.run_id, "train/acc")] == [0, 10_000, 20_000]
    files = md5s(client, parent.info.run_id)
    weights = hashlib.md5(bytes(range(256)) * 10).hexdigest()
    assert files["model/weights"] == weights
    assert {"source_code/train.py", "source_code/sub/util.py", "mlops-migration/text/train/log.jsonl",
            "mlops-migration/histogram/train/hist.jsonl", "mlops-migration/media/samples/img.jsonl"} <= set(files)
    (hist,) = side_lines(client, parent.info.run_id, "mlops-migration/histogram/train/hist.jsonl")
    assert (hist["step"], hist["data"]["edges"], hist["data"]["values"]) == (150, [0, 1, 2], [3, 4])
    lines = side_lines(client, parent.info.run_id, "mlops-migration/text/train/log.jsonl")
    assert [(line["step"], line["text"]) for line in lines] == [(0, "epoch 0"), (100, "epoch 1"), (200, "epoch 2")]
    assert fork.data.tags["mlflow.parentRunId"] == parent.info.run_id
    # the fork continues its parent's step axis: its steps and fork step are scaled as the parent's are (100)
    assert (fork.data.tags["mlops.migration.fork_step"], fork.data.tags["mlops.migration.step_scale"]) == ("250", "100")
    assert [m.step for m in client.get_metric_history(fork.info.run_id, "train/loss")] == list(range(300, 1000, 100))

    again = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 2


def test_a_cut_off_run_a_foreign_schema_and_a_missing_file_are_refused(playbook, mlflow_pair, tmp_path):
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    cut = export(tmp_path / "cut")
    write(tmp_path / "cut" / "data" / "ws_proj", "RUN-3_part_1.parquet", [row("x", "float", run="RUN-3", float_value=1.0)])
    refused = playbook(play(cut, target, str(tmp_path / "s1"), experiments=[PROJECT], name_prefix="cut-"),
                       expect_rc=2).task(TASK)["result"]
    assert "was cut off (no part_0): ws_proj/RUN-3" in refused["msg"]
    foreign = export(tmp_path / "foreign")
    schema = pa.schema([f if f.name != "timestamp" else pa.field("timestamp", pa.int64()) for f in EXPORT_SCHEMA])
    write(tmp_path / "foreign" / "data" / "ws_proj", "RUN-4_part_0.parquet", [row("x", "float", run="RUN-4")],
          schema=schema)
    refused = playbook(play(foreign, target, str(tmp_path / "s2"), experiments=[PROJECT], name_prefix="foreign-"),
                       expect_rc=2).task(TASK)["result"]
    assert "RUN-4_part_0.parquet is not a neptune-exporter file: column timestamp is int64" in refused["msg"]
    assert not {e.name for e in client.search_experiments()} & {f"cut-{PROJECT}", f"foreign-{PROJECT}"}
    gone = export(tmp_path / "gone", missing_file=True)
    state = str(tmp_path / "s3")
    for _attempt in range(2):  # the run fails each time, naming the file; it is never marked complete
        result = playbook(play(gone, target, state, experiments=[PROJECT], name_prefix="gone-"),
                          expect_rc=2).task(TASK)["result"]
        assert "model/gone names ws_proj/RUN-1/nowhere, which is not in" in result["msg"], result["msg"]


def test_attributes_and_files_are_selected_by_pattern_and_size(playbook, mlflow_pair, tmp_path):
    source = export(tmp_path / "export")
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "sel-" + tmp_path.name[-8:]
    options = dict(experiments=[PROJECT], name_prefix=f"{name}-",
                   attributes={"include": ["train/*", "parameters/lr"], "exclude": ["train/acc"]},
                   files={"exclude": ["source_code/*"], "max_size": 1000})
    result = playbook(play(source, target, str(tmp_path / "state"), **options)).task(TASK)["result"]
    assert (result["runs"]["copied"], result["failed_count"]) == (2, 0), result["failures"]
    assert result["points_copied"] == 1200 + 7  # train/acc left out
    assert result["files_filtered_out"] == 3  # model/weights (2,560 bytes) and the two files of source_code
    parent = copies(client, f"{name}-{PROJECT}")["RUN-1"]
    assert parent.data.params == {"parameters/lr": "0.01"}
    assert set(parent.data.metrics) == {"train/loss"}
    files = md5s(client, parent.info.run_id)
    assert not any(p.startswith(("model/", "source_code/", "mlops-migration/media/samples")) for p in files)
    assert {"mlops-migration/text/train/log.jsonl", "mlops-migration/histogram/train/hist.jsonl"} <= set(files)
    refused = playbook(play(source, target, str(tmp_path / "s2"), experiments=[PROJECT], name_prefix=f"{name}x-",
                            files={"max_size": -1}), expect_rc=2).task(TASK)["result"]
    assert "files.max_size: -1 is below zero" in refused["msg"]
    assert client.get_experiment_by_name(f"{name}x-{PROJECT}") is None
