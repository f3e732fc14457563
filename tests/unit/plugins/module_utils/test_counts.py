"""Unit tests of module_utils/counts.py: the one result vocabulary every data-moving module returns."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind, Counts, FAILURES_KEPT


def test_records_add_up_and_unmeasured_counts_stay_null():
    one = Counts(found=3, copied=2, present=1, bytes=10)
    one.fail("a b.png", "BadDigest")
    two = Counts(dry_run=True, found=4, copied=1, pending=["x"])
    result = by_kind({"s3 objects": one, "files": two}, seconds=1.5)
    assert result["kinds"]["s3 objects"]["failed"] == 1
    assert result["kinds"]["s3 objects"]["failures"] == [{"object": "a b.png", "reason": "BadDigest"}]
    assert result["kinds"]["files"]["filtered_out"] is None and result["kinds"]["files"]["dry_run"]
    total = result["counts"]
    assert (total["found"], total["copied"], total["present"], total["failed"], total["bytes"]) == (7, 3, 1, 1, 10)
    assert total["verified"] is None and total["seconds"] == 1.5 and total["pending"] == ["x"] and total["dry_run"]


def test_failures_are_kept_to_the_first_ones_but_all_are_counted():
    counts = Counts()
    for n in range(FAILURES_KEPT + 5):
        counts.fail(f"k{n}", "boom")
    assert counts.failed == FAILURES_KEPT + 5 and len(counts.failures) == FAILURES_KEPT


def test_a_name_outside_the_vocabulary_is_refused():
    with pytest.raises(TypeError, match="not a count: copied_count"):
        Counts(copied_count=1)
    with pytest.raises(TypeError):
        Counts.from_dict(["not", "a", "record"])
