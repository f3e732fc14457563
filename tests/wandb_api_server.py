"""A loopback stand-in for the W&B server's API, for testing the live W&B source (``kind: wandb_api``).

No W&B server can run on these machines (it is a closed image), so the tests of ``wandb.Api()`` talk to this
one: a GraphQL endpoint that answers the operations the W&B SDK (0.31, through its ``wandb-core`` sidecar)
sends for what the source reads, with responses in the shape the W&B API returns them:

  Viewer, GetDefaultEntity       the API key's user (a wrong key gets ``viewer: null``, as W&B answers)
  GetProjects                    the entity's projects, paged
  Runs, Run                      runs with the SDK's RunFragment, paged by cursor, filtered by ``state``,
                                 ``tags`` (``$in``) and ``createdAt`` (``$gte``/``$lte``)
  RunHistoryKeys                 ``historyKeys`` (each key's value types and counts, ``lastStep``)
  RunParquetHistory              no parquet exports, the live steps (so the SDK pages ``sampledHistory``)
  SampledHistoryPage             rows of one step range holding every key asked for; as the W&B server does
                                 (wandb/wandb#12010), ``maxStep`` is inclusive and a page holding more rows
                                 than ``samples`` is downsampled, so a client that pages wrongly loses points
  RunFiles, RunConsoleLogs ...   files (downloaded from ``/files/...`` here) and console lines

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class WandbApiServer:
    def __init__(self, runs, entity="ent", api_key="k" * 40, throttle=0):
        self.runs, self.entity, self.api_key, self.throttle = list(runs), entity, api_key, throttle
        self.requests = collections.Counter()  # operation -> requests answered
        self.throttled = collections.Counter()  # operation -> 429s sent
        self.in_flight = self.most_in_flight = 0
        self.flying = collections.Counter()  # operation -> requests in flight now
        self.overlaps = []  # the operations in flight together whenever there were more than one
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # the data --------------------------------------------------------------------------------

    def run(self, project, name):
        return next((r for r in self.runs if r.project == project and r.name == name), None)

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
        run = self.run(v.get("project"), v.get("name") or v.get("runName") or v.get("run"))
        if run is None or v.get("entity") != self.entity:
            return {"project": {"run": None}} if op != "GetProjects" else None
        if op == "Run":
            return {"project": {"run": self._run_node(run)}}
        if op == "RunHistoryKeys":
            return {"project": {"run": {"historyKeys": run.history_keys()}}}
        if op == "RunParquetHistory":
            live = [{k: row[k] for k in v.get("liveKeys") or () if k in row} for row in run.rows]
            return {"project": {"run": {"parquetHistory": {"parquetUrls": [], "liveData": live}}}}
        if op == "SampledHistoryPage":
            spec = json.loads(v["spec"])
            return {"project": {"run": {"sampledHistory": [self._sampled(run, spec)]}}}
        return self._files_ops(op, v, run)

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
                    match = re.fullmatch(r"/files/([^/]+)/([^/]+)/(.+)", self.path)
                    run = match and server.run(match.group(1), match.group(2))
                    found = run.files.get(match.group(3)) if run else None
                if found is None:
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send(200, found, "application/octet-stream")

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith("/graphql"):
                    self._send(200, b"")  # the SDK's telemetry (/sdk/otel/...): accepted, not kept
                    return
                request = json.loads(body)
                found = re.search(r"(?:query|mutation)\s+(\w+)", request.get("query") or "")
                op = found.group(1) if found else request.get("operationName") or "?"
                with server.flight(op) as throttle:  # left before the answer is sent: the client may ask again
                    reply = server.reply(op, request, self.headers, throttle)  # as soon as it has it
                self._send(*reply)

        return Handler


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
