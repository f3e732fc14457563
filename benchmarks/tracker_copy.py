"""Benchmark: tracker_copy against mlflow-export-import between two real MLflow servers.

Starts the two loopback MLflow servers, seeds the source with one experiment of
BENCH_TRACKER_RUNS (default 50) runs x 10 metrics x BENCH_TRACKER_STEPS (default 1,000) steps
+ 3 artifacts each, then in the same run:

  tracker_copy       module_utils entry (tracker_copy.Copier, parallel=4, verify on) into
                     experiment "<name>-ours"; then again with the same ledger (re-run)
  export-import      mlflow-export-import's ``export-experiment`` + ``import-experiment``
                     into "<name>-mei"; then the same again (its re-run)

and prints the times, the ratios (goals: first copy >= 5x faster, our re-run <= 10% of our
first copy) and what each kept: run ids, start/end times, run count after the re-run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from tests import mlflow_records  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack.stack import Stack  # noqa: E402  pylint: disable=wrong-import-position


def ours(source_uri, target_uri, name, state_dir):
    from ansible_collections.mlops.migration.plugins.module_utils.state.ledger import Ledger  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import (  # pylint: disable=C0415
        MlflowSource,
        MlflowTarget,
    )

    source, target = MlflowSource(source_uri), MlflowTarget(target_uri)
    ledger = Ledger(os.path.join(state_dir, "ledger.sqlite"), source.uri, target.uri)
    try:
        started = time.monotonic()
        result = Copier(source, target, ledger, parallel=4, name_prefix="", include=(
            "params", "metrics", "tags", "artifacts", "inputs")).copy([name])
        return time.monotonic() - started, result
    finally:
        ledger.close()


def export_import(source_uri, target_uri, name, into, work):
    tool = os.path.join(os.path.dirname(sys.executable), "export-experiment")
    if not os.path.exists(tool):
        raise SystemExit("mlflow-export-import is not installed (make deps installs test-requirements.txt)")
    folder = os.path.join(work, f"mei-{time.monotonic_ns()}")
    started = time.monotonic()
    for argv, uri in (([tool, "--experiment", name, "--output-dir", folder], source_uri),
                      ([os.path.join(os.path.dirname(tool), "import-experiment"), "--experiment-name", into,
                        "--input-dir", folder], target_uri)):
        proc = subprocess.run(argv, env=dict(os.environ, MLFLOW_TRACKING_URI=uri), capture_output=True, text=True,
                              check=False)
        if proc.returncode:
            raise SystemExit(f"{os.path.basename(argv[0])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    seconds = time.monotonic() - started
    shutil.rmtree(folder)
    return seconds


def fidelity(source_client, target_client, name, into):
    """(runs at the target, runs with the source's start and end times, runs keeping the source's id)."""
    from mlflow.entities import ViewType  # pylint: disable=import-outside-toplevel

    source_exp = source_client.get_experiment_by_name(name)
    originals = {r.info.run_name: r for r in source_client.search_runs([source_exp.experiment_id], max_results=1000)}
    exp = target_client.get_experiment_by_name(into)
    runs = target_client.search_runs([exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=5000)
    same_times = sum(1 for r in runs if r.info.run_name in originals
                     and (r.info.start_time, r.info.end_time) == (originals[r.info.run_name].info.start_time,
                                                                  originals[r.info.run_name].info.end_time))
    same_id = sum(1 for r in runs if r.info.run_id in {o.info.run_id for o in originals.values()})
    traced = sum(1 for r in runs if r.data.tags.get("mlops.migration.source_run_id")
                 or r.data.tags.get("mlflow_exim.import_info.src_run_id"))
    return len(runs), same_times, same_id, traced


def main():
    from mlflow.tracking import MlflowClient  # pylint: disable=import-outside-toplevel

    runs = int(os.environ.get("BENCH_TRACKER_RUNS", "50"))
    steps = int(os.environ.get("BENCH_TRACKER_STEPS", "1000"))
    with tempfile.TemporaryDirectory(prefix="mlops-bench-tracker-") as work:
        stack = Stack(os.path.join(work, "stack"), ["mlflow"])
        stack.start()
        try:
            source_uri = stack["mlflow"]["source"].tracking_uri
            target_uri = stack["mlflow"]["target"].tracking_uri
            name = "bench"
            started = time.monotonic()
            mlflow_records.seed(source_uri, name, runs=runs, metrics=10, steps=steps, artifacts=3, nested=False,
                                model=False)
            print(f"source: {runs} runs x 10 metrics x {steps:,} steps + 3 artifacts each "
                  f"(seeded in {time.monotonic() - started:.0f} s)")
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
            first, result = ours(source_uri, target_uri, name, work)
            assert result["failed_count"] == 0, result["failures"]
            rerun, again = ours(source_uri, target_uri, name, work)
            mei_first = export_import(source_uri, target_uri, name, name + "-mei", work)
            mei_rerun = export_import(source_uri, target_uri, name, name + "-mei", work)
            source, target = MlflowClient(source_uri), MlflowClient(target_uri)
            kept_ours = fidelity(source, target, name, name)
            kept_mei = fidelity(source, target, name, name + "-mei")
        finally:
            stack.stop()
    print(f"\n{'':22} {'first copy':>11} {'re-run':>9}  runs after re-run  start/end kept  source id traceable")
    print(f"{'tracker_copy':22} {first:10.1f}s {rerun:8.1f}s  {kept_ours[0]:>17}  {kept_ours[1]:>14}  "
          f"{kept_ours[3]:>19}")
    print(f"{'mlflow-export-import':22} {mei_first:10.1f}s {mei_rerun:8.1f}s  {kept_mei[0]:>17}  {kept_mei[1]:>14}  "
          f"{kept_mei[3]:>19}")
    print(f"\ntracker_copy verified every run ({result['runs']['copied']} copied, {result['points_copied']:,} points,"
          f" {result['bytes']:,} artifact bytes); re-run skipped {again['runs']['skipped']}")
    print(f"first copy: tracker_copy is {mei_first / first:.1f}x faster (goal >= 5x)")
    print(f"re-run: {rerun / first:.1%} of tracker_copy's first copy (goal <= 10%); "
          f"mlflow-export-import's re-run took {mei_rerun / mei_first:.0%} of its first and left "
          f"{kept_mei[0]} runs for {runs} source runs")


if __name__ == "__main__":
    main()
