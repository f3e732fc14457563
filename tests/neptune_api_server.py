"""A loopback stand-in of a Neptune 3.x server's query API, for the tests of the ``neptune_query`` tracker source.

No Neptune server can run here (Neptune's SaaS is gone and its self-hosted server is not published), so the
responses are recorded ones in this sense: every body is built with the classes of Neptune's own client,
neptune-query (its generated protobuf messages and JSON models), from runs the test describes, and served on the
endpoints that client calls: the API-token exchange (a JWT with ``exp``, ``azp``, ``iss``), the run search (paged
by offset, filtered by the NQL comparisons neptune-query writes for run ids and names), attribute definitions and
values (paged by token), float series and the other series (descending, paged by ``afterStep`` and by
``searchAfter`` tokens, ``lineage`` NONE or FULL through forks) and signed URLs of files served here (provider
``aws``: a plain GET). A request without the bearer token is answered 401, a project that is not served 404.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import jwt
from neptune_query.generated.neptune_api.models import (
    AttributeDefinitionDTO,
    AttributeTypeDTO,
    CreateSignedUrlsResponse,
    NextPageDTO,
    Provider,
    QueryAttributeDefinitionsResultDTO,
    SignedFile,
)
from neptune_query.generated.neptune_api.proto.neptune_pb.api.v1.model import attributes_pb2 as attributes
from neptune_query.generated.neptune_api.proto.neptune_pb.api.v1.model import leaderboard_entries_pb2 as entries
from neptune_query.generated.neptune_api.proto.neptune_pb.api.v1.model import series_values_pb2 as series

from tests.loopback_server import LoopbackServer

SECRET = "the loopback stand-in signs its tokens with this"
SINGLE = {"int": "int_properties", "float": "float_properties", "string": "string_properties",
          "bool": "bool_properties", "datetime": "datetime_properties", "stringSet": "string_set_properties"}
COMPARISON = re.compile(r'`([^`]+)`:(\w+) (==|!=|MATCHES|NOT MATCHES) "((?:[^"\\]|\\.)*)"')


@dataclass
class StoredRun:
    """One run as the server holds it: ``values`` name -> (backend type, value), ``series`` name -> (backend type,
    [(step, timestamp ms, value)]) in step order; a fork names its parent's sys id in ``parent`` and the step."""

    sys_id: str
    custom_id: str
    values: dict = field(default_factory=dict)
    series: dict = field(default_factory=dict)
    parent: str | None = None
    fork_step: float | None = None


@dataclass
class Project:
    name: str  # workspace/project
    runs: list = field(default_factory=list)
    files: dict = field(default_factory=dict)  # path -> bytes

    def run(self, sys_id):
        for run in self.runs:
            if run.sys_id == sys_id:
                return run
        return None


def api_token(base_url, key="the-key"):
    """An API token as Neptune issues them: base64 of JSON naming the server."""
    return base64.b64encode(json.dumps({"api_address": base_url, "api_url": base_url, "api_key": key}).encode()).decode()


def _matches(run, query):
    """Whether ``run`` passes an NQL query of the comparisons neptune-query writes (OR-ed, or AND-ed)."""
    if not query:
        return True
    results = []
    for name, _type, op, raw in COMPARISON.findall(query):
        wanted = json.loads(f'"{raw}"')
        value = run.custom_id if name == "sys/custom_run_id" else run.sys_id if name == "sys/id" else \
            (run.values.get(name) or (None, None))[1]
        hit = value == wanted if op in ("==", "!=") else value is not None and re.search(wanted, str(value)) is not None
        results.append(hit if op in ("==", "MATCHES") else not hit)
    if not results:
        return True
    return all(results) if " AND " in query and " OR " not in query else any(results)


def _attribute(run, name):
    """The ProtoAttributeDTO of attribute ``name`` of ``run`` (sys/id and sys/custom_run_id included), or None."""
    if name in ("sys/id", "sys/custom_run_id"):
        value = run.sys_id if name == "sys/id" else run.custom_id
        return entries.ProtoAttributeDTO(name=name, type="string",
                                         string_properties=entries.ProtoStringAttributeDTO(value=value))
    if name in run.values:
        kind, value = run.values[name]
        out = entries.ProtoAttributeDTO(name=name, type=kind)
        if kind == "fileRef":
            out.file_ref_properties.CopyFrom(entries.ProtoFileRefAttributeDTO(
                path=value["path"], sizeBytes=value["size"], mimeType=value.get("mime", "application/octet-stream")))
        elif kind == "stringSet":
            out.string_set_properties.value.extend(sorted(value))
        else:
            getattr(out, SINGLE[kind]).value = value
        return out
    if name in run.series:
        kind, points = run.series[name]
        out = entries.ProtoAttributeDTO(name=name, type=kind)
        if kind == "floatSeries":
            out.float_series_properties.CopyFrom(entries.ProtoFloatSeriesAttributeDTO(
                last_step=points[-1][0], last=points[-1][2]))
        elif kind == "stringSeries":
            out.string_series_properties.CopyFrom(entries.ProtoStringSeriesAttributeDTO(last_step=points[-1][0],
                                                                                        last=points[-1][2]))
        elif kind == "histogramSeries":
            out.histogram_series_properties.last_step = points[-1][0]
        else:
            out.file_ref_series_properties.last_step = points[-1][0]
        return out
    return None


def _definitions(run):
    """(name, backend type) of every attribute of ``run``."""
    names = [("sys/id", "string"), ("sys/custom_run_id", "string")]
    names += [(name, kind) for name, (kind, _v) in run.values.items()]
    names += [(name, kind) for name, (kind, _p) in run.series.items()]
    return names


def _name_filter(body):
    """A predicate on (name, backend type) from a definitions or values request: exact names, name regexes (any of
    ``mustMatchAny``, each all of its ``mustMatchRegexes`` and none of its ``mustNotMatchRegexes``), types."""
    exact = body.get("attributeNamesFilter")
    alternatives = (body.get("attributeNameFilter") or {}).get("mustMatchAny") or []
    types = [f["attributeType"] for f in body.get("attributeFilter") or [] if f.get("attributeType")]

    def one(alternative, name):
        return all(re.search(p, name) for p in alternative.get("mustMatchRegexes") or []) and \
            not any(re.search(p, name) for p in alternative.get("mustNotMatchRegexes") or [])

    def wanted(name, kind):
        if exact is not None and name not in exact:
            return False
        if types and kind not in types:
            return False
        return not alternatives or any(one(a, name) for a in alternatives)

    return wanted


class NeptuneApiServer(LoopbackServer):
    """``NeptuneApiServer(projects)`` serves ``projects`` (a list of Project) on 127.0.0.1; ``url``, ``token``;
    ``requests`` lists (path, body) of what was asked, in order."""

    def __init__(self, projects, page=1000):
        self.projects = {p.name: p for p in projects}
        self.page = page  # the most items of one string, histogram or file series in one answer (then a token)
        self.requests = []
        self.issued = set()  # access tokens handed out
        super().__init__()
        self.token = api_token(self.url)

    def access_token(self):
        now = int(time.time())
        return jwt.encode({"exp": now + 3600, "iat": now, "azp": "neptune-client", "iss": self.url + "/auth/realms/neptune"},
                          SECRET, algorithm="HS256")

    # the endpoints ---------------------------------------------------------------------------

    def oauth_token(self, handler, _body, _query):
        if handler.headers.get("X-Neptune-Api-Token") != self.token:
            return 401, "application/json", json.dumps({"code": 401, "message": "Invalid API token"}).encode()
        token = self.access_token()
        self.issued.add(token)
        answer = {"accessToken": token, "refreshToken": token, "username": "alice"}
        return 200, "application/json", json.dumps(answer).encode()

    def _project(self, name):
        project = self.projects.get(name)
        if project is None:
            raise LookupError(f"Project {name} not found")
        return project

    def search_entries(self, _handler, body, query):
        project = self._project(query["projectIdentifier"][0])
        wanted = [r for r in project.runs if _matches(r, (body.get("query") or {}).get("query"))]
        wanted.sort(key=lambda r: (r.values.get("sys/creation_time") or (None, 0))[1],
                    reverse=(body.get("sorting") or {}).get("dir") == "descending")
        page = body.get("pagination") or {}
        offset, limit = page.get("offset") or 0, page.get("limit") or 50
        names = [f["path"] for f in body.get("attributeFilters") or []]
        out = entries.ProtoLeaderboardEntriesSearchResultDTO(matching_item_count=len(wanted))
        for run in wanted[offset:offset + limit]:
            entry = out.entries.add(experiment_id=run.sys_id, type="run", project_name=project.name)
            entry.attributes.extend(a for a in (_attribute(run, n) for n in names) if a is not None)
        return 200, "application/x-protobuf", out.SerializeToString()

    def _runs_of(self, identifiers):
        """The runs named by ``<project>/<sys id>`` identifiers (every run of every project when None)."""
        out = []
        for project in self.projects.values():
            for run in project.runs:
                if identifiers is None or f"{project.name}/{run.sys_id}" in identifiers:
                    out.append(run)
        return out

    @staticmethod
    def _token_page(items, body):
        """One page of ``items`` after the request's nextPageToken (an offset here), and the next token or None."""
        page = body.get("nextPage") or {}
        start = int(page.get("nextPageToken") or 0)
        limit = page.get("limit") or 1000
        chunk = items[start:start + limit]
        return chunk, (str(start + limit) if start + limit < len(items) else None)

    def attribute_definitions(self, _handler, body, _query):
        for name in body.get("projectIdentifiers") or []:
            self._project(name)
        wanted = _name_filter(body)
        found = {}
        for run in self._runs_of(body.get("experimentIdsFilter")):
            for name, kind in _definitions(run):
                if wanted(name, kind):
                    found[(name, kind)] = True
        chunk, token = self._token_page(sorted(found), body)
        dto = QueryAttributeDefinitionsResultDTO(entries=[AttributeDefinitionDTO(name=n, type=AttributeTypeDTO(k)) for n, k in chunk],
                                                 next_page=NextPageDTO(next_page_token=token, limit=len(chunk)))
        return 200, "application/json", json.dumps(dto.to_dict()).encode()

    def attribute_values(self, _handler, body, query):
        self._project(query["projectIdentifier"][0])
        wanted = _name_filter(body)
        pairs = [(run, name) for run in self._runs_of(body.get("experimentIdsFilter"))
                 for name, kind in _definitions(run) if wanted(name, kind)]
        chunk, token = self._token_page(pairs, body)
        out = attributes.ProtoQueryAttributesResultDTO()
        if token:
            out.nextPage.nextPageToken = token
        by_run = {}
        for run, name in chunk:
            if run.sys_id not in by_run:
                by_run[run.sys_id] = out.entries.add(experimentId=run.sys_id, experimentShortId=run.sys_id)
            by_run[run.sys_id].attributes.append(_attribute(run, name))
        return 200, "application/x-protobuf", out.SerializeToString()

    def _points(self, request, step_range):
        """The points of one series request in descending step order, its lineage followed through forks."""
        holder = request["series"]["holder"]["identifier"]  # <project>/<sys id>, or CUSTOM/<project>/<run id>
        custom = holder.startswith("CUSTOM/")
        project_name, _sep, ident = holder[len("CUSTOM/") if custom else 0:].rpartition("/")
        project = self.projects.get(project_name)
        run = None
        for candidate in project.runs if project else ():
            if (candidate.custom_id if custom else candidate.sys_id) == ident:
                run = candidate
        name = request["series"]["attribute"]
        points, upto = [], None
        while run is not None:
            own = [p for p in (run.series.get(name) or (None, []))[1] if upto is None or p[0] <= upto]
            points = own + [p for p in points if not own or p[0] > own[-1][0]]
            if request["series"].get("lineage") != "FULL" or run.parent is None:
                break
            upto, run = run.fork_step, project.run(run.parent)
        points.sort(key=lambda p: p[0])
        low, high = (step_range or {}).get("from"), (step_range or {}).get("to")
        points = [p for p in points if (low is None or p[0] >= low) and (high is None or p[0] <= high)]
        return points[::-1] if request.get("order", "descending") == "descending" else points

    def float_series(self, _handler, body, _query):
        out = series.ProtoFloatSeriesValuesResponseDTO()
        limit = body.get("perSeriesPointsLimit") or self.page  # the client takes a shorter answer as the end
        for request in body.get("requests") or []:
            points = self._points(dict(request, order=body.get("order", "descending")), body.get("stepRange"))
            after = request.get("afterStep")
            if after is not None:
                points = [p for p in points if p[0] < after]
            one = out.series.add(requestId=request["requestId"])
            for step, stamp, value in points[:limit]:
                one.series.values.add(timestamp_millis=stamp, step=step, value=value)
        return 200, "application/x-protobuf", out.SerializeToString()

    def other_series(self, _handler, body, _query):
        out = series.ProtoSeriesValuesResponseDTO()
        limit = min(body.get("perSeriesPointsLimit") or self.page, self.page)
        for request in body.get("requests") or []:
            points = self._points(dict(request, order=body.get("order", "descending")), body.get("stepRange"))
            start = int(((request.get("searchAfter") or {}).get("token")) or 0)
            chunk = points[start:start + limit]
            one = out.series.add(requestId=request["requestId"])
            one.searchAfter.finished = start + limit >= len(points)
            one.searchAfter.token = str(start + len(chunk))
            for step, stamp, value in chunk:
                point = one.seriesValues.values.add(timestamp_millis=stamp, step=step)
                if isinstance(value, str):
                    point.object.stringValue = value
                elif "edges" in value:
                    point.object.histogram.CopyFrom(series.ProtoHistogram(type=value.get("type", "COUNTING"),
                                                                          edges=value["edges"], values=value["values"]))
                else:
                    point.object.fileRef.CopyFrom(series.ProtoFileRef(path=value["path"], sizeBytes=value["size"],
                                                                      mimeType=value.get("mime", "image/png")))
        return 200, "application/x-protobuf", out.SerializeToString()

    def signed_urls(self, _handler, body, _query):
        files = [SignedFile(path=wanted["path"], project_identifier=wanted["project_identifier"], provider=Provider.AWS,
                            url=f"{self.url}/files/{urllib.parse.quote(wanted['path'])}")
                 for wanted in body.get("files") or []]
        return 200, "application/json", json.dumps(CreateSignedUrlsResponse(files=files).to_dict()).encode()

    def file(self, path):
        path = urllib.parse.unquote(path)
        for project in self.projects.values():
            if path in project.files:
                return 200, "application/octet-stream", project.files[path]
        return 404, "text/plain", b"not found"

    ROUTES = {
        "/api/leaderboard/v1/proto/leaderboard/entries/search/": "search_entries",
        "/api/leaderboard/v1/leaderboard/attributes/definitions/query": "attribute_definitions",
        "/api/leaderboard/v1/proto/leaderboard/attributes/query": "attribute_values",
        "/api/leaderboard/v1/proto/attributes/series/float": "float_series",
        "/api/leaderboard/v1/proto/attributes/series": "other_series",
        "/api/storagebridge/v1/signedUrl": "signed_urls",
    }

    def _handler(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def _send(self, status, kind, data):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802  (the handler's name is http.server's)
                parsed = urllib.parse.urlsplit(self.path)
                if parsed.path == "/api/backend/v1/authorization/oauth-token":
                    stand_in.requests.append((parsed.path, {}))
                    self._send(*stand_in.oauth_token(self, {}, {}))
                elif parsed.path.startswith("/files/"):
                    self._send(*stand_in.file(parsed.path[len("/files/"):]))
                else:
                    self._send(404, "text/plain", b"not found")

            def do_POST(self):  # noqa: N802
                parsed = urllib.parse.urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else {}
                stand_in.requests.append((parsed.path, body))
                route = stand_in.ROUTES.get(parsed.path)
                if route is None:
                    self._send(404, "application/json", b'{"message": "no such endpoint"}')
                    return
                bearer = self.headers.get("Authorization", "").partition("Bearer ")[2]
                if bearer not in stand_in.issued:
                    self._send(401, "application/json", b'{"code": 401, "message": "Unauthorized"}')
                    return
                try:
                    self._send(*getattr(stand_in, route)(self, body, urllib.parse.parse_qs(parsed.query)))
                except LookupError as exc:
                    self._send(404, "application/json", json.dumps({"code": 404, "message": str(exc)}).encode())

        return Handler


@contextmanager
def serving(projects, page=1000):
    """A running stand-in serving ``projects``."""
    with NeptuneApiServer(projects, page) as server:
        yield server
