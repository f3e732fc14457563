# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL bundles: a table's rows in COPY binary form, the catalogue, S3 objects, and a manifest.

Layout of a bundle directory (a ``.tar`` of it carries it):

    manifest.json   format, source, root (a subset's), the catalogue's and every file's size, md5 and SHA-256,
                    each table's row count and the columns in its file, each object's key
    manifest.sig    when signed: the manifest's signature (module_utils/signing.py)
    catalog.json    the tables' columns, keys, foreign keys and sequences (postgres/catalog.py)
    rows/<schema>.<table>.copy[.gz]    ``COPY ... TO STDOUT (FORMAT binary)``, sorted by primary key
    objects/<n>     S3 objects the rows name (a project's files), when asked for

Every table is read in one REPEATABLE READ snapshot, so the bundle is consistent across tables. Files are
written only when their content changes (gzip without a time stamp), so a backup of unchanged data changes
nothing. ``open_bundle`` checks a bundle before anything reads its rows: the signature when a key is given,
then every file's size and SHA-256 against the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile

from ansible_collections.mlops.migration.plugins.module_utils import signing
from ansible_collections.mlops.migration.plugins.module_utils.atomic import durable_replace, read_text_if_exists, write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.checksums import CHUNK_SIZE, new_md5
from ansible_collections.mlops.migration.plugins.module_utils.postgres.catalog import Catalog, at
from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import PostgresError, copy_chunks, quote_table, sql

FORMAT = "mlops.migration/postgres-bundle"
VERSION = 1
MANIFEST = "manifest.json"
CATALOG = "catalog.json"


class BundleError(PostgresError):
    """A bundle that is missing, corrupt or altered."""


class _Digests:
    """A binary file being written, with its size, md5 and SHA-256."""

    def __init__(self, handle):
        self.handle = handle
        self.md5 = new_md5()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.handle.write(data)
        self.md5.update(data)
        self.sha256.update(data)
        self.size += len(data)

    def record(self):
        return {"bytes": self.size, "md5": self.md5.hexdigest(), "sha256": self.sha256.hexdigest()}


def _digest_file(path):
    md5, sha, size = new_md5(), hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return {"bytes": size, "md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def table_file(name, compress):
    return f"rows/{name}.copy" + (".gz" if compress else "")


def select_rows(table, condition=None):
    """``SELECT <columns> FROM <table> [WHERE <subset>] ORDER BY <key>`` as composable SQL."""
    columns = sql.SQL(", ").join(sql.Identifier(col) for col in table.column_names)
    query = sql.SQL("SELECT {} FROM {} t").format(columns, quote_table(table.name))
    if condition:
        query += sql.SQL(" WHERE ") + sql.SQL(at(condition, "t"))  # built by catalog.subset_predicates
    order = table.primary_key or table.column_names
    query += sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(sql.Identifier(col) for col in order))
    return query


def _finish_file(tmp, path, record, old):
    """Keep ``tmp`` as ``path`` unless the old file has the same content; True when written."""
    if old and old.get("sha256") == record["sha256"] and os.path.exists(path):
        os.unlink(tmp)
        return False
    durable_replace(tmp, path)
    return True


def _write_file(dest, rel, fill, old, check_mode):
    """Write ``<dest>/<rel>`` through ``fill(out)`` (it returns the entry's own fields) into a temporary file,
    kept only when its content differs from ``old``'s; ``(manifest entry, changed)``."""
    path = os.path.join(dest, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as raw:
            digests = _Digests(raw)
            entry = dict(fill(digests), file=rel)
        entry.update(digests.record())
        if check_mode:
            os.unlink(tmp)
            return entry, not (old and old.get("sha256") == entry["sha256"])
        return entry, _finish_file(tmp, path, entry, old)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_table(conn, dest, table, condition, params, compress, old=None, check_mode=False):
    """Dump one table's rows into the bundle; ``(manifest entry, changed)``."""

    def fill(digests):
        out = gzip.GzipFile(filename="", mode="wb", fileobj=digests, compresslevel=1, mtime=0) if compress else digests
        query = sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(select_rows(table, condition))
        with conn.cursor() as cur:
            with cur.copy(query, params) as copy:
                for data in copy_chunks(copy):
                    out.write(data)
            rows = cur.rowcount
        if compress:
            out.close()
        return {"table": table.name, "rows": rows, "columns": table.column_names}

    return _write_file(dest, table_file(table.name, compress), fill, old, check_mode)


def write_object(client, bucket, key, dest, index, old=None, check_mode=False):
    """Download one S3 object into ``objects/<index>``; ``(manifest entry, changed)``."""

    def fill(digests):
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            for chunk in iter(lambda: body.read(CHUNK_SIZE), b""):
                digests.write(chunk)
        finally:
            body.close()
        return {"key": key}

    return _write_file(dest, f"objects/{index:06d}", fill, old, check_mode)


def write_json_if_changed(path, record, check_mode=False):
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    if read_text_if_exists(path) == text:
        return False
    if not check_mode:
        write_text_atomic(path, text)
    return True


def read_manifest(dest):
    try:
        with open(os.path.join(dest, MANIFEST), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def pack(dest, archive):
    """``<dest>.tar`` of the bundle, members in a fixed order with fixed times (the same bundle packs the same)."""
    names = [MANIFEST, signing.SIGNATURE_FILE, CATALOG]
    manifest = read_manifest(dest) or {}
    names += [entry["file"] for entry in manifest.get("tables", [])]
    names += [entry["file"] for entry in manifest.get("objects", [])]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(archive)))
    os.close(fd)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in names:
                path = os.path.join(dest, name)
                if not os.path.exists(path):
                    continue
                info = tar.gettarinfo(path, arcname=name)
                info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
        if os.path.exists(archive) and _digest_file(archive)["sha256"] == _digest_file(tmp)["sha256"]:
            os.unlink(tmp)
            return False
        durable_replace(tmp, archive)
        return True
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Bundle:
    """A checked bundle: its manifest, catalogue, and readers of its rows and objects."""

    def __init__(self, path, manifest, catalog, cleanup=None):
        self.path = path
        self.manifest = manifest
        self.catalog = catalog
        self._cleanup = cleanup

    @property
    def tables(self):
        return {entry["table"]: entry for entry in self.manifest.get("tables", [])}

    @property
    def objects(self):
        return list(self.manifest.get("objects", []))

    def rows(self, table):
        """A binary file object of a table's COPY binary rows (decompressed)."""
        entry = self.tables[table]
        path = os.path.join(self.path, entry["file"])
        return gzip.open(path, "rb") if entry["file"].endswith(".gz") else open(path, "rb")

    def object_path(self, entry):
        return os.path.join(self.path, entry["file"])

    def close(self):
        if self._cleanup:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None


def _safe_members(tar, where):
    for member in tar.getmembers():
        name = os.path.normpath(member.name)
        if not member.isfile() or name.startswith("..") or os.path.isabs(name):
            raise BundleError(f"{where}: member {member.name!r} is not a plain file inside the archive; refused")
        yield member


def open_bundle(path, verify_key=None, work_dir=None):
    """Check a bundle directory or ``.tar`` and return a ``Bundle``; every check runs before anything is read.

    With ``verify_key`` (signing settings) the manifest's signature must match; then the catalogue's and
    every file's size and SHA-256 must match the manifest.
    """
    cleanup = None
    if os.path.isfile(path):
        cleanup = tempfile.mkdtemp(prefix="mlops-postgres-bundle-", dir=work_dir)
        try:
            with tarfile.open(path, "r") as tar:
                for member in _safe_members(tar, path):
                    target = os.path.join(cleanup, os.path.normpath(member.name))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with tar.extractfile(member) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK_SIZE)
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(cleanup, ignore_errors=True)
            raise BundleError(f"{path} is not a readable bundle archive: {exc}") from exc
        directory = cleanup
    elif os.path.isdir(path):
        directory = path
    else:
        raise BundleError(f"no bundle at {path}")
    try:
        return _checked(path, directory, verify_key, cleanup)
    except BaseException:
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise


def _checked(path, directory, verify_key, cleanup):
    manifest_path = os.path.join(directory, MANIFEST)
    try:
        with open(manifest_path, "rb") as handle:
            manifest_bytes = handle.read()
        manifest = json.loads(manifest_bytes)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: no readable {MANIFEST} ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: {MANIFEST} is not a PostgreSQL bundle of this collection (format {manifest.get('format')!r})")
    if verify_key:
        try:
            with open(os.path.join(directory, signing.SIGNATURE_FILE), encoding="utf-8") as handle:
                record = json.load(handle)
        except FileNotFoundError:
            record = None
        except (OSError, ValueError) as exc:
            raise signing.SignatureError(f"{path}: {signing.SIGNATURE_FILE} is unreadable ({exc}); refused") from exc
        signing.verify(manifest_bytes, record, verify_key, what=path)
    entries = [dict(manifest.get("catalog", {}), file=CATALOG)] + manifest.get("tables", []) + manifest.get("objects", [])
    for entry in entries:
        file_path = os.path.join(directory, entry["file"])
        if not os.path.exists(file_path):
            raise BundleError(f"{path}: {entry['file']} is missing")
        found = _digest_file(file_path)
        if found["bytes"] != entry.get("bytes") or found["sha256"] != entry.get("sha256"):
            raise BundleError(f"{path}: {entry['file']} does not match the manifest (SHA-256 {found['sha256'][:16]}..., "
                              f"{found['bytes']} bytes; the manifest says {str(entry.get('sha256'))[:16]}..., "
                              f"{entry.get('bytes')} bytes): the bundle is corrupt or was altered; refused before any write")
    with open(os.path.join(directory, CATALOG), encoding="utf-8") as handle:
        catalog = Catalog.from_dict(json.load(handle))
    return Bundle(directory, manifest, catalog, cleanup)
