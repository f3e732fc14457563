"""Time a command and read its own peak RSS.

``wait4``'s ``ru_maxrss`` is no use here: Linux carries the high-water mark across exec, so a
child forked from a large benchmark process reports the parent's size. ``VmHWM`` in
/proc/<pid>/status belongs to the program's own address space; it is sampled until exit.
"""

from __future__ import annotations

import os
import resource
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


def _cpu_ticks():
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)  # busy (all but idle and iowait), total


def settle(quiet=0.15, window=0.5, limit=30.0):
    """Wait until the machine is idle (CPU busy below ``quiet`` over ``window`` seconds); return the wait.

    Servers keep working for a while after a large write (flushes, garbage collection); a run
    started at once would pay for the previous one. Gives up after ``limit`` seconds.
    """
    started = time.monotonic()
    while time.monotonic() - started < limit:
        busy0, total0 = _cpu_ticks()
        time.sleep(window)
        busy1, total1 = _cpu_ticks()
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) < quiet:
            break
    return time.monotonic() - started


def process_cpu_seconds(command_name):
    """CPU seconds (user + system) used so far by every running process called ``command_name``."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name == command_name:
            fields = stat[stat.rindex(")") + 2:].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    """CPU seconds used so far by this process's waited-for children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def print_points_table(total, rows, width=36):
    """Print ``rows`` of ``(label, (seconds, peak MB, stdout))`` with the points/s ``total`` points make."""
    print(f"\n{'':{width}} {'seconds':>8} {'peak RSS':>9} {'points/s':>10}")
    for label, (seconds, peak, _out) in rows:
        print(f"{label:{width}} {seconds:8.1f} {peak:7.0f}MB {total / seconds:10,.0f}")
