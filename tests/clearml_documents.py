"""ClearML-shaped MongoDB documents (the ``backend`` database) for tests and benchmarks.

Shapes follow what a ClearML server stores: projects, tasks with execution, script, models,
artifacts and hyperparameters, models with URIs, queues and users, all linked by string ids
as ClearML links them. Generated deterministically from a seed.
"""

from __future__ import annotations

import datetime
import hashlib
import random

import bson

STATUSES = ["created", "in_progress", "stopped", "closed", "failed", "completed", "queued", "published",
            "publishing", "unknown"]
KEPT_STATUSES = ["created", "in_progress", "completed", "published", "publishing"]
FILES_URL = "http://files.source.example:8081"
S3_URL = "s3://source-bucket/clearml"


def artifact_id(key, mode="output"):
    """The key of ``execution.artifacts`` a ClearML server gives an artifact."""
    return f"{hashlib.md5(key.encode()).hexdigest()}_{mode}"


def _id(rng):
    return "%032x" % rng.getrandbits(128)


def user(rng, index):
    return {"_id": _id(rng), "name": f"user {index}", "given_name": f"Üser{index}", "company": "acme",
            "created": datetime.datetime(2023, 1, 1) + datetime.timedelta(days=index)}


def project(rng, index, owner):
    return {"_id": _id(rng), "name": f"Project {index}", "basename": f"Project {index}", "user": owner["_id"],
            "company": "acme", "created": datetime.datetime(2023, 2, 1) + datetime.timedelta(hours=index),
            "description": "détails du projet", "tags": ["team-a", f"p{index}"], "system_tags": [],
            "default_output_destination": f"{S3_URL}/Project {index}"}


def task(rng, index, proj, owner, queue):
    status = STATUSES[index % len(STATUSES)]
    name = f"train-{index}"
    folder = f"{proj['name']}/{name}.{_id(rng)}"
    started = datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=index)
    return {
        "_id": _id(rng), "name": name, "user": owner["_id"], "company": "acme", "project": proj["_id"],
        "type": "training", "status": status, "status_reason": "stopped by user" if status == "stopped" else "",
        "status_message": "msg", "status_changed": started, "created": started, "started": started,
        "completed": started + datetime.timedelta(minutes=30), "last_update": started,
        "comment": "auto-generated", "tags": ["nightly"], "system_tags": ["development"],
        "script": {"repository": "https://git.example.com/ml/train.git", "branch": "main",
                   "version_num": _id(rng)[:40], "entry_point": "train.py", "working_dir": ".",
                   "requirements": {"pip": "torch==2.3.0\nnumpy==1.26.4\n"}},
        "execution": {"queue": queue["_id"], "parameters": {"lr": "0.001", "epochs": str(index % 50)},
                      "artifacts": {  # ClearML keys the map by md5(key) + "_" + mode (no dots in keys)
                          artifact_id(f"data.{i}"): {
                              "key": f"data.{i}", "type": "pandas", "mode": "output",
                              "uri": f"{FILES_URL}/{folder}/artifacts/data.{i}/data.csv.gz",
                              "hash": _id(rng), "content_size": rng.randint(100, 10 ** 7), "timestamp": started}
                          for i in range(2)},
                      "model_desc": {}, "docker_cmd": "nvidia/cuda:12.1"},
        "hyperparams": {"Args": {name_: {"section": "Args", "name": name_, "value": str(rng.random()),
                                         "type": "float"} for name_ in ("lr", "momentum", "dropout")}},
        "configuration": {"General": {"name": "General", "value": "batch_size: 64\noptimizer: adam\n",
                                      "type": "yaml"}},
        "models": {"input": [], "output": [{"name": "best", "model": f"model-{index}"}]},
        "output": {"destination": f"{S3_URL}/{proj['name']}", "result": "success",
                   "model": f"model-{index}"},
        "last_metrics": {_id(rng)[:32]: {_id(rng)[:32]: {"metric": "loss", "variant": "total",
                                                         "value": rng.random(), "min_value": 0.01,
                                                         "max_value": 2.5}}},
        "last_iteration": 1000 + index,
        "runtime": {"gpu_count": 1, "gpu_type": "A100"},
    }


def model(rng, tsk, index, proj):
    return {"_id": f"model-{index}", "name": f"{tsk['name']}-best", "user": tsk["user"], "company": "acme",
            "project": tsk["project"], "task": tsk["_id"], "created": tsk["created"], "framework": "PyTorch",
            "uri": f"{FILES_URL}/{proj['name']}/models/{tsk['name']}-best.pt", "ready": True,  # one folder per project
            "design": {"design": "layers: 4"}, "labels": {"background": 0, "cat": 1}, "tags": [],
            "metadata": {"accuracy": {"key": "accuracy", "value": "0.93", "type": "float"}}}


def queue(rng, index):
    return {"_id": _id(rng), "name": f"queue-{index}", "company": "acme", "entries": [],
            "created": datetime.datetime(2023, 1, 1)}


def backend(seed=1, users=3, projects=4, tasks_per_project=10):
    """{collection: [documents]} for a small ClearML backend database."""
    rng = random.Random(seed)
    people = [user(rng, i) for i in range(users)]
    queues = [queue(rng, i) for i in range(2)]
    projs = [project(rng, i, people[i % users]) for i in range(projects)]
    tasks, models = [], []
    for p_index, proj in enumerate(projs):
        for t_index in range(tasks_per_project):
            index = p_index * tasks_per_project + t_index
            tsk = task(rng, index, proj, people[index % users], queues[index % 2])
            tasks.append(tsk)
            if index % 2 == 0:
                models.append(model(rng, tsk, index, proj))
    return {"user": people, "queue": queues, "project": projs, "task": tasks, "model": models}


def task_stream(count, seed=7):
    """``count`` encoded task documents of about 2 KB (for the pipeline benchmark)."""
    rng = random.Random(seed)
    people = [user(rng, i) for i in range(5)]
    projs = [project(rng, i, people[i]) for i in range(5)]
    queues = [queue(rng, 0)]
    for index in range(count):
        yield bson.encode(task(rng, index, projs[index % 5], people[index % 5], queues[0]))
