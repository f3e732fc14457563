#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: search_export
short_description: Export search indices (Elasticsearch, OpenSearch) to a bundle with an md5 manifest, for the air gap
version_added: 0.2.0
description:
  - Writes the selected documents of each index in O(indices) to C(<dest>/indices/<index>.ndjson)
    (one C({"_id", "_source"}) a line), its mappings and settings to C(<dest>/indices/<index>.meta.json),
    a manifest with the document counts, and C(<dest>/MD5SUMS) covering every file.
  - Each index file is written through a temporary sibling and renamed into place, so a killed export
    leaves whole files only; a file whose bytes would not change is left alone, so a re-run of an
    unchanged source reports C(changed=false).
  - O(archive) packs the bundle for carrying and returns the archive's md5.
  - M(mlops.migration.search_import) loads it, refusing it unless every file matches.
  - Every file's SHA-256 goes into the bundle's seal, C(SHA256SUMS) (with O(sign), signed in C(SHA256SUMS.sig)), which
    M(mlops.migration.search_import) checks before any write.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.search
  - mlops.migration.search.source
  - mlops.migration.search.selection
  - mlops.migration.seal.sign
options:
  indices:
    description: Names (or wildcard patterns) of the source indices to export.
    type: list
    elements: str
    required: true
  templates:
    description:
      - Index templates (names or wildcard patterns, for a ClearML server C(events_*)) carried in the bundle's
        C(templates.json) with the component templates they are composed of; the import puts them first.
    type: list
    elements: str
    default: []
  dest:
    description: Bundle directory on the host that runs the module.
    type: path
    required: true
  archive:
    description: Pack the bundle for carrying.
    type: str
    choices: [none, zip, tar.gz]
    default: none
  batch_size:
    description: Documents read per request.
    type: int
    default: 1000
attributes:
  check_mode:
    support: full
    description: Reads the source and counts what would change in the bundle; writes nothing.
  diff_mode:
    support: none
    description: Counts are returned instead.
"""

EXAMPLES = r"""
- name: Export a ClearML server's events of the tasks that move
  mlops.migration.search_export:
    source: {url: "http://127.0.0.1:9200"}
    indices: [events-training_stats_scalar-d1bd92a3b039400cbafc60a7a5b1e52b, events-log-d1bd92a3b039400cbafc60a7a5b1e52b]
    tasks_from: /srv/migration/mongo-backup.zip
    dest: /srv/migration/events
    archive: zip
"""

RETURN = r"""
manifest:
  description: Path of the bundle's manifest.
  returned: always
  type: str
archive:
  description: Path of the archive, with O(archive).
  returned: when archive is not none
  type: str
archive_md5:
  description: md5 of the archive, to check after every hop.
  returned: when archive is not none
  type: str
kinds:
  description: Counts per kind of object (C(search documents <index>)), each with the fields of RV(counts).
  returned: always
  type: dict
counts:
  description:
    - This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
    - C(copied) are the documents of index files (re)written, C(present) those of files left as they were.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.bundle_seal import seal
from ansible_collections.mlops.migration.plugins.module_utils.signing import signing_options
from ansible_collections.mlops.migration.plugins.module_utils.common import protect_uri_secrets, run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind
from ansible_collections.mlops.migration.plugins.module_utils.files.archives import packed
from ansible_collections.mlops.migration.plugins.module_utils.search.bundle import export_indices, MANIFEST
from ansible_collections.mlops.migration.plugins.module_utils.search.client import connection_options, SearchClient
from ansible_collections.mlops.migration.plugins.module_utils.search.copy import selection
from ansible_collections.mlops.migration.plugins.module_utils.search.options import (
    expand_indices,
    refuse_bad_options,
    selected_tasks,
    SELECTION_OPTIONS,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="dict", required=True, options=connection_options()),
            indices=dict(type="list", elements="str", required=True),
            dest=dict(type="path", required=True),
            archive=dict(type="str", choices=["none", "zip", "tar.gz"], default="none"),
            batch_size=dict(type="int", default=1000),
            templates=dict(type="list", elements="str", default=[]),
            sign=signing_options(),
            **SELECTION_OPTIONS,
        ),
        mutually_exclusive=[("task_ids", "tasks_from")],
        supports_check_mode=True,
    )
    protect_uri_secrets(module, module.params["source"]["url"])
    refuse_bad_options(module)
    run_module(module, lambda: export(module, module.params))


def export(module, params):
    dest = params["dest"].rstrip("/")
    query = selection(params["query"], selected_tasks(params), params["task_field"])
    source = SearchClient(**params["source"])
    try:
        source.info()
        kinds, changed = export_indices(source, expand_indices(source, params["indices"]), dest, query, params["batch_size"],
                                        check_mode=module.check_mode, templates=params["templates"])
    finally:
        source.close()
    if not module.check_mode:  # every file's SHA-256 (and a signature): what an import checks before any write
        changed = seal(dest, params["sign"]) or changed
    result = dict(changed=changed, manifest=os.path.join(dest, MANIFEST), **by_kind(kinds))
    if params["archive"] != "none":
        archive, archive_md5, result["changed"] = packed(dest, params["archive"], changed, module.check_mode)
        result.update(archive=archive, archive_md5=archive_md5)
    return result


if __name__ == "__main__":
    main()
