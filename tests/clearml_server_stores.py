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
import dataclasses
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


@dataclasses.dataclass
class ServerView:
    """One session as a ClearML server keeps it after the import: documents, events, and its files by path."""

    projects: list
    task: dict
    models: list
    events: list  # (id, event)
    files: dict  # path (``clearml/<project>/<task>.<id>/...``) -> bytes


def server_view(path, seed="", company=COMPANY, url_of=None):
    """The server's view of the session zip ``path``; ``url_of(file path)`` is the URL a file gets."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    task = json.loads(members["task.json"])
    offline_id, folder = task["id"], task["offline_folder"].rstrip("/")
    ident = _hex("task", offline_id, seed)
    files = {}

    def moved(local):  # a path under the session folder -> its URL at the server (the task id the server's)
        relative = local[len(folder) + 1:]
        key = f"clearml/{relative.replace(offline_id, ident)}"
        files[key] = members[relative]
        return url_of(key)

    events = []
    for name in ("metrics.jsonl", "log.jsonl"):
        for line in members.get(name, b"").decode().splitlines():
            events += json.loads(line) if line.strip() else []
    stamps = [e["timestamp"] for e in events]
    projects, parent = [], None
    parts = task["project_name"].split("/")
    for depth in range(1, len(parts) + 1):
        name = "/".join(parts[:depth])
        project_id = _hex("project", name, seed)
        projects.append({"_id": project_id, "name": name, "basename": parts[depth - 1], "company": COMPANY,
                         "user": USER["_id"], "parent": parent, "path": [], "description": f"the {parts[depth - 1]} "
                         "project", "tags": ["team-a"], "system_tags": [], "created": _date(min(stamps))})
        parent = project_id
    artifacts = {}
    for artifact in task["execution"]["artifacts"]:
        artifact = dict(artifact, uri=moved(artifact["uri"]))
        artifacts[f"{hashlib.md5(artifact['key'].encode()).hexdigest()}_{artifact['mode']}"] = artifact
    models, outputs = [], []
    for model in task.get("offline_output_models") or ():
        model_id = _hex("model", model["id"], seed)
        models.append({"_id": model_id, "name": model["init"]["name"], "task": ident, "project": parent,
                       "company": COMPANY, "user": USER["_id"], "framework": model["init"]["framework"],
                       "ready": True, "uri": moved(model["weights"]["weights_filename"]),
                       "created": _date(max(stamps))})
        outputs.append({"name": model["init"]["name"], "model": model_id})
    doc = {k: v for k, v in task.items() if k not in ("id", "offline_folder", "offline_output_models", "project_name")}
    doc.update({"_id": ident, "project": parent, "company": company, "user": USER["_id"], "status": "completed",
                "created": _date(min(stamps)), "started": _date(min(stamps)), "completed": _date(max(stamps)),
                "last_update": _date(max(stamps)), "status_changed": _date(max(stamps)),
                "execution": dict(task["execution"], artifacts=artifacts),
                "models": {"input": [], "output": outputs}, "system_tags": ["development"],
                "last_iteration": max((e.get("iter") or 0 for e in events), default=0)})
    stored = []
    for number, event in enumerate(events):
        event = dict(event, task=ident, company_id=company, worker=event.get("worker") or "worker-1")
        event.pop("method", None)
        event["@timestamp"] = event["timestamp"]
        if event["type"] == "training_debug_image":
            event["url"] = moved(event["url"])
            event["key"] = event["key"].replace(offline_id, ident)
        if event["type"] == "plot" and len(event.get("plot_str") or "") > LARGE_PLOT:
            text = event.pop("plot_str")
            event["plot_len"] = len(text)
            event["plot_data"] = base64.encodebytes(zlib.compress(text.encode(), level=1)).decode("ascii")
        stored.append((_hex("event", ident, number), event))
    return ServerView(projects, doc, models, stored, files)


def load_session(path, db, search_request, s3_client, bucket, seed="", company=COMPANY):
    """Load the session zip ``path`` into the stores; returns the task document written. ``search_request(method,
    path, body, content_type)`` reaches the search server; the files go to ``bucket`` through ``s3_client``."""
    view = server_view(path, seed, company, url_of=lambda key: f"s3://{bucket}/{key}")
    for key, data in view.files.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    db["user"].replace_one({"_id": USER["_id"]}, USER, upsert=True)
    for name, docs in (("project", view.projects), ("model", view.models), ("task", [view.task])):
        for doc in docs:
            db[name].replace_one({"_id": doc["_id"]}, doc, upsert=True)
    by_index = {}
    for ident, event in view.events:
        by_index.setdefault(clearml_events.index_name(event["type"], company), []).append((ident, event))
    for index, pairs in by_index.items():
        search_request("POST", "/_bulk?refresh=true", clearml_events.bulk_body(index, pairs), "application/x-ndjson")
    return view.task
