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
  - The source is read a page at a time (a scroll sorted by C(_doc)); the page's ids are looked up
    at the target, documents already there with the same content are not written again, the
    others are written with one C(_bulk) request and read back and compared. A re-run writes
    nothing when the target holds the same documents; a run after a killed one writes only what
    is missing or different.
  - Talks plain REST over HTTP/1.1, the same calls on Elasticsearch 7 and 8 and OpenSearch 2.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.progress
options:
  source:
    description: The search server to read.
    type: dict
    required: true
    suboptions: &server
      url:
        description: The server's URL, C(http://) or C(https://). A C(user:password@) in it is used as basic auth and never shown.
        type: str
        required: true
      username:
        description: Basic-auth user.
        type: str
      password:
        description: Basic-auth password. Never logged or returned.
        type: str
      api_key:
        description: An API key (sent as C(Authorization ApiKey)). Never logged or returned.
        type: str
      validate_certs:
        description: Check the server's TLS certificate.
        type: bool
        default: true
      ca_bundle:
        description: CA bundle to check the certificate against.
        type: path
      timeout:
        description: Seconds to wait for a reply.
        type: int
        default: 120
  target:
    description: The search server to write, like O(source).
    type: dict
    required: true
    suboptions: *server
  indices:
    description: Names of the source indices to copy.
    type: list
    elements: str
    required: true
  index_rename:
    description:
      - Substring replacements applied in order to each index name to make the target's, for example
        a ClearML company id that differs at the target.
    type: list
    elements: dict
    default: []
    suboptions:
      from:
        description: Text to replace.
        type: str
        required: true
      to:
        description: Its replacement.
        type: str
        required: true
  query:
    description: Copy only the documents matching this query (the Query DSL). All documents when omitted.
    type: dict
  task_ids:
    description: Copy only the documents whose O(task_field) is one of these (the tasks that move).
    type: list
    elements: str
  tasks_from:
    description:
      - Take O(task_ids) from a backup written by M(mlops.migration.mongo_backup) (its directory or zip,
        checked against its manifest first), as the C(_id) of every document of O(tasks_collection). The
        events that move are then those of the tasks the MongoDB step moves, with no second filter to
        drift from it.
    type: path
  tasks_collection:
    description: The collection of the O(tasks_from) backup whose documents are the tasks.
    type: str
    default: backend.task
  task_field:
    description: The field O(task_ids) are matched against.
    type: str
    default: task
  batch_size:
    description: Documents read, looked up and written per request.
    type: int
    default: 1000
  rewrite:
    description:
      - Rules rewriting string values on the way, as M(mlops.migration.mongo_restore) takes them
        (C(from), C(to), C(match) V(prefix) or V(substring), C(paths)), for debug-image and plot-image URLs
        that move with the files. Documents are compared and verified after the rewrite.
      - A rule without C(paths) applies to every string but those under O(untouched_fields).
    type: list
    elements: dict
    default: []
  text_fields:
    description: Fields holding JSON text with URLs inside (ClearML's plot C(plot_str)); a rule replaces its C(from) anywhere in them.
    type: list
    elements: str
    default: [plot_str]
  compressed_fields:
    description:
      - Fields holding such text zlib-compressed and base64-encoded (ClearML's C(plot_data), written for
        large plots); they are decompressed, rewritten and compressed again as the ClearML server does.
    type: list
    elements: str
    default: [plot_data]
  untouched_fields:
    description: Fields rules without C(paths) leave alone (ClearML's console C(msg), kept byte for byte).
    type: list
    elements: str
    default: [msg]
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
rewritten:
  description: String values the O(rewrite) rules changed.
  returned: always
  type: int
indices:
  description: Per index, C(source), C(target), whether the target index was (or would be) C(created), and its counts.
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

import importlib.util

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mlops.migration.plugins.module_utils.common import protect_uri_secrets, run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind
from ansible_collections.mlops.migration.plugins.module_utils.files.archives import opened_bundle
from ansible_collections.mlops.migration.plugins.module_utils.mongo.dump import field_values
from ansible_collections.mlops.migration.plugins.module_utils.rewrite import parse_rules
from ansible_collections.mlops.migration.plugins.module_utils.search.client import connection_options, SearchClient
from ansible_collections.mlops.migration.plugins.module_utils.search.copy import copy_index, selection
from ansible_collections.mlops.migration.plugins.module_utils.search.events import (
    CLEARML_COMPRESSED_FIELDS,
    CLEARML_TEXT_FIELDS,
    CLEARML_UNTOUCHED,
    EventRewriter,
)
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file


def main():
    server = dict(type="dict", required=True, options=connection_options())
    module = AnsibleModule(
        argument_spec=dict(
            source=server,
            target=server,
            indices=dict(type="list", elements="str", required=True),
            index_rename=dict(type="list", elements="dict", default=[], options={
                "from": dict(type="str", required=True), "to": dict(type="str", required=True)}),
            query=dict(type="dict"),
            task_ids=dict(type="list", elements="str"),
            tasks_from=dict(type="path"),
            tasks_collection=dict(type="str", default="backend.task"),
            task_field=dict(type="str", default="task"),
            batch_size=dict(type="int", default=1000),
            rewrite=dict(type="list", elements="dict", default=[]),
            text_fields=dict(type="list", elements="str", default=list(CLEARML_TEXT_FIELDS)),
            compressed_fields=dict(type="list", elements="str", default=list(CLEARML_COMPRESSED_FIELDS)),
            untouched_fields=dict(type="list", elements="str", default=list(CLEARML_UNTOUCHED)),
            **progress_file.PROGRESS_OPTIONS,
        ),
        mutually_exclusive=[("task_ids", "tasks_from")],
        supports_check_mode=True,
    )
    protect_uri_secrets(module, module.params["source"]["url"], module.params["target"]["url"])
    if module.params["tasks_from"] and importlib.util.find_spec("bson") is None:
        module.fail_json(msg=missing_required_lib("pymongo", reason="to read the tasks of a MongoDB backup"))
    if module.params["batch_size"] < 1:
        module.fail_json(msg="batch_size must be at least 1")
    run_module(module, lambda: copy(module, module.params), "document(s) not copied")


def target_name(name, renames):
    for rule in renames:
        name = name.replace(rule["from"], rule["to"])
    return name


def copy(module, params):
    task_ids = params["task_ids"]
    if params["tasks_from"]:
        with opened_bundle(params["tasks_from"], "mlops-search-tasks-") as root:
            task_ids = sorted(field_values(root, params["tasks_collection"]))
    rewriter = EventRewriter(parse_rules(params["rewrite"]), params["text_fields"], params["compressed_fields"],
                             params["untouched_fields"])  # malformed rules fail before any server is called
    source, target = (SearchClient(**params[side]) for side in ("source", "target"))
    try:
        source.info()  # both servers answer and accept the credentials before anything is read or written
        target.info()
        query = selection(params["query"], task_ids, params["task_field"])
        progress = progress_file.start(module, f"search_copy {source.url} -> {target.url}", unit="documents")
        indices, kinds, created_any = [], {}, False
        for name in params["indices"]:
            to = target_name(name, params["index_rename"])
            counts, created = copy_index(source, target, name, to, query, params["batch_size"],
                                         rewriter if rewriter else None, module.check_mode, progress)
            kinds[f"search documents {to}"] = counts
            created_any = created_any or created
            indices.append(dict(source=name, target=to, created=created, **counts.as_dict()))
        result = dict(indices=indices, rewritten=rewriter.rewritten, tasks=None if task_ids is None else len(task_ids),
                      **by_kind(kinds))
        progress_file.finish(progress, result["counts"], ("copied", "present", "failed"))
    finally:
        source.close()
        target.close()
    result["changed"] = bool(created_any or result["counts"]["copied"])
    return result


if __name__ == "__main__":
    main()
