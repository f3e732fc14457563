"""Benchmark: file_sync (through ansible-playbook) against bare rsync and a bare tar pipe, same run.

Starts the two loopback ssh hosts of tests/stack, builds (once, under .bench/) a tree of
20,000 small files (1-8 KiB) and 5 large ones (64 MiB each, BENCH_FS_LARGE_MIB to change),
and times, each into an empty destination on the target host:

  rsync first pass     bare ``rsync -a -e ssh`` vs the module (first copy)
  rsync no-change      the same again, nothing to send
  tar 1,000-file list  bare ``tar --null -T - -cf - | ssh tar -xpf -`` vs the module (method=tar)

The module is timed as a user runs it: a whole ``ansible-playbook`` run of one task on the
source host. That includes ansible-playbook's own start-up (about 1.3-1.5 s here for any
one-task play, measured below with ``ansible.builtin.ping``), so the module's self-reported
``seconds`` is printed too. Prints each ratio module/bare (goals: first pass <= 1.10,
no-change extra <= 1.5 s, tar <= 1.2).
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from tests.integration.ansible_run import run_playbook  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack.stack import Stack  # noqa: E402  pylint: disable=wrong-import-position

SMALL, LARGE = 20_000, 5


def build(root, large_mib):
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return
    rng = random.Random(7)
    for index in range(SMALL):
        path = os.path.join(root, "small", f"d{index % 200:03d}", f"f{index:05d}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(rng.randbytes(rng.randint(1024, 8192)))
    block = rng.randbytes(1024 * 1024)
    for index in range(LARGE):
        os.makedirs(os.path.join(root, "large"), exist_ok=True)
        with open(os.path.join(root, "large", f"model{index}.pt"), "wb") as handle:
            handle.write(index.to_bytes(8, "little"))
            for _mib in range(large_mib):
                handle.write(block)
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write("ok")


def timed(func):
    os.sync()  # the previous pass's dirty pages are not written back during this one
    started = time.monotonic()
    func()
    return time.monotonic() - started


def main():
    large_mib = int(os.environ.get("BENCH_FS_LARGE_MIB", "64"))
    data = os.path.join(REPO, ".bench", f"file-sync-{large_mib}")
    print(f"building/reusing {SMALL} small + {LARGE} x {large_mib} MiB files in {data} ...", flush=True)
    build(data, large_mib)
    # Destinations on tmpfs: on this machine's disk, identical bare rsync runs varied from 3 s
    # to 7 s (write throttling), which would swamp what is being compared.
    scratch = os.environ.get("BENCH_SCRATCH", "/dev/shm" if os.path.isdir("/dev/shm") else None)
    work = tempfile.mkdtemp(prefix="bench-file-sync-", dir=scratch)
    stack = Stack(work, ["ssh"]).start()
    try:
        target = stack["ssh"]["target"]
        ssh = shlex.join(target.ssh_argv()[:-2])  # without "-l user"; rsync adds user@
        remote = f"{target.user}@{target.host}"
        dest_bare, dest_mod = os.path.join(target.root, "bare"), os.path.join(target.root, "module")

        def bare_rsync():
            subprocess.run(["rsync", "-a", "-e", ssh, "--exclude=.complete", data + "/",
                            f"{remote}:{dest_bare}/"], check=True)

        def module(**options):
            args = dict(src=data, dest_path=dest_mod, dest_host=target.host, dest_port=target.port,
                        dest_user=target.user, ssh_private_key_file=target.client_key,
                        known_hosts=target.known_hosts, exclude=[".complete"])
            args.update(options)
            plays = [{"name": "bench", "hosts": "source", "gather_facts": False,
                      "tasks": [{"name": "sync", "mlops.migration.file_sync": args}]}]
            return lambda: module_seconds.append(
                run_playbook(plays, stack.inventory_file, work).task("sync")["result"]["seconds"])

        module_seconds = []
        ping = [{"name": "floor", "hosts": "source", "gather_facts": False,
                 "tasks": [{"name": "ping", "ansible.builtin.ping": {}}]}]
        floor = min(timed(lambda: run_playbook(ping, stack.inventory_file, work)) for _attempt in range(3))

        subprocess.run(["cat"] + [os.path.join(data, "large", f) for f in os.listdir(os.path.join(data, "large"))],
                       stdout=subprocess.DEVNULL, check=True)
        rows = []
        first, again, first_own, again_own = {"bare": [], "mod": []}, {"bare": [], "mod": []}, [], []
        for order in (("bare", "mod"), ("mod", "bare")):  # alternate, keep each side's best
            shutil.rmtree(dest_bare, ignore_errors=True)
            shutil.rmtree(dest_mod, ignore_errors=True)
            for which in order:
                first[which].append(timed(bare_rsync if which == "bare" else module()))
                if which == "mod":
                    first_own.append(module_seconds.pop())
            for which in order:
                again[which].append(timed(bare_rsync if which == "bare" else module()))
                if which == "mod":
                    again_own.append(module_seconds.pop())
        module_seconds += [min(first_own), min(again_own)]
        rows.append(("rsync first pass", min(first["bare"]), min(first["mod"])))
        rows.append(("rsync no-change pass", min(again["bare"]), min(again["mod"])))

        listed = sorted(f"small/d{i % 200:03d}/f{i:05d}.json" for i in range(0, SMALL, SMALL // 1000))
        tar_bare_dest, tar_mod_dest = os.path.join(target.root, "tar-bare"), os.path.join(target.root, "tar-mod")

        def bare_tar():
            receiver = target.ssh_argv() + [target.host, f"mkdir -p {tar_bare_dest} && cd {tar_bare_dest} && tar -xpf -"]
            with subprocess.Popen(["tar", "--null", "-T", "-", "-cf", "-"], cwd=data, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE) as sender, \
                    subprocess.Popen(receiver, stdin=sender.stdout) as receive:
                sender.stdout.close()
                sender.stdin.write(b"\0".join(n.encode() for n in listed) + b"\0")
                sender.stdin.close()
                receive.wait()
            assert sender.returncode == 0 and receive.returncode == 0

        tar_bare = timed(bare_tar)
        tar_mod = timed(module(method="tar", files_from=listed, dest_path=tar_mod_dest, exclude=[]))
        rows.append((f"tar {len(listed)}-file list", tar_bare, tar_mod))

        mismatch = subprocess.run(["diff", "-rq", dest_bare, dest_mod], capture_output=True, text=True, check=False)
        assert mismatch.returncode == 0, mismatch.stdout[:2000]
        print(f"\nansible-playbook floor (one ping task on the source host): {floor:.2f} s")
        print(f"\n{'pass':<24}{'bare s':>8}{'playbook s':>11}{'ratio':>7}{'extra s':>9}"
              f"{'module s':>10}{'ratio':>7}")
        for (name, bare, mod), own in zip(rows, module_seconds):
            print(f"{name:<24}{bare:>8.2f}{mod:>11.2f}{mod / bare:>7.2f}{mod - bare:>9.2f}"
                  f"{own:>10.2f}{own / bare:>7.2f}")
        print("\nplaybook = whole ansible-playbook run; module = the module's own seconds result")
        print("goals: first pass ratio <= 1.10; no-change extra <= 1.5 s; tar ratio <= 1.2")
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
