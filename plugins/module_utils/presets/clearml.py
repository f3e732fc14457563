# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ClearML preset: what a ClearML server migration moves and how, in one place.

``expand(plan)`` turns a plan with ``preset: clearml`` and a ``clearml`` part (endpoints, the
fileserver, URL prefixes) into the files, mongo and events parts the steps run, by the scope of a
ClearML server migration: tasks (datasets and pipelines are tasks too) in the statuses kept, with
their Console, Scalar, Plots and Debug-samples events; the fields that do not move removed; every
artifact, model, debug-image and plot-image URL rewritten from the fileserver and the source buckets
to the target S3; console lines left as they are; the fileserver's files landed and put into S3.
A user or project subset moves only the files its tasks, models, projects and events name
(``FILE_REFERENCES``, the ``subset`` part). What the user writes in the files, mongo, events or
subset parts themselves wins over the preset.
``SCOPE`` is what the report states was migrated and deliberately was not. Importable without Ansible.
"""

from __future__ import annotations

import copy

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

DATABASES = ["backend"]
TASKS = "backend.task"
KEPT_STATUSES = ["created", "in_progress", "completed", "published", "publishing"]
LEFT_STATUSES = ["stopped", "closed", "failed", "queued", "unknown"]
# Execution destination, status reason, status message and queue do not move (tasks, datasets, pipelines).
UNSET_FIELDS = ["status_reason", "status_message", "execution.queue", "output.destination"]
# Where a ClearML server keeps URLs (the rewrite rules apply to every string, these included).
URL_FIELDS = {
    "backend.task": ["execution.artifacts.*.uri", "models.input.*.uri", "models.output.*.uri",
                     "execution.docker_cmd", "configuration.*.value", "hyperparams.*.*.value", "report_assets"],
    "backend.model": ["uri", "design"],
    "backend.project": ["default_output_destination", "description"],
    "events-training_debug_image-*": ["url"],
    "events-plot-*": ["plot_str (image sources in the plot JSON)", "plot_data (the same, zlib-compressed, base64)"],
}
# Where a subset's documents and events name files (a user or project subset moves those files only).
FILE_REFERENCES = [
    {"collection": TASKS, "path": "execution.artifacts.*.uri"},
    {"collection": "backend.model", "path": "uri"},
    {"collection": "backend.project", "path": "default_output_destination", "kind": "destination"},
    {"index": "events-training_debug_image-*", "path": "url"},
    {"index": "events-plot-*", "path": "plot_str", "embedded": True},
    {"index": "events-plot-*", "path": "plot_data", "compressed": True},
]
EVENT_INDICES = "events-*-{company}"
EVENT_TEMPLATES = ["events_*"]
SCOPE = {
    "migrated": [
        "tasks, datasets and pipelines in the statuses " + ", ".join(KEPT_STATUSES)
        + ", with their Execution, Configuration, Artifacts, Info, Console, Scalar, Plots and Debug samples",
        "projects, models, users and queues of the backend database, ids kept",
        "the events of the tasks that move (scalars, plots, debug images, console), ids kept",
        "artifact, model, debug-image and plot-image URLs, pointed at the target S3",
        "the fileserver's files, into the target S3 under unchanged paths",
        "S3 objects, file structure unchanged, every object verified",
        "for a user or project subset: only the files and objects its tasks, models, projects and events name",
    ],
    "not_migrated": [
        "tasks, datasets and pipelines in the statuses " + ", ".join(LEFT_STATUSES) + " (and their events)",
        "the execution destination (output.destination) of tasks and datasets",
        "status reason and status message (Info tab) of tasks, datasets and pipelines",
        "the queue (execution.queue) of tasks",
        "URLs inside console lines: they keep their source values",
    ],
}


def _rules(clearml):
    rules = []
    fileserver = clearml.get("fileserver") or {}
    if fileserver.get("url"):
        to_s3 = fileserver.get("to_s3") or {}
        if not to_s3.get("bucket"):
            raise MigrationError("clearml.fileserver.to_s3.bucket: the bucket the fileserver's files go into is required")
        prefix = (to_s3.get("prefix") or "").strip("/")
        rules.append({"from": fileserver["url"].rstrip("/") + "/",
                      "to": f"s3://{to_s3['bucket']}/" + (f"{prefix}/" if prefix else ""), "match": "prefix"})
    for i, rule in enumerate(clearml.get("urls") or []):
        if not isinstance(rule, dict) or not rule.get("from") or not rule.get("to"):
            raise MigrationError(f"clearml.urls[{i}] must be a mapping with from and to (URL prefixes)")
        rules.append({"from": rule["from"], "to": rule["to"], "match": "prefix"})
    return rules


def expand(plan):
    """The plan with the preset's parts filled in (the user's own parts win); a plan without
    ``preset: clearml`` comes back as it is."""
    if not isinstance(plan, dict) or plan.get("preset") != "clearml":
        return plan
    clearml = plan.get("clearml")
    if not isinstance(clearml, dict):
        raise MigrationError("preset: clearml needs a clearml part (mongo, search, fileserver, urls)")
    out = copy.deepcopy(plan)
    rules = _rules(clearml)
    company = clearml.get("company") or {}
    if clearml.get("mongo"):
        mongo = {"databases": list(DATABASES), "rewrite": rules,
                 "collections": {TASKS: {"filter": {"status": {"$in": list(KEPT_STATUSES)}},
                                         "unset_fields": list(UNSET_FIELDS)}}}
        if company.get("to"):
            mongo["rewrite"] = rules + [{"from": company["from"], "to": company["to"], "match": "prefix",
                                         "paths": ["company"]}]
        out["mongo"] = _merged(mongo, clearml["mongo"], plan.get("mongo"))
    if clearml.get("search"):
        events = {"indices": [EVENT_INDICES.format(company=company.get("from") or "*")], "templates": list(EVENT_TEMPLATES),
                  "rewrite": rules + ([{"from": company["from"], "to": company["to"], "match": "prefix",
                                        "paths": ["company_id"]}] if company.get("to") else [])}
        if company.get("to"):
            events["index_rename"] = [{"from": f"-{company['from']}", "to": f"-{company['to']}"}]
        out["events"] = _merged(events, clearml["search"], plan.get("events"))
    fileserver = clearml.get("fileserver") or {}
    if fileserver.get("src") and not (plan.get("files") or {}).get("trees"):
        tree = {"src": fileserver["src"], "dest": fileserver["dest"],
                "to_s3": dict(fileserver.get("to_s3") or {}, create_bucket=fileserver.get("create_bucket", False))}
        files = {key: value for key, value in fileserver.items()
                 if key in ("ssh_private_key_file", "known_hosts", "ssh_user", "ssh_port")}
        out["files"] = dict(plan.get("files") or {}, trees=[tree], **files)
    out["subset"] = _merged({"references": [dict(ref) for ref in FILE_REFERENCES],
                             "urls": [{"url": fileserver["url"].rstrip("/") + "/", "src": fileserver["src"]}]
                             if fileserver.get("url") and fileserver.get("src") else []}, {}, plan.get("subset"))
    out["scope"] = SCOPE
    out.pop("clearml", None)
    out.pop("preset", None)
    return out


def _merged(preset, endpoints, own):
    """The preset's part under the ``clearml`` part's (endpoints and settings) under the user's own part."""
    merged = dict(preset)
    merged.update(endpoints)
    merged.update(own or {})
    return merged
