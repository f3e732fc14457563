"""What a migration of the demo platform (tests/stack/demo_platform.py) must leave at the target, step by step.

Shared by the main job's end-to-end tests (test_migrate_playbook.py) and the fault injection (test_faults.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import boto3
import pymongo
from mlflow.tracking import MlflowClient

from tests import clearml_documents, clearml_events
from tests.stack import demo_platform

SOURCE_RUN_TAG = "mlops.migration.source_run_id"


def s3_client(state, side):
    info = state["s3"][side]
    return boto3.client("s3", endpoint_url=info["endpoint_url"], aws_access_key_id=info["access_key"],
                        aws_secret_access_key=info["secret_key"], region_name=info["region"])


def objects(client, bucket, prefix=""):
    """{key below prefix: md5 of the bytes}: the server's own md5 where its ETag is one (an object put whole; the
    server computed it from the bytes it stored), else the bytes read back whole. The bulk objects are thousands of
    small ones put whole: listing them is enough, where reading each back took most of a minute per bucket."""
    try:
        pages = list(client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))
    except client.exceptions.NoSuchBucket:
        return {}
    out = {}
    for page in pages:
        for obj in page.get("Contents", []):
            etag = obj["ETag"].strip('"')
            if not re.fullmatch(r"[0-9a-f]{32}", etag):  # a multipart ETag is not the md5 of the bytes
                etag = hashlib.md5(client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()).hexdigest()
            out[obj["Key"][len(prefix):]] = etag
    return out


def keys(client, bucket, prefix=""):
    try:
        return [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for o in page.get("Contents", [])]
    except client.exceptions.NoSuchBucket:
        return []


def mongo_db(state, side, name):
    return pymongo.MongoClient(state["mongo"][side]["uri"], serverSelectionTimeoutMS=20000)[name]


def check_events(platform, kept, bucket, company):
    """The events of the migrated tasks only, each once, image URLs at the target, console lines as they were."""
    files_old, files_new = demo_platform.FILES_URL, f"s3://{bucket}/fileserver/"
    kept_ids = {task["_id"] for task in kept}
    for kind in clearml_events.EVENT_TYPES:
        source = clearml_events.search_docs(platform["search"]["source"]["url"], clearml_events.index_name(kind, "acme"))
        target = clearml_events.search_docs(platform["search"]["target"]["url"], clearml_events.index_name(kind, company))
        expected = {ident: doc for ident, doc in source.items() if doc["task"] in kept_ids}
        assert len(expected) < len(source) and set(target) == set(expected), kind  # per task and type, equal
        for ident, doc in target.items():
            packed = doc.get("plot_data")
            text = doc.get("url") or doc.get("plot_str") or (clearml_events.unpacked(packed) if packed else "")
            if kind == "log":
                assert doc == expected[ident]  # console lines byte for byte, their URLs too
            else:
                assert files_old not in text and (kind == "training_stats_scalar" or files_new in text), (kind, ident)
                assert doc == json.loads(json.dumps(expected[ident]).replace(files_old, files_new)) or "plot_data" in doc


def source_kept(platform):
    """The source tasks a migration moves (the preset's kept statuses)."""
    source = mongo_db(platform, "source", "backend")
    return [t for t in source.task.find() if t["status"] in clearml_documents.KEPT_STATUSES]


def check_landed(platform, fileserver="demo-fileserver"):
    """files_bulk: the fileserver's tree on the target host, byte for byte."""
    root = demo_platform.fileserver_dir(platform)
    assert tree_md5(os.path.join(platform["ssh"]["target"]["root"], fileserver)) == tree_md5(root)


def check_fileserver_in_s3(platform, bucket="target-bucket"):
    """files_delta: the fileserver's files in the target S3 under unchanged paths."""
    files = tree_md5(demo_platform.fileserver_dir(platform))
    assert files and objects(s3_client(platform, "target"), bucket, "fileserver/") == files


def check_s3(platform, bucket="target-bucket"):
    """s3: the trees byte-identical."""
    assert objects(s3_client(platform, "target"), bucket, "clearml/") == \
        objects(s3_client(platform, "source"), "source-bucket", "clearml/")


def check_mongo(platform, db="backend", bucket="target-bucket"):
    """mongo: tasks in migrated statuses only, excluded fields gone, every URL rewritten."""
    kept, target = source_kept(platform), mongo_db(platform, "target", db)
    tasks = list(target.task.find())
    assert sorted(t["_id"] for t in tasks) == sorted(t["_id"] for t in kept)
    for task in tasks:
        assert "status_reason" not in task and "status_message" not in task and "queue" not in task["execution"]
    for name in ("task", "model", "project", "user", "queue"):
        for doc in target[name].find():
            text = json.dumps(doc, default=str)
            assert demo_platform.target_leftovers(text) == [], (name, doc["_id"])
        assert target[name].count_documents({}) > 0
    assert any(f"s3://{bucket}/fileserver/" in json.dumps(t, default=str) for t in tasks)


def check_trackers(platform, prefix=""):
    """trackers: every MLflow run with its original times, and the ClearML tasks as MLflow runs, each once."""
    source_ml = MlflowClient(platform["mlflow"]["source"]["tracking_uri"])
    target_ml = MlflowClient(platform["mlflow"]["target"]["tracking_uri"])
    for name in demo_platform.EXPERIMENTS:
        src = source_ml.get_experiment_by_name(name)
        dst = target_ml.get_experiment_by_name(prefix + name)
        src_runs = {r.info.run_id: r for r in source_ml.search_runs([src.experiment_id])}
        dst_runs = target_ml.search_runs([dst.experiment_id])
        assert len(dst_runs) == len(src_runs)
        for run in dst_runs:
            original = src_runs[run.data.tags[SOURCE_RUN_TAG]]
            assert (run.info.start_time, run.info.end_time) == (original.info.start_time, original.info.end_time)
            assert run.data.params == original.data.params
    # the ClearML platform's kept tasks as MLflow runs too (the second tracker pair), one experiment per project
    source, kept = mongo_db(platform, "source", "backend"), source_kept(platform)
    projects = {p["_id"]: p["name"] for p in source.project.find()}
    for project_id, name in projects.items():
        dst = target_ml.get_experiment_by_name(f"{prefix}clearml/{name}")
        found = target_ml.search_runs([dst.experiment_id], max_results=1000)
        runs = {r.data.tags[SOURCE_RUN_TAG]: r for r in found}
        assert len(runs) == len(found), "a task copied twice"
        assert sorted(runs) == sorted(t["_id"] for t in kept if t["project"] == project_id)
        for task_id, run in runs.items():
            assert run.data.tags["clearml.status"] == source.task.find_one({"_id": task_id})["status"]
            assert len(target_ml.get_metric_history(run.info.run_id, "loss/train")) == 50
            assert {"data.0/data.csv.gz", "clearml/task.json"} <= {a.path for a in target_ml.list_artifacts(
                run.info.run_id, "data.0")} | {a.path for a in target_ml.list_artifacts(run.info.run_id, "clearml")}


class Namespace:
    """Where one migration of the demo source lands: the demo's defaults, or a second migration's names."""

    def __init__(self, name="demo", bucket="target-bucket", db="backend", prefix="", company="acme"):
        self.name, self.bucket, self.db, self.prefix, self.company = name, bucket, db, prefix, company
        self.fileserver = f"{name}-fileserver"

    @classmethod
    def second(cls, name):
        """A migration beside the demo's own, under names of its own (as a test's extra vars set them)."""
        return cls(name, f"{name}-bucket", f"backend_{name}", f"{name}-", name)

    def extra_vars(self):
        return {"demo_name": self.name, "demo_target_bucket": self.bucket, "demo_target_db": self.db,
                "demo_experiment_prefix": self.prefix,
                "demo_events_rename": [{"from": "-acme", "to": f"-{self.company}"}] if self.company != "acme" else []}


# What each step of migrate.yml promises once it is recorded done.
STEP_CHECKS = {
    "files_bulk": lambda platform, ns: check_landed(platform, ns.fileserver),
    "s3": lambda platform, ns: check_s3(platform, ns.bucket),
    "mongo": lambda platform, ns: check_mongo(platform, ns.db, ns.bucket),
    "events": lambda platform, ns: check_events(platform, source_kept(platform), ns.bucket, ns.company),
    "trackers": lambda platform, ns: check_trackers(platform, ns.prefix),
    "files_delta": lambda platform, ns: (check_landed(platform, ns.fileserver),
                                         check_fileserver_in_s3(platform, ns.bucket)),
}


def check_target(platform, bucket="target-bucket", db="backend", prefix="", fileserver="demo-fileserver",
                 company="acme"):
    """What the demo promises at the target after a full migration."""
    check_s3(platform, bucket)
    check_fileserver_in_s3(platform, bucket)
    check_landed(platform, fileserver)
    check_mongo(platform, db, bucket)
    check_events(platform, source_kept(platform), bucket, company)
    check_trackers(platform, prefix)


def tree_md5(root):
    """{relative path: md5} of every file under root."""
    files = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            with open(os.path.join(directory, name), "rb") as handle:
                files[os.path.relpath(os.path.join(directory, name), root)] = hashlib.md5(handle.read()).hexdigest()
    return files
