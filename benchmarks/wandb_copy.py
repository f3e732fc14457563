"""Benchmark: W&B offline runs into MLflow, and MLflow runs into W&B offline folders, against the bare loops.

Starts the loopback MLflow servers, has the W&B SDK write BENCH_WANDB_RUNS (default 50) offline runs x 10
metrics x BENCH_WANDB_STEPS (default 1,000) steps (outside the measured time), then in the same run:

  reader             trackers/wandb_offline.read_run over every folder: records/s
  W&B -> MLflow      tracker_copy's Copier (parallel 4, verify on) from the folders into the source server,
                     and again with verify off (what reading every point back costs)
  bare log_batch     the same points (computed, not read) logged with MlflowClient.log_batch, 1,000 a call,
                     4 threads: the least any tool must do to put them into MLflow
  MLflow -> W&B      tracker_copy's Copier (verify on) from that server into new offline folders
  bare wandb.log     the same points written with the W&B SDK, one log call per step, one run at a time

Each side runs as its own process (time and peak RSS measured from outside). Prints the times, peak RSS and
the ratios bare/ours (goal: >= 0.8 for W&B -> MLflow).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from benchmarks.measure import run_measured  # noqa: E402  pylint: disable=wrong-import-position

METRICS = 10
BASE = 1_700_000_000.0


def value(run, metric, step):
    return 1.0 / (step + 1 + run + metric)


def write_wandb(root, runs, steps, project):
    """The W&B SDK writes the offline runs (one run at a time, as any training script would)."""
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true")
    import wandb  # pylint: disable=import-outside-toplevel

    settings = wandb.Settings(console="off", save_code=False, disable_git=True, x_disable_stats=True,
                              disable_job_creation=True, x_disable_meta=True)
    for run in range(runs):
        sdk = wandb.init(dir=root, mode="offline", project=project, id=f"bench{run:04d}", name=f"run-{run}",
                         config={"lr": 0.001 * (run + 1), "model": {"layers": run % 5}}, settings=settings,
                         reinit="create_new")
        for step in range(steps):
            row = {f"metric_{m}": value(run, m, step) for m in range(METRICS)}
            row["_timestamp"] = BASE + run * 100 + step * 0.01
            sdk.log(row, step=step)
        sdk.finish()


def copy(source, target, name, verify=True):
    from ansible_collections.mlops.migration.plugins.module_utils.state.ledger import Ledger  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier  # pylint: disable=C0415

    with tempfile.TemporaryDirectory() as state:
        ledger = Ledger(os.path.join(state, "ledger.sqlite"), source.uri, target.uri)
        result = Copier(source, target, ledger, parallel=4, verify=verify, name_prefix="" if verify else "nv-").copy([name])
        ledger.close()
    if result["failed_count"]:
        raise SystemExit(f"copy failed: {result['failures']}")
    print(result["points_copied"])


def bare_mlflow(uri, runs, steps, name):
    from concurrent.futures import ThreadPoolExecutor  # pylint: disable=import-outside-toplevel

    from mlflow.entities import Metric  # pylint: disable=import-outside-toplevel
    from mlflow.tracking import MlflowClient  # pylint: disable=import-outside-toplevel

    client = MlflowClient(uri)
    exp = client.create_experiment(name)

    def one(run):
        run_id = client.create_run(exp, run_name=f"run-{run}").info.run_id
        batch = []
        for step in range(steps):
            stamp = int((BASE + run * 100 + step * 0.01) * 1000)
            batch.extend(Metric(f"metric_{m}", value(run, m, step), stamp, step) for m in range(METRICS))
            if len(batch) >= 1000:
                client.log_batch(run_id, metrics=batch[:1000])
                batch = batch[1000:]
        if batch:
            client.log_batch(run_id, metrics=batch)
        client.set_terminated(run_id, "FINISHED")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(runs)))


def child(mode, *args):
    """One measured side, run as its own process."""
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    from ansible_collections.mlops.migration.plugins.module_utils.trackers import mlflow as mlflow_adapters  # noqa
    from ansible_collections.mlops.migration.plugins.module_utils.trackers import wandb as wandb_adapters  # noqa

    if mode in ("to-mlflow", "to-mlflow-unverified"):
        copy(wandb_adapters.WandbOfflineSource(args[0]), mlflow_adapters.MlflowTarget(args[1]), args[2],
             verify=mode == "to-mlflow")
    elif mode == "bare-mlflow":
        bare_mlflow(args[0], int(args[1]), int(args[2]), args[3])
    elif mode == "to-wandb":
        copy(mlflow_adapters.MlflowSource(args[0]), wandb_adapters.WandbOfflineTarget(args[1]), args[2])
    elif mode == "bare-wandb":
        write_wandb(args[0], int(args[1]), int(args[2]), args[3])


def measured(*args):
    seconds, peak, _out = run_measured([sys.executable, os.path.abspath(__file__), *map(str, args)])
    return seconds, peak


def reader_rate(root):
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_offline import read_run  # noqa

    started, records, points = time.monotonic(), 0, 0
    for folder in glob.glob(os.path.join(root, "wandb", "offline-run-*")):
        found = read_run(folder)
        records += found.records
        points += sum(len(p) for p in found.points.values())
    seconds = time.monotonic() - started
    return records / seconds, points / seconds


def main():
    from tests.stack.stack import Stack  # pylint: disable=import-outside-toplevel

    runs = int(os.environ.get("BENCH_WANDB_RUNS", "50"))
    steps = int(os.environ.get("BENCH_WANDB_STEPS", "1000"))
    with tempfile.TemporaryDirectory(prefix="mlops-bench-wandb-") as work:
        source_dir = os.path.join(work, "wandb-source")
        started = time.monotonic()
        subprocess.run([sys.executable, os.path.abspath(__file__), "bare-wandb", source_dir, str(runs), str(steps),
                        "bench"], check=True)
        print(f"source: {runs} W&B offline runs x {METRICS} metrics x {steps:,} steps "
              f"(written by the W&B SDK in {time.monotonic() - started:.0f} s)")
        records_s, points_s = reader_rate(source_dir)
        stack = Stack(os.path.join(work, "stack"), ["mlflow"])
        stack.start()
        try:
            uri = stack["mlflow"]["source"].tracking_uri
            to_mlflow = measured("to-mlflow", source_dir, uri, "bench")
            unverified = measured("to-mlflow-unverified", source_dir, uri, "bench")
            bare_mlflow_ = measured("bare-mlflow", uri, runs, steps, "bare")
            to_wandb = measured("to-wandb", uri, os.path.join(work, "wandb-target"), "bench")
            bare_wandb = measured("bare-wandb", os.path.join(work, "wandb-bare"), runs, steps, "bare")
        finally:
            stack.stop()
    points = runs * METRICS * steps
    print(f"\nreader: {records_s:,.0f} records/s, {points_s:,.0f} points/s")
    print(f"\n{'':34} {'seconds':>8} {'peak RSS':>9} {'points/s':>10}")
    for label, (seconds, peak) in (("W&B -> MLflow (tracker_copy)", to_mlflow),
                                   ("  the same, verify off", unverified),
                                   ("bare MLflow log_batch loop", bare_mlflow_),
                                   ("MLflow -> W&B (tracker_copy)", to_wandb),
                                   ("bare wandb.log loop", bare_wandb)):
        print(f"{label:34} {seconds:8.1f} {peak:7.0f}MB {points / seconds:10,.0f}")
    print(f"\nW&B -> MLflow: {bare_mlflow_[0] / to_mlflow[0]:.2f}x the bare log_batch loop's speed (goal >= 0.8x; "
          "ours also reads the folders and verifies every point back)")
    print(f"               {bare_mlflow_[0] / unverified[0]:.2f}x with verification off (reading every point back "
          "costs the server about a third of what storing it does; on 2 cores the server is the bound)")
    print(f"MLflow -> W&B: {bare_wandb[0] / to_wandb[0]:.2f}x the bare wandb.log loop's speed (ours also reads "
          "MLflow, spools, and verifies every point back)")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(*sys.argv[1:])
    else:
        main()
