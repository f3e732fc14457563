"""Benchmark: s3_sync against ``rclone copy --checksum --transfers 8`` between two SeaweedFS endpoints.

Starts the loopback stack (two SeaweedFS endpoints and the ssh hosts), seeds the source with
2,000 objects of 4-64 KiB and 4 objects of 64 MiB uploaded multipart with 8 MiB parts and no
md5 metadata (as a foreign tool leaves them), then times into separate target buckets:

  rclone            rclone copy --checksum --transfers 8 (first copy, then no-change re-run)
  s3_sync (utils)   module_utils s3_sync.sync(parallel=8) in its own process (peak RSS: VmHWM)
  s3_sync (play)    the module as a whole ansible-playbook task on the source host

and prints time ratios to rclone (goals: first copy <= 0.8, no-change <= 1.5) and peak RSS
(goal < 250 MB). Timings on a shared 2-core machine vary by +-15 % from run to run, so each
pass is timed in BENCH_S3_ROUNDS rounds (default 3, fresh target buckets each, the tools
taking turns to go first) and the medians are compared. BENCH_S3_SMALL and
BENCH_S3_LARGE_MIB change the workload.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from benchmarks.measure import children_cpu_seconds, process_cpu_seconds, run_measured, settle  # noqa: E402  pylint: disable=wrong-import-position
from tests.integration.ansible_run import run_playbook  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack.stack import Stack  # noqa: E402  pylint: disable=wrong-import-position

MIB = 1024 * 1024
UTILS_RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.mlops.migration.plugins.module_utils.s3 import Endpoint
from ansible_collections.mlops.migration.plugins.module_utils.s3_sync import Bucket, sync
cfg = json.loads(sys.argv[2])
ends = []
for side in ("source", "target"):
    e = Endpoint(cfg[side]["endpoint_url"], cfg[side]["access_key"], cfg[side]["secret_key"])
    ends.append(Bucket(e.client(max_pool=10), e, cfg[side]["bucket"]))
print(json.dumps(sync(ends[0], ends[1], parallel=8)))
"""


def seed(client, bucket, small, large_mib):
    from boto3.s3.transfer import TransferConfig  # pylint: disable=import-outside-toplevel

    client.create_bucket(Bucket=bucket)
    rng = random.Random(3)
    for index in range(small):
        client.put_object(Bucket=bucket, Key=f"runs/{index % 50:02d}/artifact-{index:05d}.json",
                          Body=rng.randbytes(rng.randint(4, 64) * 1024))
    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB)
    for index in range(4):
        path = os.path.join(tempfile.gettempdir(), f"bench-s3-large-{index}")
        with open(path, "wb") as handle:
            handle.write(rng.randbytes(large_mib * MIB))
        client.upload_file(path, bucket, f"models/model-{index}.pt", Config=config)
        os.unlink(path)


def rclone_env(stack):
    env = dict(os.environ)
    for name, side in (("SRC", "source"), ("DST", "target")):
        server = stack["s3"][side]
        env.update({f"RCLONE_CONFIG_{name}_TYPE": "s3", f"RCLONE_CONFIG_{name}_PROVIDER": "SeaweedFS",
                    f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": server.access_key,
                    f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": server.secret_key,
                    f"RCLONE_CONFIG_{name}_ENDPOINT": server.endpoint_url,
                    f"RCLONE_CONFIG_{name}_FORCE_PATH_STYLE": "true"})
    return env


def main():
    small = int(os.environ.get("BENCH_S3_SMALL", "2000"))
    large_mib = int(os.environ.get("BENCH_S3_LARGE_MIB", "64"))
    scratch = os.environ.get("BENCH_SCRATCH", "/dev/shm" if os.path.isdir("/dev/shm") else None)
    work = tempfile.mkdtemp(prefix="bench-s3-", dir=scratch)
    stack = Stack(work, ["ssh", "s3"]).start()
    try:
        src, dst = stack["s3"]["source"], stack["s3"]["target"]
        print(f"seeding {small} small objects and 4 x {large_mib} MiB multipart objects ...", flush=True)
        seed(src.client(), "bench", small, large_mib)
        rounds = int(os.environ.get("BENCH_S3_ROUNDS", "3"))
        for index in range(rounds):
            for bucket in ("by-rclone", "by-utils", "by-play"):
                dst.client().create_bucket(Bucket=f"{bucket}-{index}")
        rclone = shutil.which("rclone", path=os.path.dirname(sys.executable)) or "rclone"
        env = rclone_env(stack)

        def cfg(bucket):
            return {"source": dict(src.describe(), bucket="bench"), "target": dict(dst.describe(), bucket=bucket)}

        def run_rclone(index):
            return run_measured([rclone, "copy", "--checksum", "--transfers", "8", "--s3-no-check-bucket",
                                 "src:bench", f"dst:by-rclone-{index}"], env)[:2] + (None,)

        def run_utils(index):
            seconds, rss, out = run_measured([sys.executable, "-c", UTILS_RUN,
                                              os.path.join(REPO, ".build", "collections"),
                                              json.dumps(cfg(f"by-utils-{index}"))])
            return seconds, rss, json.loads(out)

        def run_play(index):
            conn = cfg(f"by-play-{index}")
            plays = [{"name": "bench", "hosts": "source", "gather_facts": False, "tasks": [{
                "name": "sync", "mlops.migration.s3_sync": {
                    "source": {k: conn["source"][k] for k in ("endpoint_url", "access_key", "secret_key", "bucket")},
                    "target": {k: conn["target"][k] for k in ("endpoint_url", "access_key", "secret_key", "bucket")}}}]}]
            started = time.monotonic()
            run_playbook(plays, stack.inventory_file, work)
            return time.monotonic() - started, None, None

        # Each round copies into fresh buckets, then re-runs; the tools take turns going first,
        # so neither always meets the servers in the same state, and each starts once the machine is
        # idle (the servers go on flushing after a large write). Medians are compared.
        runners = [("rclone", run_rclone), ("utils", run_utils), ("play", run_play)]
        rows, settled, cpu = {}, [], {}
        for index in range(rounds):
            order = runners[index % 3:] + runners[:index % 3]
            for label in ("first", "again"):
                for name, runner in order:
                    settled.append(settle())
                    client, servers = children_cpu_seconds(), process_cpu_seconds("weed")
                    rows.setdefault((name, label), []).append(runner(index))
                    cpu.setdefault((name, label), []).append(
                        (children_cpu_seconds() - client, process_cpu_seconds("weed") - servers))
            print(f"round {index + 1}/{rounds} done (waited {sum(settled):.1f} s so far for the servers to go idle "
                  "before each run)", flush=True)

        first = rows[("utils", "first")][0][2]
        print(f"\nfirst copy by s3_sync: {first['copied']} objects, {first['bytes'] / MIB:.0f} MiB, "
              f"verified {first['verified']} ({first['verified_by']}), failed {first['failed_count']}")
        print("rclone --checksum verifies single-part objects by md5; the 4 multipart sources have no md5 "
              "to check against, so rclone copies them unverified by md5.\n")

        def median(values):
            return statistics.median(values)

        print(f"medians of {rounds} rounds")
        print(f"{'pass':<10}{'rclone s':>10}{'utils s':>9}{'ratio':>7}{'play s':>9}{'ratio':>7}"
              f"{'utils RSS':>11}{'rclone RSS':>12}")
        for label in ("first", "again"):
            base = median([r[0] for r in rows[("rclone", label)]])
            utils = median([r[0] for r in rows[("utils", label)]])
            play = median([r[0] for r in rows[("play", label)]])
            utils_rss = max(r[1] for r in rows[("utils", label)])
            base_rss = max(r[1] for r in rows[("rclone", label)])
            print(f"{label:<10}{base:>10.2f}{utils:>9.2f}{utils / base:>7.2f}{play:>9.2f}{play / base:>7.2f}"
                  f"{utils_rss:>9.0f}MB{base_rss:>10.0f}MB")
        print("\nper round (utils / rclone):")
        for label in ("first", "again"):
            ratios = [u[0] / r[0] for u, r in zip(rows[("utils", label)], rows[("rclone", label)])]
            print(f"  {label:<6}" + "  ".join(f"{ratio:.2f}" for ratio in ratios))
        cores = os.cpu_count() or 1
        print(f"\nCPU seconds of the first copy (medians): the tool itself, and the SeaweedFS servers it kept busy "
              f"({cores} cores shared by all):")
        for name in ("rclone", "utils"):  # the play's module runs under sshd, outside this process tree
            tool = median([c[0] for c in cpu[(name, "first")]])
            servers = median([c[1] for c in cpu[(name, "first")]])
            print(f"  {name:<7} tool {tool:6.2f}   servers {servers:6.2f}")
        floor = median([c[1] for c in cpu[("utils", "first")]]) / cores / median(
            [r[0] for r in rows[("rclone", "first")]])
        print(f"  the servers' work alone, spread over {cores} cores, would take {floor:.2f} x rclone's time")
        print("\ngoals: first copy ratio <= 0.8 with every object verified; no-change ratio <= 1.5; RSS < 250 MB "
              "(peak RSS: the highest of the rounds)")
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
