"""Unit tests of module_utils/trackers/wandb_api.py's pure parts: API times, history keys into series kinds,
the request limit and the retry of transient failures (the source against a W&B API is tested in
tests/integration/test_wandb_api_to_mlflow.py)."""

import threading
import time

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError, TransientError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_api import (
    WandbApiSource,
    _ms_of_iso,
    _series_of,
)


def test_api_times_are_utc_ms_with_the_microseconds_cut():
    assert _ms_of_iso("1970-01-01T00:00:01") == 1000
    assert _ms_of_iso("2024-01-01T00:00:00.123999Z") == 1704067200123
    assert _ms_of_iso("2024-01-01T01:00:00+01:00") == 1704067200000
    assert _ms_of_iso(None) is None and _ms_of_iso("") is None


def test_history_keys_become_metrics_and_series_kinds():
    keys = {"lastStep": 9, "keys": {
        "_step": {"typeCounts": [{"type": "number", "count": 10}]},
        "_timestamp": {"typeCounts": [{"type": "number", "count": 10}]},
        "loss": {"typeCounts": [{"type": "number", "count": 10}]},
        "sample": {"typeCounts": [{"type": "image-file", "count": 1}]},
        "weights": {"typeCounts": [{"type": "histogram", "count": 2}]},
        "note": {"typeCounts": [{"type": "string", "count": 1}]},
        "table": {"typeCounts": [{"type": "table-file", "count": 1}]},
        "mixed": {"typeCounts": [{"type": "number", "count": 1}, {"type": "string", "count": 1}]}}}
    metrics, series = _series_of(keys)
    assert metrics == ["loss", "mixed"]
    assert series == {"media": ["sample"], "text": ["mixed", "note"], "plot": ["table"], "histogram": ["weights"]}
    assert _series_of(None) == ([], {})


def test_calls_hold_one_of_max_requests_slots():
    source = WandbApiSource("e", "http://127.0.0.1:9", "k", max_requests=2)
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def call():
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1

    threads = [threading.Thread(target=source._call, args=(f"call {n}", call)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["most"] == 2


def test_transient_failures_are_retried_and_others_are_not(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    source = WandbApiSource("e", "http://127.0.0.1:9", "k")
    answers = iter([RuntimeError("HTTP 429: rate limit exceeded"), RuntimeError("502 Bad Gateway"), "ok"])

    def flaky():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert source._call("x", flaky) == "ok"
    calls = []

    def refused():
        calls.append(1)
        raise ValueError("invalid credentials")

    with pytest.raises(TrackerError, match="x: invalid credentials") as refusal:
        source._call("x", refused)
    assert len(calls) == 1 and not isinstance(refusal.value, TransientError)

    def always_busy():
        raise RuntimeError("503 Service Unavailable")

    with pytest.raises(TransientError, match="503"):
        source._call("x", always_busy)


def test_pages_end_at_the_end_of_the_paginator():
    source = WandbApiSource("e", "http://127.0.0.1:9", "k")
    assert list(source._pages("x", [1, 2, 3])) == [1, 2, 3]


def test_a_failure_without_a_message_is_named_by_its_kind():
    source = WandbApiSource("e", "http://127.0.0.1:9", "k")

    def silent():
        raise LookupError()

    with pytest.raises(TrackerError, match="x: LookupError"):
        source._call("x", silent)
