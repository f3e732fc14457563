"""A loopback stand-in of the ClearML API server (recorded responses: no ClearML server can run here), answering the
calls the ``clearml_api`` source makes through the ClearML SDK's own API session, with bodies built by the SDK's
own schema classes (``clearml.backend_api.services.v2_23``) where the schema has one:

  auth.login                                 a token (a JWT naming the API and server versions), for the key pair
  projects.get_all                           the projects, paged
  tasks.get_all, tasks.get_by_id             task documents (as the API returns them: ``id``, ISO times, artifacts
                                             as a list), paged, by project
  events.get_scalar_metrics_and_variants     the task's (title, series) pairs
  events.get_task_events                     every event of a type, in timestamp order, scrolled
  events.get_task_log                        console lines, paged from the first
  models.get_all                             model documents by id
  GET /files/<path>                          the files the task's URLs name (a fileserver)

The data is what ``add_session`` takes from an offline session the ClearML SDK wrote, shaped as the server keeps
an imported task (tests/clearml_server_stores.py does the same for the stores)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from http.server import BaseHTTPRequestHandler

import jwt
from clearml.backend_api.services.v2_23 import events as events_api
from clearml.backend_api.services.v2_23 import projects as projects_api

from tests.clearml_server_stores import server_view
from tests.loopback_server import LoopbackServer

PAGE_DEFAULT = 500


class ClearmlApiServer(LoopbackServer):
    def __init__(self, access_key="AK" + uuid.uuid4().hex[:10], secret_key=uuid.uuid4().hex):
        self.access_key, self.secret_key = access_key, secret_key
        self.projects, self.tasks, self.models, self.events, self.files = {}, {}, {}, {}, {}
        self.calls = []
        self.scrolls = {}
        super().__init__()

    def add_session(self, path, seed=""):
        """Serve the task of the session zip ``path``; returns its task document as the API gives it."""
        view = server_view(path, seed, url_of=lambda relative: f"{self.url}/files/{relative}")
        view_events = [event for _ident, event in view.events]
        for project in view.projects:
            self.projects[project["_id"]] = dict({k: v for k, v in project.items() if k != "_id"}, id=project["_id"])
        for model in view.models:
            self.models[model["_id"]] = dict({k: v for k, v in model.items() if k != "_id"}, id=model["_id"],
                                             created=model["created"].isoformat() + "+00:00")
        task = {k: (v.isoformat() + "+00:00" if hasattr(v, "isoformat") else v) for k, v in view.task.items()
                if k != "_id"}
        task["id"] = view.task["_id"]
        task["execution"] = dict(task["execution"], artifacts=list(task["execution"]["artifacts"].values()))
        self.tasks[task["id"]] = task
        self.events[task["id"]] = sorted(view_events, key=lambda e: e["timestamp"])
        self.files.update(view.files)
        return task

    def _reply(self, action, body):
        """The ``data`` of an API call, or (status, message) of a refusal."""
        if action == "projects.get_all":
            fields = ("id", "name", "description", "tags", "system_tags")
            found = [projects_api.Project(**{k: v for k, v in p.items() if k in fields}).to_dict()
                     for p in self.projects.values()]
            return {"projects": self._page(found, body)}
        if action == "tasks.get_all":
            found = [t for t in self.tasks.values() if not body.get("project") or t["project"] in body["project"]]
            return {"tasks": self._page(found, body)}
        if action == "tasks.get_by_id":
            if body.get("task") not in self.tasks:
                return 400, f"Invalid task id (id={body.get('task')})"
            return {"task": self.tasks[body["task"]]}
        if action == "models.get_all":
            return {"models": [self.models[i] for i in body.get("id") or () if i in self.models]}
        if action == "events.get_scalar_metrics_and_variants":
            metrics = {}
            for event in self.events.get(body["task"], ()):
                if event["type"] == "training_stats_scalar":
                    metrics.setdefault(event["metric"], {})[event["variant"]] = {"name": event["variant"]}
            return events_api.GetScalarMetricsAndVariantsResponse(metrics=metrics).to_dict()
        if action == "events.get_task_events":
            return self._scroll(body, [e for e in self.events.get(body["task"], ())
                                       if not body.get("event_type") or e["type"] == body["event_type"]])
        if action == "events.get_task_log":
            lines = [e for e in self.events.get(body["task"], ()) if e["type"] == "log"]
            after = [e for e in lines if e["timestamp"] > (body.get("from_timestamp") or 0)]
            page = after[:body.get("batch_size") or PAGE_DEFAULT]
            return events_api.GetTaskLogResponse(events=page, returned=len(page), total=len(lines)).to_dict()
        return 404, f"Unknown endpoint {action}"

    @staticmethod
    def _page(found, body):
        size = body.get("page_size") or PAGE_DEFAULT
        page = body.get("page") or 0
        return found[page * size:(page + 1) * size]

    def _scroll(self, body, found):
        start = self.scrolls.pop(body["scroll_id"], None) if body.get("scroll_id") else 0
        if start is None:
            return 400, "Invalid scroll id"
        size = body.get("batch_size") or PAGE_DEFAULT
        page = found[start:start + size]
        scroll_id = uuid.uuid4().hex
        self.scrolls[scroll_id] = start + len(page)
        return events_api.GetTaskEventsResponse(events=page, returned=len(page), total=len(found),
                                                scroll_id=scroll_id).to_dict()

    def token(self):
        return jwt.encode({"api_version": "2.23", "server_version": "1.17.0", "env": "test",
                           "exp": int(time.time()) + 86_400, "identity": {"user": "u" * 32, "company": "acme"}},
                          "a recorded-responses stand-in's signing key", algorithm="HS256")

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def _send(self, status, payload, content_type="application/json"):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _envelope(self, action, status, data=None, message="OK"):
                meta = {"id": uuid.uuid4().hex, "trx": uuid.uuid4().hex,
                        "endpoint": {"name": action, "requested_version": "2.23", "actual_version": "2.23"},
                        "result_code": status, "result_subcode": 0, "result_msg": message, "error_stack": None}
                self._send(status, {"meta": meta, "data": data if data is not None else {}})

            def _handle(self):
                action = self.path.strip("/").split("?", 1)[0]
                if self.command == "GET" and action.startswith("files/"):
                    data = server.files.get(action[len("files/"):])
                    self._send(404, b"not found", "text/plain") if data is None else self._send(
                        200, data, "application/octet-stream")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.calls.append(action)
                if action == "auth.login":
                    auth = self.headers.get("Authorization") or ""
                    expected = "Basic " + base64.b64encode(f"{server.access_key}:{server.secret_key}".encode()).decode()
                    if auth != expected:
                        self._envelope(action, 401, message="Unauthorized (invalid credentials) (failed to locate "
                                                            "provided credentials)")
                        return
                    self._envelope(action, 200, {"token": server.token()})
                    return
                if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                    self._envelope(action, 401, message="Unauthorized (missing authorization header)")
                    return
                body = json.loads(raw or b"{}")
                reply = server._reply(action, body)  # pylint: disable=protected-access
                if isinstance(reply, tuple):
                    self._envelope(action, reply[0], message=reply[1])
                else:
                    self._envelope(action, 200, reply)

            do_GET = do_POST = _handle  # noqa: N815

        return Handler
