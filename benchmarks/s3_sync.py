"""Benchmark: s3_sync against rclone and s5cmd between two S3 endpoints, on SeaweedFS and on MinIO.

For each S3 server of BENCH_S3_SERVERS (default "seaweedfs,minio"), starts the loopback stack
(two endpoints of that server and the ssh hosts), seeds the source with 2,000 objects of 4-64 KiB
and 4 objects of 64 MiB uploaded multipart with 8 MiB parts and no md5 metadata (as a foreign
tool leaves them), then times into separate target buckets:

  rclone            rclone copy --checksum --transfers 8 (first copy, then no-change re-run)
  s5cmd             s5cmd --numworkers 8 sync --size-only, source -> local scratch -> target
                    (s5cmd takes one endpoint per command, so a copy between two endpoints goes
                    through a local directory, in BENCH_SCRATCH or /dev/shm)
  s3_sync (utils)   module_utils s3_sync.sync(parallel=8) in its own process (peak RSS: VmHWM)
  s3_sync (procs)   the same with processes=BENCH_S3_PROCESSES (default: the cores) worker processes, each
                    a key range copying 8 at once (peak RSS: the parent's)
  s3_sync (play)    the module as a whole ansible-playbook task on the source host, with the same processes

and prints time ratios to rclone and s5cmd and to the servers-only limit: the CPU seconds the S3 servers
spent on the copy, spread over the cores (what no client can beat on this machine). Goals: first copy
within 1.15x of that limit and at or below s5cmd's time; no-change at most rclone's and s5cmd's time;
peak RSS < 250 MB. Timings on a shared 2-core machine vary by +-15 % from
run to run, so each pass is timed in BENCH_S3_ROUNDS rounds (default 3, fresh target buckets
each, the tools taking turns to go first) and the medians are compared. BENCH_S3_SMALL and
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
from tests.stack import builds  # noqa: E402  pylint: disable=wrong-import-position
from tests.integration.ansible_run import run_playbook  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack.stack import Stack  # noqa: E402  pylint: disable=wrong-import-position

MIB = 1024 * 1024
UTILS_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import Endpoint, Location
from ansible_collections.mlops.migration.plugins.module_utils.s3.sync import sync
cfg = json.loads(sys.argv[2])
parallel = cfg.get("parallel", 8)
ends = []
for side in ("source", "target"):
    e = Endpoint(cfg[side]["endpoint_url"], cfg[side]["access_key"], cfg[side]["secret_key"])
    ends.append(Location(e.client(max_pool=parallel + 2), e, cfg[side]["bucket"]))
started = time.monotonic()
result = sync(ends[0], ends[1], parallel=parallel, keys=cfg.get("keys"), processes=cfg.get("processes", 1))
result["sync_seconds"] = time.monotonic() - started
print(json.dumps(result))
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


# rclone's provider name and the server's process name (for its CPU seconds), per implementation.
SERVERS = {"seaweedfs": ("s3", "SeaweedFS", "weed"), "minio": ("minio", "Minio", "minio")}
TOOLS = ("rclone", "s5cmd", "utils", "procs", "play")


def rclone_env(pair, provider):
    env = dict(os.environ)
    for name, side in (("SRC", "source"), ("DST", "target")):
        server = pair[side]
        env.update({f"RCLONE_CONFIG_{name}_TYPE": "s3", f"RCLONE_CONFIG_{name}_PROVIDER": provider,
                    f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": server.access_key,
                    f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": server.secret_key,
                    f"RCLONE_CONFIG_{name}_ENDPOINT": server.endpoint_url,
                    f"RCLONE_CONFIG_{name}_FORCE_PATH_STYLE": "true"})
    return env


def s5cmd_env(server):
    return dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key,
                AWS_REGION="us-east-1")


def median(values):
    return statistics.median(values)


def bench_server(implementation, small, large_mib, rounds, scratch, processes):
    component, provider, process_name = SERVERS[implementation]
    work = tempfile.mkdtemp(prefix="bench-s3-", dir=scratch)
    started = time.monotonic()
    stack = Stack(work, ["ssh", component]).start()
    try:
        pair = stack[component]
        src, dst = pair["source"], pair["target"]
        print(f"\n=== {implementation}: stack up in {time.monotonic() - started:.1f} s; seeding {small} small "
              f"objects and 4 x {large_mib} MiB multipart objects ...", flush=True)
        seed(src.client(), "bench", small, large_mib)
        for index in range(rounds):
            for bucket in [f"by-{tool}" for tool in TOOLS]:
                dst.client().create_bucket(Bucket=f"{bucket}-{index}")
        rclone = shutil.which("rclone", path=os.path.dirname(sys.executable)) or "rclone"
        s5cmd = builds.binary("s5cmd")
        env = rclone_env(pair, provider)

        def cfg(bucket):
            return {"source": dict(src.describe(), bucket="bench"), "target": dict(dst.describe(), bucket=bucket)}

        def run_rclone(index):
            return run_measured([rclone, "copy", "--checksum", "--transfers", "8", "--s3-no-check-bucket",
                                 "src:bench", f"dst:by-rclone-{index}"], env)[:2] + (None,)

        def run_s5cmd(index):
            local = os.path.join(work, f"s5cmd-{index}")
            os.makedirs(local, exist_ok=True)
            down = run_measured([s5cmd, "--endpoint-url", src.endpoint_url, "--numworkers", "8", "sync",
                                 "--size-only", "s3://bench/*", local + "/"], s5cmd_env(src))
            up = run_measured([s5cmd, "--endpoint-url", dst.endpoint_url, "--numworkers", "8", "sync",
                               "--size-only", local + "/", f"s3://by-s5cmd-{index}/"], s5cmd_env(dst))
            return down[0] + up[0], max(down[1], up[1]), None

        def run_utils(index, tool="utils", workers=1):
            seconds, rss, out = run_measured([sys.executable, "-c", UTILS_RUN,
                                              os.path.join(REPO, ".build", "collections"),
                                              json.dumps(dict(cfg(f"by-{tool}-{index}"), processes=workers))])
            return seconds, rss, json.loads(out)

        def run_procs(index):
            return run_utils(index, "procs", processes)

        def run_play(index):
            conn = cfg(f"by-play-{index}")
            plays = [{"name": "bench", "hosts": "source", "gather_facts": False, "tasks": [{
                "name": "sync", "mlops.migration.s3_sync": {
                    "source": {k: conn["source"][k] for k in ("endpoint_url", "access_key", "secret_key", "bucket")},
                    "target": {k: conn["target"][k] for k in ("endpoint_url", "access_key", "secret_key", "bucket")},
                    "processes": processes}}]}]
            started = time.monotonic()
            run_playbook(plays, stack.inventory_file, work)
            return time.monotonic() - started, None, None

        # Each round copies into fresh buckets, then re-runs; the tools take turns going first,
        # so neither always meets the servers in the same state, and each starts once the machine is
        # idle (the servers go on flushing after a large write). Medians are compared.
        runners = list(zip(TOOLS, (run_rclone, run_s5cmd, run_utils, run_procs, run_play)))
        rows, settled, cpu = {}, [], {}
        for index in range(rounds):
            order = runners[index % len(runners):] + runners[:index % len(runners)]
            for label in ("first", "again"):
                for name, runner in order:
                    settled.append(settle())
                    client, servers = children_cpu_seconds(), process_cpu_seconds(process_name)
                    rows.setdefault((name, label), []).append(runner(index))
                    cpu.setdefault((name, label), []).append(
                        (children_cpu_seconds() - client, process_cpu_seconds(process_name) - servers))
            print(f"round {index + 1}/{rounds} done (waited {sum(settled):.1f} s so far for the servers to go idle "
                  "before each run)", flush=True)
        for index in range(rounds):  # every tool left the same keys and sizes
            listings = {tool: {o["Key"]: o["Size"] for o in dst.client().get_paginator("list_objects_v2").paginate(
                Bucket=f"by-{tool}-{index}").search("Contents[]")} for tool in TOOLS}
            assert all(listing == listings["rclone"] and len(listing) == small + 4 for listing in listings.values())
        report(implementation, rows, cpu, rounds, processes)
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(implementation, rows, cpu, rounds, processes):
    first = rows[("utils", "first")][0][2]
    print(f"\n{implementation}: first copy by s3_sync: {first['copied']} objects, {first['bytes'] / MIB:.0f} MiB, "
          f"verified {first['verified']} ({first['verified_by']}), failed {first['failed_count']}")
    print("what each tool verified: s3_sync every object (md5 of the bytes streamed against the source's ETag, "
          "multipart sources by their multipart ETag); rclone --checksum the single-part objects by md5 (the 4 "
          "multipart sources have no md5 to check against); s5cmd the upload leg only (its SDK, aws-sdk-go v1, "
          "sends Content-MD5 with each PUT and part, so the target checks what it receives; downloads are not "
          "checked against the source's ETag, and sync --size-only compares sizes), so nothing end to end.\n")
    cores = os.cpu_count() or 1
    med = {key: median([r[0] for r in runs]) for key, runs in rows.items()}
    # the servers-only limit: the CPU the servers spent on one process's copy, spread over the cores
    limit = median([c[1] for c in cpu[("utils", "first")]]) / cores
    print(f"medians of {rounds} rounds, seconds; procs = {processes} worker processes; ratio = s3_sync's time / "
          "the baseline's")
    print(f"{'pass':<7}{'rclone':>8}{'s5cmd':>8}{'utils':>8}{'procs':>8}{'play':>8}   "
          f"{'utils/rclone':>12}{'/s5cmd':>8}{'procs/rclone':>13}{'/s5cmd':>8}{'play/rclone':>12}")
    for label in ("first", "again"):
        m = {tool: med[(tool, label)] for tool in TOOLS}
        print(f"{label:<7}{m['rclone']:>8.2f}{m['s5cmd']:>8.2f}{m['utils']:>8.2f}{m['procs']:>8.2f}{m['play']:>8.2f}   "
              f"{m['utils'] / m['rclone']:>12.2f}{m['utils'] / m['s5cmd']:>8.2f}{m['procs'] / m['rclone']:>13.2f}"
              f"{m['procs'] / m['s5cmd']:>8.2f}{m['play'] / m['rclone']:>12.2f}")
    # the client's own CPU shares the same cores: with it, the least wall time this machine allows for a copy
    shared = {tool: (median([c[0] for c in cpu[(tool, "first")]]) + median([c[1] for c in cpu[(tool, "first")]]))
              / cores for tool in ("utils", "procs")}
    print(f"\nservers-only limit of the first copy: {limit:.2f} s (the {implementation} servers' CPU seconds for "
          f"s3_sync's copy over {cores} cores); time / limit, and time / (the tool's and the servers' CPU over the "
          "cores: what the machine allows when both share them):")
    for tool in TOOLS:
        bound = f"   {med[(tool, 'first')] / shared[tool]:5.2f}" if tool in shared else ""
        print(f"  {tool:<7} {med[(tool, 'first')] / limit:5.2f}{bound}")
    print("\npeak RSS (the highest of the rounds): " + ", ".join(
        f"{tool} {max(r[1] for r in rows[(tool, label)]):.0f} MB" for tool in ("utils", "procs", "rclone", "s5cmd")
        for label in ("first",)))
    print("\nper round (utils / rclone, procs / rclone, procs / s5cmd):")
    for label in ("first", "again"):
        ratios = [(u[0] / r[0], p[0] / r[0], p[0] / f[0]) for u, p, r, f in
                  zip(rows[("utils", label)], rows[("procs", label)], rows[("rclone", label)], rows[("s5cmd", label)])]
        print(f"  {label:<6}" + "  ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in ratios))
    print(f"\nCPU seconds of the first copy (medians): the tool itself, and the {implementation} servers it kept "
          f"busy ({cores} cores shared by all):")
    for name in ("rclone", "s5cmd", "utils", "procs"):  # the play's module runs under sshd, outside this process tree
        tool = median([c[0] for c in cpu[(name, "first")]])
        servers = median([c[1] for c in cpu[(name, "first")]])
        print(f"  {name:<7} tool {tool:6.2f}   servers {servers:6.2f}")
    print("goals: first copy within 1.15x of the servers-only limit and at or below s5cmd's time, every object "
          "verified; no-change at most rclone's and s5cmd's time; RSS < 250 MB")


def main():
    small = int(os.environ.get("BENCH_S3_SMALL", "2000"))
    large_mib = int(os.environ.get("BENCH_S3_LARGE_MIB", "64"))
    rounds = int(os.environ.get("BENCH_S3_ROUNDS", "3"))
    scratch = os.environ.get("BENCH_SCRATCH", "/dev/shm" if os.path.isdir("/dev/shm") else None)
    processes = int(os.environ.get("BENCH_S3_PROCESSES", str(os.cpu_count() or 2)))
    for implementation in os.environ.get("BENCH_S3_SERVERS", "seaweedfs,minio").split(","):
        bench_server(implementation.strip(), small, large_mib, rounds, scratch, processes)


if __name__ == "__main__":
    main()
