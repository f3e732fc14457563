"""Unit tests of module_utils/state/ledger.py."""

import os
import threading

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.state.ledger import Ledger
from ansible_collections.mlops.migration.plugins.module_utils.state.steps import StepLog
from ansible_collections.mlops.migration.plugins.module_utils.state.store import LedgerError


def test_record_get_forget_per_source_and_target(tmp_path):
    path = str(tmp_path / "state" / "ledger.sqlite")
    ledger = Ledger(path, "http://a", "http://b")
    assert ledger.get("run", "r1") is None
    ledger.record("run", "r1", "t1", "started")
    assert not ledger.get("run", "r1").complete
    ledger.record("run", "r1", "t1", "complete", {"points": {"loss": 3}})
    entry = ledger.get("run", "r1")
    assert entry.complete and entry.detail == {"points": {"loss": 3}} and ledger.target_id("run", "r1") == "t1"
    other = Ledger(path, "http://a", "http://c")  # another target keeps its own mapping
    assert other.get("run", "r1") is None
    ledger.forget("run", "r1")
    assert ledger.get("run", "r1") is None
    ledger.close()
    other.close()


def test_readonly_ledger_writes_nothing(tmp_path):
    path = str(tmp_path / "none" / "ledger.sqlite")
    readonly = Ledger(path, "a", "b", readonly=True)
    readonly.record("run", "r", "t", "complete")
    assert readonly.get("run", "r") is None and not os.path.exists(path)
    writer = Ledger(path, "a", "b")
    writer.record("run", "r", "t", "complete")
    writer.close()
    assert Ledger(path, "a", "b", readonly=True).get("run", "r").complete


def test_threads_share_one_ledger(tmp_path):
    ledger = Ledger(str(tmp_path / "l.sqlite"), "a", "b")

    def write(start):
        for i in range(start, start + 50):
            ledger.record("run", str(i), f"t{i}", "complete")

    threads = [threading.Thread(target=write, args=(n * 50,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(ledger.get("run", str(i)).complete for i in range(200))


def test_an_unusable_path_is_explained(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match="cannot open the migration state file"):
        Ledger(str(blocker / "ledger.sqlite"), "a", "b")


def test_steps_record_state_summary_and_progress(tmp_path):
    path = str(tmp_path / "migration-state.sqlite")
    assert StepLog(path, readonly=True).get("s3") is None and not os.path.exists(path)
    steps = StepLog(path)
    assert steps.set("s3", "running", progress={"done": 1, "total": 10})
    assert not steps.set("s3", "running", progress={"done": 1, "total": 10})
    running = steps.get("s3")
    assert running["state"] == "running" and running["started"] and running["finished"] is None
    assert steps.set("s3", "done", {"copied": 10})
    done = steps.get("s3")
    assert (done["state"], done["summary"], done["started"]) == ("done", {"copied": 10}, running["started"])
    assert not steps.set("s3", "done", {"copied": 10})
    assert list(steps.all()) == ["s3"]
    with pytest.raises(LedgerError, match="state must be one of"):
        steps.set("s3", "paused")
    ledger = Ledger(path, "a", "b")  # the copy ledger lives in the same file
    ledger.record("run", "r", "t", "complete")
    assert ledger.get("run", "r").complete and steps.get("s3")["state"] == "done"
