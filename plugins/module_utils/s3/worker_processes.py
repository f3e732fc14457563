# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One sync run split between worker processes, each a key range of the run's own range.

A copy of many small objects is bound by the CPU of one Python process (request signing, HTTP, md5, XML);
several processes, each with its own connections and copy threads, use every core. Each worker lists only
its key range (``key_ranges``), so the listings are not repeated; the workers' counts reach the one progress
file through shared counters, and their results are added up into one, as one process would have returned it.
Importable without Ansible.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.connection import wait

from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import Location, S3Error
from ansible_collections.mlops.migration.plugins.module_utils.s3.key_ranges import cut, ranges_from, Sampler, SAMPLES
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import FAILURE_LIMIT, LIST_LIMIT, TransferReport

SUMMED = ("found", "copied", "already_present", "verified", "failed_count", "deleted", "bytes", "bytes_resumed")


class SharedProgress:
    """A worker's side of the progress: its counts in two slots of a shared array, its events to the log."""

    def __init__(self, slots, index, progress, parent):
        self.slots, self.index, self.progress, self.parent = slots, index, progress, parent
        self.what = progress.what if progress is not None else "s3_sync"

    def update(self, done=None, total=None, size=None, force=False):  # pylint: disable=unused-argument
        if os.getppid() != self.parent:  # the module's process is gone (killed): stop at once
            os._exit(3)  # pylint: disable=protected-access
        if done is not None:
            self.slots[2 * self.index] = done
        if size is not None:
            self.slots[2 * self.index + 1] = size

    def event(self, text):
        if self.progress is not None:
            self.progress.event(text)


def split(source, processes, key_after, key_upto):
    """The sub-ranges of ``(key_after, key_upto]`` for the workers (fewer when the keys have few prefixes to cut
    between; a flat range is not listed an extra time to cut it), and the listing requests that took."""
    sampler = Sampler(source, key_after, key_upto)
    names = sampler.widest_level(4 * processes)
    if len(names) < processes:
        return [{"after": key_after, "upto": key_upto}], sampler.requests
    ranges = ranges_from(cut(names, processes))
    ranges[0]["after"], ranges[-1]["upto"] = key_after, key_upto
    return ranges, sampler.requests


def _fresh(location, pool):
    return Location(location.endpoint.client(max_pool=pool), location.endpoint, location.bucket, location.prefix)


def _work(run_range, conn, slots, index, source, target, sub, progress, options, parent):
    try:
        result = run_range(_fresh(source, options["parallel"] + 2), _fresh(target, options["parallel"] + 2),
                           progress=SharedProgress(slots, index, progress, parent), key_after=sub["after"],
                           key_upto=sub["upto"], **options)
        conn.send(("ok", result))
    except BaseException as exc:  # pylint: disable=broad-except  # any failure goes back to the parent as text
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def sync_in_processes(run_range, source, target, processes, key_after, key_upto, progress, options):
    """``run_range`` (``sync.sync``) in up to ``processes`` forked workers, one sub-range each; the merged result."""
    started = time.monotonic()
    subs, sampling = split(source, processes, key_after, key_upto)
    context = multiprocessing.get_context("fork")
    slots = context.Array("q", 2 * len(subs), lock=False)
    workers, pending = [], {}
    for index, sub in enumerate(subs):
        receive, send = context.Pipe(duplex=False)
        worker = context.Process(target=_work, args=(run_range, send, slots, index, source, target, sub, progress,
                                                     options, os.getpid()), daemon=True)
        worker.start()
        send.close()
        workers.append(worker)
        pending[receive] = index
    results, errors = [None] * len(subs), []
    try:
        while pending:
            for conn in wait(list(pending), timeout=0.5):
                index = pending.pop(conn)
                try:
                    status, value = conn.recv()
                except EOFError:
                    workers[index].join()
                    status, value = "error", f"the worker ended (exit code {workers[index].exitcode}) without a result"
                conn.close()
                if status == "ok":
                    results[index] = value
                else:
                    errors.append(f"worker {index} (keys after {subs[index]['after']!r} up to "
                                  f"{subs[index]['upto']!r}): {value}")
            if progress is not None:
                progress.update(done=sum(slots[0::2]), size=sum(slots[1::2]))
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
    if errors:
        raise S3Error("; ".join(errors))
    merged = merge(results, started, options["check_mode"])
    merged["processes"] = len(subs)
    merged["requests"]["source"]["ListObjectsV2 (to split)"] = sampling
    return merged


def merge(results, started, dry_run):
    """The results of consecutive key ranges added up into one, as one run over them all returns it."""
    report = TransferReport(dry_run=dry_run)
    report.started = started
    for result in results:
        for name in SUMMED:
            setattr(report, name, getattr(report, name) + result[name])
        for method, count in result["verified_by"].items():
            report.verified_by[method] = report.verified_by.get(method, 0) + count
        report.failures.extend(result["failures"][:FAILURE_LIMIT - len(report.failures)])
        report.to_copy.extend(result["to_copy"][:LIST_LIMIT - len(report.to_copy)])
        report.to_delete.extend(result["to_delete"][:LIST_LIMIT - len(report.to_delete)])
    merged = report.as_dict()
    merged["listing"] = merge_listings_samples([result["listing"] for result in results])
    merged["requests"] = {side: {} for side in ("source", "target")}
    for result in results:
        for side, counts in result["requests"].items():
            for operation, count in counts.items():
                merged["requests"][side][operation] = merged["requests"][side].get(operation, 0) + count
    return merged


def merge_listings_samples(listings):
    """Consecutive ranges' ``ListingSample`` records as one: ranks offset, thinned to at most 2 x SAMPLES."""
    samples, offset = [], 0
    for listing in listings:
        samples.extend([offset + rank, key] for rank, key in listing["samples"])
        offset += listing["listed"]
    while len(samples) > 2 * SAMPLES:
        samples = samples[::2]
    return {"listed": offset, "samples": samples}
