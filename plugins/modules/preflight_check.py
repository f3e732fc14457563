#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_check
short_description: Check before a migration that an endpoint answers and accepts its credentials, or that a directory has room
version_added: 0.1.0
description:
  - V(s3) checks that the bucket of the location O(s3) exists at the endpoint and the credentials
    are accepted (or, with O(create_bucket), that the credentials can list buckets so it can be created).
  - V(mongo) connects, proves the credentials, and returns the server's version.
  - V(tracker) proves the tracker O(tracker) (the dict M(mlops.migration.tracker_copy) takes as its
    source or target) answers and accepts the credentials, and returns its version when it tells.
  - V(search) asks the search server O(search) (Elasticsearch or OpenSearch, the connection
    M(mlops.migration.search_copy) takes) for its version, with the credentials.
  - V(postgres) connects to O(postgres), proves the credentials, and returns the server's version and the size of
    the tables of O(schemas); with O(path), that it has room for a bundle of them plus O(min_free_mb).
  - V(disk) checks that O(path) (or its nearest existing parent) has O(min_free_mb) free.
  - Nothing is written; each failure names the endpoint or path and the cause.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.s3
  - mlops.migration.s3.checked
  - mlops.migration.tracker.checked
  - mlops.migration.search.checked
  - mlops.migration.mongo
options:
  kind:
    description: What to check.
    type: str
    choices: [s3, mongo, search, tracker, disk, postgres]
    required: true
  postgres:
    description: For V(postgres), the connection (the options of M(mlops.migration.postgres_backup)).
    type: dict
    suboptions:
      host:
        description: Server host name or address.
        type: str
        default: localhost
      port:
        description: Server port.
        type: int
        default: 5432
      user:
        description: Role to log in as.
        type: str
        required: true
      password:
        description: Password of O(postgres.user).
        type: str
      database:
        description: Database to connect to.
        type: str
        required: true
      sslmode:
        description: libpq's C(sslmode).
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
        default: prefer
      sslrootcert:
        description: CA certificates to check the server's certificate against.
        type: path
      connect_timeout:
        description: Seconds to wait for the server.
        type: int
        default: 10
  schemas:
    description: For V(postgres), the schemas whose tables' size is measured.
    type: list
    elements: str
    default: [public]
  create_bucket:
    description: For V(s3), a missing bucket is fine because the migration will create it.
    type: bool
    default: false
  path:
    description: Directory that needs room, for V(disk); for V(postgres), where the bundle will be written.
    type: path
  min_free_mb:
    description: Free space O(path) needs, for V(disk).
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description: The checks only read; they run the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: The source bucket is there and the keys work
  mlops.migration.preflight_check:
    kind: s3
    s3:
      endpoint_url: https://minio.old.example.com
      access_key: "{{ vault_s3_access_key }}"
      secret_key: "{{ vault_s3_secret_key }}"
      bucket: clearml

- name: The tracking server answers the token
  mlops.migration.preflight_check:
    kind: tracker
    tracker: {kind: mlflow, tracking_uri: "https://mlflow.example.com", token: "{{ vault_mlflow_token }}"}

- name: Room for the bundles
  mlops.migration.preflight_check:
    kind: disk
    path: /var/tmp/mlops-migration
    min_free_mb: 20480
"""

RETURN = r"""
checked:
  description: What was checked and found (C(endpoint), C(bucket_exists), C(version), C(free_mb), C(tables_mb)).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError, protect_uri_secrets
from ansible_collections.mlops.migration.plugins.module_utils.mongo import connection as mongo
from ansible_collections.mlops.migration.plugins.module_utils.postgres import connection as postgres
from ansible_collections.mlops.migration.plugins.module_utils.preflight import (
    check_disk,
    check_mongo,
    check_postgres,
    check_s3,
    check_search,
    check_tracker,
)
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import location_options
from ansible_collections.mlops.migration.plugins.module_utils.search.client import connection_options as search_options
from ansible_collections.mlops.migration.plugins.module_utils.trackers.registry import tracker_spec, uris

NEEDS = {"s3": ("s3",), "mongo": (), "search": ("search",), "tracker": ("tracker",), "disk": ("path",), "postgres": ("postgres",)}


def main():
    spec = dict(mongo.connection_options())
    spec.update(
        kind=dict(type="str", choices=list(NEEDS), required=True),
        s3=dict(type="dict", options=location_options()),
        create_bucket=dict(type="bool", default=False),
        tracker=dict(type="dict", options=tracker_spec()),
        search=dict(type="dict", options=search_options()),
        path=dict(type="path"),
        min_free_mb=dict(type="int", default=0),
        postgres=dict(type="dict", options=postgres.connection_options()),
        schemas=dict(type="list", elements="str", default=["public"]),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[("kind", kind, needs) for kind, needs in NEEDS.items() if needs])
    params = module.params
    protect_uri_secrets(module, params["uri"], (params["search"] or {}).get("url"), *uris(params["tracker"] or {}))
    try:
        if params["kind"] == "s3":
            checked = check_s3(params["s3"], params["create_bucket"])
        elif params["kind"] == "mongo":
            if not mongo.HAS_PYMONGO:
                raise MigrationError("pymongo is required on the host that runs this module")
            checked = check_mongo(params)
        elif params["kind"] == "search":
            checked = check_search(params["search"])
        elif params["kind"] == "tracker":
            checked = check_tracker(params["tracker"])
        elif params["kind"] == "postgres":
            checked = check_postgres(params["postgres"], params["schemas"], params["path"], params["min_free_mb"])
        else:
            checked = check_disk(params["path"], params["min_free_mb"])
    except MigrationError as exc:
        module.fail_json(msg=f"preflight: {exc}")
    module.exit_json(changed=False, checked=checked)


if __name__ == "__main__":
    main()
