# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bucket's keys split into contiguous key ranges, each listed on its own.

A range is ``(after, upto]``: the keys (relative to the location's prefix) greater than ``after`` and at most
``upto``, an end being None when open. S3 lists from any key on (``StartAfter``), so a host or a worker process
that handles one range lists only that range, and N of them make one listing of the bucket between them instead
of N (the hash shards of ``objects.in_shard`` each list everything).

Where the boundaries come from, in this order:
  - the ranges file (``plan_ranges``) already holds ranges for this source and this count: they are used again,
    so every host of a run, every slice or batch of it, and every re-run agree;
  - the ranges file holds what an earlier run listed (``record_listing``: each range's key count and evenly spaced
    sample keys, see :class:`ListingSample`): boundaries at the quantiles of that listing (``basis: previous``);
  - otherwise a sampled listing (``sample_boundaries``): the prefix tree opened level by level with ``/`` as the
    delimiter until it has enough prefixes to cut between (``basis: sampled``); a flat namespace with too few
    prefixes is listed once whole (``basis: listing``).
Importable without Ansible.
"""

from __future__ import annotations

import fcntl
import json
import os

from ansible_collections.mlops.migration.plugins.module_utils.s3.client import ApiError
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import s3_error, S3Error
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import list_objects

SAMPLES = 128  # sample keys kept per listed range (between SAMPLES and 2 x SAMPLES)
PREFIXES_PER_RANGE = 16  # the sampled listing opens prefixes until it has this many per range
SAMPLING_REQUESTS = 200  # at most this many listing requests to sample the prefix tree
FILE_VERSION = 1


def in_range(rel, after=None, upto=None):
    """Whether a key (relative) is in the range ``(after, upto]``."""
    return (after is None or rel > after) and (upto is None or rel <= upto)


def ranges_from(boundaries):
    """The ranges between sorted boundaries: ``count`` boundaries give ``count + 1`` ranges covering every key."""
    ends = [None] + list(boundaries) + [None]
    return [{"after": ends[index], "upto": ends[index + 1]} for index in range(len(ends) - 1)]


def cut(items, count):
    """``count - 1`` boundaries that split sorted ``items`` into ``count`` runs of (nearly) equal length."""
    if count <= 1 or not items:
        return []
    bounds = []
    for index in range(1, count):
        # the first name of the next run: a prefix there sorts before every key under it, so those keys go on
        point = items[min(len(items) - 1, round(index * len(items) / count))]
        if not bounds or point > bounds[-1]:
            bounds.append(point)
    return bounds


def _overlaps(name, is_prefix, after, upto):
    """Whether a key, or any key under a prefix, can fall in ``(after, upto]``."""
    if not is_prefix:
        return in_range(name, after, upto)
    return (upto is None or name <= upto) and (after is None or name + "\U0010ffff" > after)


class Sampler:
    """Lists with ``/`` as delimiter, counting requests, within an optional range."""

    def __init__(self, location, after=None, upto=None, budget=SAMPLING_REQUESTS):
        self.location, self.after, self.upto, self.budget = location, after, upto, budget
        self.requests = 0

    def children(self, rel_prefix):
        """The keys and prefixes right under a prefix (relative), sorted, as ``(name, is_prefix)``; None when the
        request budget ran out before the level was read whole."""
        location, found, token = self.location, [], None
        while True:
            if self.requests >= self.budget:
                return None
            query = {"ContinuationToken": token} if token else {}
            try:
                self.requests += 1
                page = location.client.list_objects_v2(Bucket=location.bucket, Prefix=location.prefix + rel_prefix,
                                                       Delimiter="/", **query)
            except ApiError as exc:
                raise s3_error(exc, location.endpoint, location.bucket) from exc
            size = len(location.prefix)
            found.extend((item["Key"][size:], False) for item in page.get("Contents", ()))
            found.extend((item["Prefix"][size:], True) for item in page.get("CommonPrefixes", ()))
            if not page.get("IsTruncated"):
                return sorted(item for item in found if _overlaps(item[0], item[1], self.after, self.upto))
            token = page.get("NextContinuationToken")
            if not token:
                raise S3Error(f"the listing of bucket {location.bucket} at {location.endpoint.label} says more keys "
                              "follow but gives no continuation token")

    def widest_level(self, want):
        """The names (keys and prefixes) of the prefix tree opened level by level until there are ``want`` of them,
        the tree stops widening, or the request budget runs out; [] when there is nothing in the range."""
        level = self.children("") or []
        while len(level) < want and any(is_prefix for _name, is_prefix in level):
            deeper = []
            for name, is_prefix in level:
                below = self.children(name) if is_prefix else [(name, False)]
                if below is None:
                    return [name for name, _is_prefix in level]  # the budget ran out: cut what we have
                deeper.extend(below)
            if len(deeper) <= len(level):
                break  # the tree does not widen
            level = deeper
        return [name for name, _is_prefix in level]

    def boundaries(self, count):
        """``(boundaries, basis)``: the widest level of at least PREFIXES_PER_RANGE names a range, cut into
        ``count``; a tree with fewer (a flat namespace) is listed whole in the range (``listing``)."""
        names = self.widest_level(PREFIXES_PER_RANGE * count)
        if len(names) >= PREFIXES_PER_RANGE * count:
            return cut(names, count), "sampled"
        return cut(self.listed_keys(), count), "listing"

    def listed_keys(self):
        """Every key of the range (a flat namespace has no prefixes to sample), counted as listing requests."""
        location, keys = self.location, []
        counter = getattr(location.client, "requests", None)
        before = counter.get("ListObjectsV2", 0) if counter is not None else 0
        for info in list_objects(location.client, location.endpoint, location.bucket, location.prefix,
                                 location.prefix + self.after if self.after is not None else None,
                                 location.prefix + self.upto if self.upto is not None else None):
            keys.append(info.key[len(location.prefix):])
        if counter is not None:
            self.requests += counter.get("ListObjectsV2", 0) - before
        return keys


class ListingSample:
    """Every k-th key of a range's listing (k doubling to keep between SAMPLES and 2 x SAMPLES of them), with its
    rank: what the next run cuts its ranges by."""

    def __init__(self):
        self.listed, self.step, self.samples = 0, 1, []

    def add(self, rel):
        if self.listed % self.step == 0:
            self.samples.append([self.listed, rel])
            if len(self.samples) > 2 * SAMPLES:
                self.samples = self.samples[::2]
                self.step *= 2
        self.listed += 1

    def as_dict(self):
        return {"listed": self.listed, "samples": self.samples}


def boundaries_from_listing(listed, count):
    """Boundaries at the quantiles of an earlier run's listing: ``listed`` holds, range by range in key order,
    ``{"listed": n, "samples": [[rank, key], ...]}``."""
    points, offset = [], 0
    for record in listed:
        points.extend((offset + rank, key) for rank, key in record["samples"])
        offset += record["listed"]
    if count <= 1 or not points:
        return []
    bounds = []
    for index in range(1, count):
        target = index * offset / count
        below = [key for rank, key in points if rank <= target]
        point = below[-1] if below else points[0][1]
        if not bounds or point > bounds[-1]:
            bounds.append(point)
    return bounds


def source_label(location):
    return f"{location.endpoint.label}|{location.bucket}|{location.prefix}"


class RangesFile:
    """The JSON file the ranges of one source are recorded in, read and written under an exclusive lock (hosts,
    slices and batches that plan at once agree on the first one's ranges)."""

    def __init__(self, path):
        self.path = path
        self.lock = None

    def __enter__(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self.lock = open(self.path + ".lock", "a", encoding="utf-8")  # pylint: disable=consider-using-with
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()

    def read(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                record = json.load(handle)
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise S3Error(f"the key ranges file {self.path} is not JSON ({exc}); remove it to sample the ranges "
                          "again") from exc
        if not isinstance(record, dict) or record.get("version") != FILE_VERSION:
            raise S3Error(f"the key ranges file {self.path} is not one this collection wrote (version "
                          f"{FILE_VERSION}); remove it to sample the ranges again")
        return record

    def write(self, record):
        temp = f"{self.path}.{os.getpid()}.tmp"
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1, sort_keys=True)
        os.replace(temp, self.path)


def plan_ranges(location, count, path=None, check_mode=False):
    """The ``count`` key ranges of a location: ``{"ranges", "basis", "requests", "changed"}``, read from or
    recorded in the ranges file ``path`` (none: sampled, not kept)."""
    label = source_label(location)
    if path is None:
        bounds, basis, requests = _new_boundaries(location, count, {})
        return {"ranges": ranges_from(bounds), "basis": basis, "requests": requests, "changed": False}
    with RangesFile(path) as ranges_file:
        record = ranges_file.read()
        if record.get("source") == label and record.get("count") == count and record.get("ranges"):
            return {"ranges": record["ranges"], "basis": "recorded", "requests": 0, "changed": False}
        previous = record if record.get("source") == label else {}
        bounds, basis, requests = _new_boundaries(location, count, previous)
        planned = {"version": FILE_VERSION, "source": label, "count": count, "ranges": ranges_from(bounds),
                   "basis": basis, "sampling_requests": requests, "listed": []}
        if not check_mode:
            ranges_file.write(planned)
    return {"ranges": planned["ranges"], "basis": basis, "requests": requests, "changed": True}


def _new_boundaries(location, count, previous):
    listed = previous.get("listed") or []
    if listed and len(listed) == len(previous.get("ranges") or ()) and all(record for record in listed):
        return boundaries_from_listing(listed, count), "previous", 0
    sampler = Sampler(location)
    bounds, basis = sampler.boundaries(count)
    return bounds, basis, sampler.requests


def record_listing(location, path, listings, check_mode=False):
    """Keep what each range's run listed (``listings``: range index -> ``ListingSample.as_dict()``) in the ranges
    file, for the next plan of another count to cut by; returns whether the file changed."""
    with RangesFile(path) as ranges_file:
        record = ranges_file.read()
        if record.get("source") != source_label(location):
            raise S3Error(f"the key ranges file {path} holds the ranges of another source "
                          f"({record.get('source') or 'none'}); plan the ranges first")
        listed = list(record.get("listed") or [])
        listed += [None] * (len(record["ranges"]) - len(listed))
        for index, sample in listings.items():
            if not 0 <= int(index) < len(record["ranges"]):
                raise S3Error(f"range {index} is not one of the {len(record['ranges'])} ranges of {path}")
            listed[int(index)] = sample
        if listed == record.get("listed"):
            return False
        record["listed"] = listed
        if not check_mode:
            ranges_file.write(record)
    return True
