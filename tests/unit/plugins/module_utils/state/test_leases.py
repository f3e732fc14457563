"""Leases in the state file: one holder at a time, a live holder refuses, a dead one is taken over."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.state.leases import (
    alive,
    HeldLease,
    LeaseHeld,
    Leases,
    process_identity,
    process_started,
)


@pytest.fixture
def leases(tmp_path):
    opened = Leases(str(tmp_path / "migration-state.sqlite"))
    yield opened
    opened.close()


def dead_pid():
    """A pid that ran on this host and has ended (a child started and reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_process_started_tells_a_live_process_from_a_gone_one():
    assert process_started(os.getpid())
    assert process_started(dead_pid()) is None


def test_second_runner_is_refused_with_the_holder_named(leases):
    me = process_identity(owner="run A")
    assert leases.acquire("s3", me, 900) is None
    other = dict(process_identity(os.getppid(), owner="run B"))  # alive: the test's parent process
    with pytest.raises(LeaseHeld) as refused:
        leases.acquire("s3", other, 900, what="step s3")
    message = str(refused.value)
    assert "step s3 is being run by run A" in message and f"pid {os.getpid()}" in message
    assert refused.value.holder["owner"] == "run A"
    assert leases.holder("s3")["owner"] == "run A"


def test_holding_again_only_renews_the_heartbeat(leases):
    me = process_identity(owner="run A")
    leases.acquire("s3", me, 900)
    first = leases.holder("s3")
    time.sleep(0.01)
    assert leases.acquire("s3", me, 900) is None
    again = leases.holder("s3")
    assert again["acquired"] == first["acquired"] and again["heartbeat"] > first["heartbeat"]


def test_a_dead_holder_on_this_host_is_taken_over_at_once(leases):
    gone = process_identity(dead_pid(), owner="run dead")
    gone["pid_started"] = "1"
    leases.acquire("mongo", gone, 900)
    me = process_identity(owner="run B")
    taken = leases.acquire("mongo", me, 900)
    assert taken["owner"] == "run dead"
    assert leases.holder("mongo")["owner"] == "run B"


def test_a_reused_pid_is_not_taken_for_the_holder(leases):
    reused = process_identity(owner="run old")
    reused["pid_started"] = "0"  # this pid, but a process that started at another time
    leases.acquire("mongo", reused, 900)
    assert leases.acquire("mongo", process_identity(owner="run new"), 900)["owner"] == "run old"


def test_a_holder_on_another_host_lives_until_its_heartbeat_times_out():
    holder = {"host": "elsewhere.example", "pid": 1, "heartbeat": 1000.0}
    assert alive(holder, timeout=900, now=1899.0, here="here.example")
    assert not alive(holder, timeout=900, now=1901.0, here="here.example")


def test_release_gives_the_lease_up_and_names_a_thief(leases):
    me, other = process_identity(owner="run A"), dict(process_identity(owner="run B"), pid=os.getppid())
    leases.acquire("events", me, 900)
    assert leases.release("events", other)["owner"] == "run A"  # not B's to give up
    assert leases.holder("events")["owner"] == "run A"
    assert leases.release("events", me) is None and leases.holder("events") is None
    assert leases.beat("events", me) is False


def test_held_lease_beats_and_releases(tmp_path):
    path = str(tmp_path / "migration-state.sqlite")
    with HeldLease(path, "tracker_copy a -> b", timeout=0.2) as held:
        leases = Leases(path)
        try:
            first = leases.holder("tracker_copy a -> b")["heartbeat"]
            time.sleep(0.3)
            assert leases.holder("tracker_copy a -> b")["heartbeat"] > first
            with pytest.raises(LeaseHeld, match="tracker_copy a -> b is being run by pid"):
                leases.acquire("tracker_copy a -> b", dict(held.me, pid=os.getppid(), owner="x"), 60)
        finally:
            leases.close()
    leases = Leases(path)
    try:
        assert leases.holder("tracker_copy a -> b") is None
    finally:
        leases.close()


def test_a_read_only_look_writes_nothing(tmp_path):
    path = tmp_path / "migration-state.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE steps (name TEXT)").connection.close()  # a state file before leases
    before = path.read_bytes()
    look = Leases(str(path), readonly=True)
    try:
        assert look.holder("s3") is None
    finally:
        look.close()
    assert path.read_bytes() == before
