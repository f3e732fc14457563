#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgres_restore
short_description: Merge a PostgreSQL bundle into a database that has rows already - new keys, rewritten references, staged and undoable
version_added: 0.2.0
description:
  - Reads a bundle of M(mlops.migration.postgres_backup) (directory or C(.tar)), checks it before any write
    (its signature with O(verify), every file's SHA-256, the plan against the bundle's and the target's
    catalogues), and merges its rows into the target database.
  - 'Key strategies per table (O(tables)): V(keep) preserves ids (a collision follows O(on_duplicate)); V(offset)
    adds the target''s highest key plus O(margin) (or a fixed C(offset)); V(remap) takes new keys from the
    target''s sequence; V(natural) reuses the key of the target row with the same C(natural_key) (the
    same e-mail), updating the C(update) columns, and gives the rest new keys.'
  - Every foreign key (composite ones too, followed through the tables they pass) is rewritten through the key
    map of the table it ends at, and so are keys held in JSON(B) or text columns named in O(references).
  - Tables are inserted in foreign-key order; a cycle is broken at DEFERRABLE foreign keys (listed in
    RV(deferred)). Each stage of O(stages) runs in one transaction, is checked (every mapped row present,
    inserted rows' content equal to the bundle's, references resolved, deferred keys checked) and recorded
    done in the target's schema C(mlops_migration) with its key maps; a failure rolls the stage back. Sequences
    are moved past the highest key after each stage.
  - A re-run skips done stages and inserts nothing twice; O(state=rolled_back) undoes the finished stages of
    O(migration) by their key maps (rows inserted deleted, rows updated restored).
  - With O(objects) the bundle's S3 objects are uploaded under the keys their rewritten rows name, in the
    stage of their table, and removed again when that stage fails.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.postgres
  - mlops.migration.postgres.signing
  - mlops.migration.progress
options:
  src:
    description: The bundle (directory) or its C(.tar). Required unless O(state=rolled_back).
    type: path
  migration:
    description:
      - Name of this merge in the target's ledger (schema C(mlops_migration)); its key maps and stages are kept
        under it. Defaults to the bundle's C(<database>@<host>).
      - Required with O(state=rolled_back).
    type: str
  state:
    description: V(merged) merges the bundle; V(rolled_back) undoes every finished stage of O(migration).
    type: str
    choices: [merged, rolled_back]
    default: merged
  key:
    description: Key strategy of the tables with one integer primary key of their own that O(tables) does not name.
    type: str
    choices: [keep, offset, remap, natural]
    default: offset
  margin:
    description: What V(offset) adds above the target's highest key.
    type: int
    default: 1000
  on_duplicate:
    description: With V(keep), a source row whose key the target holds is V(skip)ped, V(update)s the target row, or V(fail)s the stage.
    type: str
    choices: [skip, update, fail]
    default: skip
  tables:
    description: Per table (C(name) or C(schema.name)), its key strategy and options.
    type: dict
    default: {}
  stages:
    description:
      - Contexts merged one after the other, each in its own transaction (C(name), C(tables)); every table of
        the bundle must be in one, and no table may reference a table of a later stage.
      - One stage C(all) with every table when empty.
    type: list
    elements: dict
    default: []
  references:
    description:
      - Keys held inside a JSON(B) or text column, rewritten through the key map of C(to).
      - 'C(json_keys: true): the object''s keys are keys (a workbench keyed by node id); C(json_field: name): every
        member of that name, at any depth; C(pattern): a regular expression whose one group is a key, in a text
        column or in every string of a JSON column.'
    type: list
    elements: dict
    default: []
  verify:
    description: Refuse the bundle unless its manifest is signed with this key (before any write).
    type: dict
    suboptions:
      algorithm:
        description: C(hmac-sha256) (the shared secret) or C(ed25519) (the public key in O(verify.key_file)).
        type: str
        choices: [hmac-sha256, ed25519]
        default: hmac-sha256
      key:
        description: The HMAC secret.
        type: str
      key_file:
        description: A file holding the HMAC secret, or the ed25519 public key (PEM).
        type: path
  objects:
    description:
      - Upload the bundle's S3 objects to this bucket (an S3 connection with C(bucket) and C(prefix)).
      - Every value in it is kept out of logs and results, the secret key with the rest.
    type: dict
  ledger_dir:
    description: Also export each finished stage's key maps (C(<table>.keymap.tsv.gz)) and checkpoint (C(ledger.json)) into C(<ledger_dir>/<migration>/).
    type: path
  work_dir:
    description: Where a C(.tar) bundle is unpacked and checked (a temporary directory, removed after).
    type: path
attributes:
  check_mode:
    support: full
    description: Runs every stage inside a transaction and rolls it back (sequences untouched, no object uploaded); reports what would be inserted.
  diff_mode:
    support: none
    description: The counts per table say what would change.
"""

EXAMPLES = r"""
- name: Merge the old deployment's database into the new one
  mlops.migration.postgres_restore:
    host: new-db.internal
    user: migrator
    password: "{{ vault_pg_password }}"
    database: simcoredb
    src: /srv/migration/postgres.tar
    migration: tip-inhouse
    key: offset
    tables:
      users: {key: natural, natural_key: [email], update: [name]}
      projects_nodes: {key: remap}
    stages:
      - {name: users, tables: [groups, users, user_to_groups]}
      - {name: studies, tables: [folders, projects, projects_nodes, comp_tasks, file_meta_data]}
    references:
      - {table: projects, column: workbench, to: projects_nodes, json_keys: true}
      - {table: file_meta_data, column: object_key, to: projects, pattern: '^(\d+)/'}
    ledger_dir: /srv/migration/state/postgres

- name: Undo that merge
  mlops.migration.postgres_restore:
    host: new-db.internal
    user: migrator
    password: "{{ vault_pg_password }}"
    database: simcoredb
    migration: tip-inhouse
    state: rolled_back
"""

RETURN = r"""
migration:
  description: The merge's name in the ledger.
  returned: always
  type: str
stages:
  description:
    - Each stage with C(status) (C(done), C(done before), C(checked (rolled back - check mode))), C(finished)
      and per table C(found), C(inserted), C(matched), C(verified).
  returned: when state is merged
  type: list
  elements: dict
failed_stage:
  description: The stage that failed and was rolled back.
  returned: on failure
  type: str
deferred:
  description: Foreign keys (C(schema.table.constraint)) deferred to commit to break a cycle.
  returned: when state is merged
  type: list
  elements: str
rows_deleted:
  description: With O(state=rolled_back), rows deleted per table.
  returned: when state is rolled_back
  type: dict
rows_restored:
  description: With O(state=rolled_back), rows set back to their values before the merge, per table.
  returned: when state is rolled_back
  type: dict
objects:
  description: S3 objects of the bundle C(found), C(copied), C(present), C(bytes).
  returned: when objects is given
  type: dict
kinds:
  description: Counts per kind (C(rows <schema>.<table>), C(s3 objects)), each with the fields of RV(counts).
  returned: always
  type: dict
counts:
  description: This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
  returned: always
  type: dict
seconds:
  description: Time the merge took.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mlops.migration.plugins.module_utils.common import run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind, Counts
from ansible_collections.mlops.migration.plugins.module_utils.postgres.bundle import open_bundle
from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import (
    connect,
    connection_options,
    HAS_PSYCOPG,
    PostgresError,
)
from ansible_collections.mlops.migration.plugins.module_utils.postgres.merge import (
    checked_plan,
    Merge,
    ON_DUPLICATE,
    rollback,
    STRATEGIES,
)
from ansible_collections.mlops.migration.plugins.module_utils.postgres.objects import ObjectImport
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import open_bucket
from ansible_collections.mlops.migration.plugins.module_utils.signing import signing_options
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection_options(),
            src=dict(type="path"),
            migration=dict(type="str"),
            state=dict(type="str", choices=["merged", "rolled_back"], default="merged"),
            key=dict(type="str", choices=list(STRATEGIES), default="offset"),
            margin=dict(type="int", default=1000),
            on_duplicate=dict(type="str", choices=list(ON_DUPLICATE), default="skip"),
            tables=dict(type="dict", default={}),
            stages=dict(type="list", elements="dict", default=[]),
            references=dict(type="list", elements="dict", default=[]),
            verify=signing_options(),
            objects=dict(type="dict", no_log=True),
            ledger_dir=dict(type="path"),
            work_dir=dict(type="path"),
            **progress_file.PROGRESS_OPTIONS,
        ),
        required_if=[("state", "merged", ("src",)), ("state", "rolled_back", ("migration",))],
        supports_check_mode=True,
    )
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"))
    run_module(module, lambda: restore(module, module.params))


def restore(module, params):
    if params["state"] == "rolled_back":
        conn = connect(params)
        try:
            result = rollback(conn, params["migration"], module.check_mode)
        finally:
            conn.close()
        kinds = {f"rows {name}": Counts(dry_run=module.check_mode, found=count, copied=0)
                 for name, count in result["rows_deleted"].items()}
        return dict(result, **by_kind(kinds))
    plan = checked_plan(params)
    bundle = open_bundle(params["src"], params["verify"], params["work_dir"])
    progress = progress_file.start(module, "postgres merge", unit="rows")
    objects = None
    try:
        if params["objects"]:
            if not bundle.manifest.get("objects"):
                raise PostgresError("objects is given, and the bundle holds no S3 objects")
            location, _created = open_bucket(params["objects"], create=False, check_mode=module.check_mode)
            source_objects = bundle.manifest.get("objects_from") or {}
            objects = ObjectImport(location, source_objects.get("table"), source_objects.get("column"))
        conn = connect(params)
        try:
            merge = Merge(conn, bundle, plan, module.check_mode, progress, objects)
            result = merge.run()
        finally:
            conn.close()
    finally:
        bundle.close()
    kinds = dict(merge.kinds)
    if objects:
        result["objects"] = dict(objects.counts)
        kinds["s3 objects"] = Counts(dry_run=module.check_mode, found=objects.counts["found"],
                                     copied=objects.counts["copied"], present=objects.counts["present"],
                                     bytes=objects.counts["bytes"])
    progress_file.finish(progress, result, ())
    return dict(result, **by_kind(kinds))


if __name__ == "__main__":
    main()
