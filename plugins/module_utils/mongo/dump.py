# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MongoDB backups in the mongodump layout, written and read by our own code so source and
target server versions may differ. A backup directory holds

    <db>/<collection>.bson[.gz]        the documents, BSON back to back, sorted by _id
    <db>/<collection>.metadata.json    indexes and collection options (extended JSON, as mongodump)
    manifest.json                      per collection: file, md5, document count, the query used

Files are written only when their content changes (gzip without timestamps), so a backup of
unchanged data changes nothing on disk.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import struct
import tempfile
from urllib.parse import unquote

from ansible_collections.mlops.migration.plugins.module_utils.atomic import durable_replace, read_text_if_exists, write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file, new_md5
from ansible_collections.mlops.migration.plugins.module_utils.common import NotFound
from ansible_collections.mlops.migration.plugins.module_utils.mongo.bson_edit import top_level
from ansible_collections.mlops.migration.plugins.module_utils.mongo.connection import (
    explain,
    MongoError,
    PyMongoError,
    raw_codec_options,
)
from ansible_collections.mlops.migration.plugins.module_utils.mongo.query import check_filter, filter_fields, matches
from ansible_collections.mlops.migration.plugins.module_utils.paths import UnsafePath, confined

try:
    from bson import json_util
except ImportError:  # the modules report the missing library
    json_util = None

MANIFEST = "manifest.json"
MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
FORMAT = "mlops.migration/mongo-backup"
MAX_DOCUMENT = 48 * 1024 * 1024  # above MongoDB's 16 MiB limit, below anything absurd
ID_CHUNK = 5000
CHUNK = 1024 * 1024


def extjson(value):
    """Relaxed extended JSON text, stable for equal values."""
    return json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS)


def from_extjson(value, where):
    """Turn a query given in YAML/JSON (``{"$oid": ...}``, ``{"$date": ...}`` allowed) into BSON values."""
    try:
        return json_util.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise MongoError(f"{where} is not valid extended JSON: {exc}") from exc


class CollectionSpec:
    """One collection to back up: ``query`` and, optionally, ``query_from`` another collection's ids."""

    def __init__(self, db, name, query=None, query_from=None):
        self.db, self.name = db, name
        self.query = query or {}
        self.query_from = query_from

    @property
    def full_name(self):
        return f"{self.db}.{self.name}"


def collections_option():
    """Argument spec of the ``collections`` option (doc fragment mlops.migration.mongo.collections)."""
    return dict(type="list", elements="dict", default=[], options=dict(
        db=dict(type="str", required=True),
        name=dict(type="str", required=True),
        query=dict(type="dict"),
        query_from=dict(type="dict", options=dict(
            collection=dict(type="str", required=True),
            field=dict(type="str", required=True),
        )),
    ))


def parse_specs(databases, collections):
    """CollectionSpecs from the module options; MongoError names the first bad entry."""
    specs = []
    for i, entry in enumerate(collections or []):
        where = f"collections[{i}]"
        if not isinstance(entry, dict) or not entry.get("db") or not entry.get("name"):
            raise MongoError(f"{where} needs db and name")
        unknown = set(entry) - {"db", "name", "query", "query_from"}
        if unknown:
            raise MongoError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
        query = from_extjson(entry.get("query") or {}, f"{where}.query")
        if not isinstance(query, dict):
            raise MongoError(f"{where}.query must be a mapping")
        ref = entry.get("query_from")
        if ref is not None:
            if not isinstance(ref, dict) or not ref.get("collection") or not ref.get("field"):
                raise MongoError(f"{where}.query_from needs collection and field")
            known = {s.name for s in specs if s.db == entry["db"]}
            if ref["collection"] not in known:
                raise MongoError(f"{where}.query_from names {entry['db']}.{ref['collection']}, "
                                 f"which must be listed before {entry['db']}.{entry['name']}")
        specs.append(CollectionSpec(entry["db"], entry["name"], query, ref))
    seen = {s.full_name for s in specs}
    for db in databases or []:
        specs.append(CollectionSpec(db, None))  # expanded once connected
    if len(seen) != len([s for s in specs if s.name]):
        raise MongoError("a collection is listed twice in collections")
    return specs


def expand(client, specs):
    """Replace whole-database entries with one spec per collection (system collections left out)."""
    out, seen = [], {s.full_name for s in specs if s.name}
    for spec in specs:
        if spec.name:
            out.append(spec)
            continue
        try:
            names = client[spec.db].list_collection_names()
        except PyMongoError as exc:
            raise MongoError(explain(exc, "the source", f"database {spec.db}")) from exc
        out.extend(CollectionSpec(spec.db, n) for n in sorted(names)
                   if not n.startswith("system.") and f"{spec.db}.{n}" not in seen)
    return out


class _HashingWriter:
    """File-like sink that md5s and counts what is written (and writes it unless ``fileobj`` is None)."""

    def __init__(self, fileobj):
        self.fileobj, self.md5, self.size = fileobj, new_md5(), 0

    def write(self, data):
        self.md5.update(data)
        self.size += len(data)
        if self.fileobj is not None:
            self.fileobj.write(data)
        return len(data)

    def flush(self):
        if self.fileobj is not None:
            self.fileobj.flush()


def _queries(spec, selected):
    if not spec.query_from:
        yield spec.query
        return
    ids = selected[(spec.db, spec.query_from["collection"])]
    for start in range(0, len(ids), ID_CHUNK):
        part = {spec.query_from["field"]: {"$in": ids[start:start + ID_CHUNK]}}
        yield {"$and": [spec.query, part]} if spec.query else part


def _metadata(collection, spec):
    indexes = []
    for index in collection.list_indexes():
        index = dict(index)
        index.pop("ns", None)
        indexes.append(index)
    options = {}
    for info in collection.database.list_collections(filter={"name": spec.name}):
        options = dict(info.get("options") or {})
    return extjson({"collectionName": spec.name, "type": "collection", "options": options,
                    "indexes": indexes}) + "\n"


def file_name(name):
    """A database or collection name as one path component, encoded as mongodump encodes it.

    ``%`` and the separators ``/`` and ``\\`` are percent-encoded, and so is a leading ``.``, so
    a collection called ``../../x`` is the file ``%2E.%2F..%2Fx.bson`` inside its database's folder.
    """
    text = str(name).replace("%", "%25").replace("/", "%2F").replace("\\", "%5C").replace("\0", "%00")
    return "%2E" + text[1:] if text.startswith(".") else text


def backup_collection(client, spec, dest, compress, selected, keep_ids, check_mode, batch_size=1000):
    """Dump one collection; returns its manifest entry plus ``changed``."""
    folder = file_name(spec.db)
    rel = f"{folder}/{file_name(spec.name)}.bson" + (".gz" if compress else "")
    path = confined(dest, rel, "backup file")
    meta_rel = f"{folder}/{file_name(spec.name)}.metadata.json"
    collection = client[spec.db].get_collection(spec.name, codec_options=raw_codec_options())
    ids = [] if keep_ids else None
    fd = tmp = None
    try:
        if not check_mode:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=os.path.dirname(path))
        with os.fdopen(fd, "wb") if tmp else contextlib.nullcontext() as out:
            sink = _HashingWriter(out)
            stream = gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0) if compress else sink
            count = 0
            for query in _queries(spec, selected):
                for doc in collection.find(query, batch_size=batch_size).sort("_id", 1):
                    stream.write(doc.raw)
                    count += 1
                    if ids is not None:
                        ids.append(doc["_id"])
            if compress:
                stream.close()
        metadata = _metadata(collection, spec)
    except PyMongoError as exc:
        _discard(tmp)
        raise MongoError(explain(exc, "the source", f"collection {spec.full_name}")) from exc
    except OSError as exc:
        _discard(tmp)
        raise MongoError(f"cannot write {path}: {exc.strerror or exc}") from exc
    digest = sink.md5.hexdigest()
    same = os.path.isfile(path) and md5_file(path)[0] == digest
    if same or check_mode:
        _discard(tmp)
    else:
        durable_replace(tmp, path)
    meta_path = confined(dest, meta_rel, "backup file")
    meta_same = read_text_if_exists(meta_path) == metadata
    if not meta_same and not check_mode:
        write_text_atomic(meta_path, metadata)
    if ids is not None:
        selected[(spec.db, spec.name)] = ids
    entry = {"db": spec.db, "collection": spec.name, "file": rel, "md5": digest, "bytes": sink.size,
             "count": count, "metadata": meta_rel, "metadata_md5": hashlib.md5(metadata.encode()).hexdigest(),
             "query": extjson(spec.query)}
    if spec.query_from:
        entry["query_from"] = dict(spec.query_from)
    return entry, not (same and meta_same)


def select_documents(client, specs, batch_size=1000):
    """``(db.name, decoded document)`` of every document the specs back up, read from the server as
    ``backup`` reads them (``query_from`` following the ids selected before), without writing anything."""
    specs = expand(client, specs)
    referenced = {(s.db, s.query_from["collection"]) for s in specs if s.query_from}
    selected = {}
    for spec in specs:
        ids = [] if (spec.db, spec.name) in referenced else None
        try:
            for query in _queries(spec, selected):
                for doc in client[spec.db][spec.name].find(query, batch_size=batch_size).sort("_id", 1):
                    if ids is not None:
                        ids.append(doc["_id"])
                    yield spec.full_name, doc
        except PyMongoError as exc:
            raise MongoError(explain(exc, "the source", f"collection {spec.full_name}")) from exc
        if ids is not None:
            selected[(spec.db, spec.name)] = ids


def backup_documents(root, collections=None):
    """``(db.name, decoded document)`` of every document of a backup (only the ``collections`` named, when
    given), checked against its manifest first."""
    import bson  # pylint: disable=import-outside-toplevel  # pymongo's

    entries = [e for e in read_manifest(root)
               if collections is None or f"{e['db']}.{e['collection']}" in collections]
    check_backup(root, entries)
    for entry in entries:
        # the file is closed when the caller stops early too: closing this generator exits the with
        with documents(root, entry) as docs:  # pylint: disable=contextmanager-generator-missing-cleanup
            for raw in docs:
                yield f"{entry['db']}.{entry['collection']}", bson.decode(raw)


def _discard(tmp):
    if tmp and os.path.exists(tmp):
        os.unlink(tmp)


def render_manifest(entries):
    return json.dumps({"format": FORMAT, "version": 1, "collections": entries}, indent=1, sort_keys=True) + "\n"


def backup(client, specs, dest, compress=True, check_mode=False, batch_size=1000):
    """Back up every spec into ``dest``; returns (entries, changed_names, manifest_changed)."""
    specs = expand(client, specs)
    referenced = {(s.db, s.query_from["collection"]) for s in specs if s.query_from}
    selected, entries, changed = {}, [], []
    for spec in specs:
        entry, did_change = backup_collection(client, spec, dest, compress, selected,
                                              (spec.db, spec.name) in referenced, check_mode, batch_size)
        entries.append(entry)
        if did_change:
            changed.append(spec.full_name)
    text = render_manifest(entries)
    manifest_path = os.path.join(dest, MANIFEST)
    old = read_text_if_exists(manifest_path)
    manifest_changed = old != text
    if manifest_changed and not check_mode:
        os.makedirs(dest, exist_ok=True)
        if old:
            _remove_stale(dest, json.loads(old).get("collections", []), entries)
        write_text_atomic(manifest_path, text)
    return entries, changed, manifest_changed


def _remove_stale(dest, old_entries, entries):
    """Delete the files an earlier backup listed that this one does not; only files inside ``dest``."""
    keep = {e["file"] for e in entries} | {e["metadata"] for e in entries}
    for entry in old_entries if isinstance(old_entries, list) else []:
        for rel in (entry.get("file"), entry.get("metadata")) if isinstance(entry, dict) else ():
            if not isinstance(rel, str) or rel in keep:
                continue
            try:
                path = confined(dest, rel, "backup file")
            except UnsafePath:
                continue  # an old manifest naming a path outside the backup: nothing there is ours
            if os.path.isfile(path):
                os.unlink(path)


# Reading a backup -------------------------------------------------------------------------------


def read_manifest(root, plain_dump=False):
    """The manifest's entries, each with its md5, count and paths checked to stay inside ``root``.

    A directory without a manifest is refused, unless ``plain_dump``: then it is taken as a plain
    mongodump directory, its files listed and restored unverified.
    """
    path = os.path.join(root, MANIFEST)
    text = read_text_if_exists(path)
    if text is None:
        if not plain_dump:
            raise MongoError(f"{root} has no {MANIFEST}, so nothing in it can be verified; nothing was restored "
                             "(restore a plain mongodump directory with plain_dump=true)")
        return _discover(root)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MongoError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("collections"), list):
        raise MongoError(f"{path} is not a mongo_backup manifest (format {FORMAT} expected)")
    for i, entry in enumerate(data["collections"]):
        missing = {"db", "collection", "file", "md5", "count"} - set(entry if isinstance(entry, dict) else {})
        if missing:
            raise MongoError(f"{path}: collections[{i}] lacks {', '.join(sorted(missing))}")
        _check_entry(root, path, i, entry)
    return data["collections"]


def _check_entry(root, path, index, entry):
    """Each entry names its files inside the backup, and gives an md5 (and count) for each."""
    where = f"{path}: collections[{index}] ({entry.get('db')}.{entry.get('collection')})"
    for key in ("md5",) + (("metadata_md5",) if entry.get("metadata") else ()):
        value = entry.get(key)
        if not isinstance(value, str) or not MD5_HEX.match(value):
            raise MongoError(f"{where}: {key} is {value!r}, not an md5; the backup cannot be verified, nothing was "
                             "restored" + (" (back it up again with this version)" if key == "metadata_md5" else ""))
    if not isinstance(entry["count"], int) or isinstance(entry["count"], bool) or entry["count"] < 0:
        raise MongoError(f"{where}: count is {entry['count']!r}, not a document count; nothing was restored")
    for key in ("file", "metadata"):
        if entry.get(key) is None and key == "metadata":
            continue
        try:
            confined(root, entry[key], key)
        except UnsafePath as exc:
            raise MongoError(f"{where}: {exc}; nothing was restored") from exc


def _discover(root):
    entries = []
    if not os.path.isdir(root):
        raise MongoError(f"the backup {root} does not exist")
    for db in sorted(os.listdir(root)):
        folder = os.path.join(root, db)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            for suffix in (".bson", ".bson.gz"):
                if name.endswith(suffix):
                    coll = unquote(name[:-len(suffix)])  # mongodump percent-encodes names
                    entries.append({"db": db, "collection": coll, "file": f"{db}/{name}", "md5": None,
                                    "count": None, "metadata": f"{db}/{coll}.metadata.json"})
    if not entries:
        raise MongoError(f"{root} holds no {MANIFEST} and no <db>/<collection>.bson files")
    return entries


class _HashingReader:
    def __init__(self, fileobj):
        self.fileobj, self.md5 = fileobj, new_md5()

    def read(self, size=-1):
        data = self.fileobj.read(size)
        self.md5.update(data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readable(self):
        return True


def iter_raw(stream, where):
    """Yield each document's raw bytes from a stream of BSON documents; MongoError on a torn one.

    The stream is read in 1 MiB blocks and documents are sliced out of them.
    """
    header = struct.Struct("<i")
    buf, off, index = b"", 0, 0
    while True:
        if len(buf) - off < 4:
            buf, off = buf[off:] + stream.read(CHUNK), 0
            if not buf:
                return
            if len(buf) < 4:
                raise MongoError(f"{where}: truncated after {index} documents (partial length header)")
        (size,) = header.unpack_from(buf, off)
        if size < 5 or size > MAX_DOCUMENT:
            raise MongoError(f"{where}: document {index} has an impossible length {size}; the file is corrupt")
        if len(buf) - off < size:
            buf, off = buf[off:], 0
            while len(buf) < size:
                more = stream.read(max(CHUNK, size - len(buf)))
                if not more:
                    raise MongoError(f"{where}: document {index} is truncated")
                buf += more
        end = off + size
        if buf[end - 1] != 0:
            raise MongoError(f"{where}: document {index} is corrupt (no terminating zero byte)")
        yield buf[off:end]
        off = end
        index += 1


@contextlib.contextmanager
def documents(root, entry):
    """``with documents(root, entry) as docs:`` iterates the raw bytes of the entry's documents."""
    path = os.path.join(root, entry["file"])
    with open(path, "rb") as raw:
        if entry["file"].endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield iter_raw(stream, entry["file"])
        else:
            yield iter_raw(raw, entry["file"])


def check_backup(root, entries):
    """Refuse the backup, naming every bad file, unless each file's md5 and document count match,
    and each metadata file its ``metadata_md5``."""
    problems = []
    for entry in entries:
        if entry.get("metadata_md5"):
            text = read_text_if_exists(os.path.join(root, entry["metadata"]))
            if text is None:
                problems.append(f"{entry['metadata']}: missing")
            elif hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest() != entry["metadata_md5"]:
                problems.append(f"{entry['metadata']}: md5 differs from the manifest's")
        path = os.path.join(root, entry["file"])
        if not os.path.isfile(path):
            problems.append(f"{entry['file']}: missing")
            continue
        try:
            with open(path, "rb") as raw:
                reader = _HashingReader(raw)
                stream = gzip.GzipFile(fileobj=reader, mode="rb") if path.endswith(".gz") else reader
                count = sum(1 for _doc in iter_raw(stream, entry["file"]))
                while reader.read(CHUNK):
                    pass
        except (OSError, EOFError, gzip.BadGzipFile, MongoError) as exc:
            problems.append(f"{entry['file']}: {exc}")
            continue
        if entry["md5"] is not None and reader.md5.hexdigest() != entry["md5"]:
            problems.append(f"{entry['file']}: md5 {reader.md5.hexdigest()}, the manifest says {entry['md5']}")
        elif entry["count"] is not None and count != entry["count"]:
            problems.append(f"{entry['file']}: {count} documents, the manifest says {entry['count']}")
    if problems:
        raise MongoError(f"the backup {root} does not match its manifest; nothing was restored: "
                         + "; ".join(problems[:20]))


def read_metadata(root, entry):
    """(options, indexes) from the entry's metadata file; empty when there is none."""
    text = read_text_if_exists(os.path.join(root, entry["metadata"])) if entry.get("metadata") else None
    if not text:
        return {}, []
    try:
        data = json_util.loads(text)
    except ValueError as exc:
        raise MongoError(f"{entry['metadata']} is not valid extended JSON: {exc}") from exc
    return dict(data.get("options") or {}), list(data.get("indexes") or [])


def field_values(root, collection, field="_id", query=None):
    """The values (as strings) of the top-level ``field`` of every document of ``collection``
    (``db.name``) in the backup at ``root`` that matches the MongoDB filter ``query`` (all when None),
    checked against its manifest first: what another step selects by (the events of the tasks a
    MongoDB step moves, with the restore's own filter)."""
    import bson  # pylint: disable=import-outside-toplevel  # pymongo's; needed only here and when restoring

    if query is not None:
        check_filter(query, "tasks_filter")
        query = from_extjson(query, "tasks_filter")
    entries = [e for e in read_manifest(root) if f"{e['db']}.{e['collection']}" == collection]
    if not entries:
        raise NotFound(f"the backup {root} holds no collection {collection}")
    check_backup(root, entries)
    values = set()
    names = sorted({field.encode("utf-8")} | {f.encode("utf-8") for f in (filter_fields(query) if query else ())})
    for entry in entries:
        with documents(root, entry) as docs:
            for raw in docs:
                found = bson.decode(top_level(raw, names))
                if field in found and (query is None or matches(found, query)):
                    values.add(str(found[field]))
    return values
