#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongo_backup
short_description: Back up MongoDB collections, whole or by query, into a mongodump-compatible directory with a manifest
version_added: 0.1.0
description:
  - Streams the documents of the chosen collections with a cursor (memory stays bounded) into
    C(<dest>/<db>/<collection>.bson) or C(.bson.gz), sorted by C(_id), with
    C(<collection>.metadata.json) holding the indexes and collection options as mongodump
    writes them, and C(<dest>/manifest.json) recording each file's md5 and document count.
  - Our own reader and writer are used, not the mongo tools, so the source and target
    servers may run different MongoDB versions.
  - Subsets by query, including queries that follow associations with O(collections[].query_from),
    for example a project's tasks, then those tasks' models.
  - Files are rewritten only when their content changes, so a backup of unchanged data
    reports C(changed=false).
  - M(mlops.migration.mongo_restore) reads the result (directory or zip).
  - Every file's SHA-256 goes into the bundle's seal, C(SHA256SUMS) (with O(sign), signed in C(SHA256SUMS.sig)), which
    M(mlops.migration.mongo_restore) checks before any write.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.mongo
  - mlops.migration.mongo.collections
  - mlops.migration.seal.sign
options:
  dest:
    description: Directory to write the backup into (created when missing).
    type: path
    required: true
  databases:
    description: Databases to back up whole (every collection but C(system.*)).
    type: list
    elements: str
    default: []
  compress:
    description: Write C(.bson.gz) instead of C(.bson).
    type: bool
    default: true
  archive:
    description: V(zip) also packs the backup directory into C(<dest>.zip) for carrying; its md5 is returned.
    type: str
    choices: [none, zip]
    default: none
  batch_size:
    description: Documents fetched per cursor round trip.
    type: int
    default: 1000
attributes:
  check_mode:
    support: full
    description: Reads the source and reports which collections would change; writes nothing.
  diff_mode:
    support: none
    description: The collections that would change are listed in RV(changed_collections).
notes:
  - Documents are written exactly as the server returned them, so every BSON type round-trips.
"""

EXAMPLES = r"""
- name: Back up ClearML's database
  mlops.migration.mongo_backup:
    uri: "mongodb://backup:{{ mongo_password }}@clearml-mongo:27017/?authSource=admin"
    databases: [backend, auth]
    dest: /srv/migration/mongo
    archive: zip

- name: Back up one project with its tasks and their models
  mlops.migration.mongo_backup:
    uri: "{{ source_mongo_uri }}"
    dest: /srv/migration/project-a
    collections:
      - {db: backend, name: project, query: {_id: "{{ project_id }}"}}
      - {db: backend, name: task, query_from: {collection: project, field: project}}
      - {db: backend, name: model, query_from: {collection: task, field: task}}
"""

RETURN = r"""
kinds:
  description: Counts per kind of object (C(documents <db>.<collection>)), each with the fields of RV(counts).
  returned: always
  type: dict
collections:
  description: Manifest entry of each collection backed up.
  returned: always
  type: list
  elements: dict
  sample: [{"db": "backend", "collection": "task", "file": "backend/task.bson.gz", "count": 1200,
            "md5": "9e107d9d372bb6826bd81d3542a419d6", "bytes": 380211, "metadata": "backend/task.metadata.json",
            "query": "{}"}]
changed_collections:
  description: C(<db>.<collection>) whose files were (or in check mode would be) rewritten.
  returned: always
  type: list
  elements: str
documents:
  description: Documents backed up, all collections together.
  returned: always
  type: int
bytes:
  description: Size of the backup files written.
  returned: always
  type: int
manifest:
  description: Path of the manifest.
  returned: always
  type: str
archive:
  description: Path of the zip, when O(archive=zip) and not in check mode.
  returned: when archive is zip
  type: str
archive_md5:
  description: md5 of the zip, to check it after carrying.
  returned: when archive is zip
  type: str
seconds:
  description: Time the backup took.
  returned: always
  type: float
counts:
  description:
    - This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
    - C(found), C(filtered_out), C(copied), C(present), C(verified), C(failed), C(bytes), C(seconds), C(failures) (each with
      C(object) and C(reason)), C(pending) (check mode), C(dry_run); V(null) where the module does not measure it.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mlops.migration.plugins.module_utils.bundle_seal import seal
from ansible_collections.mlops.migration.plugins.module_utils.files.archives import pack
from ansible_collections.mlops.migration.plugins.module_utils.signing import signing_options
from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.common import protect_uri_secrets, run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind, Counts
from ansible_collections.mlops.migration.plugins.module_utils.mongo.connection import (
    connect,
    connection_options,
    HAS_PYMONGO,
)
from ansible_collections.mlops.migration.plugins.module_utils.mongo.dump import backup, collections_option, MANIFEST, parse_specs


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection_options(),
            dest=dict(type="path", required=True),
            databases=dict(type="list", elements="str", default=[]),
            collections=collections_option(),
            compress=dict(type="bool", default=True),
            archive=dict(type="str", choices=["none", "zip"], default="none"),
            batch_size=dict(type="int", default=1000),
            sign=signing_options(),
        ),
        required_one_of=[("databases", "collections")],
        supports_check_mode=True,
    )
    protect_uri_secrets(module, module.params["uri"])
    if not HAS_PYMONGO:
        module.fail_json(msg=missing_required_lib("pymongo"))
    run_module(module, lambda: back_up(module, module.params))


def back_up(module, params):
    dest = params["dest"]
    specs = parse_specs(params["databases"], [
        {k: v for k, v in entry.items() if v is not None} for entry in params["collections"]])
    client = connect(params)
    try:
        entries, changed, manifest_changed = backup(client, specs, dest, params["compress"],
                                                    module.check_mode, params["batch_size"])
    finally:
        client.close()
    kinds = {f"documents {e['db']}.{e['collection']}": Counts(dry_run=module.check_mode, found=e["count"])
             for e in entries}
    result = dict(changed=bool(changed or manifest_changed), collections=entries, changed_collections=changed,
                  documents=sum(e["count"] for e in entries), bytes=sum(e["bytes"] for e in entries),
                  manifest=os.path.join(dest, MANIFEST), **by_kind(kinds))
    if not module.check_mode:  # every file's SHA-256 (and a signature): what a restore checks before any write
        result["changed"] = seal(dest, params["sign"]) or result["changed"]
    if params["archive"] == "zip" and not module.check_mode:
        zip_path = dest.rstrip("/") + ".zip"
        before = md5_file(zip_path)[0] if os.path.isfile(zip_path) else None
        result["archive"], result["archive_md5"] = pack(dest, "zip")
        result["changed"] = result["changed"] or before != result["archive_md5"]
    return result


if __name__ == "__main__":
    main()
