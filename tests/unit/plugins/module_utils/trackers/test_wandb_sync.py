"""Unit tests of the thin ``wandb sync`` step of the W&B offline target (trackers/wandb.py ``_sync``): the command
and environment it runs, a failure named with the key masked, and the options it needs. No W&B server runs
here, so the sync itself is not run against one (subprocess.run is replaced)."""

import subprocess
import sys
from types import SimpleNamespace

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers import wandb as adapters
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError

KEY = "s3cr3t" * 7


def test_a_written_run_is_synced_under_its_own_id_to_the_server_given(monkeypatch, tmp_path):
    calls = []

    def run(command, **kwargs):
        calls.append((command, kwargs["env"]))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(adapters.subprocess, "run", run)
    target = adapters.WandbOfflineTarget(str(tmp_path), entity="team", base_url="https://wandb.example", api_key=KEY)
    target._sync(SimpleNamespace(id="abc123", project="proj"), str(tmp_path / "offline-run-x-abc123"))
    (command, env), = calls
    assert command == [sys.executable, "-m", "wandb", "sync", "--id", "abc123", "-p", "proj", "-e", "team",
                       str(tmp_path / "offline-run-x-abc123")]
    assert (env["WANDB_BASE_URL"], env["WANDB_API_KEY"]) == ("https://wandb.example", KEY)


def test_a_failed_sync_fails_the_run_naming_the_folder_with_the_key_masked(monkeypatch, tmp_path):
    monkeypatch.setattr(adapters.subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(
        command, 1, "", f"Error: api key {KEY} was refused\n"))
    target = adapters.WandbOfflineTarget(str(tmp_path), entity="team", base_url="https://wandb.example", api_key=KEY)
    with pytest.raises(TrackerError, match="wandb sync of .*folder to https://wandb.example failed .exit 1.") as err:
        target._sync(SimpleNamespace(id="abc123", project="proj"), str(tmp_path / "folder"))
    assert KEY not in str(err.value) and "********" in str(err.value) and "by hand" in str(err.value)


def test_syncing_needs_an_entity_and_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(TrackerError, match="needs entity and api_key"):
        adapters.WandbOfflineTarget(str(tmp_path), base_url="https://wandb.example", api_key=KEY).check()
    with pytest.raises(TrackerError, match="needs entity and api_key"):
        adapters.WandbOfflineTarget(str(tmp_path), entity="team", base_url="https://wandb.example").check()
    adapters.WandbOfflineTarget(str(tmp_path), entity="team").check()  # no server: nothing to sync, nothing needed
