#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: search_import
short_description: Load a bundle made by search_export into a search server, refusing it unless every file matches
version_added: 0.2.0
description:
  - Takes a bundle directory or its zip/tar.gz archive, as M(mlops.migration.search_export) writes them,
    and first checks every file against the bundle's C(MD5SUMS) and every index file's document count
    against the manifest. If anything differs, nothing is written and the task fails naming the files.
  - Each index is created with its mappings and settings before any document (names through
    O(index_rename)); documents keep their C(_id), are rewritten by O(rewrite), looked up a page at a time
    so those already there with the same content are not written again, and read back after writing.
  - A bundle's seal (C(SHA256SUMS), every file's SHA-256), when it has one, is checked before any write, and with
    O(verify) its signature is required - a file edited and its md5 recomputed, or the seal recomputed too, is refused.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.search
  - mlops.migration.search.target
  - mlops.migration.search.rename
  - mlops.migration.search.rewrite
  - mlops.migration.progress
  - mlops.migration.seal.verify
options:
  src:
    description: Bundle directory, or its C(.zip) / C(.tar.gz) archive, on the host that runs the module.
    type: path
    required: true
  batch_size:
    description: Documents looked up and written per request.
    type: int
    default: 1000
attributes:
  check_mode:
    support: full
    description: Checks the bundle and counts what would be written; writes nothing.
  diff_mode:
    support: none
    description: The first ids that would be written are returned in RV(kinds) as C(pending).
"""

EXAMPLES = r"""
- name: Load the carried events into the new server, for its company id and its file URLs
  mlops.migration.search_import:
    target: {url: "https://search.new.example.com", username: migrate, password: "{{ vault_search_password }}"}
    src: /incoming/events.zip
    index_rename: [{from: d1bd92a3b039400cbafc60a7a5b1e52b, to: 0e0f7e3b8a1c4c1b9c7f5a1d2e3f4a5b}]
    rewrite: [{from: "http://files.old.example.com:8081/", to: "s3://clearml/files/", match: prefix}]
"""

RETURN = r"""
templates:
  description: The bundle's templates put on the target (C(component_template <name>), C(index_template <name>)).
  returned: always
  type: list
  elements: str
indices:
  description:
    - Per index, C(source) (its name in the bundle), C(target), whether it was (or would be) C(created), and
      C(digest) - the order-free digest of the bundle's documents after the rewrites (C(source)) against the
      same digest of what the target holds for them (C(target)), and whether they are the C(same); V(null) in check mode.
  returned: always
  type: list
  elements: dict
rewritten:
  description: String values the O(rewrite) rules changed.
  returned: always
  type: int
kinds:
  description: Counts per kind of object (C(search documents <target index>)), each with the fields of RV(counts).
  returned: always
  type: dict
counts:
  description: This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.common import protect_uri_secrets, run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind
from ansible_collections.mlops.migration.plugins.module_utils.bundle_seal import check_seal
from ansible_collections.mlops.migration.plugins.module_utils.files.archives import opened_bundle
from ansible_collections.mlops.migration.plugins.module_utils.signing import signing_options
from ansible_collections.mlops.migration.plugins.module_utils.search.bundle import check_bundle, import_bundle
from ansible_collections.mlops.migration.plugins.module_utils.search.client import connection_options, SearchClient
from ansible_collections.mlops.migration.plugins.module_utils.search.options import (
    refuse_bad_options,
    RENAME_OPTIONS,
    REWRITE_OPTIONS,
    rewriter_of,
    target_name,
)
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file


def main():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type="dict", required=True, options=connection_options()),
            src=dict(type="path", required=True),
            batch_size=dict(type="int", default=1000),
            verify=signing_options(),
            **RENAME_OPTIONS, **REWRITE_OPTIONS, **progress_file.PROGRESS_OPTIONS,
        ),
        supports_check_mode=True,
    )
    protect_uri_secrets(module, module.params["target"]["url"])
    refuse_bad_options(module)
    run_module(module, lambda: load(module, module.params), "document(s) not imported")


def load(module, params):
    rewriter = rewriter_of(params)
    with opened_bundle(params["src"], "mlops-search-import-") as root:
        entries = check_bundle(root)  # a bundle that does not match is refused before any write
        check_seal(root, params["verify"], what="the search bundle")  # nor an edited one: its SHA-256s, its signature
        target = SearchClient(**params["target"])
        try:
            target.info()
            progress = progress_file.start(module, f"search_import {params['src']} -> {target.url}", unit="documents")
            kinds, created, details = import_bundle(
                root, entries, target, lambda name: target_name(name, params["index_rename"]), params["batch_size"],
                rewriter if rewriter else None, module.check_mode, progress)
        finally:
            target.close()
    templates = [name for item in details for name in item.get("templates", [])]
    result = dict(rewritten=rewriter.rewritten, templates=templates, indices=[item for item in details if "target" in item],
                  **by_kind(kinds))
    progress_file.finish(progress, result["counts"], ("copied", "present", "failed"))
    result["changed"] = bool(created or result["counts"]["copied"])
    return result


if __name__ == "__main__":
    main()
