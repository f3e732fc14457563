"""MLflow source records for tests and benchmarks: nested runs, metric histories, unicode
params, artifacts in subdirectories, registered models with aliases."""

from __future__ import annotations

import os
import tempfile

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

BASE_TIME = 1_700_000_000_000


def log_points(client, run_id, key, steps, start=0):
    batch = []
    for step in range(start, start + steps):
        batch.append(Metric(key, 1.0 / (step + 1), BASE_TIME + step * 1000, step))
        if len(batch) == 1000:
            client.log_batch(run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)


def add_run(client, experiment_id, index, metrics=3, steps=50, artifacts=2, parent=None, finish=True):
    tags = {"mlflow.user": f"user{index % 3}", "team": "vision", "mlflow.source.name": "train.py"}
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, start_time=BASE_TIME + index * 60_000, tags=tags, run_name=f"run-{index}")
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param("lr", str(0.001 * (index + 1))), Param("modèle", "réseau-ü"),
                                     Param("layers", str(index % 5))],
                     tags=[RunTag("note", f"essai nº{index}")])
    client.log_inputs(run_id, [DatasetInput(Dataset(f"train-{index % 2}", f"d{index % 2:07d}", "local",
                                                    '{"uri": "/data/train.parquet"}'),
                                            [InputTag("mlflow.data.context", "training")])])
    for m in range(metrics):
        log_points(client, run_id, f"metric_{m}", steps)
    with tempfile.TemporaryDirectory() as scratch:
        for a in range(artifacts):
            folder = os.path.join(scratch, f"set{a}")
            os.makedirs(os.path.join(folder, "deep", "er"), exist_ok=True)
            with open(os.path.join(folder, "deep", "er", f"file-{a}.bin"), "wb") as handle:
                handle.write(os.urandom(1000 + a * 517))
            client.log_artifacts(run_id, folder, f"outputs/set{a}")
    if finish:
        client.set_terminated(run_id, "FINISHED", BASE_TIME + index * 60_000 + 30_000)
    return run_id


def seed(tracking_uri, experiment, runs=4, metrics=3, steps=50, artifacts=2, nested=True, model=True):
    """An experiment with ``runs`` runs (the later half nested under the first), and a model with two versions."""
    client = MlflowClient(tracking_uri)
    exp_id = client.create_experiment(experiment, tags={"project": "ünïcode", "mlflow.note.content": "the déscription"})
    ids = []
    for index in range(runs):
        parent = ids[0] if nested and ids and index >= runs // 2 else None
        ids.append(add_run(client, exp_id, index, metrics, steps, artifacts, parent))
    if model:
        name = f"{experiment}-model"
        client.create_registered_model(name, tags={"owner": "ml"}, description="the best")
        for run_id in ids[:2]:
            client.create_model_version(name, f"runs:/{run_id}/outputs/set0", run_id=run_id,
                                        tags={"from": run_id[:6]}, description="v")
        client.set_registered_model_alias(name, "champion", "2")
    return exp_id, ids


def side_lines(client, run_id, path):
    """The JSON objects of a run's JSON-lines artifact ``path`` (a side file of the copy), in order."""
    import json  # pylint: disable=import-outside-toplevel

    with open(client.download_artifacts(run_id, path), encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]
