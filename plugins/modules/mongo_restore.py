#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongo_restore
short_description: Restore a mongo_backup into MongoDB with ids preserved, filters, field removal and URL rewriting
version_added: 0.1.0
description:
  - Reads a backup written by M(mlops.migration.mongo_backup) (directory or zip; a plain
    mongodump directory of C(.bson) files works too, unverified) and first checks every file
    against the manifest's md5 and document count. A corrupt or truncated file fails the task
    naming it, before anything is written.
  - Every document keeps its C(_id) and its exact BSON types, so associations between
    collections survive. Documents that no filter, O(collections) C(unset_fields) or rewrite
    touches are sent as their original bytes.
  - Before a batch is inserted the target is asked which of its C(_id)s exist already.
    Identical documents are skipped without a write, so a re-run over a restored database
    inserts nothing and reports C(changed=false). A different document under the same
    C(_id) (a collision, as when several source servers are consolidated into one target) is
    handled by O(on_duplicate) and listed in the result.
  - New documents go in with one unordered C(insert_many) per batch. When the server rejects
    some, duplicate-key errors (also from other unique indexes) are counted as skipped and
    every other rejected document is retried alone, so each failure is recorded with its reason.
  - Indexes from the backup's metadata are created when the target lacks them (by name).
  - With O(state=verified) nothing is written; every document the backup should have put at
    the target (after filters and rewrites) is looked up and compared.
  - A bundle's seal (C(SHA256SUMS), every file's SHA-256), when it has one, is checked before any write, and with
    O(verify) its signature is required - a file edited and its md5 recomputed, or the seal recomputed too, is refused.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.mongo
  - mlops.migration.progress
  - mlops.migration.seal.verify
options:
  src:
    description: Backup directory, or its C(.zip), on the host that runs the module.
    type: path
    required: true
  plain_dump:
    description:
      - Restore a plain C(mongodump) directory, which has no C(manifest.json). Its files are then
        restored unverified (no md5 or document count to check them against). Without it, a
        directory with no manifest is refused, and so is a manifest that gives a file no md5
        or count, or names a file outside the backup.
    type: bool
    default: false
  state:
    description:
      - V(present) restores; V(verified) only checks the target against the backup and fails
        when a document is missing or differs.
    type: str
    choices: [present, verified]
    default: present
  include:
    description: Restore only these collections, named C(<db>.<collection>). All in the backup when empty.
    type: list
    elements: str
    default: []
  db_map:
    description: Restore a source database under another name at the target, a mapping of source name to target name.
    type: dict
    default: {}
  collections:
    description:
      - Per-collection settings, keyed C(<db>.<collection>). Each may hold C(filter) (a MongoDB
        query evaluated on each document; supports equality, C($eq $ne $in $nin $exists $gt $gte
        $lt $lte $and $or $nor)), C(unset_fields) (dotted paths to remove), C(rewrite) (rules added
        after O(rewrite)) and C(on_duplicate).
    type: dict
    default: {}
  rewrite:
    description:
      - Rewrite rules applied to string values of every collection, in order. Each is
        C({from, to, match}) with C(match) V(prefix) (default) or V(substring), and optional
        C(paths), a list of dotted field paths; without C(paths) every string in the document is
        considered. Documents whose bytes do not contain any C(from) text are not decoded.
    type: list
    elements: dict
    default: []
  on_duplicate:
    description:
      - What to do when the target holds a different document under the same C(_id).
        V(skip) keeps the target's and lists the collision; V(replace) replaces it; V(fail)
        records a failure for that document (the task fails at the end).
    type: str
    choices: [skip, replace, fail]
    default: skip
  batch_size:
    description: Documents per lookup and per C(insert_many).
    type: int
    default: 1000
  precheck:
    description:
      - Look up each batch's C(_id)s before inserting, while lookups find something. There are
        no lookups in a collection that was empty when the restore began, nor after a batch none
        of whose documents was present, until an insert meets a duplicate key again; check mode
        looks up every batch. Turning it off sends
        every batch straight to C(insert_many) and relies on the duplicate-key fallback, which is
        much slower over an already restored database.
    type: bool
    default: true
  indexes:
    description: Recreate the backup's indexes at the target.
    type: bool
    default: true
  indexes_first:
    description: Create the indexes before loading the data instead of after.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Verifies the backup and counts what would be inserted, skipped and replaced; writes nothing.
  diff_mode:
    support: none
    description: Counts per collection are returned instead.
"""

EXAMPLES = r"""
- name: Restore ClearML tasks that are worth keeping, pointing their artifacts at the new S3
  mlops.migration.mongo_restore:
    uri: "{{ target_mongo_uri }}"
    src: /incoming/mongo.zip
    collections:
      backend.task:
        filter: {status: {$in: [created, in_progress, completed, published, publishing]}}
        unset_fields: [status_reason, status_message, execution.queue, output.destination]
    rewrite:
      - {from: "http://files.old.example.com:8081/", to: "s3://clearml-artifacts/", match: prefix}

- name: Check the target against the backup
  mlops.migration.mongo_restore:
    uri: "{{ target_mongo_uri }}"
    src: /incoming/mongo.zip
    state: verified
"""

RETURN = r"""
kinds:
  description: Counts per kind of object (C(documents <db>.<collection>)), each with the fields of RV(counts).
  returned: always
  type: dict
collections:
  description: Per collection counts, in backup order.
  returned: always
  type: list
  elements: dict
  contains:
    collection:
      description: C(<db>.<collection>) as in the backup.
      type: str
    found:
      description: Documents read from the backup.
      type: int
    inserted:
      description: Documents inserted (or that would be, in check mode).
      type: int
    skipped_duplicates:
      description: Documents not inserted because their C(_id) (or another unique key) was taken.
      type: int
    collisions:
      description: Of those, documents whose C(_id) holds a different document at the target.
      type: int
    collided:
      description: The first 50 collisions, each with C(id) and what was done.
      type: list
    replaced:
      description: Target documents replaced (O(on_duplicate=replace)).
      type: int
    filtered_out:
      description: Documents the collection's C(filter) left out.
      type: int
    rewritten:
      description: String values changed by the rewrite rules.
      type: int
    unset:
      description: Fields removed by C(unset_fields).
      type: int
    failed:
      description: Documents that could not be written (or, verifying, are missing or differ).
      type: int
    failures:
      description: The first 50 failures, each with C(id) and C(reason).
      type: list
    indexes_created:
      description: Names of the indexes created.
      type: list
    seconds:
      description: Time spent on the collection.
      type: float
totals:
  description: The per-collection counts summed.
  returned: always
  type: dict
  sample: {"found": 1200, "inserted": 1100, "skipped_duplicates": 0, "replaced": 0, "filtered_out": 100,
           "rewritten": 2300, "failed": 0}
seconds:
  description: Time the whole task took.
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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mlops.migration.plugins.module_utils.bundle_seal import check_seal
from ansible_collections.mlops.migration.plugins.module_utils.files.archives import opened_bundle
from ansible_collections.mlops.migration.plugins.module_utils.signing import signing_options
from ansible_collections.mlops.migration.plugins.module_utils.common import NotFound, protect_uri_secrets, run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file
from ansible_collections.mlops.migration.plugins.module_utils.mongo.connection import (
    connect,
    connection_options,
    HAS_PYMONGO,
)
from ansible_collections.mlops.migration.plugins.module_utils.mongo.dump import (
    check_backup,
    read_manifest,
    read_metadata,
)
from ansible_collections.mlops.migration.plugins.module_utils.mongo.load import (
    collection_counts,
    parse_settings,
    restore_collection,
    verify_collection,
)

COUNTS = ("found", "inserted", "skipped_duplicates", "collisions", "replaced", "filtered_out", "rewritten", "unset",
          "failed")


def selected_entries(entries, include, named):
    """The manifest entries to restore; NotFound when a named collection is not in the backup."""
    available = {f"{e['db']}.{e['collection']}" for e in entries}
    unknown = sorted((set(include) | named) - available)
    if unknown:
        raise NotFound(f"the backup holds no collection {', '.join(unknown)} "
                       f"(it holds {', '.join(sorted(available)) or 'nothing'})")
    return [e for e in entries if not include or f"{e['db']}.{e['collection']}" in include]


def run(module, params):
    with opened_bundle(params["src"], "mlops-mongo-restore-") as root:
        settings_for = parse_settings(params["collections"], params["rewrite"], params["on_duplicate"])
        entries = selected_entries(read_manifest(root, params["plain_dump"]), params["include"], settings_for.named)
        metadata = [read_metadata(root, e) for e in entries]
        check_backup(root, entries)  # refuse a corrupt backup before touching the target
        check_seal(root, params["verify"], what="the MongoDB backup")  # and an edited one: its SHA-256s, its signature
        client = connect(params)
        reports = []
        progress = None if params["state"] == "verified" else progress_file.start(
            module, f"mongo_restore {params['src']}", unit="documents")
        if progress is not None:
            progress.update(total=sum(e.get("count") or 0 for e in entries))

        def on_batch(report):
            progress.update(done=sum(r["found"] for r in reports) + report["found"])

        try:
            for entry, meta in zip(entries, metadata):
                name = f"{entry['db']}.{entry['collection']}"
                target_db = params["db_map"].get(entry["db"], entry["db"])
                if params["state"] == "verified":
                    reports.append(verify_collection(client, root, entry, target_db, settings_for(name),
                                                     params["batch_size"]))
                else:
                    reports.append(restore_collection(
                        client, root, entry, target_db, settings_for(name), meta, params["batch_size"],
                        module.check_mode, params["precheck"], params["indexes"], params["indexes_first"],
                        on_batch if progress is not None else None))
        finally:
            client.close()
        if progress is not None:
            progress.update(done=sum(r["found"] for r in reports), force=True)
            progress_file.finish(progress, {key: sum(r[key] for r in reports) for key in ("inserted", "failed")},
                                 ("inserted", "failed"))
    return reports


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection_options(),
            src=dict(type="path", required=True),
            plain_dump=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "verified"], default="present"),
            include=dict(type="list", elements="str", default=[]),
            db_map=dict(type="dict", default={}),
            collections=dict(type="dict", default={}),
            rewrite=dict(type="list", elements="dict", default=[]),
            on_duplicate=dict(type="str", choices=["skip", "replace", "fail"], default="skip"),
            batch_size=dict(type="int", default=1000),
            precheck=dict(type="bool", default=True),
            indexes=dict(type="bool", default=True),
            indexes_first=dict(type="bool", default=False),
            verify=signing_options(),
            **progress_file.PROGRESS_OPTIONS,
        ),
        supports_check_mode=True,
    )
    protect_uri_secrets(module, module.params["uri"])
    if not HAS_PYMONGO:
        module.fail_json(msg=missing_required_lib("pymongo"))
    if module.params["batch_size"] < 1:
        module.fail_json(msg="batch_size must be at least 1")
    run_module(module, lambda: restore(module), "document(s) are missing or differ at the target"
               if module.params["state"] == "verified" else "document(s) could not be restored")


def restore(module):
    reports = run(module, module.params)
    totals = {key: sum(r[key] for r in reports) for key in COUNTS}
    verifying = module.params["state"] == "verified"
    if verifying:
        totals.update({key: sum(r[key] for r in reports) for key in ("expected", "present", "missing", "differing")})
    changed = not verifying and any(r["inserted"] or r["replaced"] or r["indexes_created"] or r.get("created")
                                    for r in reports)
    kinds = {f"documents {r['collection']}": collection_counts(r, module.check_mode) for r in reports}
    return dict(changed=changed, collections=reports, totals=totals, **by_kind(kinds))


if __name__ == "__main__":
    main()
