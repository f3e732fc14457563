# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Back up PostgreSQL tables (whole schemas, chosen tables, or a subset following foreign keys from a root)
into a bundle (postgres/bundle.py), with the S3 objects its rows name when asked, signed when a key is given.
"""

from __future__ import annotations

import json
import os

from ansible_collections.mlops.migration.plugins.module_utils import signing
from ansible_collections.mlops.migration.plugins.module_utils.postgres import bundle as bundles
from ansible_collections.mlops.migration.plugins.module_utils.postgres.catalog import (
    at,
    dependency_order,
    read_catalog,
    subset_predicates,
)
from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import (
    PostgresError,
    connect,
    qualified,
    quote_table,
    server_version,
    sql,
)


def object_keys(conn, table, column, condition, params):
    """The distinct, non-empty values of ``table.column`` among the bundled rows: the S3 keys they name."""
    query = sql.SQL("SELECT DISTINCT t.{} FROM {} t WHERE t.{} IS NOT NULL").format(
        sql.Identifier(column), quote_table(table), sql.Identifier(column))
    if condition:
        query += sql.SQL(" AND ") + sql.SQL(at(condition, "t"))
    return sorted(row[0] for row in conn.execute(query + sql.SQL(" ORDER BY 1"), params) if row[0])


def backup(params, check_mode=False, progress=None, s3_client=None):
    """Write the bundle ``params["dest"]``; returns ``(manifest, changed files)``."""
    dest = params["dest"]
    os.makedirs(dest, exist_ok=True)
    old = bundles.read_manifest(dest) or {}
    old_tables = {entry["table"]: entry for entry in old.get("tables", [])}
    old_objects = {entry["key"]: entry for entry in old.get("objects", [])}
    conn = connect(params)
    changed = []
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        catalog = read_catalog(conn, params.get("schemas") or ["public"], params.get("tables") or None,
                               params.get("exclude_tables") or ())
        order, deferred = dependency_order(catalog)
        root = params.get("root")
        query_params = {}
        if root:
            predicates = subset_predicates(catalog, root["table"], root["column"], order)
            query_params["root"] = list(root["values"])
            order = [name for name in order if name in predicates]
        else:
            predicates = {}
        if progress:
            progress.update(done=0, total=sum(catalog.tables[name].rows_estimate for name in order), force=True)
        entries, done = [], 0
        for name in order:
            entry, wrote = bundles.write_table(conn, dest, catalog.tables[name], predicates.get(name),
                                               query_params if name in predicates else None,
                                               params.get("compress", True), old_tables.get(name), check_mode)
            entries.append(entry)
            if wrote:
                changed.append(entry["file"])
            done += entry["rows"]
            if progress:
                progress.update(done=done, size=sum(e["bytes"] for e in entries))
        objects = []
        spec = params.get("objects")
        if spec:
            table = qualified(spec["table"])
            if table not in catalog.tables:
                raise PostgresError(f"objects.table {table} is not among the tables backed up")
            catalog.tables[table].column_type(spec["column"])
            keys = object_keys(conn, table, spec["column"], predicates.get(table),
                               query_params if table in predicates else None)
            for index, key in enumerate(keys):
                entry, wrote = bundles.write_object(s3_client, spec["bucket"], key, dest, index,
                                                    old_objects.get(key), check_mode)
                objects.append(entry)
                if wrote:
                    changed.append(entry["file"])
        version = server_version(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()
    catalog_path = os.path.join(dest, bundles.CATALOG)
    catalog_record = catalog.restricted(order).to_dict()
    if bundles.write_json_if_changed(catalog_path, catalog_record, check_mode):
        changed.append(bundles.CATALOG)
    catalog_digest = (bundles._digest_file(catalog_path) if os.path.exists(catalog_path) and not check_mode  # pylint: disable=protected-access
                      else {"bytes": None, "sha256": None, "md5": None})
    manifest = {
        "format": bundles.FORMAT, "version": bundles.VERSION,
        "source": {"database": params["database"], "host": params.get("host"), "server_version": version},
        "schemas": params.get("schemas") or ["public"],
        "root": {"table": qualified(root["table"]), "column": root["column"], "values": list(root["values"])} if root else None,
        "order": order, "deferred": deferred,
        "catalog": catalog_digest, "tables": entries, "objects": objects,
        "objects_from": {"table": qualified(spec["table"]), "column": spec["column"]} if spec else None,
    }
    if bundles.write_json_if_changed(os.path.join(dest, bundles.MANIFEST), manifest, check_mode):
        changed.append(bundles.MANIFEST)
    if params.get("sign") and not check_mode:
        with open(os.path.join(dest, bundles.MANIFEST), "rb") as handle:
            record = signing.sign(handle.read(), params["sign"])
        path = os.path.join(dest, signing.SIGNATURE_FILE)
        if bundles.write_json_if_changed(path, record):
            changed.append(signing.SIGNATURE_FILE)
    return manifest, changed


def manifest_summary(manifest):
    """The manifest without per-file digests of objects (what a module returns)."""
    return json.loads(json.dumps({key: manifest[key] for key in ("source", "root", "order", "deferred")}))
