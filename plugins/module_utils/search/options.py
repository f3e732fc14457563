# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options the search modules share (documented by the doc fragments mlops.migration.search.*):
which documents move, index names at the target, URL rewriting; and what each option set yields.
"""

from __future__ import annotations

import importlib.util

from ansible_collections.mlops.migration.plugins.module_utils.files.archives import opened_bundle
from ansible_collections.mlops.migration.plugins.module_utils.mongo.dump import field_values
from ansible_collections.mlops.migration.plugins.module_utils.rewrite import parse_rules
from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchNotFound
from ansible_collections.mlops.migration.plugins.module_utils.search.events import (
    CLEARML_COMPRESSED_FIELDS,
    CLEARML_TEXT_FIELDS,
    CLEARML_UNTOUCHED,
    EventRewriter,
)

SELECTION_OPTIONS = dict(
    query=dict(type="dict"),
    task_ids=dict(type="list", elements="str"),
    tasks_from=dict(type="path"),
    tasks_collection=dict(type="str", default="backend.task"),
    tasks_filter=dict(type="dict"),
    task_field=dict(type="str", default="task"),
)
RENAME_OPTIONS = dict(
    index_rename=dict(type="list", elements="dict", default=[], options={
        "from": dict(type="str", required=True), "to": dict(type="str", required=True)}),
)
REWRITE_OPTIONS = dict(
    rewrite=dict(type="list", elements="dict", default=[]),
    text_fields=dict(type="list", elements="str", default=list(CLEARML_TEXT_FIELDS)),
    compressed_fields=dict(type="list", elements="str", default=list(CLEARML_COMPRESSED_FIELDS)),
    untouched_fields=dict(type="list", elements="str", default=list(CLEARML_UNTOUCHED)),
)


def refuse_bad_options(module):
    """Fail the module, before any call, on options that cannot work together or at all."""
    params = module.params
    if params.get("tasks_from") and importlib.util.find_spec("bson") is None:
        from ansible.module_utils.basic import missing_required_lib  # pylint: disable=import-outside-toplevel

        module.fail_json(msg=missing_required_lib("pymongo", reason="to read the tasks of a MongoDB backup"))
    if params.get("batch_size", 1) < 1:
        module.fail_json(msg="batch_size must be at least 1")


def selected_tasks(params):
    """The task ids that select the documents (``task_ids``, or read from ``tasks_from``), or None."""
    if params.get("tasks_from"):
        with opened_bundle(params["tasks_from"], "mlops-search-tasks-") as root:
            return sorted(field_values(root, params["tasks_collection"], query=params.get("tasks_filter")))
    return params.get("task_ids")


def expand_indices(client, names):
    """``names`` with each wildcard pattern (``events-*-<company>``) replaced by the indices it matches, sorted."""
    out = []
    for name in names:
        if "*" not in name:
            out.append(name)
            continue
        found = client.matching(name)
        if not found:
            raise SearchNotFound(f"no index matches {name} at the search server {client.url}")
        out.extend(index for index in found if index not in out)
    return out


def target_name(name, renames):
    """An index name at the target: ``renames`` (``[{from, to}]``) applied in order."""
    for rule in renames or ():
        name = name.replace(rule["from"], rule["to"])
    return name


def rewriter_of(params):
    """The EventRewriter of the rewrite options (RewriteError names a malformed rule)."""
    return EventRewriter(parse_rules(params["rewrite"]), params["text_fields"], params["compressed_fields"],
                         params["untouched_fields"])
