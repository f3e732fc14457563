"""Unit tests of module_utils/trackers/registry.py: tracker kinds, their options and their checks."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.registry import (
    adapter,
    missing_library,
    tracker_spec,
    uris,
)


def test_the_spec_is_the_kind_and_every_adapters_options():
    spec = tracker_spec()
    assert spec["kind"]["choices"] == ["mlflow", "wandb_offline"] and spec["kind"]["default"] == "mlflow"
    assert {"tracking_uri", "token", "username", "password", "wandb_dir"} <= set(spec)
    assert spec["token"]["no_log"] and spec["password"]["no_log"]


def test_a_kind_without_its_required_options_is_refused_before_any_call():
    with pytest.raises(TrackerError, match="a mlflow tracker needs tracking_uri"):
        adapter({"kind": "mlflow", "token": "t"}, "source")


def test_a_read_only_kind_is_refused_as_a_target_before_any_call(tmp_path):
    with pytest.raises(TrackerError, match="can be read from, not written to"):
        adapter({"kind": "wandb_offline", "wandb_dir": str(tmp_path)}, "target")
    with pytest.raises(TrackerError, match="holds no offline-run"):
        adapter({"kind": "wandb_offline", "wandb_dir": str(tmp_path)}, "source")


def test_library_and_uris():
    assert missing_library({"kind": "mlflow"}) is None  # mlflow is installed where the tests run
    assert uris({"kind": "mlflow", "tracking_uri": "http://u:p@h:1", "token": "t"}) == ["http://u:p@h:1"]
