# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tracker-neutral shape of experiment-tracker records, and the adapter interface.

A source adapter yields experiments, their runs and, per run, params, tags, metric series
(streamed page by page, with step and timestamp), the other series kinds (text such as console
output, media such as debug images, plots, histograms), summary values, the nested
configuration, artifacts (streamed) and dataset inputs, plus registered models and their
versions. A target adapter writes them, each kind in the nearest form the tracker has, and says
so in its class documentation. Links between runs (parent, fork point), users and descriptions
are fields of the records, never a vendor's tag: each adapter maps its own conventions (MLflow's
``mlflow.*`` tags live in trackers/mlflow.py only).

Every adapter class declares ``KIND`` (the tracker's name in the modules' ``kind`` option),
``LIBRARY`` (the import it needs and the requirement to name when missing) and ``OPTIONS`` (its
connection options, an argument spec), and is built with ``from_settings``.
"""

from __future__ import annotations

import datetime
import decimal
import time
from dataclasses import dataclass, field

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

SOURCE_RUN_TAG = "mlops.migration.source_run_id"
SOURCE_EXPERIMENT_TAG = "mlops.migration.source_experiment_id"
SOURCE_URI_TAG = "mlops.migration.source_uri"
STEP_SCALE_TAG = "mlops.migration.step_scale"  # a run's steps were multiplied by it (fractional at the source)
OUR_TAGS = (SOURCE_RUN_TAG, SOURCE_EXPERIMENT_TAG, SOURCE_URI_TAG, STEP_SCALE_TAG)


class TrackerError(MigrationError):
    """A tracker API failure, explained (server, object, cause)."""


class TransientError(TrackerError):
    """A failure worth retrying: rate limits (429) and server errors (5xx), connection resets."""


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def epoch_ms(moment):
    """A datetime (naive ones are UTC) in whole ms since the epoch, exactly (microseconds cut); None for None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    since = moment - EPOCH
    return (since.days * 86_400 + since.seconds) * 1000 + since.microseconds // 1000


def decimal_places(step):
    """How many decimal places ``step`` (an int, float or Decimal; None is 0) needs to be written exactly."""
    if step is None:
        return 0
    exponent = decimal.Decimal(str(step)).normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def retried(func, transient, attempts=6):
    """``func()``, called again with backoff (0.5 s doubling to 10 s) while it raises an exception that
    ``transient(exc)`` says is worth retrying, ``attempts`` times in all; the last failure is raised."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            return func()
        except Exception as exc:  # pylint: disable=broad-exception-caught  # re-raised unless transient
            if attempt == attempts - 1 or not transient(exc):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 10)
    raise AssertionError("not reached")


SERIES_KINDS = ("text", "media", "plot", "histogram")


@dataclass
class Experiment:
    id: str
    name: str
    tags: dict = field(default_factory=dict)
    lifecycle: str = "active"
    description: str | None = None
    path: list = field(default_factory=list)  # nested projects, outermost first; [] when flat


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
    parent_id: str | None = None  # the run this one is nested under (or forked from)
    fork_step: float | None = None  # a fork: the parent's step the run continues from
    description: str | None = None
    group: str | None = None
    job_type: str | None = None
    summary: dict = field(default_factory=dict)  # key -> last value (numbers, strings, lists)
    config: dict | None = None  # the nested configuration as the source holds it (params are its flattening)
    system_metric_keys: list = field(default_factory=list)  # system metrics, read like metric_keys
    series: dict = field(default_factory=dict)  # kind (SERIES_KINDS) -> keys
    step_scale: int = 1  # the least power of ten that makes every step of the run whole (fractional steps)

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
class SeriesItem:
    """One item of a text, media, plot or histogram series.

    ``text`` holds a text line; ``file`` a media file's path among the run's files (read with
    ``SourceAdapter.series_file``) or ``url`` where the source keeps it; ``data`` a plot's JSON
    or a histogram's ``{"edges": [...], "values": [...]}``; ``caption`` a media caption.
    """

    key: str
    step: float | None
    timestamp: int | None
    text: str | None = None
    file: str | None = None
    url: str | None = None
    data: object = None
    caption: str | None = None


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

    KIND = ""
    LIBRARY = None  # (module to import, requirement to name when it is missing)
    OPTIONS = {}  # connection options: name -> argument spec entry
    REQUIRED = ()  # options this kind cannot do without
    uri = ""

    @classmethod
    def from_settings(cls, settings):
        """An adapter for the connection options ``settings`` (the module's tracker dict)."""
        raise NotImplementedError

    def check(self):
        """Prove the tracker answers and accepts the credentials; TrackerError otherwise."""
        raise NotImplementedError

    def server_version(self):
        """The tracker's version, or None when it does not tell."""
        return None

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

    def series(self, run, kind, key):
        """The items (SeriesItem) of the run's ``kind`` series ``key``, in order, streamed."""
        return iter(())

    def series_file(self, run, item, path):
        """Write the bytes of a media item's ``file`` to the local file ``path``."""
        raise TrackerError(f"{self.KIND}: run {run.id} has no file {item.file}")

    def registered_models(self):
        raise NotImplementedError

    def model_versions(self, model):
        raise NotImplementedError

    def close(self):
        """Let go of what the adapter holds (temporary files, connections) when the copy is over."""


class TargetAdapter(SourceAdapter):
    """What a copy writes to a tracker; it reads back through the SourceAdapter methods to verify."""

    OWN_ARTIFACTS = None  # a path prefix of the artifacts the adapter writes itself (series, summary)
    APPENDS = True  # False: a run copied while it was running is copied again whole, not appended to
    uri = ""

    SYSTEM_PREFIX = ""  # the prefix of system metrics' names at this tracker
    WHOLE_STEPS = True  # steps are integers here: a run with fractional steps is copied with them times its step_scale

    def system_metric_key(self, key):
        """The name a system metric ``key`` gets at this tracker (SYSTEM_PREFIX before it, once)."""
        return key if key.startswith(self.SYSTEM_PREFIX) else self.SYSTEM_PREFIX + key

    def ensure_experiment(self, experiment, name, tags):
        """The id of the experiment called ``name`` (copied from ``experiment``: its description),
        created with ``tags`` when missing; (id, created)."""
        raise NotImplementedError

    def create_run(self, experiment_id, run, tags, parent_id=None):
        """A new run with the source run's name, start time, user, description, group, job type and fork
        point, the tags ``tags`` and, nested under the target run ``parent_id``; returns its id."""
        raise NotImplementedError

    def log_series(self, run_id, kind, key, items, fetch):
        """Write a text, media, plot or histogram series; ``fetch(item, path)`` writes a media item's
        bytes to a local file. Returns how many items were written."""
        raise NotImplementedError

    def series_count(self, run, kind, key):
        """How many items of the series the target holds (for verification)."""
        raise NotImplementedError

    def log_summary(self, run_id, summary, config):
        """Write the summary values and the nested configuration (either may be empty)."""
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

    def done(self, run_id):
        """Everything of the run has been handed over; a target that holds a run back writes it now."""

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
