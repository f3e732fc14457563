# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which adapter serves which tracker kind, and the connection options a tracker takes."""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import MlflowSource, MlflowTarget

ADAPTERS = {"mlflow": (MlflowSource, MlflowTarget)}


def tracker_spec():
    return dict(
        kind=dict(type="str", choices=list(ADAPTERS), default="mlflow"),
        tracking_uri=dict(type="str", required=True),
        token=dict(type="str", no_log=True),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
    )


def adapter(settings, side):
    source_class, target_class = ADAPTERS[settings["kind"]]
    cls = source_class if side == "source" else target_class
    tracker = cls(settings["tracking_uri"], token=settings.get("token"), username=settings.get("username"),
                  password=settings.get("password"))
    tracker.check()
    return tracker
