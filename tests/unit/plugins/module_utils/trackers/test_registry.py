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
    assert spec["kind"]["choices"] == ["mlflow", "wandb_offline", "wandb_api", "neptune_export", "neptune_offline",
                                       "neptune_scale", "neptune_query", "comet_offline", "cometx_download",
                                       "clearml_offline", "clearml_server", "clearml_api"]
    assert spec["kind"]["default"] == "mlflow"
    assert {"tracking_uri", "token", "username", "password", "wandb_dir", "base_url", "api_key"} <= set(spec)
    assert spec["token"]["no_log"] and spec["password"]["no_log"] and spec["api_key"]["no_log"]


def test_the_live_wandb_api_is_read_only_needs_an_entity_a_key_and_a_server_that_answers(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(TrackerError, match="can be read from, not written to"):
        adapter({"kind": "wandb_api", "entity": "e", "api_key": "k"}, "target")
    with pytest.raises(TrackerError, match="a wandb_api tracker needs entity"):
        adapter({"kind": "wandb_api", "api_key": "k"}, "source")
    with pytest.raises(TrackerError, match="no API key"):
        adapter({"kind": "wandb_api", "entity": "e"}, "source")
    with pytest.raises(TrackerError, match="cannot reach 127.0.0.1:9"):
        adapter({"kind": "wandb_api", "entity": "e", "api_key": "k", "base_url": "http://127.0.0.1:9"}, "source")


def test_a_kind_without_its_required_options_is_refused_before_any_call():
    with pytest.raises(TrackerError, match="a mlflow tracker needs tracking_uri"):
        adapter({"kind": "mlflow", "token": "t"}, "source")


def test_a_read_only_kind_is_refused_as_a_target_before_any_call(monkeypatch):
    from ansible_collections.mlops.migration.plugins.module_utils.trackers import registry
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb import WandbOfflineSource

    monkeypatch.setitem(registry.ADAPTERS, "wandb_offline", (WandbOfflineSource, None))
    with pytest.raises(TrackerError, match="can be read from, not written to"):
        adapter({"kind": "wandb_offline", "wandb_dir": "/nonexistent"}, "target")


def test_wandb_offline_needs_runs_to_read_and_a_directory_to_write(tmp_path):
    with pytest.raises(TrackerError, match="holds no offline-run"):
        adapter({"kind": "wandb_offline", "wandb_dir": str(tmp_path)}, "source")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrackerError, match="is not a directory"):
        adapter({"kind": "wandb_offline", "wandb_dir": str(tmp_path / "file" / "runs")}, "target")
    assert adapter({"kind": "wandb_offline", "wandb_dir": str(tmp_path / "new")}, "target").root.endswith("new")
    assert not (tmp_path / "new").exists()  # checking writes nothing


def test_library_and_uris():
    assert missing_library({"kind": "mlflow"}) is None  # mlflow is installed where the tests run
    assert uris({"kind": "mlflow", "tracking_uri": "http://u:p@h:1", "token": "t"}) == ["http://u:p@h:1"]
