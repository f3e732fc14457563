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


def test_dataset_inputs_are_logged_one_call_at_a_time_and_a_lost_race_is_logged_again(no_sleep):
    """Two runs of one experiment logging a new dataset at once race the server's create-once insert."""
    import threading  # pylint: disable=import-outside-toplevel
    from concurrent.futures import ThreadPoolExecutor  # pylint: disable=import-outside-toplevel

    from mlflow.entities import Dataset, DatasetInput  # pylint: disable=import-outside-toplevel

    class Client:
        def __init__(self):
            self.inside, self.most, self.calls, self.lock = 0, 0, [], threading.Lock()

        def log_inputs(self, run_id, _entities):
            with self.lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
                self.calls.append(run_id)
                first_of_r2 = self.calls.count("r2") == 1 and run_id == "r2"
            threading.Event().wait(0.02)  # (time.sleep is a no-op under no_sleep)
            with self.lock:
                self.inside -= 1
            if first_of_r2:  # as another process's insert would make it fail
                raise MlflowException("UNIQUE constraint failed: datasets.experiment_id, datasets.name, "
                                      "datasets.digest", error_code="INVALID_PARAMETER_VALUE")  # HTTP 400

    target = adapter.MlflowTarget.__new__(adapter.MlflowTarget)
    target.uri, target.client, target.inputs_lock = "http://mlflow", Client(), threading.Lock()
    dataset = DatasetInput(Dataset("shared", "d1", "local", source="s3://b/x"), [])
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda run_id: target.log_inputs(run_id, [dataset]), ["r1", "r2", "r3", "r4"]))
    assert target.client.most == 1
    assert sorted(target.client.calls) == ["r1", "r2", "r2", "r3", "r4"]
