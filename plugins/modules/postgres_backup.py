#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgres_backup
short_description: Back up PostgreSQL tables, whole or a subset that follows foreign keys, into a checked (optionally signed) bundle
version_added: 0.2.0
description:
  - Writes each table's rows with C(COPY ... TO STDOUT (FORMAT binary)), sorted by primary key, into
    C(<dest>/rows/<schema>.<table>.copy.gz), the schema and constraint catalogue (columns and types, primary and
    unique keys, foreign keys, sequences) into C(<dest>/catalog.json), and a manifest with each file's row
    count, size, md5 and SHA-256 into C(<dest>/manifest.json). All tables are read in one snapshot.
  - A subset (O(root)) starts from rows of one table (one user, one project) and follows foreign keys down
    (the rows that reference them - the user's projects, their nodes and files) and up (the rows those need -
    the owner, groups, a folder's parent folders).
  - O(objects) also saves the S3 objects a column of the bundled rows names (a project's files), so the bundle
    carries a whole project; O(sign) signs the manifest, so that M(mlops.migration.postgres_restore) refuses a
    bundle that anyone without the key altered.
  - Files are rewritten only when their content changes, so a backup of unchanged data reports C(changed=false).
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.postgres
  - mlops.migration.postgres.signing
  - mlops.migration.progress
options:
  dest:
    description: Directory to write the bundle into (created when missing).
    type: path
    required: true
  schemas:
    description: Schemas whose tables are backed up.
    type: list
    elements: str
    default: [public]
  tables:
    description: Only these tables (C(name) or C(schema.name)); every table of O(schemas) when empty. A missing table is an error.
    type: list
    elements: str
    default: []
  exclude_tables:
    description: Tables left out.
    type: list
    elements: str
    default: []
  root:
    description: A subset that follows foreign keys from the rows of O(root.table) whose O(root.column) is one of O(root.values).
    type: dict
    suboptions:
      table:
        description: The root table.
        type: str
        required: true
      column:
        description: The column the values are matched against.
        type: str
        required: true
      values:
        description: The values (ids, e-mails ...).
        type: list
        elements: raw
        required: true
  objects:
    description: Save the S3 objects named by O(objects.column) of the bundled rows of O(objects.table) into C(<dest>/objects/).
    type: dict
    suboptions:
      table:
        description: The table whose column names the objects.
        type: str
        required: true
      column:
        description: The column holding each object's key.
        type: str
        required: true
      s3:
        description:
          - The S3 connection and bucket (the options of M(mlops.migration.s3_sync)'s C(source)).
          - Every value in it is kept out of logs and results, the secret key with the rest.
        type: dict
        required: true
  compress:
    description: gzip the row files (level 1).
    type: bool
    default: true
  archive:
    description: V(tar) also packs the bundle into C(<dest>.tar) for carrying; its md5 is returned.
    type: str
    choices: [none, tar]
    default: none
  sign:
    description: Sign the manifest (C(manifest.sig)) with this key.
    type: dict
    suboptions:
      algorithm:
        description: C(hmac-sha256) (a shared secret) or C(ed25519) (a private key in O(sign.key_file)).
        type: str
        choices: [hmac-sha256, ed25519]
        default: hmac-sha256
      key:
        description: The HMAC secret.
        type: str
      key_file:
        description: A file holding the HMAC secret, or the ed25519 private key (PEM).
        type: path
attributes:
  check_mode:
    support: full
    description: Reads the source and reports which files would change; writes nothing.
  diff_mode:
    support: none
    description: The files that would change are listed in RV(changed_files).
"""

EXAMPLES = r"""
- name: Back up an oSPARC deployment's database
  mlops.migration.postgres_backup:
    host: old-db.internal
    user: backup
    password: "{{ vault_pg_password }}"
    database: simcoredb
    dest: /srv/migration/postgres
    archive: tar

- name: Export one project with its rows and files, signed
  mlops.migration.postgres_backup:
    host: old-db.internal
    user: backup
    password: "{{ vault_pg_password }}"
    database: simcoredb
    dest: /srv/export/project-42
    root: {table: projects, column: id, values: [42]}
    objects:
      table: file_meta_data
      column: object_key
      s3: {endpoint_url: "https://s3.old.internal", access_key: "{{ s3_key }}", secret_key: "{{ s3_secret }}", bucket: simcore}
    sign: {algorithm: hmac-sha256, key: "{{ vault_export_key }}"}
    archive: tar
"""

RETURN = r"""
tables:
  description: Manifest entry of each table (C(table), C(file), C(rows), C(columns), C(bytes), C(md5), C(sha256)).
  returned: always
  type: list
  elements: dict
objects:
  description: Number of S3 objects saved.
  returned: always
  type: int
changed_files:
  description: Files of the bundle that were (or in check mode would be) rewritten.
  returned: always
  type: list
  elements: str
rows:
  description: Rows backed up, all tables together.
  returned: always
  type: int
order:
  description: The tables in the order their rows can be inserted (parents first).
  returned: always
  type: list
  elements: str
deferred:
  description: Foreign keys (C(schema.table.constraint)) a cycle between tables makes a restore check at commit.
  returned: always
  type: list
  elements: str
manifest:
  description: Path of the manifest.
  returned: always
  type: str
archive:
  description: Path of the tar, when O(archive=tar) and not in check mode.
  returned: when archive is tar
  type: str
archive_md5:
  description: md5 of the tar, to check it after carrying.
  returned: when archive is tar
  type: str
kinds:
  description: Counts per kind (C(rows <schema>.<table>), C(s3 objects)), each with the fields of RV(counts).
  returned: always
  type: dict
counts:
  description:
    - This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
  returned: always
  type: dict
seconds:
  description: Time the backup took.
  returned: always
  type: float
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.common import run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind, Counts
from ansible_collections.mlops.migration.plugins.module_utils.postgres import bundle as bundles
from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import connection_options, HAS_PSYCOPG
from ansible_collections.mlops.migration.plugins.module_utils.postgres.dump import backup
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import open_bucket
from ansible_collections.mlops.migration.plugins.module_utils.signing import signing_options
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection_options(),
            dest=dict(type="path", required=True),
            schemas=dict(type="list", elements="str", default=["public"]),
            tables=dict(type="list", elements="str", default=[]),
            exclude_tables=dict(type="list", elements="str", default=[]),
            root=dict(type="dict", options=dict(table=dict(type="str", required=True),
                                                column=dict(type="str", required=True),
                                                values=dict(type="list", elements="raw", required=True))),
            objects=dict(type="dict", options=dict(table=dict(type="str", required=True),
                                                   column=dict(type="str", required=True),
                                                   s3=dict(type="dict", required=True, no_log=True))),
            compress=dict(type="bool", default=True),
            archive=dict(type="str", choices=["none", "tar"], default="none"),
            sign=signing_options(),
            **progress_file.PROGRESS_OPTIONS,
        ),
        supports_check_mode=True,
    )
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"))
    run_module(module, lambda: back_up(module, module.params))


def back_up(module, params):
    progress = progress_file.start(module, "postgres backup", unit="rows")
    client = None
    if params["objects"]:
        location, _created = open_bucket(params["objects"]["s3"])
        client = location.client
        params = dict(params, objects=dict(params["objects"], bucket=location.bucket))
    manifest, changed = backup(params, module.check_mode, progress, client)
    kinds = {f"rows {e['table']}": Counts(dry_run=module.check_mode, found=e["rows"], bytes=e["bytes"])
             for e in manifest["tables"]}
    if params["objects"]:
        kinds["s3 objects"] = Counts(dry_run=module.check_mode, found=len(manifest["objects"]),
                                     bytes=sum(e["bytes"] for e in manifest["objects"]))
    result = dict(changed=bool(changed), tables=manifest["tables"], objects=len(manifest["objects"]),
                  changed_files=changed, rows=sum(e["rows"] for e in manifest["tables"]), order=manifest["order"],
                  deferred=manifest["deferred"], manifest=os.path.join(params["dest"], bundles.MANIFEST),
                  **by_kind(kinds))
    if params["archive"] == "tar" and not module.check_mode:
        tar_path = params["dest"].rstrip("/") + ".tar"
        result["changed"] = bundles.pack(params["dest"], tar_path) or result["changed"]
        result["archive"], result["archive_md5"] = tar_path, md5_file(tar_path)[0]
    progress_file.finish(progress, result, ("rows",))
    return result


if __name__ == "__main__":
    main()
