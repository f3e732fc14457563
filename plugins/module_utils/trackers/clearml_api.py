# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ClearML server that still runs, read through the ClearML SDK's own API session (kind ``clearml_api``:
``api_server``, ``access_key``, ``secret_key``), mapped as trackers/clearml_records.py maps every ClearML source.

The calls: ``auth.login`` (the session's own), ``projects.get_all`` and ``tasks.get_all`` (paged), ``tasks.get_by_id``,
``events.get_scalar_metrics_and_variants`` (a task's scalar series), ``events.get_task_events`` (every event of a
type in timestamp order, scrolled: scalars, plots, debug samples - unsampled, unlike ``get_reported_scalars``),
``events.get_task_log`` (console lines, paged from the first) and ``models.get_all`` (output models). A task's
scalars are read in one scroll and spooled a series a file (clearml_records.py; the unsampled
``scalar_metrics_iter_raw`` gives a series' iterations or its timestamps, not both). Artifacts, models and debug
samples are fetched from their URLs as for the other ClearML sources. Refused credentials, an unreachable server and
a server that is not ClearML's fail ``check`` before anything is written. Importable without Ansible; reading needs
the ``clearml`` package.
"""

from __future__ import annotations

import os
import threading

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.clearml_records import (
    CONSOLE,
    LOG,
    OPTIONS as RECORD_OPTIONS,
    SCALAR,
    ClearmlTaskSource,
    UrlFetcher,
    check_task_filter,
)

OPTIONS = dict(api_server=dict(type="str"), access_key=dict(type="str", no_log=True),
               secret_key=dict(type="str", no_log=True), **RECORD_OPTIONS)
PAGE = 500  # projects and tasks a page
BATCH = 5000  # events a scroll page


class ClearmlApiSource(ClearmlTaskSource):
    KIND = "clearml_api"
    LIBRARY = ("clearml", "clearml")
    OPTIONS = OPTIONS
    REQUIRED = ("api_server", "access_key", "secret_key")

    def __init__(self, api_server, access_key, secret_key, task_filter=None, url_map=None, s3=None):
        self.api_server = api_server.rstrip("/")
        self.access_key, self.secret_key = access_key, secret_key
        self.uri = f"clearml-api://{self.api_server.split('://', 1)[-1]}"
        self.task_filter = check_task_filter(task_filter)
        self.fetcher = UrlFetcher(url_map, s3)
        self.lock = threading.RLock()
        self._session = None

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["api_server"], settings["access_key"], settings["secret_key"], settings.get("task_filter"),
                   settings.get("url_map"), settings.get("s3"))

    def _connect(self):
        with self.lock:
            if self._session is None:
                os.environ.setdefault("CLEARML_API_HOST", self.api_server)
                try:
                    from clearml.backend_api.session import Session  # pylint: disable=import-outside-toplevel
                except ImportError as exc:
                    raise TrackerError("clearml_api: reading a ClearML server needs the clearml package") from exc
                try:
                    self._session = Session(api_key=self.access_key, secret_key=self.secret_key,
                                            host=self.api_server, http_retries_config={"total": 2, "connect": 1,
                                                                                       "backoff_factor": 0.5})
                except Exception as exc:  # pylint: disable=broad-except  # the SDK raises many kinds; all mean no
                    raise TrackerError(f"clearml_api: cannot log in to the ClearML API server {self.api_server}: "
                                       f"{_first_line(exc)}") from exc
            return self._session

    def _call(self, service, action, body):
        """The ``data`` of ``<service>.<action>``; TrackerError naming the call and the server's message."""
        session = self._connect()
        try:
            reply = session.send_request(service, action, method="post", json=body)
        except Exception as exc:  # pylint: disable=broad-except  # connection errors of requests and urllib3
            raise TrackerError(f"clearml_api: {service}.{action} at {self.api_server}: {_first_line(exc)}") from exc
        try:
            answer = reply.json()
        except ValueError as exc:
            raise TrackerError(f"clearml_api: {service}.{action} at {self.api_server}: HTTP {reply.status_code}, not "
                               "a ClearML API answer") from exc
        meta = answer.get("meta") or {}
        if reply.status_code != 200 or meta.get("result_code", 200) != 200:
            raise TrackerError(f"clearml_api: {service}.{action} at {self.api_server}: HTTP {reply.status_code} "
                               f"{meta.get('result_msg') or ''}".rstrip())
        return answer.get("data") or {}

    def check(self):
        self._call("projects", "get_all", {"page": 0, "page_size": 1, "only_fields": ["id"]})

    def server_version(self):
        from clearml.backend_api.session import Session  # pylint: disable=import-outside-toplevel

        self._connect()
        return Session.server_version

    def _paged(self, service, action, field, body):
        page = 0
        while True:
            found = self._call(service, action, dict(body, page=page, page_size=PAGE)).get(field) or []
            yield from found
            if len(found) < PAGE:
                return
            page += 1

    # what a reader gives ----------------------------------------------------------------------

    def _project_docs(self):
        return list(self._paged("projects", "get_all", "projects",
                                {"only_fields": ["id", "name", "description", "tags", "system_tags"]}))

    def _task_docs(self, project):
        for task in self._paged("tasks", "get_all", "tasks", {"project": [project.id]}):
            yield self._kept(task)

    def _fetch_task(self, task_id):
        return self._call("tasks", "get_by_id", {"task": task_id})["task"]

    def _find_keys(self, task, event_type):
        if event_type == SCALAR:
            metrics = self._call("events", "get_scalar_metrics_and_variants", {"task": task["id"]}).get("metrics") or {}
            found = {(m, v) for m, variants in metrics.items() for v in variants or {}}
        elif event_type == LOG:
            lines = self._call("events", "get_task_log", {"task": task["id"], "batch_size": 1}).get("events")
            found = {(CONSOLE, CONSOLE)} if lines else set()
        else:
            found = {(e.get("metric"), e.get("variant")) for e in self._scrolled(task, event_type)}
        return found

    def _scrolled(self, task, event_type):
        scroll_id = None
        while True:
            body = {"task": task["id"], "event_type": event_type, "batch_size": BATCH, "order": "asc"}
            if scroll_id:
                body["scroll_id"] = scroll_id
            data = self._call("events", "get_task_events", body)
            found = data.get("events") or []
            yield from found
            scroll_id = data.get("scroll_id")
            if not found or not scroll_id:
                return

    def _events(self, task, event_type, metric=None, variant=None):
        if event_type == LOG:
            yield from self._log(task)
            return
        for event in self._scrolled(task, event_type):
            if (metric is None or event.get("metric") == metric) and (variant is None or event.get("variant") == variant):
                yield event

    def _log(self, task):
        after = 0
        while True:
            data = self._call("events", "get_task_log", {"task": task["id"], "batch_size": BATCH,
                                                         "navigate_earlier": False, "from_timestamp": after})
            found = data.get("events") or []
            yield from found
            if len(found) < BATCH:
                return
            after = found[-1].get("timestamp") or after

    def _fetch(self, url, path, what):
        self.fetcher.fetch(url, path, what)

    def _output_models(self, task):
        ids = [m.get("model") for m in (task.get("models") or {}).get("output") or () if m.get("model")]
        if not ids:
            return []
        found = {m["id"]: m for m in self._call("models", "get_all", {"id": ids, "only_fields": ["id", "name", "uri"]})
                 .get("models") or ()}
        return [{"name": found[i].get("name") or i, "uri": found[i].get("uri")} for i in ids if i in found]


def _first_line(exc):
    return (str(exc) or type(exc).__name__).strip().splitlines()[0][:300]
