"""Benchmark: the mongo_restore document pipeline, and a re-run over an already restored database.

1. Pipeline. BENCH_MONGO_DOCS (default 200,000) ClearML-shaped task documents of about 2 KB
   are written to a backup file (backend/task.bson). Then, each in its own process (peak RSS
   from VmHWM), in alternating order, best of BENCH_MONGO_ROUNDS (default 2):

     bare loop   bson.decode_file_iter + bson.encode over the file
     pipeline    the restore's own path: read the backup's documents, filter (ClearML's kept
                 statuses), unset four fields, rewrite artifact URLs, encode for insert
                 (documents no step touches pass on as their bytes), into an in-memory sink
     passthrough the same with no filter or rewrite configured

   Goals: pipeline >= 0.5x the bare loop's docs/s and >= 50,000 docs/s; peak RSS < 200 MB.

2. Restore into FerretDB. BENCH_MONGO_LOAD_DOCS (default 50,000) of those documents go into
   the stack's target MongoDB server (FerretDB v1, SQLite backend; or MONGO_URI_TARGET):
     bare loop   pymongo insert_many(ordered=False) of the same documents, 1,000 a call, into
                 a database of its own (the baseline: no reading of a backup, no checks)
     restore     mongo_load.restore_collection from the backup file (per batch: look up the
                 target's _ids, insert what is missing, count)
     re-run      the same restore again, with every _id present
     bare read   one find() of the whole restored collection: what any re-run that checks
                 each document must at least pay
   Goals: the restore at least 0.8x the bare loop's docs/s; the re-run at least 5x faster
   than the first restore.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from benchmarks.measure import run_measured, settle  # noqa: E402  pylint: disable=wrong-import-position
from tests import clearml_documents as clearml  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack.stack import Stack  # noqa: E402  pylint: disable=wrong-import-position

UNSET = ["status_reason", "status_message", "execution.queue", "output.destination"]
RULES = [{"from": clearml.FILES_URL + "/", "to": "s3://target-bucket/clearml/", "match": "prefix"}]
FILTER = {"status": {"$in": clearml.KEPT_STATUSES}}

BARE = """
import sys, time, bson
started = time.monotonic()
count = 0
with open(sys.argv[1], "rb") as handle:
    for doc in bson.decode_file_iter(handle):
        bson.encode(doc)
        count += 1
print(count, time.monotonic() - started)
"""

PIPELINE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.mlops.migration.plugins.module_utils.mongo import dump as mongo_dump, load as mongo_load
from ansible_collections.mlops.migration.plugins.module_utils.rewrite import parse_rules
cfg = json.loads(sys.argv[2])
settings = mongo_load.Settings(cfg["filter"], cfg["unset"], parse_rules(cfg["rules"]))
report = mongo_load.Report("backend.task")
transform = mongo_load.Transform(settings, report)
sink = 0
started = time.monotonic()
with mongo_dump.documents(cfg["root"], {"file": "backend/task.bson"}) as raw_docs:
    for batch in mongo_load.batches((transform.prepare(raw) for raw in raw_docs), 1000):
        sink += sum(len(mongo_load.encoded(doc)) for doc in batch)  # what insert_many would send
print(report["found"], time.monotonic() - started, report["filtered_out"], report["rewritten"], sink)
"""


def write_backup(root, count):
    os.makedirs(os.path.join(root, "backend"), exist_ok=True)
    path = os.path.join(root, "backend", "task.bson")
    size = 0
    with open(path, "wb") as handle:
        for raw in clearml.task_stream(count):
            handle.write(raw)
            size += len(raw)
    return path, size


def run_pipeline(root, config):
    seconds, rss, out = run_measured([sys.executable, "-c", PIPELINE, os.path.join(REPO, ".build", "collections"),
                                      json.dumps({"root": root, **config})])
    found, inner, filtered, rewritten, _sink = out.split()
    return float(inner), seconds, rss, int(found), int(filtered), int(rewritten)


def pipeline_benchmark(count, rounds):
    with tempfile.TemporaryDirectory(prefix="mlops-bench-mongo-", dir=os.environ.get("BENCH_SCRATCH")) as root:
        started = time.monotonic()
        path, size = write_backup(root, count)
        print(f"backup file: {count:,} task documents, {size / count:,.0f} bytes each on average "
              f"(written in {time.monotonic() - started:.1f} s)")
        best = {}
        full = {"filter": FILTER, "unset": UNSET, "rules": RULES}
        bare_cmd = [sys.executable, "-c", BARE, path]
        for index in range(rounds):
            order = ["bare", "pipeline", "passthrough"]
            if index % 2:
                order.reverse()
            for name in order:
                if name == "bare":
                    seconds, rss, out = run_measured(bare_cmd)
                    found, inner = out.split()
                    result = (float(inner), seconds, rss, int(found), 0, 0)
                else:
                    bare_config = {"filter": None, "unset": [], "rules": []}
                    result = run_pipeline(root, full if name == "pipeline" else bare_config)
                if name not in best or result[0] < best[name][0]:
                    best[name] = result
        bare_rate = count / best["bare"][0]
        print(f"\n{'':12} {'seconds':>8} {'docs/s':>10} {'vs bare':>8} {'peak RSS':>9}")
        for name in ("bare", "pipeline", "passthrough"):
            inner, _total, rss, found, _f, _r = best[name]
            assert found == count, f"{name} read {found} of {count} documents"
            print(f"{name:12} {inner:8.2f} {count / inner:10,.0f} {count / inner / bare_rate:7.2f}x {rss:7.0f} MB")
        _i, _t, _rss, _found, filtered, rewritten = best["pipeline"]
        print(f"pipeline: {filtered:,} documents filtered out, {rewritten:,} URLs rewritten")
        rate = count / best["pipeline"][0]
        print(f"goals: pipeline >= 0.5x bare ({rate / bare_rate:.2f}x), >= 50,000 docs/s ({rate:,.0f}), "
              f"peak RSS < 200 MB ({best['pipeline'][2]:.0f} MB)")


def bare_insert_loop(client, path, batch=1000):
    """The baseline: every document of the backup file into a fresh database, insert_many a batch."""
    import bson  # pylint: disable=import-outside-toplevel

    coll = client.bare_loop.task
    started = time.monotonic()
    docs = []
    with open(path, "rb") as handle:
        for doc in bson.decode_file_iter(handle):
            docs.append(doc)
            if len(docs) == batch:
                coll.insert_many(docs, ordered=False)
                docs = []
    if docs:
        coll.insert_many(docs, ordered=False)
    return time.monotonic() - started


def restore_benchmark(count):
    import bson  # pylint: disable=import-outside-toplevel
    import pymongo  # pylint: disable=import-outside-toplevel
    from bson.raw_bson import RawBSONDocument  # pylint: disable=import-outside-toplevel

    from ansible_collections.mlops.migration.plugins.module_utils.mongo import load as mongo_load  # pylint: disable=C0415

    with tempfile.TemporaryDirectory(prefix="mlops-bench-mongo-load-", dir=os.environ.get("BENCH_SCRATCH")) as work:
        stack = Stack(os.path.join(work, "stack"), ["mongo"])
        started = time.monotonic()
        stack.start()
        target = stack["mongo"]["target"]
        print(f"server: {target.server} (stack of two started in {time.monotonic() - started:.1f} s)")
        try:
            root = os.path.join(work, "backup")
            path, _size = write_backup(root, count)
            entry = {"db": "backend", "collection": "task", "file": "backend/task.bson", "count": count}
            with pymongo.MongoClient(target.uri) as client:
                settle()
                bare = bare_insert_loop(client, path)
                assert client.bare_loop.task.count_documents({}) == count
                times = []
                for attempt in ("restore", "re-run"):
                    settle()
                    started = time.monotonic()
                    report = mongo_load.restore_collection(client, root, entry, "backend", mongo_load.Settings(),
                                                           ({}, []))
                    times.append(time.monotonic() - started)
                    print(f"{attempt:10}: {times[-1]:7.2f} s {count / times[-1]:9,.0f} docs/s  "
                          f"inserted {report['inserted']:,}, skipped {report['skipped_duplicates']:,}")
                assert client.backend.task.count_documents({}) == count
                settle()
                started = time.monotonic()
                read = sum(1 for _doc in client.backend.get_collection(
                    "task", codec_options=bson.CodecOptions(document_class=RawBSONDocument)).find({}, batch_size=1000))
                floor = time.monotonic() - started
                assert read == count
            print(f"{'bare loop':10}: {bare:7.2f} s {count / bare:9,.0f} docs/s  (insert_many of the same documents)")
            print(f"{'bare read':10}: {floor:7.2f} s {count / floor:9,.0f} docs/s  (find of the whole collection: "
                  "the floor of any re-run that checks each document)")
            print(f"restore vs bare loop: {bare / times[0]:.2f}x the docs/s (goal >= 0.8x)")
            print(f"re-run is {times[0] / times[1]:.1f}x faster than the first restore (goal >= 5x)")
        finally:
            stack.stop()


def main():
    count = int(os.environ.get("BENCH_MONGO_DOCS", "200000"))
    rounds = int(os.environ.get("BENCH_MONGO_ROUNDS", "2"))
    print("== mongo_restore pipeline vs a bare decode/encode loop ==")
    pipeline_benchmark(count, rounds)
    print("\n== restore into FerretDB vs a bare insert_many loop, then again with every _id present ==")
    restore_benchmark(int(os.environ.get("BENCH_MONGO_LOAD_DOCS", "50000")))


if __name__ == "__main__":
    main()
