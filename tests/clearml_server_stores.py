"""A ClearML SDK offline session loaded into a ClearML server's stores as the server keeps an imported task, for
the tests and the benchmark of the ``clearml_server`` source: the project (and its parents) and the task in the
``backend`` database (string ids, the server's fields: status, user, company, created/started/completed, artifacts
keyed ``<md5(key)>_<mode>``, ``models.output`` naming a ``model`` document), the events in the
``events-<type>-<company>`` indices laid out by clearml-server's templates (tests/clearml_events.py) with the fields
the server adds (``company_id``, ``@timestamp``, ``worker``), a large plot stored compressed as the server stores
it, and every file of the session (debug samples, artifacts, the output model) in S3, its URLs pointing there.

No ClearML server runs here, so this stands in for ``Task.import_offline_session`` against one: the documents and
events are the session's own (the SDK wrote them), with what the server adds.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import zipfile
import zlib

from tests import clearml_events

COMPANY = "acme"
USER = {"_id": "u" * 32, "name": "alice", "company": COMPANY}
LARGE_PLOT = 16_000  # plots longer than this are stored compressed (plot_data), as clearml-server does


def _hex(*parts):
    return hashlib.md5("|".join(str(p) for p in parts).encode()).hexdigest()


def _date(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc).replace(tzinfo=None)


def load_session(path, db, search_request, s3_client, bucket, seed="", company=COMPANY, bulk=None):
    """Load the session zip ``path``; returns the task document written. ``search_request(method, path, body,
    content_type)`` reaches the search server; ``bulk(index, pairs)`` (when given) indexes events instead."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    task = json.loads(members["task.json"])
    offline_id, folder = task["id"], task["offline_folder"].rstrip("/")
    ident = _hex("task", offline_id, seed)
    base = f"s3://{bucket}"

    def url_of(local):  # a path under the session folder -> its object in S3 (the task id the server's)
        relative = local[len(folder) + 1:]
        key = f"clearml/{relative.replace(offline_id, ident)}"
        s3_client.put_object(Bucket=bucket, Key=key, Body=members[relative])
        return f"{base}/{key}"

    events = []
    for name in ("metrics.jsonl", "log.jsonl"):
        for line in members.get(name, b"").decode().splitlines():
            events += json.loads(line) if line.strip() else []
    stamps = [e["timestamp"] for e in events]
    db["user"].replace_one({"_id": USER["_id"]}, USER, upsert=True)
    parent = None
    parts = task["project_name"].split("/")
    for depth in range(1, len(parts) + 1):
        name = "/".join(parts[:depth])
        project_id = _hex("project", name, seed)
        db["project"].replace_one({"_id": project_id}, {
            "_id": project_id, "name": name, "basename": parts[depth - 1], "company": COMPANY, "user": USER["_id"],
            "parent": parent, "path": [], "description": f"the {parts[depth - 1]} project", "tags": ["team-a"],
            "system_tags": [], "created": _date(min(stamps))}, upsert=True)
        parent = project_id
    artifacts = {}
    for artifact in task["execution"]["artifacts"]:
        artifact = dict(artifact, uri=url_of(artifact["uri"]))
        artifacts[f"{hashlib.md5(artifact['key'].encode()).hexdigest()}_{artifact['mode']}"] = artifact
    outputs = []
    for model in task.get("offline_output_models") or ():
        model_id = _hex("model", model["id"], seed)
        db["model"].replace_one({"_id": model_id}, {
            "_id": model_id, "name": model["init"]["name"], "task": ident, "project": parent, "company": COMPANY,
            "user": USER["_id"], "framework": model["init"]["framework"], "ready": True,
            "uri": url_of(model["weights"]["weights_filename"]), "created": _date(max(stamps))}, upsert=True)
        outputs.append({"name": model["init"]["name"], "model": model_id})
    doc = {k: v for k, v in task.items() if k not in ("id", "offline_folder", "offline_output_models", "project_name")}
    doc.update({"_id": ident, "project": parent, "company": company, "user": USER["_id"], "status": "completed",
                "created": _date(min(stamps)), "started": _date(min(stamps)), "completed": _date(max(stamps)),
                "last_update": _date(max(stamps)), "status_changed": _date(max(stamps)),
                "execution": dict(task["execution"], artifacts=artifacts),
                "models": {"input": [], "output": outputs}, "system_tags": ["development"],
                "last_iteration": max((e.get("iter") or 0 for e in events), default=0)})
    db["task"].replace_one({"_id": ident}, doc, upsert=True)

    by_index = {}
    for number, event in enumerate(events):
        event = dict(event, task=ident, company_id=company, worker=event.get("worker") or "worker-1")
        event.pop("method", None)
        event["@timestamp"] = event["timestamp"]
        if event["type"] == "training_debug_image":
            event["url"] = url_of(event["url"])
            event["key"] = event["key"].replace(offline_id, ident)
        if event["type"] == "plot" and len(event.get("plot_str") or "") > LARGE_PLOT:
            text = event.pop("plot_str")
            event["plot_len"] = len(text)
            event["plot_data"] = base64.encodebytes(zlib.compress(text.encode(), level=1)).decode("ascii")
        by_index.setdefault(clearml_events.index_name(event["type"], company), []).append(
            (_hex("event", ident, number), event))
    for index, pairs in by_index.items():
        if bulk is not None:
            bulk(index, pairs)
        else:
            search_request("POST", "/_bulk?refresh=true", clearml_events.bulk_body(index, pairs),
                           "application/x-ndjson")
    return doc
