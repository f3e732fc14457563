"""Unit tests of the MLflow adapter's retry rule (module_utils/trackers/mlflow.py: call)."""

import pytest
from mlflow.exceptions import MlflowException

from ansible_collections.mlops.migration.plugins.module_utils.trackers import mlflow as adapter
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError, TransientError


class Flaky:
    """Fails ``times`` times with HTTP ``status``, then answers."""

    def __init__(self, times, status):
        self.times, self.status, self.calls = times, status, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.times:
            error = MlflowException(f"API request failed with {self.status}")
            error.get_http_status_code = lambda: self.status
            raise error
        return "answer"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(adapter.time, "sleep", lambda seconds: None)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_rate_limits_and_server_errors_are_retried(status):
    flaky = Flaky(3, status)
    assert adapter.call("reading run r1", flaky) == "answer" and flaky.calls == 4


def test_a_transient_error_that_persists_is_reported_after_the_retries():
    flaky = Flaky(99, 503)
    with pytest.raises(TransientError, match="reading run r1: API request failed with 503"):
        adapter.call("reading run r1", flaky)
    assert flaky.calls == adapter.RETRIES


def test_a_permanent_error_is_not_retried():
    flaky = Flaky(99, 400)
    with pytest.raises(TrackerError, match="creating run x"):
        adapter.call("creating run x", flaky)
    assert flaky.calls == 1


def test_connection_errors_are_retried():
    state = {"calls": 0}

    def reset():
        state["calls"] += 1
        if state["calls"] < 3:
            raise ConnectionResetError("connection reset by peer")
        return 1

    assert adapter.call("listing", reset) == 1 and state["calls"] == 3
