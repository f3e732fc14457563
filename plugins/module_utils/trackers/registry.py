# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which adapters serve which tracker kind, the connection options a tracker dict takes (the
union of every adapter's own), and building a checked adapter from such a dict."""

from __future__ import annotations

import importlib.util

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import TrackerError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.clearml_api import ClearmlApiSource
from ansible_collections.mlops.migration.plugins.module_utils.trackers.clearml_offline import (
    ClearmlOfflineSource,
    ClearmlOfflineTarget,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.clearml_server import ClearmlServerSource
from ansible_collections.mlops.migration.plugins.module_utils.trackers.comet import CometOfflineSource, CometOfflineTarget
from ansible_collections.mlops.migration.plugins.module_utils.trackers.cometx import CometxDownloadSource
from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import MlflowSource, MlflowTarget
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune import (
    NeptuneExportSource,
    NeptuneOfflineSource,
    NeptuneScaleSource,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.neptune_live import NeptuneQuerySource
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb import WandbOfflineSource, WandbOfflineTarget
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_api import WandbApiSource

# kind -> (source adapter, target adapter or None when the kind is read only)
PAIRS = ((MlflowSource, MlflowTarget), (WandbOfflineSource, WandbOfflineTarget), (WandbApiSource, None),
         (NeptuneExportSource, None), (NeptuneOfflineSource, None),
         (NeptuneScaleSource, None), (NeptuneQuerySource, None), (CometOfflineSource, CometOfflineTarget),
         (CometxDownloadSource, None), (ClearmlOfflineSource, ClearmlOfflineTarget),
         (ClearmlServerSource, None), (ClearmlApiSource, None))
ADAPTERS = {cls.KIND: (cls, target) for cls, target in PAIRS}
DEFAULT_KIND = "mlflow"


def tracker_spec():
    """The argument spec of a tracker dict (the doc fragment mlops.migration.tracker documents it)."""
    spec = dict(kind=dict(type="str", choices=list(ADAPTERS), default=DEFAULT_KIND))
    for source_class, _target_class in ADAPTERS.values():
        spec.update(source_class.OPTIONS)
    return spec


def missing_library(settings):
    """The requirement to install for the tracker dict's kind, or None when its library imports."""
    module, requirement = ADAPTERS[settings.get("kind") or DEFAULT_KIND][0].LIBRARY or (None, None)
    return requirement if module and importlib.util.find_spec(module) is None else None


def uris(settings):
    """The URIs among a tracker dict's values (whose userinfo passwords are secrets)."""
    return [value for value in settings.values() if isinstance(value, str) and "://" in value]


def offline_dir(settings):
    """The directory a tracker dict names when its kind is one of the vendors' offline formats (a W&B, Comet,
    ClearML or Neptune offline directory, an export or download), else None: what a seal covers."""
    source_class = ADAPTERS[settings.get("kind") or DEFAULT_KIND][0]
    spec = tracker_spec()
    for name in source_class.REQUIRED:
        if spec.get(name, {}).get("type") == "path":
            return settings.get(name)
    return None


def adapter(settings, side):
    """A source (``side="source"``) or target adapter for the tracker dict, proven to answer."""
    kind = settings.get("kind") or DEFAULT_KIND
    source_class, target_class = ADAPTERS[kind]
    missing = [name for name in source_class.REQUIRED if not settings.get(name)]
    if missing:
        raise TrackerError(f"a {kind} tracker needs {', '.join(missing)}")
    if side != "source" and target_class is None:
        raise TrackerError(f"a {kind} tracker can be read from, not written to (kinds written: "
                           + ", ".join(k for k, (_s, t) in ADAPTERS.items() if t is not None) + ")")
    tracker = (source_class if side == "source" else target_class).from_settings(settings)
    tracker.check()
    return tracker
