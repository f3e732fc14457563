# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tracker-neutral shape of experiment-tracker records, and the adapter interface.

A source adapter yields experiments, their runs and, per run, params, tags, metric series
(streamed page by page, with step and timestamp), artifacts (streamed) and dataset inputs,
plus registered models and their versions. A target adapter writes them. MLflow is the first
adapter (trackers/mlflow.py); ClearML, W&B and Neptune adapters implement the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

SOURCE_RUN_TAG = "mlops.migration.source_run_id"
SOURCE_EXPERIMENT_TAG = "mlops.migration.source_experiment_id"
SOURCE_URI_TAG = "mlops.migration.source_uri"
OUR_TAGS = (SOURCE_RUN_TAG, SOURCE_EXPERIMENT_TAG, SOURCE_URI_TAG)


class TrackerError(MigrationError):
    """A tracker API failure, explained (server, object, cause)."""


class TransientError(TrackerError):
    """A failure worth retrying: rate limits (429) and server errors (5xx), connection resets."""


@dataclass
class Experiment:
    id: str
    name: str
    tags: dict = field(default_factory=dict)
    lifecycle: str = "active"


@dataclass
class Run:
    id: str
    experiment_id: str
    name: str
    start_time: int | None
    end_time: int | None
    status: str
    user: str | None
    params: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    metric_keys: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    lifecycle: str = "active"
    artifact_uri: str | None = None

    @property
    def parent_id(self):
        return self.tags.get("mlflow.parentRunId")

    @property
    def finished(self):
        return self.status not in ("RUNNING", "SCHEDULED")


@dataclass
class Point:
    key: str
    value: float
    timestamp: int
    step: int


@dataclass
class Artifact:
    path: str
    size: int | None


@dataclass
class ModelVersion:
    name: str
    version: str
    source: str
    run_id: str | None
    description: str | None
    tags: dict
    stage: str | None
    aliases: list = field(default_factory=list)


@dataclass
class RegisteredModel:
    name: str
    description: str | None
    tags: dict
    aliases: dict  # alias -> version


class SourceAdapter:
    """What a copy reads from a tracker."""

    uri = ""

    def experiments(self, selectors):
        """Experiments whose names match ``selectors`` (names or regular expressions)."""
        raise NotImplementedError

    def runs(self, experiment):
        """Every run of the experiment (streamed page by page)."""
        raise NotImplementedError

    def run(self, run_id):
        """One run, fresh."""
        raise NotImplementedError

    def metric_history(self, run, key):
        """The metric's points in order, page by page; never the whole series at once."""
        raise NotImplementedError

    def artifacts(self, run):
        """Every artifact file of the run (recursively)."""
        raise NotImplementedError

    def download(self, run, artifact, path):
        """Write the artifact's bytes to the local file ``path``."""
        raise NotImplementedError

    def registered_models(self):
        raise NotImplementedError

    def model_versions(self, model):
        raise NotImplementedError


class TargetAdapter(SourceAdapter):
    """What a copy writes to a tracker; it reads back through the SourceAdapter methods to verify."""

    uri = ""

    def ensure_experiment(self, name, tags):
        """The id of the experiment called ``name``, created when missing; (id, created)."""
        raise NotImplementedError

    def create_run(self, experiment_id, run, tags):
        """A new run with the source run's name, start time and tags; returns its id."""
        raise NotImplementedError

    def log_batch(self, run_id, params=(), tags=(), points=()):
        raise NotImplementedError

    def log_inputs(self, run_id, inputs):
        raise NotImplementedError

    def upload(self, run_id, artifact, path):
        """Upload the local file ``path`` as the run's artifact ``artifact.path``."""
        raise NotImplementedError

    def finish_run(self, run_id, status, end_time):
        raise NotImplementedError

    def delete_run(self, run_id):
        raise NotImplementedError

    def delete_experiment(self, experiment_id):
        raise NotImplementedError

    def find_runs_by_tag(self, experiment_id, key, value):
        """Ids of the experiment's runs whose tag ``key`` is ``value`` (copies the ledger lost track of)."""
        raise NotImplementedError

    def ensure_registered_model(self, model):
        """Create the registered model when missing; True when created."""
        raise NotImplementedError

    def create_model_version(self, version, source, run_id):
        """A new version with the source version's tags, description and stage; returns its number."""
        raise NotImplementedError

    def set_alias(self, name, alias, version):
        raise NotImplementedError
