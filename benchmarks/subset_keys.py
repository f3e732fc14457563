"""Benchmark: a subset's objects by an explicit key list - s3_sync ``keys`` against rclone ``--files-from``.

A user or project subset moves the few objects its documents name out of a bucket that holds far more
(the issue's case: a project's objects in the whole platform's bucket). Starts the loopback stack with two
SeaweedFS endpoints, seeds the source bucket with BENCH_KEYS_OBJECTS objects of 1 KiB (default 20,000) and
picks BENCH_KEYS_SUBSET of them (default 100, spread over the keyspace), then times into fresh target buckets:

  rclone     rclone copy --files-from <list> --no-traverse --checksum --transfers 8 (its explicit-list mode)
  s3_sync    module_utils s3_sync.sync(keys=..., parallel=8) in its own process (a HEAD per key, no listing)
each as a first copy and a no-change re-run, BENCH_KEYS_ROUNDS rounds (default 3), medians, and prints the
ratios to rclone. Run: ``.venv/bin/python benchmarks/subset_keys.py`` (or ``make bench``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from benchmarks.measure import run_measured, settle  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks.s3_sync import rclone_env, UTILS_RUN  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack.stack import Stack  # noqa: E402  pylint: disable=wrong-import-position

TOOLS = ("rclone", "s3_sync")


def main():
    objects = int(os.environ.get("BENCH_KEYS_OBJECTS", "20000"))
    subset = int(os.environ.get("BENCH_KEYS_SUBSET", "100"))
    rounds = int(os.environ.get("BENCH_KEYS_ROUNDS", "3"))
    work = tempfile.mkdtemp(prefix="bench-keys-")
    stack = Stack(work, ["ssh", "s3"]).start()
    try:
        pair = stack["s3"]
        src, dst = pair["source"], pair["target"]
        client = src.client()
        client.create_bucket(Bucket="bench")
        keys = [f"clearml/project-{i % 50:02d}/task-{i:06d}/artifacts/data.bin" for i in range(objects)]
        body = os.urandom(1024)
        for _done in bounded_map(lambda key: client.put_object(Bucket="bench", Key=key, Body=body), keys, 16):
            pass
        wanted = sorted(keys[::max(1, objects // subset)][:subset])
        list_file = os.path.join(work, "keys.txt")
        with open(list_file, "w", encoding="utf-8") as handle:
            handle.write("\n".join(wanted) + "\n")
        rclone = shutil.which("rclone", path=os.path.dirname(sys.executable)) or "rclone"
        env = rclone_env(pair, "SeaweedFS")
        times = {(tool, label): [] for tool in TOOLS for label in ("first", "again")}
        print(f"{objects} objects in the source bucket, {len(wanted)} in the subset's key list", flush=True)
        for index in range(rounds):
            for tool in TOOLS:
                bucket = f"{tool.replace('_', '-')}-{index}"
                dst.client().create_bucket(Bucket=bucket)
                for label in ("first", "again"):
                    settle()
                    if tool == "rclone":
                        seconds = run_measured([rclone, "copy", "--files-from", list_file, "--no-traverse", "--checksum",
                                                "--transfers", "8", "--s3-no-check-bucket", "src:bench",
                                                f"dst:{bucket}"], env)[0]
                    else:
                        cfg = {"source": dict(src.describe(), bucket="bench"), "target": dict(dst.describe(), bucket=bucket),
                               "keys": wanted}
                        seconds, _rss, out = run_measured([sys.executable, "-c", UTILS_RUN,
                                                           os.path.join(REPO, ".build", "collections"), json.dumps(cfg)])
                        result = json.loads(out)
                        assert result["found"] == len(wanted) and not result["failed_count"], result
                    times[(tool, label)].append(seconds)
            for tool in TOOLS:
                listed = {o["Key"] for page in dst.client().get_paginator("list_objects_v2").paginate(
                    Bucket=f"{tool.replace('_', '-')}-{index}") for o in page.get("Contents", [])}
                assert listed == set(wanted), (tool, len(listed))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\n{'pass':<8}{'rclone':>9}{'s3_sync':>9}{'/rclone':>9}")
        for label in ("first", "again"):
            print(f"{label:<8}{med[('rclone', label)]:>9.2f}{med[('s3_sync', label)]:>9.2f}"
                  f"{med[('s3_sync', label)] / med[('rclone', label)]:>9.2f}")
        print("(seconds, medians of", rounds, "rounds; every object of the subset verified at the target by both tools)")
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
