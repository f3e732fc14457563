# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bucket-to-bucket sync between two S3 endpoints: streamed, verified, resumable, shardable.

Both listings are streamed in key order and merged, so a bucket of any size is compared
holding one page of each at a time. The target itself is the resume state: an object
exists there only once every check of :func:`s3.copy_object` passed, so a killed run
re-run copies exactly what is missing or different.
"""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map, prefetch
from ansible_collections.mlops.migration.plugins.module_utils.s3.client import ApiError
from ansible_collections.mlops.migration.plugins.module_utils.s3.key_ranges import in_range, ListingSample
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import explain, S3Error, s3_errors
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import (
    copy_object,
    in_shard,
    LIST_LIMIT,
    list_objects,
    listed_keys,
    same_content,
    TransferReport,
)
from ansible_collections.mlops.migration.plugins.module_utils.s3.worker_processes import sync_in_processes


def merge_listings(source, target, source_prefix, target_prefix):
    """Pair source and target objects by their key below the prefixes, streaming both listings.

    Yields ``(relative key, source info or None, target info or None)``. S3 lists keys in
    UTF-8 byte order, which is Python's str order; a listing out of order is an error, not
    a silent mismatch.
    """
    def relative(items, prefix, side):
        last = None
        for info in items:
            rel = info.key[len(prefix):]
            if last is not None and rel <= last:
                raise S3Error(f"the {side} listing is not in key order ({last!r} then {rel!r}); "
                              "this endpoint cannot be synced by a streamed merge")
            last = rel
            yield rel, info

    src_iter, dst_iter = relative(source, source_prefix, "source"), relative(target, target_prefix, "target")
    src, dst = next(src_iter, None), next(dst_iter, None)
    while src or dst:
        if dst is None or (src is not None and src[0] < dst[0]):
            yield src[0], src[1], None
            src = next(src_iter, None)
        elif src is None or dst[0] < src[0]:
            yield dst[0], None, dst[1]
            dst = next(dst_iter, None)
        else:
            yield src[0], src[1], dst[1]
            src, dst = next(src_iter, None), next(dst_iter, None)


def listing(location, keys=None, missing=None, parallel=8, after=None, upto=None):
    """The objects under a Location's prefix in the key range ``(after, upto]`` (relative; None: open), or only
    those of ``keys`` (relative; see ``listed_keys``)."""
    if keys is None:
        return list_objects(location.client, location.endpoint, location.bucket, location.prefix,
                            None if after is None else location.prefix + after,
                            None if upto is None else location.prefix + upto)
    return listed_keys(location.client, location.endpoint, location.bucket, location.prefix, keys, missing, parallel)


def sync(source, target, parallel=8, shard_index=0, shard_count=1, delete_extra=False, check_mode=False,
         part_size=8 * 1024 * 1024, threshold=16 * 1024 * 1024, progress=None, keys=None, key_after=None,
         key_upto=None, processes=1):
    """Make the Location ``target`` hold every object of the Location ``source`` (keys mapped prefix to prefix),
    or only the objects of ``keys`` (relative to the prefixes; a key not at the source fails).

    ``key_after``/``key_upto`` bound the keys to one range (``key_ranges``), listed on its own at both ends.
    ``processes`` over 1 splits the range again between that many worker processes (``parallel`` copies each),
    whose results are added up here; their progress goes to ``progress`` as one.
    """
    options = dict(parallel=parallel, shard_index=shard_index, shard_count=shard_count, delete_extra=delete_extra,
                   check_mode=check_mode, part_size=part_size, threshold=threshold)
    if processes > 1 and keys is None:
        return sync_in_processes(sync, source, target, processes, key_after, key_upto, progress, options)
    report = TransferReport(progress=progress, dry_run=check_mode)
    if keys is not None:
        keys = [key for key in keys if in_shard(key, shard_index, shard_count) and in_range(key, key_after, key_upto)]
    missing, sample = [], ListingSample()

    def sampled(items):
        for info in items:
            sample.add(info.key[len(source.prefix):])
            yield info

    def pairs():
        """The pairs that need a request or a copy; a target object the listing shows to be the source's (same size
        and ETag) is counted here, without a trip through the copy threads: a no-change pass is the listings."""
        for pair in merge_listings(sampled(listing(source, keys, missing, parallel, key_after, key_upto)),
                                   prefetch(listing(target, keys, None, parallel, key_after, key_upto)),
                                   source.prefix, target.prefix):
            rel, src, dst = pair
            if not in_shard(rel, shard_index, shard_count):
                continue
            if src is not None and dst is not None and src.size == dst.size and src.etag == dst.etag:
                report.found += 1
                report.record("present", rel, src.size)
                continue
            yield pair

    def work(pair):
        rel, src, dst = pair
        target_key = target.prefix + rel
        if src is None:
            return "extra", None
        try:
            if same_content(src, dst, lambda: target.client.head_object(Bucket=target.bucket, Key=target_key)):
                return "present", None
            if check_mode:
                return "would-copy", None
            return "copied", copy_object(source, target, src, target_key, part_size, threshold)
        except S3Error as exc:
            return "failed", str(exc)
        except ApiError as exc:
            return "failed", explain(exc, target.endpoint, target.bucket, target_key)

    extras = []
    for (rel, src, _dst), (outcome, value) in bounded_map(work, pairs(), parallel):
        if src is not None:
            report.found += 1
        if outcome in ("present", "would-copy"):
            report.record(outcome, rel, src.size)
        elif outcome == "copied":
            report.record(outcome, rel, value.bytes, value.method, value.resumed_bytes)
        elif outcome == "failed":
            report.fail(source.prefix + rel, value)
        elif outcome == "extra" and delete_extra:
            extras.append(target.prefix + rel)
            if len(extras) == 1000:
                delete_keys(target, extras, check_mode, report)
    delete_keys(target, extras, check_mode, report)
    for rel in missing:
        report.found += 1
        report.fail(source.prefix + rel, "a listed key that is not at the source")
    result = report.as_dict()
    result["listing"] = sample.as_dict()
    result["requests"] = {"source": dict(getattr(source.client, "requests", {})),
                          "target": dict(getattr(target.client, "requests", {}))}
    return result


def delete_keys(target, keys, check_mode, report):
    """Delete target keys the source does not have, 1,000 a request; empties ``keys``."""
    if not keys:
        return
    report.to_delete.extend(keys[:max(0, LIST_LIMIT - len(report.to_delete))])
    if check_mode:
        report.deleted += len(keys)
        keys.clear()
        return
    with s3_errors(target.endpoint, target.bucket):
        reply = target.client.delete_objects(Bucket=target.bucket, Delete={
            "Objects": [{"Key": key} for key in keys], "Quiet": True})
    errors = reply.get("Errors", [])
    for error in errors:
        report.fail(error.get("Key"), f"delete failed: {error.get('Code')} {error.get('Message', '')}")
    report.deleted += len(keys) - len(errors)
    keys.clear()
