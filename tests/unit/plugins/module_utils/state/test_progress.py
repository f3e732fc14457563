"""Unit tests of module_utils/state/progress.py: throttled progress records, ETA and the event log."""

import json
import os

from ansible_collections.mlops.migration.plugins.module_utils.state.progress import Progress, read


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_progress_is_written_at_most_once_an_interval_with_rate_and_eta(tmp_path, capsys):
    clock = Clock()
    path = str(tmp_path / "s3.progress.json")
    progress = Progress(path, "s3_sync a -> b", interval=1.0, clock=clock)
    assert read(path)["done"] == 0 and read(path)["finished"] is False
    progress.update(total=100)
    clock.now += 0.5
    progress.update(done=10, size=1000)
    assert read(path)["done"] == 0  # not yet: within the interval
    clock.now += 0.6
    progress.update(done=20, size=2000)
    record = read(path)
    assert (record["done"], record["total"], record["bytes"]) == (20, 100, 2000)
    assert record["rate"] == round(20 / 1.1, 2) and record["eta_seconds"] == round(80 / (20 / 1.1), 1)
    progress.event("s3_sync a -> b: k failed: BadDigest")
    progress.finish("copied 20")
    assert read(path)["finished"] is True
    with open(tmp_path / "migration.log", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "s3_sync a -> b: started", "s3_sync a -> b: k failed: BadDigest",
        "s3_sync a -> b: finished, 20 objects, 2000 bytes; copied 20"]
    assert "k failed: BadDigest" in capsys.readouterr().err
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_unknown_total_has_no_eta_and_unreadable_files_read_as_none(tmp_path):
    path = str(tmp_path / "p.json")
    progress = Progress(path, "x", clock=Clock())
    progress.update(done=5, force=True)
    assert read(path)["eta_seconds"] is None and read(path)["total"] is None
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    assert read(path) is None and read(str(tmp_path / "missing.json")) is None
    json.dumps(progress.snapshot())  # the record is plain JSON


def test_a_job_stops_itself_once_its_heartbeat_is_old(tmp_path):
    import threading  # pylint: disable=import-outside-toplevel

    from ansible_collections.mlops.migration.plugins.module_utils.state.progress import watch_controller  # noqa  pylint: disable=C0415

    beat = tmp_path / "s3.progress.json.heartbeat"
    beat.write_text("")
    stopped, events = threading.Event(), []
    now = [os.stat(beat).st_mtime]
    thread = watch_controller(events.append, {"MLOPS_MIGRATION_HEARTBEAT": str(beat),
                                              "MLOPS_MIGRATION_HEARTBEAT_TIMEOUT": "0.3"},
                              clock=lambda: now[0], stop=stopped.set)
    assert not stopped.wait(0.5)  # the heartbeat is fresh
    now[0] += 1.0  # a second with no touch
    assert stopped.wait(5)
    thread.join(5)
    assert events == ["the controller stopped following this job (no heartbeat for 1 s): stopping"]
    assert watch_controller(events.append, {}) is None  # not a followed job: nothing watched
