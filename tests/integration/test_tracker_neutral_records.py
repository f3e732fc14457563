"""The neutral record kinds the coming adapters produce (text, media, plot, histogram series,
summary, nested configuration, system metrics, descriptions, parent and fork links), copied by
the tracker-neutral copy into a real MLflow server and read back there.

The source is a stand-in adapter holding neutral records in memory: no other tracker runs here,
and what is tested is the copy and the MLflow target's mapping of each kind.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from mlflow.tracking import MlflowClient

from ansible_collections.mlops.migration.plugins.module_utils.state.ledger import Ledger
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    Experiment,
    Point,
    Run,
    SeriesItem,
    SourceAdapter,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier
from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import MlflowTarget

pytestmark = pytest.mark.integration
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


class MemorySource(SourceAdapter):
    """Neutral records in memory: one experiment, a parent run and a run forked from it at step 5."""

    KIND = "memory"
    uri = "memory://test"

    def __init__(self, name):
        self.experiment = Experiment("e1", name, {"team": "vision"}, description="what the project is about")
        common = dict(experiment_id="e1", start_time=1_700_000_000_000, end_time=1_700_000_100_000,
                      status="FINISHED", user="alice", params={"lr": "0.1", "optimizer/name": "adam"})
        self.by_id = {
            "p": Run(id="p", name="parent", metric_keys=["loss"], system_metric_keys=["cpu"], description="the base run",
                     summary={"best_loss": 0.25, "note": "kept"}, config={"optimizer": {"name": "adam"}, "lr": 0.1},
                     series={"text": ["console"], "media": ["samples"], "plot": ["confusion"],
                             "histogram": ["weights"]}, tags={"stage": "base"}, **common),
            "c": Run(id="c", name="fork", metric_keys=["loss"], parent_id="p", fork_step=5.0, tags={"stage": "fork"},
                     **common),
        }

    def experiments(self, selectors, include_deleted=False):
        return [self.experiment]

    def runs(self, experiment, include_deleted=False):
        return list(self.by_id.values())

    def run(self, run_id):
        return self.by_id[run_id]

    def metric_history(self, run, key):
        return (Point(key, 1.0 / (step + 1), 1_700_000_000_000 + step, step) for step in range(20))

    def artifacts(self, run):
        return []

    def series(self, run, kind, key):
        for step in range(3):
            if kind == "text":
                yield SeriesItem(key, step, 1_700_000_000_000 + step, text=f"epoch {step} done")
            elif kind == "media":
                yield SeriesItem(key, step, 1_700_000_000_000 + step, file=f"media/sample-{step}.png",
                                 caption=f"sample {step}")
            elif kind == "plot":
                yield SeriesItem(key, step, None, data={"data": [{"z": [[step, 1], [1, step]]}]})
            else:
                yield SeriesItem(key, step, None, data={"edges": [0, 1, 2], "values": [step, 3 - step]})

    def series_file(self, run, item, path):
        with open(path, "wb") as out:
            out.write(PNG + item.file.encode())

    def registered_models(self):
        return []


def copy_into(mlflow_pair, source, state):
    target = MlflowTarget(mlflow_pair["target"].tracking_uri)
    ledger = Ledger(os.path.join(state, "migration-state.sqlite"), source.uri, target.uri)
    try:
        return Copier(source, target, ledger, parallel=1).copy([])
    finally:
        ledger.close()


def artifact_text(client, run_id, path, dest):
    return open(client.download_artifacts(run_id, path, dest), encoding="utf-8").read()


def test_every_neutral_kind_lands_in_mlflow_and_verifies(mlflow_pair, tmp_path):
    name = f"neutral-{uuid.uuid4().hex[:8]}"
    source = MemorySource(name)
    result = copy_into(mlflow_pair, source, str(tmp_path / "state"))
    assert result["runs"]["copied"] == 2 and result["failed_count"] == 0, result["failures"]
    assert result["kinds"]["tracker runs"]["verified"] == 2

    client = MlflowClient(mlflow_pair["target"].tracking_uri)
    exp = client.get_experiment_by_name(name)
    assert exp.tags["mlflow.note.content"] == "what the project is about" and exp.tags["team"] == "vision"
    runs = {r.data.tags["mlops.migration.source_run_id"]: r for r in client.search_runs([exp.experiment_id])}
    parent, fork = runs["p"], runs["c"]
    assert parent.data.tags["mlflow.note.content"] == "the base run" and parent.data.tags["mlflow.user"] == "alice"
    assert fork.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert fork.data.tags["mlops.migration.fork_step"] == "5.0"
    assert [m.step for m in client.get_metric_history(parent.info.run_id, "system/cpu")] == list(range(20))
    assert "cpu" not in parent.data.metrics

    listed = {a.path for a in client.list_artifacts(parent.info.run_id, "mlops-migration")}
    assert listed == {"mlops-migration/text", "mlops-migration/media", "mlops-migration/plot",
                      "mlops-migration/histogram", "mlops-migration/summary.json", "mlops-migration/config.json"}
    dest = str(tmp_path / "down")
    console = [json.loads(line) for line in artifact_text(client, parent.info.run_id, "mlops-migration/text/console.jsonl",
                                                          dest).splitlines()]
    assert [line["text"] for line in console] == ["epoch 0 done", "epoch 1 done", "epoch 2 done"]
    media = [json.loads(line) for line in artifact_text(client, parent.info.run_id,
                                                        "mlops-migration/media/samples.jsonl", dest).splitlines()]
    assert [m["caption"] for m in media] == ["sample 0", "sample 1", "sample 2"]
    with open(client.download_artifacts(parent.info.run_id, media[1]["artifact"], dest), "rb") as handle:
        assert handle.read() == PNG + b"media/sample-1.png"
    histogram = json.loads(artifact_text(client, parent.info.run_id, "mlops-migration/histogram/weights.jsonl",
                                         dest).splitlines()[2])
    assert histogram["data"] == {"edges": [0, 1, 2], "values": [2, 1]}
    assert json.loads(artifact_text(client, parent.info.run_id, "mlops-migration/summary.json", dest)) == {
        "best_loss": 0.25, "note": "kept"}
    assert json.loads(artifact_text(client, parent.info.run_id, "mlops-migration/config.json", dest))["optimizer"] == {
        "name": "adam"}

    again = copy_into(mlflow_pair, source, str(tmp_path / "state"))
    assert again["runs"]["skipped"] == 2 and again["runs"]["copied"] == 0
