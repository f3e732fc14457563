# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MLflow source and target adapters, through the official client's REST stores.

Metric histories are read page by page (``metrics/get-history``) so a long series is never held
whole; writes go through ``log_batch`` in chunks within the API's limits (1000 metrics, 100 params,
100 tags, 1000 entities per call). The metric calls are made on the REST API directly (``rest``):
the client's protobuf conversion of every point costs more CPU than the server's storing it.

MLflow's conventions live here and nowhere else: the parent run is the tag ``mlflow.parentRunId``,
the user ``mlflow.user`` (and the run's ``user_id``), descriptions ``mlflow.note.content``; the
server sets the other ``mlflow.*`` tags of an experiment itself. What MLflow has no record kind
for is written as artifacts of the run under ``mlops-migration/`` (SERIES_DIR):

    text, plot, histogram series   mlops-migration/<kind>/<key>.jsonl, one item a line
                                   ({"step", "timestamp", "text" | "data" | "caption", ...})
    media series                   mlops-migration/media/<key>.jsonl, each line naming its file
                                   ("artifact"), the files under mlops-migration/media/<key>/
    summary values                 mlops-migration/summary.json
    nested configuration           mlops-migration/config.json (params hold its flattening)
    fork point                     the tag mlops.migration.fork_step (the parent is mlflow.parentRunId)
    system metrics                 metrics named system/<key>, as MLflow's own system metrics are
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
import tempfile
import threading
import time
import types
from urllib.parse import urlsplit

from ansible_collections.mlops.migration.plugins.module_utils.common import split_userinfo
from ansible_collections.mlops.migration.plugins.module_utils.paths import UnsafePath
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    Artifact,
    Experiment,
    ModelVersion,
    Point,
    RegisteredModel,
    Run,
    SourceAdapter,
    TargetAdapter,
    TrackerError,
    TransientError,
    retried,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_files import (
    SERIES_DIR,
    read_series,
    series_path,
    write_series,
)

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None


@functools.lru_cache(maxsize=None)
def _mlflow():
    """The mlflow names this adapter uses, imported at the first use: importing mlflow takes a second or more, which
    a module that only checks a plan, or copies between other trackers, would otherwise pay at every start."""
    # pylint: disable=import-outside-toplevel
    from mlflow.entities import DatasetInput, Param, RunTag, ViewType
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracking import MlflowClient

    return types.SimpleNamespace(DatasetInput=DatasetInput, Param=Param, RunTag=RunTag, ViewType=ViewType,
                                 MlflowException=MlflowException, get_artifact_repository=get_artifact_repository,
                                 MlflowClient=MlflowClient)


MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
NOTE_TAG = "mlflow.note.content"
SERVER_TAGS = "mlflow."  # an experiment's tags with this prefix are the server's own (but NOTE_TAG)
FORK_TAG = "mlops.migration.fork_step"
OPTIONS = dict(
    tracking_uri=dict(type="str"),
    token=dict(type="str", no_log=True),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
)
PAGE = 5000
RETRIES = 6
DATASET_RACE_RETRIES = 3


def _is_transient(exc):
    text = str(exc)
    code = getattr(exc, "get_http_status_code", lambda: None)()
    return code in (429, 500, 502, 503, 504) or any(t in text for t in (
        "Max retries exceeded", "Connection aborted", "Connection refused", "429", "503", "502", "504"))


def call(what, func, *args, **kwargs):
    """Run an MLflow client call, retrying transient failures with backoff; TrackerError otherwise."""
    try:
        return retried(lambda: func(*args, **kwargs),
                       lambda exc: isinstance(exc, OSError) or isinstance(exc, _mlflow().MlflowException) and _is_transient(exc),
                       RETRIES)
    except _mlflow().MlflowException as exc:
        error = TransientError if _is_transient(exc) else TrackerError
        raise error(f"{what}: {_short(exc)}") from exc
    except OSError as exc:
        raise TransientError(f"{what}: {exc}") from exc


def _json_number(value):
    """A metric value as the REST API's JSON takes it (protobuf's JSON: NaN and the infinities as strings)."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def filter_literal(value):
    """``value`` as a string literal of an MLflow search filter, or None when none can hold it.

    MLflow's filter strings have no escapes: a value is quoted with whichever quote it does not
    contain (a name with both cannot be searched for, and is looked up another way).
    """
    value = str(value)
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None


def _short(exc):
    text = getattr(exc, "message", None) or str(exc)
    return text.split("\n")[0][:400]


def _origin(uri):
    """``scheme://host:port`` of a URI, without its userinfo, lower-cased: whose credentials apply."""
    parts = urlsplit(uri or "")
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()


class _Credentials:
    """Each tracking server's own credentials, handed to MLflow per request, never through os.environ.

    MLflow reads credentials from the process environment on every request (``get_default_host_creds``),
    so two clients in one process would send one server's token to the other. Every place MLflow
    resolves host credentials is pointed at ``host_creds``, which answers with the credentials given
    for that URI's origin (and none for an origin given none); other origins keep MLflow's own answer.
    """

    _SITES = ("mlflow.utils.credentials", "mlflow.tracking._tracking_service.utils",
              "mlflow.tracking._model_registry.utils", "mlflow.store.artifact.http_artifact_repo",
              "mlflow.store.artifact.mlflow_artifacts_repo")

    def __init__(self):
        self.by_origin = {}
        self.lock = threading.Lock()
        self.original = None

    def register(self, uri, token=None, username=None, password=None):
        with self.lock:
            self._install()
            self.by_origin[_origin(uri)] = (token, username, password)

    def _install(self):
        if self.original is not None:
            return
        import importlib  # pylint: disable=import-outside-toplevel
        from mlflow.utils import credentials  # pylint: disable=import-outside-toplevel

        self.original = credentials.get_default_host_creds
        for name in self._SITES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            if getattr(module, "get_default_host_creds", None) is self.original:
                module.get_default_host_creds = self.host_creds

    def host_creds(self, store_uri):
        creds = self.original(store_uri)
        own = self.by_origin.get(_origin(store_uri))
        if own is None:
            return creds
        creds.token, creds.username, creds.password = own
        return creds


CREDENTIALS = _Credentials()


class _Client:
    """An MlflowClient for one tracking server, with its own credentials (see ``_Credentials``)."""

    def __init__(self, tracking_uri, token=None, username=None, password=None, registry_uri=None):
        if not HAS_MLFLOW:
            raise TrackerError("the mlflow (or mlflow-skinny) Python package is required")
        # user:password inside the URI become basic-auth credentials; the URI the adapter shows
        # (run tags, ledger, log, results) and calls is the one without them.
        tracking_uri, uri_user, uri_password = split_userinfo(tracking_uri)
        username, password = username or uri_user, password or uri_password
        self.uri = tracking_uri
        CREDENTIALS.register(tracking_uri, token, username, password)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # retried here, with our backoff
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # a module's stdout is its JSON result
        self.client = _mlflow().MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
        self.store = self.client._tracking_client.store  # pylint: disable=protected-access
        self.repos = {}  # artifact URI -> repository, so listing a run's artifacts does not re-read the run

    def server_version(self):
        """The tracking server's MLflow version (``GET /version``), or None when it does not tell."""
        try:
            from mlflow.utils.rest_utils import http_request  # pylint: disable=import-outside-toplevel
            reply = http_request(self.store.get_host_creds(), "/version", "GET", max_retries=0, timeout=10)
            return reply.text.strip()[:40] if reply.status_code == 200 else None
        except Exception:  # pylint: disable=broad-except  # a version is a note, never a failure
            return None

    def rest(self, what, method, endpoint, **kwargs):
        """One call of the tracking server's REST API (``/api/2.0/mlflow/...``), its JSON answer as Python data.

        The metric calls go through here rather than the MLflow client, whose protobuf conversions of every
        point (to JSON with an indent on the way out, through ``ParseDict`` on the way back) cost more CPU than
        the server spends storing them; requests encodes and decodes plain JSON in C. Auth, TLS and timeouts
        are the client's (its host credentials); a failure is retried as ``call`` retries."""
        from mlflow.utils.rest_utils import http_request, verify_rest_response  # pylint: disable=C0415

        def once():
            reply = http_request(self.store.get_host_creds(), f"/api/2.0/mlflow/{endpoint}", method, max_retries=0,
                                 raise_on_status=False, **kwargs)
            return verify_rest_response(reply, endpoint).json()

        return call(f"MLflow at {self.uri}: {what}", once)

    def repo(self, artifact_uri):
        if artifact_uri not in self.repos:
            if len(self.repos) > 256:
                self.repos.clear()
            self.repos[artifact_uri] = _mlflow().get_artifact_repository(artifact_uri, tracking_uri=self.uri)
        return self.repos[artifact_uri]

    def check(self):
        """Prove the server answers and accepts the credentials."""
        try:
            self.client.search_experiments(max_results=1)
        except _mlflow().MlflowException as exc:
            code = getattr(exc, "get_http_status_code", lambda: None)()
            if code in (401, 403):
                raise TrackerError(f"MLflow at {self.uri} refused the credentials (HTTP {code})") from exc
            raise TrackerError(f"cannot reach MLflow at {self.uri}: {_short(exc)}") from exc


def _run(entity):
    """The neutral Run of an MLflow run: parent, description and fork point out of their tags."""
    info, data = entity.info, entity.data
    inputs = list(entity.inputs.dataset_inputs) if getattr(entity, "inputs", None) else []
    tags = dict(data.tags)
    parent, description, fork = tags.pop(PARENT_TAG, None), tags.pop(NOTE_TAG, None), tags.pop(FORK_TAG, None)
    try:
        fork_step = float(fork) if fork is not None else None
    except ValueError:
        fork_step, tags[FORK_TAG] = None, fork
    return Run(id=info.run_id, experiment_id=info.experiment_id, name=info.run_name, start_time=info.start_time,
               end_time=info.end_time, status=info.status, user=info.user_id, params=dict(data.params),
               tags=tags, metric_keys=sorted(data.metrics), inputs=inputs,
               lifecycle=info.lifecycle_stage, artifact_uri=info.artifact_uri, parent_id=parent,
               description=description, fork_step=fork_step)


def _experiment(exp):
    """The neutral Experiment of an MLflow experiment: the server's own tags left out, the note as description."""
    tags = {k: v for k, v in exp.tags.items() if not k.startswith(SERVER_TAGS)}
    return Experiment(exp.experiment_id, exp.name, tags, exp.lifecycle_stage, exp.tags.get(NOTE_TAG))


class MlflowSource(_Client, SourceAdapter):
    """Reads an MLflow tracking server (any version the official client speaks to)."""

    KIND = "mlflow"
    LIBRARY = ("mlflow", "mlflow-skinny")
    OPTIONS = OPTIONS
    REQUIRED = ("tracking_uri",)

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["tracking_uri"], token=settings.get("token"), username=settings.get("username"),
                   password=settings.get("password"))

    def experiments(self, selectors, include_deleted=False):
        view = _mlflow().ViewType.ALL if include_deleted else _mlflow().ViewType.ACTIVE_ONLY
        patterns = [re.compile(s) for s in selectors or []]
        token = None
        while True:
            page = call(f"MLflow at {self.uri}: listing experiments", self.client.search_experiments,
                        view_type=view, max_results=1000, page_token=token)
            for exp in page:
                if not patterns or any(p.fullmatch(exp.name) for p in patterns):
                    yield _experiment(exp)
            token = page.token
            if not token:
                return

    def runs(self, experiment, include_deleted=False):
        view = _mlflow().ViewType.ALL if include_deleted else _mlflow().ViewType.ACTIVE_ONLY
        token = None
        while True:
            page = call(f"MLflow at {self.uri}: listing runs of experiment {experiment.name}",
                        self.client.search_runs, [experiment.id], run_view_type=view, max_results=1000,
                        order_by=["attributes.start_time ASC"], page_token=token)
            for entity in page:
                yield _run(entity)
            token = page.token
            if not token:
                return

    def run(self, run_id):
        return _run(call(f"MLflow at {self.uri}: reading run {run_id}", self.client.get_run, run_id))

    def metric_history(self, run, key):
        token = None
        while True:
            query = {"run_id": run.id, "metric_key": key, "max_results": PAGE, **({"page_token": token} if token else {})}
            page = self.rest(f"metric {key} of run {run.id}", "GET", "metrics/get-history", params=query)
            for metric in page.get("metrics") or ():
                yield Point(metric["key"], float(metric.get("value", 0.0)), int(metric.get("timestamp", 0)),
                            int(metric.get("step", 0)))
            token = page.get("next_page_token")
            if not token:
                return

    def artifacts(self, run, path=None):
        repo = self.repo(run.artifact_uri)
        for info in call(f"MLflow at {self.uri}: artifacts of run {run.id}", repo.list_artifacts, path):
            if info.is_dir:
                yield from self.artifacts(run, info.path)
            else:
                yield Artifact(info.path, info.file_size)

    def download(self, run, artifact, path):
        repo = self.repo(run.artifact_uri)
        call(f"MLflow at {self.uri}: downloading {artifact.path} of run {run.id}",
             repo._download_file, artifact.path, path)  # pylint: disable=protected-access

    def registered_models(self):
        token = None
        while True:
            page = call(f"MLflow at {self.uri}: listing registered models", self.client.search_registered_models,
                        max_results=100, page_token=token)
            for model in page:
                yield RegisteredModel(model.name, model.description, dict(model.tags),
                                      dict(getattr(model, "aliases", {}) or {}))
            token = page.token
            if not token:
                return

    def model_versions(self, model):
        literal = filter_literal(model.name)
        if literal is not None:
            found = call(f"MLflow at {self.uri}: versions of model {model.name}", self.client.search_model_versions,
                         f"name={literal}")
        else:  # a name with both quotes: every version, paged, kept by exact name
            found = _every_model_version_pages(self.client, self.uri)
        versions = [ModelVersion(v.name, v.version, v.source, v.run_id, v.description, dict(v.tags),
                                 v.current_stage, list(getattr(v, "aliases", []) or [])) for v in found
                    if v.name == model.name]
        return sorted(versions, key=lambda v: int(v.version))


def _every_model_version_pages(client, uri):
    token = None
    while True:
        page = call(f"MLflow at {uri}: listing model versions", client.search_model_versions, None,
                    max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


class MlflowTarget(MlflowSource, TargetAdapter):
    """Writes to an MLflow server; reads back through the source methods to verify. Record kinds
    MLflow lacks become artifacts under SERIES_DIR (see the module's documentation)."""

    OWN_ARTIFACTS = SERIES_DIR + "/"  # what the copy itself writes besides the source's artifacts
    SYSTEM_PREFIX = "system/"  # as MLflow names its own system metrics

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.artifact_uris = {}
        self.inputs_lock = threading.Lock()

    def ensure_experiment(self, experiment, name, tags):
        tags = dict(tags, **({NOTE_TAG: experiment.description} if experiment.description else {}))
        found = call(f"MLflow at {self.uri}: looking up experiment {name}", self.client.get_experiment_by_name, name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise TrackerError(f"MLflow at {self.uri}: experiment {name} exists but is deleted; "
                                   "restore or purge it first")
            return found.experiment_id, False
        exp_id = call(f"MLflow at {self.uri}: creating experiment {name}", self.client.create_experiment, name,
                      tags=tags)
        return exp_id, True

    def find_runs_by_tag(self, experiment_id, key, value):
        literal = filter_literal(value)
        if literal is None or "`" in key:
            raise TrackerError(f"MLflow at {self.uri}: runs cannot be searched by the tag {key!r} = {value!r}")
        page = call(f"MLflow at {self.uri}: searching runs", self.client.search_runs, [experiment_id],
                    filter_string=f"tags.`{key}` = {literal}", run_view_type=_mlflow().ViewType.ALL, max_results=100)
        return [r.info.run_id for r in page]

    def create_run(self, experiment_id, run, tags, parent_id=None):
        tags = dict(tags)
        if parent_id:
            tags[PARENT_TAG] = parent_id
        if run.user:
            tags.setdefault(USER_TAG, run.user)
        if run.description:
            tags[NOTE_TAG] = run.description
        if run.fork_step is not None:
            tags[FORK_TAG] = str(run.fork_step)
        for name, value in (("mlops.migration.group", run.group), ("mlops.migration.job_type", run.job_type)):
            if value:
                tags.setdefault(name, value)
        entity = call(f"MLflow at {self.uri}: creating run {run.name}", self.client.create_run, experiment_id,
                      start_time=run.start_time, tags=tags, run_name=run.name)
        self.artifact_uris[entity.info.run_id] = entity.info.artifact_uri
        return entity.info.run_id

    def log_batch(self, run_id, params=(), tags=(), points=()):
        params = [_mlflow().Param(k, v) for k, v in params]
        tags = [_mlflow().RunTag(k, v) for k, v in tags]
        for part in chunks(params, MAX_PARAMS):
            call(f"MLflow at {self.uri}: params of run {run_id}", self.client.log_batch, run_id, params=part)
        for part in chunks(tags, MAX_TAGS):
            call(f"MLflow at {self.uri}: tags of run {run_id}", self.client.log_batch, run_id, tags=part)
        batch = []
        for point in points:
            batch.append({"key": point.key, "value": _json_number(point.value), "timestamp": point.timestamp,
                          "step": int(point.step)})
            if len(batch) == MAX_METRICS:
                self.rest(f"metrics of run {run_id}", "POST", "runs/log-batch", json={"run_id": run_id, "metrics": batch})
                batch = []
        if batch:
            self.rest(f"metrics of run {run_id}", "POST", "runs/log-batch", json={"run_id": run_id, "metrics": batch})

    def log_inputs(self, run_id, inputs):
        """Log a run's dataset inputs. The server creates a dataset the first time one is logged in an
        experiment; two runs logging it at once race to create it (one gets a UNIQUE-constraint error).
        This adapter logs inputs one call at a time, and a call that lost the race to another writer is
        made again, when the dataset exists and is only linked."""
        if not inputs:
            return
        entities = [_mlflow().DatasetInput(i.dataset, i.tags) for i in inputs]
        for attempt in range(DATASET_RACE_RETRIES):
            try:
                with self.inputs_lock:
                    call(f"MLflow at {self.uri}: inputs of run {run_id}", self.client.log_inputs, run_id, entities)
                return
            except TrackerError as exc:
                if "UNIQUE constraint failed" not in str(exc) and "duplicate key" not in str(exc) \
                        or attempt == DATASET_RACE_RETRIES - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def upload(self, run_id, artifact, path):
        self._upload_as(run_id, path, artifact.path)

    def _series_path(self, kind, key, suffix=".jsonl"):
        try:
            return series_path(kind, key, suffix)
        except UnsafePath as exc:
            raise TrackerError(f"MLflow at {self.uri}: {exc}") from exc

    def _upload_as(self, run_id, local, artifact_path):
        uri = self.artifact_uris.get(run_id) or self.run(run_id).artifact_uri
        call(f"MLflow at {self.uri}: uploading {artifact_path} to run {run_id}", self.repo(uri).log_artifact,
             local, os.path.dirname(artifact_path) or None)

    def log_series(self, run_id, kind, key, items, fetch):
        """One JSON line per item in ``SERIES_DIR/<kind>/<key>.jsonl``; media files beside it (trackers/side_files.py)."""
        self._series_path(kind, key)
        with tempfile.TemporaryDirectory(prefix="mlops-series-") as scratch:
            return write_series(kind, key, items, fetch,
                                lambda local, path: self._upload_as(run_id, local, path), scratch)

    def series(self, run, kind, key):
        """The items of a series this target wrote (read back from its side file), for verification."""
        with tempfile.TemporaryDirectory(prefix="mlops-series-") as scratch:
            local = os.path.join(scratch, "series.jsonl")
            try:
                self.download(run, Artifact(self._series_path(kind, key), None), local)
            except TrackerError:
                return
            with open(local, encoding="utf-8") as lines:
                yield from read_series(key, lines)

    def series_file(self, run, item, path):
        self.download(run, Artifact(item.file, None), path)

    def series_count(self, run, kind, key):
        return sum(1 for _item in self.series(run, kind, key))

    def log_summary(self, run_id, summary, config):
        with tempfile.TemporaryDirectory(prefix="mlops-series-") as scratch:
            for name, value in (("summary", summary), ("config", config)):
                if value:
                    local = os.path.join(scratch, f"{name}.json")
                    with open(local, "w", encoding="utf-8") as out:
                        json.dump(value, out, sort_keys=True, indent=1, default=str)
                    self._upload_as(run_id, local, f"{SERIES_DIR}/{name}.json")

    def finish_run(self, run_id, status, end_time):
        call(f"MLflow at {self.uri}: finishing run {run_id}", self.client.set_terminated, run_id, status, end_time)

    def delete_run(self, run_id):
        call(f"MLflow at {self.uri}: deleting run {run_id}", self.client.delete_run, run_id)

    def delete_experiment(self, experiment_id):
        call(f"MLflow at {self.uri}: deleting experiment {experiment_id}", self.client.delete_experiment,
             experiment_id)

    def ensure_registered_model(self, model):
        try:
            self.client.get_registered_model(model.name)
            return False
        except _mlflow().MlflowException:
            call(f"MLflow at {self.uri}: creating registered model {model.name}", self.client.create_registered_model,
                 model.name, tags=model.tags, description=model.description)
            return True

    def create_model_version(self, version, source, run_id):
        created = call(f"MLflow at {self.uri}: creating version {version.version} of {version.name}",
                       self.client.create_model_version, version.name, source, run_id=run_id, tags=version.tags,
                       description=version.description)
        if version.stage and version.stage != "None":
            call(f"MLflow at {self.uri}: stage of {version.name} v{created.version}",
                 self.client.transition_model_version_stage, version.name, created.version, version.stage)
        return created.version

    def set_alias(self, name, alias, version):
        call(f"MLflow at {self.uri}: alias {alias} of {name}", self.client.set_registered_model_alias, name, alias,
             version)
