"""Time a command and read its own peak RSS.

``wait4``'s ``ru_maxrss`` is no use here: Linux carries the high-water mark across exec, so a
child forked from a large benchmark process reports the parent's size. ``VmHWM`` in
/proc/<pid>/status belongs to the program's own address space; it is sampled until exit.
"""

from __future__ import annotations

import subprocess
import threading
import time


def _vmhwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_measured(argv, env=None, interval=0.02):
    """Run ``argv``; return (seconds, peak RSS in MB, stdout bytes). Fails on a non-zero exit."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)  # pylint: disable=consider-using-with
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _vmhwm_kib(proc.pid))
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    proc.wait()
    seconds = time.monotonic() - started
    sampler.join()
    proc.stdout.close()
    if proc.returncode:
        raise SystemExit(f"{argv[0]} exited with {proc.returncode}")
    return seconds, peak[0] / 1024, out
