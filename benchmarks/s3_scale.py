"""Benchmark: s3_sync at platform scale on SeaweedFS (the sibling of benchmarks/s3_sync.py).

Starts the loopback SeaweedFS pair (source and target endpoints) and measures, in one run:

  large     a 2 GiB object (8 MiB parts) copied by module_utils sync in a process that is killed once about
            half its parts are at the target, then the copy resumed: the bytes sent again (0 is the goal),
            UploadPart requests, the resumed run's peak RSS (two parts in memory); then a 6 GiB object through
            s3_export (a bundle directory) and s3_import, with the bytes the import read from the bundle (one
            read of the file is the goal, not two)
  keys      BENCH_SCALE_KEYS (default 1,000,000) zero-byte objects under 1,000 prefixes at both ends (seeded
            by s5cmd from a local tree, outside the measured time): the no-change pass of s3_sync (one process,
            and BENCH_S3_PROCESSES worker processes) against rclone copy --checksum and s5cmd sync --size-only
            (source -> local tree, the leg s5cmd can do between two endpoints), peak RSS (goal < 250 MB) and
            the keys/s of the listing merge
  small     BENCH_SCALE_SMALL (default 200,000) objects of 1-4 KiB: the first copy by s3_sync (one process,
            and the worker processes), rclone copy --checksum and s5cmd (down to a local tree and up)

Each figure is one run on this machine; ratios are s3_sync's time over the baseline's, in the same run.
BENCH_SCALE_PARTS picks sections (default "large,keys,small"); BENCH_SCALE_LARGE_MIB and
BENCH_SCALE_HUGE_MIB the two object sizes (2048, 6144). Disk: about 3 x the huge object under BENCH_WORK
(default the system temp directory); the key trees go to BENCH_SCRATCH (default /dev/shm).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from benchmarks.measure import run_measured, settle  # noqa: E402  pylint: disable=wrong-import-position
from benchmarks.s3_sync import rclone_env, s5cmd_env, UTILS_RUN as SYNC_RUN  # noqa: E402  pylint: disable=wrong-import-position
from tests.integration.ansible_run import run_playbook  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack import builds  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack.stack import Stack  # noqa: E402  pylint: disable=wrong-import-position

MIB = 1024 * 1024
COLLECTIONS = os.path.join(REPO, ".build", "collections")


def sync_cfg(pair, source_bucket, target_bucket, **extra):
    return dict({"source": dict(pair["source"].describe(), bucket=source_bucket),
                 "target": dict(pair["target"].describe(), bucket=target_bucket)}, **extra)


def run_sync(cfg):
    seconds, rss, out = run_measured([sys.executable, "-c", SYNC_RUN, COLLECTIONS, json.dumps(cfg)])
    return seconds, rss, json.loads(out)


def rclone_copy(pair, source_bucket, target_bucket):
    rclone = shutil.which("rclone", path=os.path.dirname(sys.executable)) or "rclone"
    return run_measured([rclone, "copy", "--checksum", "--transfers", "8", "--checkers", "8", "--s3-no-check-bucket",
                         f"src:{source_bucket}", f"dst:{target_bucket}"], rclone_env(pair, "SeaweedFS"))[:2]


def s5cmd(server, *args):
    return run_measured([builds.binary("s5cmd"), "--endpoint-url", server.endpoint_url, "--numworkers", "8", *args],
                        s5cmd_env(server))[:2]


def seed_tree(root, count, size_of):
    """``count`` files under 1,000 directories (``size_of(index)`` bytes each), written once and reused."""
    marker = os.path.join(root, f".complete-{count}")
    if os.path.exists(marker):
        return root
    shutil.rmtree(root, ignore_errors=True)
    per_dir = max(1, count // 1000)
    for index in range(count):
        directory = os.path.join(root, f"runs/{index // per_dir:04d}")
        if index % per_dir == 0:
            os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"m-{index % per_dir:05d}.json"), "wb") as handle:
            size = size_of(index)
            if size:
                handle.write(os.urandom(size))
    with open(marker, "w", encoding="utf-8"):
        pass
    return root


def upload_tree(server, root, bucket):
    server.client().create_bucket(Bucket=bucket)
    started = time.monotonic()
    subprocess.run([builds.binary("s5cmd"), "--endpoint-url", server.endpoint_url, "--numworkers", "64", "cp",
                    "--exclude", ".complete-*", root + "/*", f"s3://{bucket}/"], env=s5cmd_env(server), check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def bench_large(pair, work, large_mib, huge_mib):
    src, dst = pair["source"], pair["target"]
    source, target = src.client(), dst.client()
    from boto3.s3.transfer import TransferConfig  # pylint: disable=import-outside-toplevel

    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4)
    for bucket, name, mib in (("large", "big.bin", large_mib), ("huge", "huge.bin", huge_mib)):
        source.create_bucket(Bucket=bucket)
        path = os.path.join(work, name)
        with open(path, "wb") as handle:
            for _chunk in range(max(1, mib // 64)):
                handle.write(os.urandom(min(mib, 64) * MIB))
        source.upload_file(path, bucket, f"models/{name}", Config=config)
        os.unlink(path)
    target.create_bucket(Bucket="large-t")
    parts = large_mib // 8
    print(f"\n--- large objects: {large_mib} MiB ({parts} parts of 8 MiB) killed half-way and resumed", flush=True)
    cfg = sync_cfg(pair, "large", "large-t", parallel=1)
    killed = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-c", SYNC_RUN, COLLECTIONS, json.dumps(cfg)], stdout=subprocess.DEVNULL)
    held, started = 0, time.monotonic()
    while killed.poll() is None and held < parts // 2:
        uploads = [u for u in target.list_multipart_uploads(Bucket="large-t").get("Uploads", [])
                   if u["Key"] == "models/big.bin"]
        if uploads:
            held = len(target.list_parts(Bucket="large-t", Key="models/big.bin",
                                         UploadId=uploads[0]["UploadId"]).get("Parts", []))
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    print(f"killed after {time.monotonic() - started:.1f} s with {held} of {parts} parts at the target", flush=True)
    settle()
    seconds, rss, result = run_sync(cfg)
    sent = result["requests"]["target"].get("UploadPart", 0)
    kept = result["bytes_resumed"] // (8 * MIB)  # parts landed after the last look before the kill count too
    print(f"resumed: {seconds:.1f} s, {result['copied']} object copied ({result['verified']} verified), {kept} parts "
          f"({result['bytes_resumed'] / MIB:,.0f} MiB) kept, {sent} UploadPart requests for the {parts - kept} "
          f"parts not there, peak RSS {rss:.0f} MB (parts of 8 MiB)")
    print(f"bytes of the parts already there sent again: {max(0, sent - (parts - kept)) * 8} MiB (goal 0)")

    print(f"\n--- a {huge_mib} MiB object through s3_export and s3_import (a bundle directory)", flush=True)
    bundle = os.path.join(work, "bundle")
    creds = {k: src.describe()[k] for k in ("endpoint_url", "access_key", "secret_key")}
    tcreds = {k: dst.describe()[k] for k in ("endpoint_url", "access_key", "secret_key")}
    dst.client().create_bucket(Bucket="huge-t")
    plays = [{"name": "export", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "export", "mlops.migration.s3_export": {"source": dict(creds, bucket="huge"), "dest": bundle}}]}]
    started = time.monotonic()
    run_playbook(plays, os.path.join(work, "inventory.ini"), work)
    exported = time.monotonic() - started
    settle()
    io_before = _read_bytes_of_children()
    plays = [{"name": "import", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "import", "mlops.migration.s3_import": {"target": dict(tcreds, bucket="huge-t"), "src": bundle}}]}]
    started = time.monotonic()
    imported = run_playbook(plays, os.path.join(work, "inventory.ini"), work).task("import")["result"]
    seconds = time.monotonic() - started
    read = _read_bytes_of_children() - io_before
    print(f"export {exported:.1f} s; import {seconds:.1f} s: {imported['copied']} object, {imported['read_once']} "
          f"file read once; the import's processes read {read / MIB:,.0f} MiB for a {huge_mib:,} MiB file "
          f"({read / (huge_mib * MIB):.2f} x its size; 2 would be a check pass and an upload pass)")
    shutil.rmtree(bundle, ignore_errors=True)


def _read_bytes_of_children():
    """Bytes read (rchar: every read() call, page cache or not) by this process's finished children: Linux adds
    a child's I/O counters to its parent's when it is reaped, and /proc/self/io reports them with ours."""
    with open("/proc/self/io", encoding="ascii") as handle:
        fields = dict(line.split(": ") for line in handle.read().splitlines())
    return int(fields["rchar"])


def bench_keys(pair, scratch, count, processes):
    src, dst = pair["source"], pair["target"]
    root = seed_tree(os.path.join(scratch, "bench-keys"), count, lambda index: 0)
    print(f"\n--- {count:,} zero-byte keys: seeding both ends with s5cmd ...", flush=True)
    seeded = upload_tree(src, root, "keys") + upload_tree(dst, root, "keys-t")
    print(f"seeded in {seeded:.0f} s", flush=True)
    rows = {}
    for label, run in (
            ("s3_sync", lambda: run_sync(sync_cfg(pair, "keys", "keys-t"))),
            (f"s3_sync {processes} procs", lambda: run_sync(sync_cfg(pair, "keys", "keys-t", processes=processes))),
            ("rclone", lambda: rclone_copy(pair, "keys", "keys-t") + (None,)),
            ("s5cmd", lambda: s5cmd(src, "sync", "--size-only", "s3://keys/*", root + "/") + (None,))):
        settle()
        rows[label] = run()
        result = rows[label][2]
        if result is not None:
            assert result["copied"] == 0 and result["already_present"] == count, result
            print(f"{label}: {rows[label][0]:.1f} s, {count / result['sync_seconds']:,.0f} keys/s through the listing "
                  f"merge, ListObjectsV2 source {result['requests']['source'].get('ListObjectsV2')}", flush=True)
    print(f"\nno-change pass over {count:,} keys{'':8}{'seconds':>8}{'peak RSS':>10}{'/rclone':>9}{'/s5cmd':>8}")
    for label, (seconds, rss, _result) in rows.items():
        print(f"  {label:<37}{seconds:8.1f}{rss:8.0f}MB{seconds / rows['rclone'][0]:9.2f}{seconds / rows['s5cmd'][0]:8.2f}")
    print("goals: s3_sync at most rclone's time, peak RSS < 250 MB (s5cmd's sync compares the source with a local "
          "tree: the one no-change leg it has between two endpoints)")


def bench_small(pair, scratch, count, processes):
    src, dst = pair["source"], pair["target"]
    root = seed_tree(os.path.join(scratch, "bench-small"), count, lambda index: 1024 * (1 + index % 4))
    print(f"\n--- first copy of {count:,} objects of 1-4 KiB: seeding the source with s5cmd ...", flush=True)
    print(f"seeded in {upload_tree(src, root, 'small'):.0f} s", flush=True)
    for bucket in ("small-utils", "small-procs", "small-rclone", "small-s5cmd"):
        dst.client().create_bucket(Bucket=bucket)
    local = os.path.join(scratch, "bench-small-down")
    rows = {}

    def by_s5cmd():
        down = s5cmd(src, "cp", "s3://small/*", local + "/")
        up = s5cmd(dst, "cp", local + "/*", "s3://small-s5cmd/")
        return down[0] + up[0], max(down[1], up[1]), None

    for label, run in (("s3_sync", lambda: run_sync(sync_cfg(pair, "small", "small-utils"))),
                       (f"s3_sync {processes} procs",
                        lambda: run_sync(sync_cfg(pair, "small", "small-procs", processes=processes))),
                       ("rclone", lambda: rclone_copy(pair, "small", "small-rclone") + (None,)),
                       ("s5cmd", by_s5cmd)):
        settle()
        rows[label] = run()
        print(f"{label}: {rows[label][0]:.1f} s", flush=True)
        result = rows[label][2]
        if result is not None:
            assert result["copied"] == count and result["verified"] == count, result
    shutil.rmtree(local, ignore_errors=True)
    print(f"\nfirst copy of {count:,} small objects{'':6}{'seconds':>8}{'objects/s':>10}{'peak RSS':>10}{'/rclone':>9}"
          f"{'/s5cmd':>8}")
    for label, (seconds, rss, _result) in rows.items():
        print(f"  {label:<37}{seconds:8.1f}{count / seconds:10,.0f}{rss:8.0f}MB{seconds / rows['rclone'][0]:9.2f}"
              f"{seconds / rows['s5cmd'][0]:8.2f}")
    print("s3_sync verifies every object end to end (md5 against the source's ETag, Content-MD5 at the target); "
          "rclone --checksum by md5; s5cmd the upload leg only")


def main():
    parts = os.environ.get("BENCH_SCALE_PARTS", "large,keys,small").split(",")
    processes = int(os.environ.get("BENCH_S3_PROCESSES", str(os.cpu_count() or 2)))
    scratch = os.environ.get("BENCH_SCRATCH", "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    work = tempfile.mkdtemp(prefix="bench-s3-scale-", dir=os.environ.get("BENCH_WORK"))
    started = time.monotonic()
    stack = Stack(work, ["s3"]).start()
    with open(os.path.join(work, "inventory.ini"), "w", encoding="utf-8") as handle:
        handle.write(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    try:
        pair = stack["s3"]
        print(f"SeaweedFS pair up in {time.monotonic() - started:.1f} s", flush=True)
        if "large" in parts:
            bench_large(pair, work, int(os.environ.get("BENCH_SCALE_LARGE_MIB", "2048")),
                        int(os.environ.get("BENCH_SCALE_HUGE_MIB", "6144")))
        if "keys" in parts:
            bench_keys(pair, scratch, int(os.environ.get("BENCH_SCALE_KEYS", "1000000")), processes)
        if "small" in parts:
            bench_small(pair, scratch, int(os.environ.get("BENCH_SCALE_SMALL", "200000")), processes)
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
