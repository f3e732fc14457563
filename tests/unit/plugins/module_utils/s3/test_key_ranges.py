"""Key ranges (module_utils/s3/key_ranges.py and worker_processes.merge): pure functions over key lists, and the
ranges file. The listings against real servers are in tests/integration/test_s3_key_ranges.py."""

import json

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import S3Error
from ansible_collections.mlops.migration.plugins.module_utils.s3.key_ranges import (
    boundaries_from_listing,
    cut,
    in_range,
    ListingSample,
    ranges_from,
    RangesFile,
    SAMPLES,
)
from ansible_collections.mlops.migration.plugins.module_utils.s3.worker_processes import merge_listings_samples

KEYS = [f"runs/{p:02d}/m-{i:03d}" for p in range(30) for i in range(50)]


def owners(keys, ranges):
    return [[index for index, r in enumerate(ranges) if in_range(key, r["after"], r["upto"])] for key in keys]


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_ranges_cut_from_names_hold_every_key_exactly_once(count):
    prefixes = sorted({key.rsplit("/", 1)[0] + "/" for key in KEYS})
    ranges = ranges_from(cut(prefixes, count))
    assert len(ranges) == count
    assert all(len(found) == 1 for found in owners(KEYS + ["", "runs/", "zzz", "runs/05/"], ranges))
    sizes = [sum(1 for found in owners(KEYS, ranges) if found == [index]) for index in range(count)]
    assert max(sizes) - min(sizes) <= 50 * 2  # within two prefixes of one another


def test_a_prefix_boundary_sends_the_keys_under_it_to_the_next_range():
    ranges = ranges_from(["runs/10/"])
    assert in_range("runs/09/z", **ranges[0]) and in_range("runs/10/", **ranges[0])
    assert in_range("runs/10/m-000", **ranges[1]) and not in_range("runs/10/m-000", **ranges[0])


def test_a_listing_sample_keeps_evenly_spaced_keys_and_its_ranks():
    sample = ListingSample()
    for key in KEYS:
        sample.add(key)
    record = sample.as_dict()
    assert record["listed"] == len(KEYS) and SAMPLES <= len(record["samples"]) <= 2 * SAMPLES
    assert all(KEYS[rank] == key for rank, key in record["samples"])
    steps = {b[0] - a[0] for a, b in zip(record["samples"], record["samples"][1:])}
    assert len(steps) == 1


def test_boundaries_at_the_quantiles_of_an_earlier_listing():
    halves = []
    for part in (KEYS[:300], KEYS[300:]):  # two ranges of very different sizes, as two hosts listed them
        sample = ListingSample()
        for key in part:
            sample.add(key)
        halves.append(sample.as_dict())
    merged = merge_listings_samples(halves)
    assert merged["listed"] == len(KEYS) and all(KEYS[rank] == key for rank, key in merged["samples"])
    for count in (2, 4, 5):
        ranges = ranges_from(boundaries_from_listing(halves, count))
        sizes = [sum(1 for found in owners(KEYS, ranges) if found == [index]) for index in range(count)]
        assert sum(sizes) == len(KEYS) and max(sizes) - min(sizes) <= len(KEYS) // 20, (count, sizes)


def test_a_ranges_file_that_is_not_ours_is_refused(tmp_path):
    path = tmp_path / "ranges.json"
    path.write_text("{broken")
    with RangesFile(str(path)) as ranges_file, pytest.raises(S3Error, match="is not JSON"):
        ranges_file.read()
    path.write_text(json.dumps({"ranges": []}))
    with RangesFile(str(path)) as ranges_file, pytest.raises(S3Error, match="not one this collection wrote"):
        ranges_file.read()
    with RangesFile(str(tmp_path / "none.json")) as ranges_file:
        assert ranges_file.read() == {}
