"""Seed the source side of a running stack with a small ClearML-shaped platform (for ``make demo``).

- MongoDB ``backend``: users, projects, queues, tasks in every status, models
  (tests/clearml_documents.py), whose artifact and model URLs point at the fileserver (the first
  tasks' predictions at the source S3 bucket), and whose output destinations point at that bucket;
- the fileserver: a directory on the source host holding a file at every fileserver URL path
  the documents name;
- S3 ``source-bucket``: artifacts and debug images under ``clearml/`` (awkward names, a
  zero-byte object, a directory marker, one multipart object);
- OpenSearch: the ClearML server's event index templates and, per task, scalars over many
  iterations, plots carrying image URLs (every fourth large and stored compressed), debug images
  and console lines naming URLs (tests/clearml_events.py); the images are fileserver files too;
- MLflow: two experiments with nested runs, metrics, params, artifacts and a registered model.

Each part is seeded only when the source does not hold it yet, so seeding twice changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re

from tests import clearml_documents, clearml_events

BUCKET = "source-bucket"
TARGET_BUCKET = "target-bucket"
S3_PREFIX = "clearml/"
DATABASE = "backend"
EXPERIMENTS = ("demo-training", "demo-tuning")
COMPANY = "acme"
FILES_URL = clearml_documents.FILES_URL + "/"


def fileserver_dir(state):
    return os.path.join(state["ssh"]["source"]["root"], "fileserver")


def _content(name, size=None):
    seed = hashlib.sha256(name.encode()).digest()
    size = size if size is not None else 200 + seed[0] * 8
    return (seed * (size // len(seed) + 1))[:size]


S3_TASKS = 12  # the first tasks keep debug images and a predictions artifact in the source bucket


def documents():
    """The backend database; the tasks with objects in the source bucket name their predictions there."""
    docs = clearml_documents.backend(seed=11, users=3, projects=3, tasks_per_project=10)
    for task in docs["task"][:S3_TASKS]:
        key = clearml_documents.artifact_id("predictions")
        task["execution"]["artifacts"][key] = {
            "key": "predictions", "type": "custom", "mode": "output", "hash": "", "content_size": 0,
            "uri": f"s3://{BUCKET}/{s3_folder(docs, task)}/artifacts/predictions/preds.csv", "timestamp": task["created"]}
    return docs


def s3_folder(docs, task):
    """The task's folder in the source bucket, as ClearML lays it out: <prefix><project>/<task>.<id>."""
    project = next(p for p in docs["project"] if p["_id"] == task["project"])
    return f"{S3_PREFIX}{project['name']}/{task['name']}.{task['_id']}"


def fileserver_paths(docs):
    """Every path below the fileserver URL that a document names."""
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value.startswith(FILES_URL):
            found.add(value[len(FILES_URL):])

    for collection in docs.values():
        walk(collection)
    return sorted(found)


def events(docs):
    """``{index: [(id, doc)]}`` of the events of every task (also those the migration leaves out)."""
    out = {}
    projects = {proj["_id"]: proj["name"] for proj in docs["project"]}
    for task in docs["task"]:
        folder = f"{projects[task['project']]}/{task['name']}.{task['_id']}"  # as the task's artifacts are
        for kind, pairs in clearml_events.task_events(task["_id"], COMPANY, clearml_documents.FILES_URL, folder).items():
            out.setdefault(clearml_events.index_name(kind, COMPANY), []).extend(pairs)
    return out


def event_image_paths(docs, tasks=None):
    """Fileserver paths of the images the events name (of the ``tasks`` ids only, when given)."""
    found = set()
    for pairs in events(docs).values():
        for _ident, doc in pairs:
            if tasks is not None and doc["task"] not in tasks:
                continue
            text = doc.get("url") or doc.get("plot_str") or ""
            if doc.get("plot_data"):
                text = clearml_events.unpacked(doc["plot_data"])
            found.update(re.findall(re.escape(FILES_URL) + r"([^\"]+?\.png)", text))
    return sorted(found)


def seed_search(state, docs):
    import json  # pylint: disable=import-outside-toplevel
    import urllib.request  # pylint: disable=import-outside-toplevel

    url = state["search"]["source"]["url"]

    def request(method, path, body=None, content_type="application/json"):
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": content_type})
        with urllib.request.urlopen(req, timeout=60) as response:
            return json.loads(response.read() or b"{}")

    clearml_events.install_templates(request)
    written = 0
    for index, pairs in events(docs).items():
        try:
            present = request("GET", f"/{index}/_count")["count"]
        except OSError:  # no such index yet (urllib's HTTPError is an OSError)
            present = 0
        if present < len(pairs):
            request("POST", "/_bulk?refresh=true", clearml_events.bulk_body(index, pairs), "application/x-ndjson")
            written += len(pairs) - present
    return written


def seed_fileserver(state, docs):
    root = fileserver_dir(state)
    written = 0
    for rel in fileserver_paths(docs) + event_image_paths(docs):
        path = os.path.join(root, rel)
        if os.path.exists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(_content(rel))
        written += 1
    return written


def s3_objects(docs):
    """{key: bytes} of the source bucket: per task, debug images and an artifact, plus edge cases."""
    objects = {}
    for index, task in enumerate(docs["task"][:S3_TASKS]):
        folder = s3_folder(docs, task)
        for step in range(2):
            key = f"{folder}/metrics/debug images/sample_{step:03d}+val%.png"
            objects[key] = _content(key)
        objects[f"{folder}/artifacts/predictions/preds.csv"] = _content(folder, 4096 + index)
    objects[f"{S3_PREFIX}Projekt Ü/notes ünïcode.txt"] = "Ü\n".encode()
    objects[f"{S3_PREFIX}empty.bin"] = b""
    objects[f"{S3_PREFIX}datasets/"] = b""  # a directory marker
    return objects


def seed_s3(state, docs):
    import boto3  # pylint: disable=import-outside-toplevel
    from boto3.s3.transfer import TransferConfig  # pylint: disable=import-outside-toplevel

    info = state["s3"]["source"]
    client = boto3.client("s3", endpoint_url=info["endpoint_url"], aws_access_key_id=info["access_key"],
                          aws_secret_access_key=info["secret_key"], region_name=info["region"])
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)
    present = {o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
               for o in page.get("Contents", [])}
    written = 0
    for key, body in s3_objects(docs).items():
        if key not in present:
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
            written += 1
    big = f"{S3_PREFIX}models/resnet50.pt"
    if big not in present:  # 20 MiB in 8 MiB parts: a multipart ETag
        data = _content(big, 20 * 1024 * 1024)
        import io  # pylint: disable=import-outside-toplevel
        client.upload_fileobj(io.BytesIO(data), BUCKET, big,
                              Config=TransferConfig(multipart_threshold=8 * 1024 * 1024,
                                                    multipart_chunksize=8 * 1024 * 1024))
        written += 1
    return written


def seed_mongo(state, docs):
    import pymongo  # pylint: disable=import-outside-toplevel

    client = pymongo.MongoClient(state["mongo"]["source"]["uri"], serverSelectionTimeoutMS=20000)
    try:
        database = client[DATABASE]
        written = 0
        for name, items in docs.items():
            if database[name].estimated_document_count() == 0:
                database[name].insert_many(items)
                written += len(items)
        return written
    finally:
        client.close()


def seed_mlflow(state):
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from mlflow.tracking import MlflowClient  # pylint: disable=import-outside-toplevel

    from tests import mlflow_records  # pylint: disable=import-outside-toplevel

    uri = state["mlflow"]["source"]["tracking_uri"]
    client = MlflowClient(uri)
    written = 0
    for index, name in enumerate(EXPERIMENTS):
        if client.get_experiment_by_name(name) is None:
            mlflow_records.seed(uri, name, runs=4 if index == 0 else 2, metrics=3, steps=40, artifacts=2,
                                nested=index == 0, model=index == 0)
            written += 1
    return written


def seed(state):
    """Seed what is missing; returns counts of what was written per part."""
    docs = documents()
    return {"fileserver files": seed_fileserver(state, docs), "s3 objects": seed_s3(state, docs),
            "mongo documents": seed_mongo(state, docs), "mlflow experiments": seed_mlflow(state),
            **({"search events": seed_search(state, docs)} if "search" in state else {})}


@contextlib.contextmanager
def running(workdir):
    """``with running(workdir) as state:`` a whole stack started and seeded, stopped afterwards (the
    test modules' fixtures); a stack that does not start fails the test with the server's log tail."""
    with running_stack(workdir) as (_stack, state):
        yield state


@contextlib.contextmanager
def running_stack(workdir):
    """``with running_stack(workdir) as (stack, state):`` as ``running``, with the Stack too (its servers can be
    stopped and started again: the fault injection)."""
    import pytest  # pylint: disable=import-outside-toplevel

    from tests.stack.stack import Stack  # pylint: disable=import-outside-toplevel

    stack = Stack(workdir)
    try:
        stack.start()
    except Exception as exc:  # pylint: disable=broad-except  # the message carries the server's log tail
        pytest.fail(f"could not start the demo stack: {exc}", pytrace=False)
    try:
        state = stack.describe()
        seed(state)
        yield stack, state
    finally:
        stack.stop()


def target_leftovers(text):
    """Source URLs still in a text (a target document): what the migration should have rewritten."""
    return re.findall(r"(?:http://files\.source\.example:8081/|s3://source-bucket/)[^\"',]*", text)
