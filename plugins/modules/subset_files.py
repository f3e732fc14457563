#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: subset_files
short_description: Work out the files and S3 objects a user or project subset moves, from the documents that move
version_added: 0.2.0
description:
  - Reads the documents of a subset - from a M(mlops.migration.mongo_backup) backup (O(src)) or, with
    O(collections), from the MongoDB server with the same selection the backup makes - keeping only those
    the restore's O(filters) let through, and collects every URL the O(references) name. With O(search),
    the events of the subset's tasks add theirs (ClearML's debug images and plot images).
  - Each URL is resolved through O(mappings), the longest matching prefix winning - a directory on the
    host that runs the module (a fileserver's root) or an S3 bucket and prefix - and looked up there.
  - For a directory, a directory moves whole (rsync, C(directories) in RV(locations)) when every file under it
    belongs to the subset, the other files of the subset singly (tar with a file list, C(files)).
    For S3, the keys are an explicit list (C(keys)) for M(mlops.migration.s3_sync).
  - A reference that names nothing there is listed in RV(missing) with its document and field; it fails
    the module only with O(on_missing=fail). A URL no mapping covers is counted in RV(unmapped).
  - Writes nothing but O(dest), a JSON record of the result, rewritten only when it changes.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.mongo
  - mlops.migration.mongo.collections
  - mlops.migration.s3
  - mlops.migration.s3.checked
  - mlops.migration.search
  - mlops.migration.search.checked
options:
  src:
    description:
      - A backup (directory or zip) of M(mlops.migration.mongo_backup) holding the documents that move.
      - Or O(collections), read from the server given by the connection options (nothing is written); one of them.
    type: path
  filters:
    description:
      - Per collection (C(db.name)), the restore's filter (M(mlops.migration.mongo_restore) O(collections)); a document
        it leaves out does not move, and neither do its files.
    type: dict
    default: {}
  references:
    description:
      - Where the documents name files. Each has a C(collection) (C(db.name)) or an C(index) (a name or a wildcard
        pattern, for the events), a dotted C(path) (C(*) is every key or element), a C(kind) - V(file), V(directory)
        (every file under it belongs to the document) or V(destination) (a directory the document's outputs go to,
        which moves whole when all under it belongs, and its absence is no error) - and C(embedded) (the value is text
        with URLs inside, such as a plot's JSON) or C(compressed) (that text base64 of zlib, ClearML's C(plot_data)).
    type: list
    elements: dict
    required: true
  tasks_collection:
    description: The collection (C(db.name)) of the tasks whose events O(search) holds.
    type: str
    default: backend.task
  task_field:
    description: The events' field that holds their task's id.
    type: str
    default: task
  mappings:
    description:
      - URL prefixes and where their files are. C(url) the prefix; then C(dir), a directory on this host, or
        C(bucket) and C(prefix), a bucket at O(s3) and the prefix the URL's path continues below.
    type: list
    elements: dict
    required: true
  on_missing:
    description: V(fail) fails the module when a reference names nothing; V(report) lists it in RV(missing).
    type: str
    choices: [fail, report]
    default: report
  dest:
    description: Path of a JSON record of the result, written when it changes (not in check mode).
    type: path
  batch_size:
    description: Documents (with O(collections)) and events read per request.
    type: int
    default: 1000
attributes:
  check_mode:
    support: full
    description: Reads only and returns the same lists; O(dest) is not written.
  diff_mode:
    support: none
    description: The lists are in the result in every mode.
"""

EXAMPLES = r"""
- name: The files and objects of one ClearML project
  mlops.migration.subset_files:
    uri: "mongodb://127.0.0.1:27017"
    collections:
      - {db: backend, name: project, query: {_id: "{{ project_id }}"}}
      - {db: backend, name: task, query_from: {collection: project, field: project}}
      - {db: backend, name: model, query_from: {collection: task, field: task}}
    filters: {backend.task: {status: {$in: [created, completed, published]}}}
    references:
      - {collection: backend.task, path: "execution.artifacts.*.uri"}
      - {collection: backend.model, path: uri}
      - {collection: backend.project, path: default_output_destination, kind: destination}
      - {index: "events-training_debug_image-*", path: url}
    search: {url: "http://127.0.0.1:9200"}
    mappings:
      - {url: "http://files.example.com:8081/", dir: /opt/clearml/data/fileserver}
      - {url: "s3://clearml-bucket/", bucket: clearml-bucket}
    s3: {endpoint_url: "https://s3.example.com", access_key: "{{ key }}", secret_key: "{{ secret }}", bucket: clearml-bucket}
    on_missing: report
  register: subset
"""

RETURN = r"""
documents:
  description: Per collection, the documents read and those kept by the filters.
  returned: always
  type: dict
  sample: {backend.task: {read: 10, kept: 5}}
references:
  description: URLs found in the kept documents and events.
  returned: always
  type: int
  sample: 120
unmapped:
  description: URLs no mapping covers (not files of the subset), with the first 20 in RV(unmapped_first).
  returned: always
  type: int
  sample: 0
unmapped_first:
  description: The first URLs no mapping covers, with their documents.
  returned: always
  type: list
  elements: dict
missing:
  description: References that name nothing (the first 200), each with C(document), C(field), C(url) and C(reason).
  returned: always
  type: list
  elements: dict
  sample: [{document: backend.task/0a1b, field: execution.artifacts.x.uri, url: "http://files/x.csv", reason: no such file}]
missing_count:
  description: All references that name nothing.
  returned: always
  type: int
  sample: 0
locations:
  description:
    - Per mapping, what moves. C(url), then for a directory C(dir), C(directories) (moved whole), C(files) (moved singly),
      and for S3 C(bucket), C(prefix) and C(keys) (relative to the prefix); C(count) files or objects, C(bytes).
  returned: always
  type: list
  elements: dict
tasks:
  description: How many tasks' events were read for references.
  returned: always
  type: int
  sample: 5
kinds:
  description: Counts per kind (C(subset files), C(subset s3 objects)), C(found) what moves, C(bytes) its size.
  returned: always
  type: dict
counts:
  description: The kinds' counts added up, in the one result vocabulary of the collection's data-moving modules.
  returned: always
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mlops.migration.plugins.module_utils.atomic import read_text_if_exists, write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.common import protect_uri_secrets, run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind, Counts
from ansible_collections.mlops.migration.plugins.module_utils.files.archives import opened_bundle
from ansible_collections.mlops.migration.plugins.module_utils.mongo.connection import connect, connection_options, HAS_PYMONGO
from ansible_collections.mlops.migration.plugins.module_utils.mongo.dump import (
    backup_documents,
    collections_option,
    from_extjson,
    parse_specs,
    select_documents,
)
from ansible_collections.mlops.migration.plugins.module_utils.mongo.query import check_filter
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import location_options, open_bucket
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import listed_keys, list_objects
from ansible_collections.mlops.migration.plugins.module_utils.search.client import connection_options as search_options
from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchClient
from ansible_collections.mlops.migration.plugins.module_utils.search.events import unpacked_text
from ansible_collections.mlops.migration.plugins.module_utils.subset.files import (
    by_mapping,
    collect,
    event_references,
    locate_dir,
    locate_s3,
)
from ansible_collections.mlops.migration.plugins.module_utils.subset.references import (
    MISSING_SHOWN,
    parse_mappings,
    parse_specs as parse_references,
    ReferenceSpecError,
)

UNMAPPED_SHOWN = 20


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection_options(),
            src=dict(type="path"),
            collections=collections_option(),
            filters=dict(type="dict", default={}),
            references=dict(type="list", elements="dict", required=True),
            search=dict(type="dict", options=search_options()),
            tasks_collection=dict(type="str", default="backend.task"),
            task_field=dict(type="str", default="task"),
            mappings=dict(type="list", elements="dict", required=True),
            s3=dict(type="dict", options=location_options()),
            on_missing=dict(type="str", choices=["fail", "report"], default="report"),
            dest=dict(type="path"),
            batch_size=dict(type="int", default=1000),
        ),
        supports_check_mode=True,
    )
    if bool(module.params["src"]) == bool(module.params["collections"]):
        module.fail_json(msg="give either src (a backup of the documents that move) or collections (read from the server)")
    protect_uri_secrets(module, module.params["uri"])
    if not HAS_PYMONGO:
        module.fail_json(msg=missing_required_lib("pymongo", reason="to read the subset's documents"))
    run_module(module, lambda: gather(module, module.params), "reference(s) name nothing")


def _checked(params):
    """Everything the module reads, checked before the first call to any server."""
    specs = parse_references(params["references"])
    mappings = parse_mappings(params["mappings"])
    if any(m.is_s3 for m in mappings) and not params["s3"]:
        raise ReferenceSpecError("a mapping names a bucket: s3 (the endpoint and credentials) is required")
    filters = {}
    for name, query in (params["filters"] or {}).items():
        check_filter(query, f"filters.{name}")
        filters[name] = from_extjson(query, f"filters.{name}")
    if any(spec.index for spec in specs) and not params["search"]:
        raise ReferenceSpecError("references name an index: search (the server of the events) is required")
    return specs, mappings, filters


def _buckets(params, mappings):
    """``{bucket: Location}`` of the mappings' buckets at O(s3), each checked before anything is read."""
    out = {}
    for mapping in mappings:
        if mapping.is_s3 and mapping.bucket not in out:
            out[mapping.bucket] = open_bucket(dict(params["s3"], bucket=mapping.bucket, prefix=""))[0]
    return out


def gather(module, params):
    specs, mappings, filters = _checked(params)
    doc_specs = [s for s in specs if not s.index]
    event_specs = [s for s in specs if s.index]
    prefixes = [m.url for m in mappings]
    buckets = _buckets(params, mappings)
    tasks_collection = params["tasks_collection"] if params["search"] else None
    if params["src"]:
        with opened_bundle(params["src"], "mlops-subset-") as root:
            refs, tasks, seen = collect(backup_documents(root), doc_specs, filters, prefixes, tasks_collection)
    else:
        client = connect(params)
        try:
            selection = parse_specs([], [{k: v for k, v in e.items() if v is not None} for e in params["collections"]])
            refs, tasks, seen = collect(select_documents(client, selection, params["batch_size"]), doc_specs, filters,
                                        prefixes, tasks_collection)
        finally:
            client.close()
    if event_specs and tasks:
        search = SearchClient(**params["search"])
        try:
            refs += event_references(search, event_specs, tasks, params["task_field"], prefixes, unpacked_text,
                                     params["batch_size"])
        finally:
            search.close()
    grouped, unmapped = by_mapping(refs, mappings)
    out, missing, kinds = [], [], {}
    for mapping in mappings:
        if mapping.is_s3:
            loc = buckets[mapping.bucket]
            found = locate_s3(loc.bucket, mapping.prefix, grouped[mapping.index],
                              lambda keys, absent, loc=loc, prefix=mapping.prefix: listed_keys(
                                  loc.client, loc.endpoint, loc.bucket, prefix, keys, absent),
                              lambda below, loc=loc: list_objects(loc.client, loc.endpoint, loc.bucket, below))
            entry = {"url": mapping.url, "bucket": loc.bucket, "prefix": mapping.prefix}
            kind = "subset s3 objects"
        else:
            found = locate_dir(mapping.root, grouped[mapping.index])
            entry = {"url": mapping.url, "dir": mapping.root}
            kind = "subset files"
        counts = kinds.setdefault(kind, Counts(dry_run=module.check_mode, found=0, bytes=0))
        counts.add(Counts(found=found["count"], bytes=found["bytes"]))
        for item in found["missing"] if params["on_missing"] == "fail" else ():
            counts.fail(f"{item['document']} {item['field']}", f"{item['url']}: {item['reason']}")
        missing += found.pop("missing")
        entry.update(found)
        out.append(entry)
    result = {"documents": seen, "references": len(refs), "unmapped": len(unmapped),
              "unmapped_first": [{"document": r.document, "field": r.field, "url": r.url} for r in unmapped[:UNMAPPED_SHOWN]],
              "missing": missing[:MISSING_SHOWN], "missing_count": len(missing), "locations": out,
              "tasks": len(set(tasks)), "changed": False}
    if params["dest"] and not module.check_mode and not (missing and params["on_missing"] == "fail"):
        text = json.dumps({k: v for k, v in result.items() if k != "changed"}, indent=1, sort_keys=True, default=str) + "\n"
        if read_text_if_exists(params["dest"]) != text:
            os.makedirs(os.path.dirname(os.path.abspath(params["dest"])), exist_ok=True)
            write_text_atomic(params["dest"], text)
            result["changed"] = True
    result.update(by_kind(kinds))
    return result


if __name__ == "__main__":
    main()
