"""Benchmark: a neptune-exporter export into MLflow, tracker_copy against a bare pyarrow-read + log_batch loop.

Writes BENCH_NEPTUNE_RUNS (default 50) runs x 10 float series x BENCH_NEPTUNE_POINTS (default 10,000) points in
the exporter's Parquet schema (tests/neptune_exports.py; outside the measured time), starts the loopback MLflow
servers, then in the same run:

  ours   tracker_copy's Copier (parallel 4, verify on) from the export into the MLflow server
  bare   the same Parquet read with pyarrow (one pass per run) and its points logged with
         MlflowClient.log_batch, 1,000 a call, 4 threads: the least any tool must do

Each side runs as its own process (time and peak RSS measured from outside). Prints both, and the ratio
bare/ours (goal: >= 0.8, peak RSS under 250 MB).
"""

from __future__ import annotations

import datetime
import glob
import os
import sys
import tempfile
from decimal import Decimal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from benchmarks.measure import print_points_table, run_measured  # noqa: E402  pylint: disable=wrong-import-position

SERIES = 10
T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


def write_export(root, runs, points):
    from tests.neptune_exports import row, write  # pylint: disable=import-outside-toplevel

    for run in range(runs):
        name = f"RUN-{run}"
        rows = [row("sys/name", "string", run=name, string_value=f"run-{run}"),
                row("sys/creation_time", "datetime", run=name, datetime_value=T0),
                row("parameters/lr", "float", run=name, float_value=0.001 * (run + 1))]
        for series in range(SERIES):
            rows += [row(f"train/metric_{series}", "float_series", run=name, step=Decimal(n),
                         timestamp=T0 + datetime.timedelta(milliseconds=n), float_value=1.0 / (n + 1 + series))
                     for n in range(points)]
        write(root / "ws_proj", f"{name}_part_0.parquet", rows, row_group=100_000)


def ours(export_dir, uri):
    from ansible_collections.mlops.migration.plugins.module_utils.state.ledger import Ledger  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import MlflowTarget  # noqa
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune import NeptuneExportSource  # noqa

    source, target = NeptuneExportSource(export_dir), MlflowTarget(uri)
    with tempfile.TemporaryDirectory() as state:
        ledger = Ledger(os.path.join(state, "ledger.sqlite"), source.uri, target.uri)
        result = Copier(source, target, ledger, parallel=4).copy(["ws/proj"])
        ledger.close()
    if result["failed_count"]:
        raise SystemExit(f"copy failed: {result['failures']}")


def bare(export_dir, uri):
    from concurrent.futures import ThreadPoolExecutor  # pylint: disable=import-outside-toplevel

    import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
    from mlflow.entities import Metric  # pylint: disable=import-outside-toplevel
    from mlflow.tracking import MlflowClient  # pylint: disable=import-outside-toplevel

    client = MlflowClient(uri)
    exp = client.create_experiment("bare")

    def one(path):
        table = pq.read_table(path, columns=["attribute_path", "attribute_type", "step", "timestamp", "float_value"])
        run_id = client.create_run(exp).info.run_id
        batch = []
        for key, kind, step, stamp, value in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            if kind != "float_series":
                continue
            batch.append(Metric(key, value, int(stamp.timestamp() * 1000), int(step)))
            if len(batch) == 1000:
                client.log_batch(run_id, metrics=batch)
                batch = []
        if batch:
            client.log_batch(run_id, metrics=batch)
        client.set_terminated(run_id, "FINISHED")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, sorted(glob.glob(os.path.join(export_dir, "*", "*_part_0.parquet")))))


def main():
    import pathlib  # pylint: disable=import-outside-toplevel

    from tests.stack.stack import Stack  # pylint: disable=import-outside-toplevel

    runs = int(os.environ.get("BENCH_NEPTUNE_RUNS", "50"))
    points = int(os.environ.get("BENCH_NEPTUNE_POINTS", "10000"))
    with tempfile.TemporaryDirectory(prefix="mlops-bench-neptune-") as work:
        export_dir = os.path.join(work, "data")
        write_export(pathlib.Path(export_dir), runs, points)
        print(f"export: {runs} runs x {SERIES} series x {points:,} points (neptune-exporter's Parquet schema)")
        stack = Stack(os.path.join(work, "stack"), ["mlflow"])
        stack.start()
        try:
            uri = stack["mlflow"]["source"].tracking_uri
            mine = run_measured([sys.executable, os.path.abspath(__file__), "ours", export_dir, uri])
            theirs = run_measured([sys.executable, os.path.abspath(__file__), "bare", export_dir, uri])
        finally:
            stack.stop()
    total = runs * SERIES * points
    print_points_table(total, (("Neptune -> MLflow (tracker_copy)", mine),
                               ("bare pyarrow + log_batch loop", theirs)), 34)
    print(f"\nNeptune -> MLflow: {theirs[0] / mine[0]:.2f}x the bare loop's speed (goal >= 0.8x, peak RSS < 250 MB; "
          "ours also verifies every point back)")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        {"ours": ours, "bare": bare}[sys.argv[1]](*sys.argv[2:])
    else:
        main()
