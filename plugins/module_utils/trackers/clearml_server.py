# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ClearML server's own stores as a tracker source (kind ``clearml_server``): the ``backend`` MongoDB
database (``project``, ``task``, ``model``, ``user``) and the ``events-<type>-<company>`` indices of its
Elasticsearch or OpenSearch, read through the collection's MongoDB and search code, for server-level migrations
and for servers whose API is gone. Nothing is written to either.

Tasks are selected per project, with ``task_filter`` (the mongo step's query language) applied by MongoDB.
Events are read per task: the (title, series) pairs of a type by a composite aggregation, the scalars in one
scroll sorted by iteration (every point: not the 5,000-point sample ``get_reported_scalars`` gives) spooled a
series a file, so memory holds one page. Output models are the ``model`` documents ``models.output`` names; URLs of artifacts, models and
debug samples are fetched as trackers/clearml_records.py says. A database without a ``task`` collection, a
search server without event indices for the company, refused credentials and unreachable servers fail
``check`` before anything is written. Importable without Ansible; reading needs ``pymongo``.
"""

from __future__ import annotations

import threading

from ansible_collections.mlops.migration.plugins.module_utils.mongo.connection import MongoError, PyMongoError, connect, explain
from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchClient, SearchError, SearchNotFound
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.clearml_records import (
    CONSOLE,
    LOG,
    OPTIONS as RECORD_OPTIONS,
    ClearmlTaskSource,
    UrlFetcher,
    check_task_filter,
)

OPTIONS = dict(mongo_uri=dict(type="str"), mongo_database=dict(type="str"), search_url=dict(type="str"),
               search_username=dict(type="str"), search_password=dict(type="str", no_log=True),
               company=dict(type="str"), **RECORD_OPTIONS)
PAGE = 5000  # events a scroll page


class ClearmlServerSource(ClearmlTaskSource):
    KIND = "clearml_server"
    LIBRARY = ("pymongo", "pymongo")
    OPTIONS = OPTIONS
    REQUIRED = ("mongo_uri", "search_url")

    def __init__(self, mongo_uri, search_url, database=None, search_username=None, search_password=None,
                 company=None, task_filter=None, url_map=None, s3=None):
        self.mongo_params = {"uri": mongo_uri}
        self.database = database or "backend"
        self.search = SearchClient(search_url, username=search_username, password=search_password)
        self.company = company or "*"
        self.task_filter = check_task_filter(task_filter)
        self.fetcher = UrlFetcher(url_map, s3)
        self.uri = f"clearml-server://{self.search.host}:{self.search.port}/{self.database}"
        self._client = None
        self._users = {}
        self.lock = threading.RLock()
        self.local = threading.local()  # one search connection per thread

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["mongo_uri"], settings["search_url"], settings.get("mongo_database"),
                   settings.get("search_username"), settings.get("search_password"), settings.get("company"),
                   settings.get("task_filter"), settings.get("url_map"), settings.get("s3"))

    def _db(self):
        with self.lock:
            if self._client is None:
                try:
                    self._client = connect(self.mongo_params)
                except MongoError as exc:
                    raise TrackerError(f"clearml_server: {exc}") from exc
            return self._client[self.database]

    def _search(self):
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = self.search.clone()
        return client

    def _index(self, event_type):
        return f"events-{event_type}-{self.company}"

    def check(self):
        try:
            names = self._db().list_collection_names()
        except PyMongoError as exc:
            raise TrackerError(f"clearml_server: {explain(exc, 'the ClearML database', self.database)}") from exc
        if "task" not in names:
            raise TrackerError(f"clearml_server: the database {self.database} has no task collection: not a ClearML "
                               "server's database (mongo_database names it)")
        try:
            self._search().info()
            found = self._search().matching(f"events-*-{self.company}")
        except SearchError as exc:
            raise TrackerError(f"clearml_server: {exc}") from exc
        if not found:
            raise TrackerError(f"clearml_server: the search server {self.search.url} has no index "
                               f"events-*-{self.company}: not a ClearML server's events (company names its id)")

    def server_version(self):
        try:
            return (self._search().info().get("version") or {}).get("number")
        except SearchError:
            return None

    def _find(self, collection, query, what):
        try:
            yield from self._db()[collection].find(query)
        except PyMongoError as exc:
            raise TrackerError(f"clearml_server: {explain(exc, 'the ClearML database', what)}") from exc

    # what a reader gives ----------------------------------------------------------------------

    def _project_docs(self):
        return [dict(doc, id=str(doc["_id"])) for doc in self._find("project", {}, "projects")]

    def _task_docs(self, project):
        query = {"project": project.id}
        if self.task_filter:
            query = {"$and": [query, self.task_filter]}
        for doc in self._find("task", query, f"the tasks of project {project.name}"):
            yield self._kept(dict(doc, id=str(doc["_id"])))

    def _fetch_task(self, task_id):
        found = list(self._find("task", {"_id": task_id}, f"task {task_id}"))
        if not found:
            raise TrackerError(f"clearml_server: no task {task_id} in the database {self.database}")
        return dict(found[0], id=str(found[0]["_id"]))

    def _user_name(self, user_id):
        if not user_id:
            return None
        with self.lock:
            if user_id not in self._users:
                found = list(self._find("user", {"_id": user_id}, f"user {user_id}"))
                self._users[user_id] = (found[0].get("name") if found else None) or user_id
            return self._users[user_id]

    def _find_keys(self, task, event_type):
        query = {"term": {"task": task["id"]}}
        try:
            if event_type == LOG:
                try:
                    found = {(CONSOLE, CONSOLE)} if self._search().count(self._index(LOG), query) else set()
                except SearchNotFound:  # a company whose tasks never logged a line has no log index
                    found = set()
            else:
                found = set(self._pairs(event_type, query))
        except SearchError as exc:
            raise TrackerError(f"clearml_server: task {task['id']}: {exc}") from exc
        return found

    def _pairs(self, event_type, query):
        after = None
        while True:
            composite = {"size": 1000, "sources": [{"metric": {"terms": {"field": "metric"}}},
                                                   {"variant": {"terms": {"field": "variant"}}}]}
            if after:
                composite["after"] = after
            reply = self._search().call("POST", f"/{self._index(event_type)}/_search",
                                        {"size": 0, "query": query, "aggs": {"pairs": {"composite": composite}}},
                                        query={"ignore_unavailable": "true", "allow_no_indices": "true"},
                                        what=f"the {event_type} events")
            pairs = ((reply.get("aggregations") or {}).get("pairs")) or {}
            for bucket in pairs.get("buckets") or ():
                yield bucket["key"]["metric"], bucket["key"]["variant"]
            after = pairs.get("after_key")
            if not after or not pairs.get("buckets"):
                return

    def _events(self, task, event_type, metric=None, variant=None):
        terms = [{"term": {"task": task["id"]}}]
        terms += [{"term": {name: value}} for name, value in (("metric", metric), ("variant", variant))
                  if value is not None]
        sort = [{"timestamp": "asc"}] if event_type == LOG else [{"iter": "asc"}, {"timestamp": "asc"}]
        try:
            for hits in self._search().scroll(self._index(event_type), {"bool": {"filter": terms}}, PAGE, sort=sort):
                for hit in hits:
                    yield hit["_source"]
        except SearchError as exc:
            raise TrackerError(f"clearml_server: task {task['id']}: {exc}") from exc

    def _fetch(self, url, path, what):
        self.fetcher.fetch(url, path, what)

    def _output_models(self, task):
        ids = [m.get("model") for m in (task.get("models") or {}).get("output") or () if m.get("model")]
        if not ids and (task.get("output") or {}).get("model"):
            ids = [task["output"]["model"]]
        if not ids:
            return []
        what = f"the models of task {task['id']}"
        found = {str(doc["_id"]): doc for doc in self._find("model", {"_id": {"$in": ids}}, what)}
        return [{"name": found[i].get("name") or i, "uri": found[i].get("uri")} for i in ids if i in found]
