"""Unit tests of the copy logic (module_utils/trackers/copy.py) that needs no server."""

import hashlib
from dataclasses import replace

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import _depths, CopyReport, RunFilter
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import Run, SeriesItem, TrackerError


def run(ident, parent=None, status="FINISHED", start=0, tags=None):
    return Run(ident, "1", ident, start, None, status, "u", tags=dict(tags or {}), parent_id=parent)


def test_parents_come_in_earlier_waves_than_their_children():
    runs = [run("c", "b"), run("a"), run("b", "a"), run("x", "missing"), run("loop1", "loop2"), run("loop2", "loop1")]
    waves = [[r.id for r in wave] for wave in _depths(runs)]
    order = {ident: n for n, wave in enumerate(waves) for ident in wave}
    assert order["a"] < order["b"] < order["c"]
    assert order["x"] == 0  # a parent outside the copy does not hold a run back
    assert set(order) == {"a", "b", "c", "x", "loop1", "loop2"}


def test_run_filter():
    wanted = RunFilter(["finished"], started_after=10, started_before=20, tags={"team": "a"})
    assert wanted.wants(run("r", start=10, tags={"team": "a"}))
    assert not wanted.wants(run("r", start=20, tags={"team": "a"}))
    assert not wanted.wants(run("r", start=15, status="FAILED", tags={"team": "a"}))
    assert not wanted.wants(run("r", start=15, tags={"team": "b"}))
    assert RunFilter().wants(run("r", status="RUNNING"))
    named = RunFilter(names=["train-.*", "eval"])
    assert named.wants(replace(run("r"), name="train-3")) and named.wants(replace(run("r"), name="eval"))
    assert not named.wants(replace(run("r"), name="eval-2")) and not named.wants(replace(run("r"), name=None))
    with pytest.raises(TrackerError, match="is not a regular expression"):
        RunFilter(names=["train-("])
    assert not run("r", status="RUNNING").finished


def test_report_counts_and_lists_failures():
    report = CopyReport()
    report.add("runs", "found", 3)
    report.add("runs", "copied")
    report.fail("runs", "r2", "boom")
    report.moved(points=10, size=5)
    result = report.result()
    assert result["runs"] == {"found": 3, "copied": 1, "skipped": 0, "updated": 0, "failed": 1}
    assert (result["points_copied"], result["bytes"], result["failed_count"]) == (10, 5, 1)
    assert result["failures"] == [{"kind": "runs", "id": "r2", "reason": "boom"}] and report.changed


def test_point_digest_ignores_order_and_sees_every_change():
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import Point
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import point_digest

    points = [Point("m", 1.0 / (s + 1), 1000 + s, s) for s in range(50)]
    count, digest = point_digest(points)
    assert (count, digest) == point_digest(reversed(points))
    assert point_digest(points[:-1])[1] != digest
    for changed in (replace(points[3], value=0.7), replace(points[3], timestamp=1), replace(points[3], step=99)):
        shuffled = [changed] + points[:3] + points[4:]
        assert point_digest(points[:3] + [changed] + points[4:]) == (50, point_digest(shuffled)[1])
        assert point_digest(points[:3] + [changed] + points[4:])[1] != digest
    assert point_digest([replace(points[0], step=1)])[1] == point_digest([replace(points[0], step=1.0)])[1]


class _MediaTarget:
    """Just enough of a target for ``Copier._verify``: a copy whose media series holds ``files`` (bytes)."""

    OWN_ARTIFACTS = None

    def __init__(self, files):
        self.files = files

    def run(self, run_id):
        return run(run_id)

    def series(self, copy, kind, key):
        return iter([SeriesItem(key, n, None, file=f"media/{n}.png") for n in range(len(self.files))])

    def series_file(self, copy, item, path):
        with open(path, "wb") as out:
            out.write(self.files[int(item.file.split("/")[1].split(".")[0])])


def test_media_files_are_verified_by_md5_in_any_order():
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier

    want = sorted(hashlib.md5(data).hexdigest() for data in (b"first", b"second"))
    Copier(None, _MediaTarget([b"second", b"first"]), None)._verify(run("r"), "r", {}, {}, media={"img": want})
    with pytest.raises(TrackerError, match="media series img: the files at the target differ"):
        Copier(None, _MediaTarget([b"second", b"f1rst"]), None)._verify(run("r"), "r", {}, {}, media={"img": want})
