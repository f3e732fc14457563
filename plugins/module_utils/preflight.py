# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight checks: an endpoint (S3, MongoDB, a search server, a tracker) answers and accepts the credentials,
a directory has room.

Each check returns what it found (versions, free space) and raises MigrationError naming the
endpoint or path and the cause; nothing is written.
"""

from __future__ import annotations

import os
import shutil

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchClient
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import check_bucket, Endpoint, S3NotFound
from ansible_collections.mlops.migration.plugins.module_utils.mongo.connection import connect, describe
from ansible_collections.mlops.migration.plugins.module_utils.postgres import connection as postgres
from ansible_collections.mlops.migration.plugins.module_utils.trackers.registry import adapter, missing_library


def check_s3(location, create_bucket=False):
    """The location's bucket exists (or may be created) and the credentials are accepted."""
    endpoint = Endpoint.from_params(location)
    client = endpoint.client(max_pool=2)
    try:
        check_bucket(client, endpoint, location["bucket"])
        exists = True
    except S3NotFound:
        if not create_bucket:
            raise
        client.list_buckets()  # the credentials must still be good to create it
        exists = False
    return {"endpoint": endpoint.label, "bucket": location["bucket"], "bucket_exists": exists}


def check_mongo(params):
    """The server answers the credentials; its version is noted."""
    client = connect(params)
    try:
        try:
            version = client.server_info().get("version")
        except Exception:  # pylint: disable=broad-except  # servers without buildinfo: note the wire version
            version = f"unknown (wire version {client.admin.command('hello').get('maxWireVersion')})"
    except Exception as exc:  # pylint: disable=broad-except  # any driver error: name the server
        raise MigrationError(f"MongoDB at {describe(params)} did not answer: {exc}") from exc
    finally:
        client.close()
    return {"endpoint": describe(params), "version": version}


def check_tracker(settings):
    """The tracker (a tracker dict, as tracker_copy takes it) answers and accepts the credentials."""
    requirement = missing_library(settings)
    if requirement:
        raise MigrationError(f"{requirement} is required on the host that runs this module")
    tracker = adapter(settings, "source")
    return {"endpoint": tracker.uri, "kind": tracker.KIND, "version": tracker.server_version()}


def check_search(settings):
    """The search server (Elasticsearch or OpenSearch) answers and accepts the credentials; its version is noted."""
    client = SearchClient(**settings)
    try:
        version = client.info().get("version") or {}
    finally:
        client.close()
    return {"endpoint": client.url, "version": version.get("number"),
            "distribution": version.get("distribution", "elasticsearch")}


def check_postgres(params, schemas=("public",), path=None, min_free_mb=0):
    """The PostgreSQL server answers the credentials; its version and the size of the schemas' tables are noted, and
    with ``path``, that it has room for a bundle of them (their size on disk is an upper bound of it)."""
    conn = postgres.connect(params)
    try:
        version = postgres.server_version(conn)
        size = conn.execute(
            "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)", [list(schemas)]).fetchone()[0]
    finally:
        conn.close()
    checked = {"endpoint": postgres.describe(params), "version": version, "tables_mb": int(size) // (1024 * 1024)}
    if path:
        checked.update(check_disk(path, min_free_mb + checked["tables_mb"]))
    return checked


def check_disk(path, min_free_mb):
    """``path`` (or its nearest existing parent) has at least ``min_free_mb`` MiB free."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    free_mb = shutil.disk_usage(probe).free // (1024 * 1024)
    if free_mb < min_free_mb:
        raise MigrationError(f"{path} has {free_mb} MiB free on its filesystem, the migration needs {min_free_mb} MiB")
    return {"path": path, "free_mb": free_mb}
