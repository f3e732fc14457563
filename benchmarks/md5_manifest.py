"""Benchmark: the md5_manifest module against GNU md5sum over the same tree, in the same run.

Builds (once, under .bench/) a tree of mixed files, BENCH_MD5_GIB GiB in all (default 2):
a quarter in 256 MiB files, a quarter in 8 MiB files, a half in 64 KiB files. Reads it
once so both tools hash from the page cache, then times

  - baseline: ``find -type f -print0 | xargs -0 md5sum`` (one md5sum process at a time);
  - the md5_manifest module itself (the file Ansible ships to a host, run with an args
    file as Ansible runs it), with parallel=1 and parallel=2, each in its own process
    whose peak RSS is its own VmHWM (benchmarks/measure.py).

Prints throughput as a ratio to md5sum (goal >= 0.9) and peak RSS (goal < 100 MB), and
checks that both produced the same digests.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, ".build", "collections")
MODULE = os.path.join(REPO, "plugins", "modules", "md5_manifest.py")
sys.path.insert(0, REPO)

from benchmarks.measure import run_measured  # noqa: E402  pylint: disable=wrong-import-position
MIB = 1024 * 1024


def build_tree(root, total_bytes):
    """Create the tree unless a complete one of this size is already there."""
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as handle:
            if int(handle.read()) == total_bytes:
                return
    rng = random.Random(42)
    layout = [(256 * MIB, total_bytes // 4), (8 * MIB, total_bytes // 4), (64 * 1024, total_bytes // 2)]
    os.makedirs(root, exist_ok=True)
    block = rng.randbytes(MIB)
    for size, budget in layout:
        for index in range(max(1, budget // size)):
            directory = os.path.join(root, f"s{size}", f"d{index % 64:02d}")
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, f"f{index:05d}.bin"), "wb") as handle:
                handle.write(index.to_bytes(8, "little"))  # every file differs
                left = size - 8
                while left > 0:
                    chunk = block[: min(left, MIB)]
                    handle.write(chunk)
                    left -= len(chunk)
                    block = block[1:] + block[:1] if left > 0 else block
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write(str(total_bytes))


def warm(root):
    subprocess.run("find . -type f -print0 | xargs -0 cat > /dev/null", shell=True, cwd=root, check=True)


def run_md5sum(root):
    started = time.monotonic()
    out = subprocess.run("find . -type f ! -name .complete -print0 | xargs -0 md5sum --",
                         shell=True, cwd=root, check=True, capture_output=True, text=True).stdout
    seconds = time.monotonic() - started
    digests = {}
    for line in out.splitlines():
        md5_hex, name = line.split("  ", 1)
        digests[name[2:] if name.startswith("./") else name] = md5_hex
    return seconds, digests


def run_module(root, manifest, parallel):
    """Run the module file with an args file, as Ansible does on a host; return time, RSS, result."""
    args = {"ANSIBLE_MODULE_ARGS": {"path": root, "manifest": manifest, "parallel": parallel,
                                    "exclude": [".complete"]}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(args, handle)
    if os.path.exists(manifest):
        os.unlink(manifest)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    seconds, rss_mb, out = run_measured([sys.executable, MODULE, handle.name], env)
    os.unlink(handle.name)
    return seconds, rss_mb, json.loads(out)


def main():
    gib = float(os.environ.get("BENCH_MD5_GIB", "2"))
    total = int(gib * 1024 * MIB)
    bench = os.path.join(REPO, ".bench")
    root = os.path.join(bench, f"md5-tree-{gib:g}gib")
    print(f"building/reusing a {gib:g} GiB tree in {root} ...", flush=True)
    build_tree(root, total)
    warm(root)

    base_seconds, base_digests = run_md5sum(root)
    size = sum(os.path.getsize(os.path.join(root, name)) for name in base_digests)
    manifest = os.path.join(bench, "md5-tree.md5")
    rows = [("md5sum (baseline)", base_seconds, None)]
    for parallel in (1, 2):
        seconds, rss_mb, result = run_module(root, manifest, parallel)
        with open(manifest, encoding="utf-8") as handle:
            ours = dict(reversed(line.rstrip("\n").split("  ", 1)) for line in handle)
        if ours != base_digests:
            raise SystemExit(f"digests differ from md5sum for parallel={parallel}")
        assert result["files"] == len(base_digests)
        rows.append((f"md5_manifest parallel={parallel}", seconds, rss_mb))

    print(f"\n{len(base_digests)} files, {size / MIB:.0f} MiB, digests identical to md5sum\n")
    print(f"{'run':<28}{'seconds':>9}{'MiB/s':>9}{'vs md5sum':>11}{'peak RSS':>11}")
    for name, seconds, rss_mb in rows:
        ratio = base_seconds / seconds
        rss = f"{rss_mb:.0f} MB" if rss_mb is not None else "-"
        print(f"{name:<28}{seconds:>9.2f}{size / MIB / seconds:>9.0f}{ratio:>10.2f}x{rss:>11}")
    best = min(rows[1:], key=lambda row: row[1])
    print(f"\nthroughput ratio to md5sum: {base_seconds / best[1]:.2f} (goal >= 0.9), "
          f"peak RSS {max(row[2] for row in rows[1:]):.0f} MB (goal < 100 MB)")


if __name__ == "__main__":
    main()
