# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collections a user or project subset selects, as mongo_backup takes them (ClearML's backend
database: project -> task -> model, linked by string ids), and the same subset as the task filter of the ClearML
tracker sources. The mongo step backs them up and the subset's files are worked out from the same selection.
Importable without Ansible.
"""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

SCOPES = ("full", "user", "project")


def scope_collections(scope, db, scope_id):
    """``[{db, name, query or query_from}]`` of a ``user`` or ``project`` subset; [] for ``full``."""
    if scope not in SCOPES:
        raise MigrationError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if scope == "full":
        return []
    if not scope_id:
        raise MigrationError(f"scope {scope} needs the {scope}'s id (scope_id)")
    if scope == "user":
        return [{"db": db, "name": "user", "query": {"_id": scope_id}}] + [
            {"db": db, "name": name, "query": {"user": scope_id}} for name in ("project", "task", "model")]
    return [{"db": db, "name": "project", "query": {"_id": scope_id}},
            {"db": db, "name": "task", "query_from": {"collection": "project", "field": "project"}},
            {"db": db, "name": "model", "query_from": {"collection": "task", "field": "task"}}]


CLEARML_TRACKERS = ("clearml_server", "clearml_api", "clearml_offline")


def scoped_trackers(trackers, scope, scope_id):
    """The tracker pairs of a plan with a ``user`` or ``project`` subset applied to their ClearML sources: the task
    filter also asks for the subset's tasks (``user`` or ``project`` is the id), as the mongo step selects them."""
    if scope in (None, "", "full"):
        return list(trackers or [])
    if scope not in SCOPES:
        raise MigrationError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if not scope_id:
        raise MigrationError(f"scope {scope} needs the {scope}'s id (scope_id)")
    out = []
    for pair in trackers or []:
        source = dict(pair.get("source") or {})
        if source.get("kind") in CLEARML_TRACKERS:
            wanted = {scope: scope_id}
            source["task_filter"] = {"$and": [source["task_filter"], wanted]} if source.get("task_filter") else wanted
            pair = dict(pair, source=source)
        out.append(pair)
    return out
