#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: search_copy
short_description: Copy search indices (Elasticsearch, OpenSearch) to another server, ids kept, every document read back
version_added: 0.2.0
description:
  - Copies the documents of each index in O(indices), or those matching O(query) and O(task_ids),
    to the index of the same name (after O(index_rename)) at O(target). Documents keep their C(_id).
  - A target index that does not exist is created with the source's mappings and settings before
    any document is written.
  - The source is read a page at a time (a sliced scroll sorted by C(_doc), O(slices) parts side by
    side); the page's ids are looked up at the target, documents already there with the same content
    are not written again, the others are written with one C(_bulk) request and read back and
    compared. A re-run writes nothing when the target holds the same documents; a run after a
    killed one writes only what is missing or different.
  - After each index, an order-free digest of the selected documents (after the rewrites) is compared
    with the digest of what the target holds for them, and the documents per task (O(task_field))
    are counted at both servers; a task whose counts differ is a failure.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.search
  - mlops.migration.search.source
  - mlops.migration.search.target
  - mlops.migration.search.selection
  - mlops.migration.search.rename
  - mlops.migration.search.rewrite
  - mlops.migration.progress
options:
  indices:
    description: Names of the source indices to copy.
    type: list
    elements: str
    required: true
  batch_size:
    description: Documents read, looked up and written per request.
    type: int
    default: 1000
  slices:
    description:
      - Parts of a sliced scroll read (and written) side by side, each on its own connections to both servers.
      - V(1) reads the index as one scroll.
    type: int
    default: 2
  templates:
    description:
      - Index templates (names or wildcard patterns, for a ClearML server C(events_*)) put on the target,
        with the component templates they are composed of, before any index is created, unless the
        target holds them the same.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Counts what would be written (and whether an index would be created); writes nothing.
  diff_mode:
    support: none
    description: The first ids that would be written are returned in RV(kinds) as C(pending).
"""

EXAMPLES = r"""
- name: Copy a ClearML server's scalar events of the tasks that move, to a new company id
  mlops.migration.search_copy:
    source: {url: "http://127.0.0.1:9200"}
    target: {url: "https://search.new.example.com", username: migrate, password: "{{ vault_search_password }}"}
    indices: [events-training_stats_scalar-d1bd92a3b039400cbafc60a7a5b1e52b]
    index_rename:
      - {from: d1bd92a3b039400cbafc60a7a5b1e52b, to: 0e0f7e3b8a1c4c1b9c7f5a1d2e3f4a5b}
    task_ids: "{{ migrated_task_ids }}"
"""

RETURN = r"""
tasks:
  description: How many task ids selected the documents (from O(task_ids) or O(tasks_from)); V(null) when none did.
  returned: always
  type: int
templates:
  description: The templates put on the target (C(component_template <name>), C(index_template <name>)).
  returned: always
  type: list
  elements: str
rewritten:
  description: String values the O(rewrite) rules changed.
  returned: always
  type: int
indices:
  description:
    - Per index, C(source), C(target), whether the target index was (or would be) C(created), and its counts.
    - C(digest) (C(source), C(target), C(same)) and C(tasks) (C(field), C(checked), C(differing)), V(null) in check mode.
  returned: always
  type: list
  elements: dict
kinds:
  description: Counts per kind of object (C(search documents <target index>)), each with the fields of RV(counts).
  returned: always
  type: dict
counts:
  description:
    - This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
    - C(found), C(copied), C(present), C(verified), C(failed), C(bytes), C(seconds), C(failures), C(pending), C(dry_run).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.common import protect_uri_secrets, run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind
from ansible_collections.mlops.migration.plugins.module_utils.search.client import connection_options, SearchClient
from ansible_collections.mlops.migration.plugins.module_utils.search.copy import copy_index, selection, Tally
from ansible_collections.mlops.migration.plugins.module_utils.search.options import (
    expand_indices,
    refuse_bad_options,
    RENAME_OPTIONS,
    REWRITE_OPTIONS,
    rewriter_of,
    selected_tasks,
    SELECTION_OPTIONS,
    target_name,
)
from ansible_collections.mlops.migration.plugins.module_utils.search.templates import apply_templates, read_templates
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file


def main():
    server = dict(type="dict", required=True, options=connection_options())
    module = AnsibleModule(
        argument_spec=dict(
            source=server,
            target=server,
            indices=dict(type="list", elements="str", required=True),
            batch_size=dict(type="int", default=1000),
            slices=dict(type="int", default=2),
            templates=dict(type="list", elements="str", default=[]),
            **RENAME_OPTIONS, **SELECTION_OPTIONS, **REWRITE_OPTIONS, **progress_file.PROGRESS_OPTIONS,
        ),
        mutually_exclusive=[("task_ids", "tasks_from")],
        supports_check_mode=True,
    )
    protect_uri_secrets(module, module.params["source"]["url"], module.params["target"]["url"])
    refuse_bad_options(module)
    run_module(module, lambda: copy(module, module.params), "document(s) not copied")


def copy(module, params):
    task_ids = selected_tasks(params)
    rewriter = rewriter_of(params)  # malformed rules fail before any server is called
    source, target = (SearchClient(**params[side]) for side in ("source", "target"))
    try:
        source.info()  # both servers answer and accept the credentials before anything is read or written
        target.info()
        query = selection(params["query"], task_ids, params["task_field"])
        progress = progress_file.start(module, f"search_copy {source.url} -> {target.url}", unit="documents")
        templates = apply_templates(target, read_templates(source, params["templates"]), module.check_mode)
        indices, kinds, created_any, tally = [], {}, bool(templates), Tally(progress)
        for name in expand_indices(source, params["indices"]):
            to = target_name(name, params["index_rename"])
            loaded, tasks = copy_index(source, target, name, to, query, params["batch_size"],
                                       rewriter if rewriter else None, module.check_mode, slices=params["slices"],
                                       task_field=params["task_field"], tally=tally)
            kinds[f"search documents {to}"] = loaded.counts
            created_any = created_any or loaded.created
            indices.append(dict(source=name, target=to, created=loaded.created, tasks=tasks,
                                digest=None if module.check_mode else loaded.digests.as_dict(),
                                **loaded.counts.as_dict()))
        result = dict(indices=indices, templates=templates, rewritten=rewriter.rewritten,
                      tasks=None if task_ids is None else len(task_ids),
                      **by_kind(kinds))
        progress_file.finish(progress, result["counts"], ("copied", "present", "failed"))
    finally:
        source.close()
        target.close()
    result["changed"] = bool(created_any or result["counts"]["copied"])
    return result


if __name__ == "__main__":
    main()
