"""Benchmark: a ClearML server's stores into MLflow, tracker_copy against a bare search-scroll + log_batch loop.

Starts the loopback FerretDB, OpenSearch and MLflow servers, seeds BENCH_CLEARML_TASKS (default 200) ClearML tasks
(the ``backend`` database's project and task documents) with 10 scalar series x BENCH_CLEARML_POINTS (default 1,000)
iterations each in ``events-training_stats_scalar-<company>`` (laid out by clearml-server's templates,
tests/clearml_events.py; outside the measured time), then in the same run:

  ours   tracker_copy's Copier (kind clearml_server, parallel 4, verify on: every point read back and compared)
  bare   per task, one scroll over the task's scalar events and MlflowClient.log_batch, 1,000 points a call, 4
         threads: the least any tool must do (no verification)

Each side runs as its own process (time and peak RSS measured from outside). Prints both, points/s, and the ratio
bare/ours (goal: >= 0.8 with verification on).
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from benchmarks.measure import print_points_table, run_measured  # noqa: E402  pylint: disable=wrong-import-position

SERIES = 10
COMPANY = "bench"
DATABASE = "backend"
PROJECT = "bench/clearml"
T0 = 1_700_000_000_000


def seed(mongo_uri, search, tasks, points):
    import pymongo  # pylint: disable=import-outside-toplevel

    from tests import clearml_events  # pylint: disable=import-outside-toplevel

    client = pymongo.MongoClient(mongo_uri)
    db = client[DATABASE]
    db.project.insert_one({"_id": "p" * 32, "name": PROJECT, "basename": "clearml", "company": COMPANY})
    started = datetime.datetime(2024, 1, 1)
    db.task.insert_many([{"_id": f"{n:032x}", "name": f"task-{n}", "project": "p" * 32, "status": "completed",
                          "type": "training", "user": "bench", "company": COMPANY, "created": started,
                          "started": started, "completed": started + datetime.timedelta(hours=1),
                          "hyperparams": {"General": {"lr": {"section": "General", "name": "lr", "value": "0.01",
                                                             "type": "float"}}}} for n in range(tasks)])
    client.close()
    clearml_events.install_templates(search.request)
    index = clearml_events.index_name("training_stats_scalar", COMPANY)
    for n in range(tasks):
        pairs = []
        for series in range(SERIES):
            for it in range(points):
                pairs.append((f"{n}-{series}-{it}", {
                    "@timestamp": T0 + it, "timestamp": T0 + it, "type": "training_stats_scalar", "task": f"{n:032x}",
                    "iter": it, "metric": "loss", "variant": f"s{series}", "value": 1.0 / (it + 1 + series),
                    "worker": "w", "company_id": COMPANY}))
        search.request("POST", "/_bulk", clearml_events.bulk_body(index, pairs), "application/x-ndjson")
    search.request("POST", f"/{index}/_refresh")


def ours(mongo_uri, search_url, tracking_uri):
    from ansible_collections.mlops.migration.plugins.module_utils.state.ledger import Ledger  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.clearml_server import ClearmlServerSource  # noqa
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import MlflowTarget  # noqa

    source = ClearmlServerSource(mongo_uri, search_url, DATABASE, company=COMPANY)
    target = MlflowTarget(tracking_uri)
    source.check()
    with tempfile.TemporaryDirectory() as state:
        ledger = Ledger(os.path.join(state, "ledger.sqlite"), source.uri, target.uri)
        result = Copier(source, target, ledger, parallel=4, include=("params", "metrics", "tags")).copy([PROJECT])
        ledger.close()
    if result["failed_count"]:
        raise SystemExit(f"copy failed: {result['failures'][:3]}")
    print(json.dumps({"points": result["points_copied"]}))


def bare(mongo_uri, search_url, tracking_uri):
    from concurrent.futures import ThreadPoolExecutor  # pylint: disable=import-outside-toplevel

    import pymongo  # pylint: disable=import-outside-toplevel
    from mlflow.entities import Metric  # pylint: disable=import-outside-toplevel
    from mlflow.tracking import MlflowClient  # pylint: disable=import-outside-toplevel

    from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchClient  # noqa

    tasks = list(pymongo.MongoClient(mongo_uri)[DATABASE].task.find({}, {"name": 1}))
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("bare-clearml")
    index = f"events-training_stats_scalar-{COMPANY}"

    def one(task):
        search = SearchClient(search_url)
        run_id = client.create_run(exp, run_name=task["name"]).info.run_id
        batch = []
        for hits in search.scroll(index, {"term": {"task": task["_id"]}}, 5000):
            for hit in hits:
                event = hit["_source"]
                batch.append(Metric(f"{event['metric']}/{event['variant']}", event["value"], event["timestamp"],
                                    event["iter"]))
                if len(batch) == 1000:
                    client.log_batch(run_id, metrics=batch)
                    batch = []
        if batch:
            client.log_batch(run_id, metrics=batch)
        client.set_terminated(run_id, "FINISHED")
        search.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, tasks))


def main():
    from tests.stack.stack import Stack  # pylint: disable=import-outside-toplevel

    tasks = int(os.environ.get("BENCH_CLEARML_TASKS", "200"))
    points = int(os.environ.get("BENCH_CLEARML_POINTS", "1000"))
    with tempfile.TemporaryDirectory(prefix="mlops-bench-clearml-") as work:
        stack = Stack(os.path.join(work, "stack"), ["mongo", "search", "mlflow"])
        stack.start()
        try:
            mongo, search = stack["mongo"]["source"].uri, stack["search"]["source"]
            seed(mongo, search, tasks, points)
            print(f"stores: {tasks} tasks x {SERIES} scalar series x {points:,} iterations (FerretDB + OpenSearch)")
            uri = stack["mlflow"]["source"].tracking_uri
            mine = run_measured([sys.executable, os.path.abspath(__file__), "ours", mongo, search.url, uri])
            theirs = run_measured([sys.executable, os.path.abspath(__file__), "bare", mongo, search.url, uri])
        finally:
            stack.stop()
    total = tasks * SERIES * points
    print_points_table(total, (("ClearML -> MLflow (tracker_copy)", mine),
                               ("bare scroll + log_batch loop", theirs)), 36)
    print(f"\nClearML server stores -> MLflow: {theirs[0] / mine[0]:.2f}x the bare loop's speed (goal >= 0.8x; ours "
          "also verifies every point back)")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        {"ours": ours, "bare": bare}[sys.argv[1]](*sys.argv[2:])
    else:
        main()
