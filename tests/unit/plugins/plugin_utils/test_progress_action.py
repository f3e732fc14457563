"""Unit tests of plugin_utils/progress_action.py: the progress line the play prints while a module runs."""

from ansible_collections.mlops.migration.plugins.module_utils.state.leases import Leases, process_identity
from ansible_collections.mlops.migration.plugins.plugin_utils.progress_action import _record, progress_line, renew_lease


def test_a_line_with_a_total_shows_the_share_and_the_eta():
    line = progress_line({"what": "s3_sync a/ -> b/", "unit": "objects", "done": 1234, "total": 5000,
                          "bytes": 3 * 1024 ** 3, "rate": 18.24, "bytes_rate": 55 * 1024 ** 2, "eta_seconds": 206.5})
    assert line == "s3_sync a/ -> b/: 1,234/5,000 objects (25%), 3.0 GiB, 18.2 objects/s, 55.0 MiB/s, ETA 3m26s"


def test_a_line_without_a_total_shows_what_is_known():
    assert progress_line({"what": "search_copy", "unit": "documents", "done": 7, "total": None, "rate": 0.5,
                          "eta_seconds": None}) == "search_copy: 7 documents, 0.5 documents/s"


def test_only_a_running_jobs_record_is_shown():
    assert _record('{"done": 3, "finished": false}') == {"done": 3, "finished": False}
    assert _record('{"done": 3, "finished": true}') is None
    assert _record("") is None and _record("[1]") is None and _record("{not json") is None


def test_the_follower_renews_the_step_lease_it_holds_and_only_that(tmp_path):
    path = str(tmp_path / "migration-state.sqlite")
    leases = Leases(path)
    try:
        leases.acquire("s3", process_identity(owner="run A"), 900)
        held = leases.holder("s3")
        renew_lease({"file": path, "name": "s3", "owner": held})
        assert leases.holder("s3")["heartbeat"] > held["heartbeat"]
        renew_lease({"file": path, "name": "s3", "owner": dict(held, owner="run B")})  # not B's: only a warning
        renew_lease({"file": path, "name": "s3"})  # a malformed lease: a warning, not a failure
        assert leases.holder("s3")["owner"] == "run A"
    finally:
        leases.close()
