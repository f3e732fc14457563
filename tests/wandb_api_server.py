"""A loopback stand-in for the W&B server's API, for testing the live W&B source (``kind: wandb_api``).

No W&B server can run on these machines (it is a closed image), so the tests of ``wandb.Api()`` talk to this
one: a GraphQL endpoint that answers the operations the W&B SDK (0.31, through its ``wandb-core`` sidecar)
sends for what the source reads, with responses in the shape the W&B API returns them:

  Viewer, GetDefaultEntity       the API key's user (a wrong key gets ``viewer: null``, as W&B answers)
  GetProjects                    the entity's projects, paged
  Runs, Run                      runs with the SDK's RunFragment, paged by cursor, filtered by ``state``,
                                 ``tags`` (``$in``) and ``createdAt`` (``$gte``/``$lte``)
  RunHistoryKeys                 ``historyKeys`` (each key's value types and counts, ``lastStep``)
  RunParquetHistory              the parquet export's URL, or none and the live steps (so the SDK pages
                                 ``sampledHistory``)
  SampledHistoryPage             rows of one step range holding every key asked for; as the W&B server does
                                 (wandb/wandb#12010), ``maxStep`` is inclusive and a page holding more rows
                                 than ``samples`` is downsampled, so a client that pages wrongly loses points
  RunFiles, RunConsoleLogPage   files (downloaded from ``/files/...`` here) and console lines
  RunOutputArtifacts,            logged artifacts and their files (``/artifacts/...``), after
  ArtifactMembershipFiles        ServerFeaturesQuery (no optional features)
  (GET with Range)               a run marked ``exported``: its history as one parquet file, read by byte ranges

It can answer 429 (with ``Retry-After``) to the first requests of each operation, and counts requests and the
most in flight at once. The data it serves are "run documents" (``RunDocument``): what a W&B server holds for
a run after ``wandb sync`` of its offline folder, made with ``from_offline`` from folders the W&B SDK wrote in
the test.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.loopback_server import LoopbackServer

ROW_KEYS = ("_step", "_timestamp", "_runtime")


@dataclass
class RunDocument:
    project: str
    name: str  # the run id
    display_name: str
    state: str  # running, finished, failed, crashed, killed
    created_at: str  # ISO time, UTC, no zone (as the API writes it)
    heartbeat_at: str
    user: str
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)
    group: str | None = None
    job_type: str | None = None
    notes: str | None = None
    rows: list = field(default_factory=list)  # history rows, each with _step, _timestamp, _runtime
    files: dict = field(default_factory=dict)  # name -> bytes
    console: list = field(default_factory=list)  # (timestamp ISO, "stdout"/"stderr", text)
    artifacts: list = field(default_factory=list)  # logged: {name, type, digest, description, metadata, aliases, files}
    exported: bool = False  # the history is in a parquet export (numbers only), not live

    def history_keys(self):
        keys = {}
        for row in self.rows:
            for key, value in row.items():
                kind = value.get("_type") if isinstance(value, dict) else (
                    "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else "string")
                counts = keys.setdefault(key, collections.Counter())
                counts[kind] += 1
        return {"lastStep": max((r["_step"] for r in self.rows), default=-1),
                "keys": {k: {"typeCounts": [{"type": t, "count": n} for t, n in sorted(c.items())]}
                         for k, c in sorted(keys.items())}}


class WandbApiServer(LoopbackServer):
    def __init__(self, runs, entity="ent", api_key="k" * 40, throttle=0):
        self.runs, self.entity, self.api_key, self.throttle = list(runs), entity, api_key, throttle
        self.requests = collections.Counter()  # operation -> requests answered
        self.throttled = collections.Counter()  # operation -> 429s sent
        self.in_flight = self.most_in_flight = 0
        self.seen = []  # (operation, variables) of every GraphQL request, in order
        self.flying = collections.Counter()  # operation -> requests in flight now
        self.overlaps = []  # the operations in flight together whenever there were more than one
        self.lock = threading.Lock()
        super().__init__()

    # the data --------------------------------------------------------------------------------

    def run(self, project, name):
        return next((r for r in self.runs if r.project == project and r.name == name), None)

    def file(self, path):
        """The bytes a download URL names (``/files/<project>/<run>/<name>``, ``/artifacts/<project>/<name>/<path>``)."""
        match = re.fullmatch(r"/(files|artifacts|exports)/([^/]+)/([^/]+)/(.+)", path)
        if not match:
            return None
        if match.group(1) == "exports":
            run = self.run(match.group(2), match.group(3))
            return _parquet(run.rows) if run and run.exported else None
        if match.group(1) == "files":
            run = self.run(match.group(2), match.group(3))
            return run.files.get(match.group(4)) if run else None
        return next((a["files"].get(match.group(4)) for run in self.runs if run.project == match.group(2)
                     for a in run.artifacts if a["name"] == match.group(3)), None)

    def _run_node(self, run):
        config = {k: {"value": v, "desc": None} for k, v in run.config.items()}
        return {"id": base64.b64encode(f"Run:{run.project}:{run.name}".encode()).decode(), "projectId": "1",
                "name": run.name, "displayName": run.display_name, "tags": run.tags, "sweepName": None,
                "state": run.state, "config": json.dumps(config), "group": run.group, "jobType": run.job_type,
                "commit": None, "readOnly": False, "createdAt": run.created_at, "heartbeatAt": run.heartbeat_at,
                "description": run.notes, "notes": run.notes, "systemMetrics": "{}",
                "summaryMetrics": json.dumps(run.summary), "historyLineCount": len(run.rows),
                "user": {"name": run.user, "username": run.user}, "historyKeys": run.history_keys()}

    def _matches(self, run, filters):
        for key, want in (filters or {}).items():
            have = {"state": run.state, "tags": run.tags, "createdAt": run.created_at,
                    "display_name": run.display_name}.get(key)
            if isinstance(want, dict):
                if "$in" in want and not set(want["$in"]) & set(have if isinstance(have, list) else [have]):
                    return False
                if "$gte" in want and not have >= want["$gte"]:
                    return False
                if "$lte" in want and not have <= want["$lte"]:
                    return False
            elif have != want:
                return False
        return True

    # GraphQL ---------------------------------------------------------------------------------

    def answer(self, op, variables, authorized):
        v = variables or {}
        if op in ("Viewer", "GetDefaultEntity"):
            viewer = {"id": "VXNlcjox", "entity": self.entity, "username": "tester", "email": "tester@example.com",
                      "flags": "{}", "teams": {"edges": []}}
            return {"viewer": viewer if authorized else None}
        if not authorized:
            return None
        if op == "GetProjects":
            names = sorted({r.project for r in self.runs}) if v.get("entity") == self.entity else []
            edges = [{"node": {"__typename": "Project", "id": f"p{i}", "name": n, "entityName": self.entity,
                               "createdAt": "2024-01-01T00:00:00", "isBenchmark": False, "user": None}}
                     for i, n in enumerate(names)]
            return {"models": {"pageInfo": {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False},
                               "edges": edges}}
        if op == "Runs":
            if v.get("entity") != self.entity or not any(r.project == v["project"] for r in self.runs):
                return {"project": None}
            filters = json.loads(v["filters"]) if v.get("filters") else {}
            found = [r for r in self.runs if r.project == v["project"] and self._matches(r, filters)]
            found.sort(key=lambda r: (r.created_at, r.name))
            start = int(v["cursor"]) if v.get("cursor") else 0
            page = found[start:start + (v.get("perPage") or 50)]
            end = start + len(page)
            return {"project": {"internalId": "1", "runCount": len(found), "readOnly": False, "runs": {
                "edges": [{"node": self._run_node(r), "cursor": str(start + i + 1)} for i, r in enumerate(page)],
                "pageInfo": {"endCursor": str(end), "hasNextPage": end < len(found)}}}}
        if op == "ServerFeaturesQuery":
            return {"serverInfo": {"features": []}}
        if op == "ArtifactMembershipFiles":
            return self._artifact_files(v)
        run = self.run(v.get("project"), v.get("name") or v.get("runName") or v.get("run"))
        if run is None or v.get("entity") != self.entity:
            return {"project": {"run": None}} if op != "GetProjects" else None
        if op == "Run":
            return {"project": {"run": self._run_node(run)}}
        if op == "RunOutputArtifacts":
            nodes = [self._artifact_node(run, a, i) for i, a in enumerate(run.artifacts)]
            return {"project": {"run": {"artifacts": {"totalCount": len(nodes), "pageInfo": {
                "__typename": "PageInfo", "endCursor": None, "hasNextPage": False},
                "edges": [{"node": n} for n in nodes]}}}}
        if op == "RunHistoryKeys":
            return {"project": {"run": {"historyKeys": run.history_keys()}}}
        if op == "RunParquetHistory":
            if run.exported:
                url = f"{self.url}/exports/{run.project}/{run.name}/history.parquet"
                return {"project": {"run": {"parquetHistory": {"parquetUrls": [url], "liveData": []}}}}
            live = [{k: row[k] for k in v.get("liveKeys") or () if k in row} for row in run.rows]
            return {"project": {"run": {"parquetHistory": {"parquetUrls": [], "liveData": live}}}}
        if op == "SampledHistoryPage":
            spec = json.loads(v["spec"])
            return {"project": {"run": {"sampledHistory": [self._sampled(run, spec)]}}}
        return self._files_ops(op, v, run)

    def _project_info(self, project):
        return {"id": f"UHJvamVjdDp7{project}", "internalId": "1", "name": project,
                "entity": {"id": "RW50aXR5OjE=", "name": self.entity}}

    def _artifact_node(self, run, artifact, index):
        collection = {"__typename": "ArtifactSequence", "name": artifact["name"],
                      "project": self._project_info(run.project)}
        aliases = [{"__typename": "ArtifactAlias", "id": f"alias{index}{n}", "alias": alias,
                    "artifactCollection": collection} for n, alias in enumerate(artifact["aliases"])]
        return {"__typename": "Artifact", "id": f"QXJ0aWZhY3Q6{run.name}{index}", "artifactSequence": collection,
                "versionIndex": 0, "artifactType": {"name": artifact["type"]}, "description": artifact["description"],
                "metadata": json.dumps(artifact["metadata"]), "ttlDurationSeconds": -1, "ttlIsInherited": True,
                "tags": [], "historyStep": None, "state": "COMMITTED",
                "size": sum(len(b) for b in artifact["files"].values()), "digest": artifact["digest"],
                "digestAlgorithm": "MANIFEST_MD5", "commitHash": None, "fileCount": len(artifact["files"]),
                "createdAt": run.created_at, "updatedAt": run.heartbeat_at, "aliases": aliases}

    def _artifact_files(self, v):
        found = next(((run, a) for run in self.runs if run.project == v.get("project") for a in run.artifacts
                      if a["name"] == v.get("collection")), None)
        if found is None or v.get("entity") != self.entity:
            return {"project": {"artifactCollection": None}}
        run, artifact = found
        names = sorted(n for n in artifact["files"] if not v.get("fileNames") or n in v["fileNames"])
        start = int(v["cursor"]) if v.get("cursor") else 0
        page = names[start:start + (v.get("perPage") or 50)]
        end = start + len(page)
        edges = [{"node": {"__typename": "File", "id": f"af{start + i}", "name": n,
                           "url": f"{self.url}/artifacts/{run.project}/{artifact['name']}/{n}",
                           "directUrl": f"{self.url}/artifacts/{run.project}/{artifact['name']}/{n}",
                           "sizeBytes": len(artifact["files"][n]), "storagePath": None, "mimetype": None,
                           "updatedAt": run.heartbeat_at, "digest": md5_b64(artifact["files"][n]),
                           "md5": md5_b64(artifact["files"][n])}} for i, n in enumerate(page)]
        return {"project": {"artifactCollection": {"__typename": "ArtifactSequence", "artifactMembership": {"files": {
            "totalCount": len(names), "pageInfo": {"__typename": "PageInfo", "endCursor": str(end),
                                                   "hasNextPage": end < len(names)}, "edges": edges}}}}}

    @staticmethod
    def _sampled(run, spec):
        keys = list(dict.fromkeys(spec["keys"]))
        low, high = spec.get("minStep", 0), spec.get("maxStep")
        rows = [r for r in run.rows if r["_step"] >= low and (high is None or r["_step"] <= high)]  # inclusive
        samples = spec.get("samples") or 500
        if len(rows) > samples:  # the server downsamples a page with more rows than asked for
            rows = [rows[i * len(rows) // samples] for i in range(samples)]
        return [{k: r[k] for k in keys} for r in rows if all(k in r for k in keys)]

    def _files_ops(self, op, v, run):
        if op == "RunFiles":
            names = sorted(n for n in run.files if not v.get("fileNames") or n in v["fileNames"])
            start = int(v["fileCursor"]) if v.get("fileCursor") else 0
            page = names[start:start + (v.get("fileLimit") or 50)]
            end = start + len(page)
            edges = [{"node": {"id": f"f{start + i}", "name": n, "url": f"{self.url}/files/{run.project}/{run.name}/{n}",
                               "directUrl": f"{self.url}/files/{run.project}/{run.name}/{n}",
                               "sizeBytes": len(run.files[n]), "mimetype": "application/octet-stream",
                               "updatedAt": run.heartbeat_at, "md5": md5_b64(run.files[n])},
                      "cursor": str(start + i + 1)} for i, n in enumerate(page)]
            return {"project": {"internalId": "1", "run": {"fileCount": len(names), "files": {
                "edges": edges, "pageInfo": {"endCursor": str(end), "hasNextPage": end < len(names)}}}}}
        if op == "RunConsoleLogPage":
            start = int(v["after"]) if v.get("after") else 0
            page = run.console[start:start + (v.get("first") or 1000)]
            end = start + len(page)
            edges = [{"node": {"number": start + i, "timestamp": stamp, "level": "error" if stream == "stderr" else "",
                               "label": "", "line": text}} for i, (stamp, stream, text) in enumerate(page)]
            return {"project": {"run": {"logLineCount": len(run.console), "logLines": {
                "edges": edges, "pageInfo": {"endCursor": str(end), "hasNextPage": end < len(run.console)}}}}}
        raise KeyError(op)

    # HTTP ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def flight(self, op, throttle=True):
        """Count one request in flight while its answer is made; yields whether to answer it 429."""
        with self.lock:
            self.in_flight += 1
            self.flying[op] += 1
            if self.in_flight > 1:
                self.overlaps.append(sorted(self.flying.elements()))
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            throttle = throttle and self.throttled[op] < self.throttle
            (self.throttled if throttle else self.requests)[op] += 1
        try:
            yield throttle
        finally:
            with self.lock:
                self.in_flight -= 1
                self.flying[op] -= 1

    def reply(self, op, request, headers, throttle):
        """``(status, body, content type, headers)`` of the answer to one GraphQL request."""
        if throttle:
            return 429, b'{"errors": [{"message": "rate limit exceeded"}]}', "application/json", [("Retry-After", "1")]
        auth = headers.get("Authorization") or ""
        authorized = auth == "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
        try:
            data = self.answer(op, request.get("variables"), authorized)
        except KeyError:
            return 400, json.dumps({"errors": [{"message": f"unknown operation {op}"}]}).encode()
        if data is None:
            return 401, b'{"errors": [{"message": "unauthorized"}]}'
        return 200, json.dumps({"data": data}).encode()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body=b"", kind="application/json", headers=()):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 (the HTTP method's name)
                with server.flight("file download", throttle=False):
                    found = server.file(self.path)
                if found is None:
                    self._send(404, b"not found", "text/plain")
                    return
                wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
                if not wanted:
                    self._send(200, found, "application/octet-stream", [("Accept-Ranges", "bytes")])
                    return
                first, last = wanted.groups()
                if not first:  # the last N bytes
                    first, last = max(0, len(found) - int(last)), len(found) - 1
                first, last = int(first), min(int(last) if last else len(found) - 1, len(found) - 1)
                self._send(206, found[first:last + 1], "application/octet-stream",
                           [("Content-Range", f"bytes {first}-{last}/{len(found)}"), ("Accept-Ranges", "bytes")])

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith("/graphql"):
                    self._send(200, b"")  # the SDK's telemetry (/sdk/otel/...): accepted, not kept
                    return
                request = json.loads(body)
                found = re.search(r"(?:query|mutation)\s+(\w+)", request.get("query") or "")
                op = found.group(1) if found else request.get("operationName") or "?"
                server.seen.append((op, request.get("variables")))
                with server.flight(op) as throttle:  # left before the answer is sent: the client may ask again
                    reply = server.reply(op, request, self.headers, throttle)  # as soon as it has it
                self._send(*reply)

        return Handler


def _parquet(rows):
    """A run's history as a parquet export: one column per key (numbers), a row per step."""
    import io  # pylint: disable=import-outside-toplevel

    import pyarrow  # pylint: disable=import-outside-toplevel
    import pyarrow.parquet  # pylint: disable=import-outside-toplevel

    keys = sorted({k for row in rows for k in row})
    columns = {k: [row.get(k) for row in rows] for k in keys}
    columns["_step"] = [int(step) for step in columns["_step"]]
    out = io.BytesIO()
    pyarrow.parquet.write_table(pyarrow.table(columns), out)
    return out.getvalue()


def _tree(items):
    tree = {}
    for item in items:
        path = list(item.nested_key) or [item.key]
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(item.value_json)
    return tree


def _flat_row(tree, prefix=""):
    """A history row as the API returns it: nested namespaces joined with dots, typed objects whole."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and "_type" not in value:
            out.update(_flat_row(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _logged(artifact):
    """A logged artifact as the server holds it once uploaded: its files read from the SDK's staging copies."""
    files = {}
    for entry in artifact.manifest.contents:
        with open(entry.local_path, "rb") as handle:
            files[entry.path] = handle.read()
    return {"name": artifact.name, "type": artifact.type, "digest": artifact.digest,
            "description": artifact.description or None,
            "metadata": json.loads(artifact.metadata) if artifact.metadata else {},
            "aliases": list(artifact.aliases), "files": files}


def from_offline(folder, user="tester"):
    """The RunDocument a W&B server holds for an offline run folder after ``wandb sync``: its records decoded
    with the SDK's protobuf classes (framed by the collection's reader of the record log), the files under
    ``files/`` as uploaded."""
    from wandb.proto import wandb_internal_pb2 as pb  # pylint: disable=import-outside-toplevel

    from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_log import read_records
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_offline import run_log

    doc, config, summary, start, runtime = None, {}, {}, 0.0, None
    for _offset, data in read_records(run_log(folder)):
        record = pb.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info = record.run
            start = info.start_time.seconds + info.start_time.nanos / 1e9
            doc = RunDocument(info.project, info.run_id, info.display_name or info.run_id, "running", _iso(start)[:19],
                              _iso(start)[:19], user, tags=list(info.tags), group=info.run_group or None,
                              job_type=info.job_type or None, notes=info.notes or None)
            config.update(_tree(info.config.update))
        elif kind == "config":
            config.update(_tree(record.config.update))
        elif kind == "history":
            doc.rows.append(_flat_row(_tree(record.history.item)))
        elif kind == "summary":
            summary.update(_tree(record.summary.update))
        elif kind == "output_raw":
            out = record.output_raw
            stamp = out.timestamp.seconds + out.timestamp.nanos / 1e9
            stream = "stderr" if out.output_type == pb.OutputRawRecord.OutputType.STDERR else "stdout"
            doc.console.append((_iso(stamp), stream, out.line))
        elif kind == "artifact":
            doc.artifacts.append(_logged(record.artifact))
        elif kind == "exit":
            doc.state = "failed" if record.exit.exit_code else "finished"
            runtime = record.exit.runtime
    config.pop("_wandb", None)
    doc.config, doc.summary = config, summary  # the summary's _runtime (seconds) is the run's
    doc.heartbeat_at = _iso(start + (summary.get("_runtime") or runtime or 0))[:19]
    files = os.path.join(folder, "files")
    for directory, _dirs, names in os.walk(files):
        for name in names:
            full = os.path.join(directory, name)
            with open(full, "rb") as handle:
                doc.files[os.path.relpath(full, files).replace(os.sep, "/")] = handle.read()
    return doc


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()
