# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring a backup into a MongoDB target, and verifying it there.

Per collection the documents stream from the backup file through filter, field removal and
URL rewriting (documents that none of these touch pass on as their original bytes), then go
to the target in batches. Before a batch is inserted the target is asked which of its ``_id``s
it holds already: identical documents are skipped without a write, so a re-run is cheap, and
a different document under the same ``_id`` (a collision, e.g. when consolidating servers) is
handled by ``on_duplicate``. New documents go in with one unordered ``insert_many``; when it
reports errors, duplicate-key errors are counted as skipped and every other failed document
is retried alone, so each failure is recorded with its reason and nothing else is lost.
"""

from __future__ import annotations

import hashlib
import struct
import time

from ansible_collections.mlops.migration.plugins.module_utils.counts import Counts
from ansible_collections.mlops.migration.plugins.module_utils.mongo.bson_edit import (
    BsonError,
    Editor,
    plan,
    top_level,
)
from ansible_collections.mlops.migration.plugins.module_utils.mongo.query import check_filter, filter_fields, matches
from ansible_collections.mlops.migration.plugins.module_utils.mongo.connection import (
    codec_options,
    existing,
    explain,
    id_key,
    MongoError,
    PyMongoError,
    raw_codec_options,
)
from ansible_collections.mlops.migration.plugins.module_utils.mongo.dump import documents, extjson, from_extjson
from ansible_collections.mlops.migration.plugins.module_utils.rewrite import Rewriter, parse_rules

try:
    import bson
    from bson.raw_bson import RawBSONDocument
    from pymongo.errors import BulkWriteError, DuplicateKeyError
except ImportError:  # the modules report the missing library

    class BulkWriteError(PyMongoError):
        """Stand-in so ``except`` clauses stay valid without pymongo."""

    class DuplicateKeyError(PyMongoError):
        """Stand-in so ``except`` clauses stay valid without pymongo."""

DUPLICATE_KEY = 11000
POLICIES = ("skip", "replace", "fail")
LISTED = 50  # collisions and failures listed per collection; all are counted


def show_id(value):
    """An ``_id`` as reports print it."""
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else extjson(value)


class Settings:
    """What happens to one collection's documents on the way in."""

    def __init__(self, query=None, unset_fields=(), rules=(), on_duplicate="skip"):
        self.query = query
        self.unset_fields = tuple(unset_fields)
        self.rewriter = Rewriter(rules)
        self.on_duplicate = on_duplicate


def parse_settings(collections, rewrite, on_duplicate):
    """The SettingsTable for the module options; MongoError names a bad entry."""
    if on_duplicate not in POLICIES:
        raise MongoError(f"on_duplicate must be one of {', '.join(POLICIES)}")
    common = parse_rules(rewrite, "rewrite")
    per = {}
    for name, entry in (collections or {}).items():
        where = f"collections[{name}]"
        if "." not in name:
            raise MongoError(f"{where}: name collections as <db>.<collection>")
        entry = entry or {}
        unknown = set(entry) - {"filter", "unset_fields", "rewrite", "on_duplicate"}
        if unknown:
            raise MongoError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
        query = entry.get("filter")
        if query is not None:
            check_filter(query, f"{where}.filter")  # before $oid/$date become values (and $regex a pattern)
            query = from_extjson(query, f"{where}.filter")
        fields = entry.get("unset_fields") or []
        if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
            raise MongoError(f"{where}.unset_fields must be a list of dotted field paths")
        policy = entry.get("on_duplicate", on_duplicate)
        if policy not in POLICIES:
            raise MongoError(f"{where}.on_duplicate must be one of {', '.join(POLICIES)}")
        per[name] = Settings(query, fields, common + parse_rules(entry.get("rewrite"), f"{where}.rewrite"), policy)

    return SettingsTable(per, Settings(rules=common, on_duplicate=on_duplicate))


class SettingsTable:
    """``table(name)`` is the Settings of collection ``<db>.<collection>``; ``named`` are those given explicitly."""

    def __init__(self, per, default):
        self.per, self.default = per, default
        self.named = set(per)

    def __call__(self, full_name):
        return self.per.get(full_name, self.default)


class Report(dict):
    """Counts for one collection, as the modules return them."""

    def __init__(self, name):
        super().__init__(collection=name, found=0, inserted=0, skipped_duplicates=0, collisions=0, replaced=0,
                         filtered_out=0, rewritten=0, unset=0, failed=0, failures=[], collided=[],
                         indexes_created=[], seconds=0.0)

    def fail(self, ident, reason):
        self["failed"] += 1
        if len(self["failures"]) < LISTED:
            self["failures"].append({"id": show_id(ident), "reason": reason})

    def collide(self, ident, outcome):
        self["collisions"] += 1
        if len(self["collided"]) < LISTED:
            self["collided"].append({"id": show_id(ident), "outcome": outcome})


def collection_counts(report, dry_run=False):
    """A collection's restore (or, with ``expected``, verification) report in the counts vocabulary."""
    failures = [{"object": f"{report['collection']}: {f['id']}", "reason": f["reason"]} for f in report["failures"]]
    if "expected" in report:  # state=verified
        return Counts(found=report["found"], filtered_out=report["filtered_out"], verified=report["present"],
                      failed=report["missing"] + report["differing"], seconds=report.get("seconds"), failures=failures)
    return Counts(dry_run=dry_run, found=report["found"], filtered_out=report["filtered_out"],
                  copied=report["inserted"] + report["replaced"], present=report["skipped_duplicates"],
                  failed=report["failed"], seconds=report.get("seconds"), failures=failures)


class Transform:
    """Filter, unset and rewrite for one collection; ``prepare`` returns what to insert, or None.

    The filter reads only the top-level fields it names; removals and rewrites edit the encoded
    document (module_utils/mongo/bson_edit.py), so no document is decoded whole.
    """

    def __init__(self, settings, report):
        self.settings, self.report = settings, report
        self.codec = codec_options()
        self.raw_codec = raw_codec_options()
        self.query = settings.query
        self.fields = sorted(f.encode("utf-8") for f in filter_fields(self.query)) if self.query is not None else ()
        rewriter = settings.rewriter
        self.editor = Editor(plan(settings.unset_fields, rewriter.path_rules), rewriter.everywhere, rewriter.needles)

    def prepare(self, raw):
        report, editor = self.report, self.editor
        report["found"] += 1
        if self.query is not None:
            try:
                fields = bson.decode(top_level(raw, self.fields), self.codec)
            except (BsonError, bson.errors.InvalidBSON) as exc:
                raise MongoError(f"document {report['found']} of {report['collection']} is not valid BSON: {exc}") \
                    from exc
            if not matches(fields, self.query):
                report["filtered_out"] += 1
                return None
        if editor.tree is not None or (editor.everywhere and self.settings.rewriter.may_change(raw)):
            unset, rewritten = editor.unset, editor.rewritten
            try:
                edited = editor.edit(raw)
            except (BsonError, IndexError, struct.error) as exc:
                raise MongoError(f"document {report['found']} of {report['collection']} is not valid BSON: {exc}") \
                    from exc
            report["unset"] += editor.unset - unset
            report["rewritten"] += editor.rewritten - rewritten
            if edited is not None:
                raw = edited
        return RawBSONDocument(raw, self.raw_codec)


def doc_id(doc):
    """The ``_id`` of a prepared document, without decoding the rest of it."""
    if isinstance(doc, RawBSONDocument):
        return bson.decode(top_level(doc.raw, (b"_id",)), codec_options())["_id"]
    return doc["_id"]


def encoded(doc):
    return doc.raw if isinstance(doc, RawBSONDocument) else bson.encode(doc)


SCAN_LIMIT = 500_000  # documents whose md5s a restore may keep in memory (about 100 bytes each)
SAME = object()  # what TargetLookup.present gives for a document the target holds byte for byte


class TargetLookup:
    """Which documents of a batch the target collection holds, and theirs.

    By default each batch is looked up (one ``_id`` range or ``$in`` query: an index scan on
    MongoDB). When the collection holds documents already but not many more than the backup
    brings (a re-run, a resumed restore: at most twice the backup's count and SCAN_LIMIT), it is
    read once instead and each document's md5 kept by ``_id``; a batch then costs no query but
    for a document whose bytes differ. Servers that answer those queries by scanning the whole
    collection (FerretDB v1) so read it once per restore, not once per batch.
    """

    def __init__(self, collection, expected=None):
        """``expected``: how many documents the backup brings (None: look up every batch, read nothing now)."""
        self.collection, self.digests, self.empty = collection, None, False
        if expected is None:
            return
        self.empty = collection.find_one({}, {"_id": 1}) is None
        if self.empty:
            return
        cap, digests = min(SCAN_LIMIT, 2 * max(expected, 1000)), {}
        cursor = collection.find({}, batch_size=1000)  # (a count first would cost a second pass on some servers)
        try:
            for doc in cursor:
                digests[id_key(doc["_id"])] = hashlib.md5(encoded(doc)).digest()
                if len(digests) > cap:
                    return  # much larger than the backup: per-batch queries read less
        finally:
            cursor.close()
        self.digests = digests

    def present(self, batch, ids):
        """``{id_key: SAME or their document}`` for the batch's documents the target holds."""
        if self.digests is None:
            return existing(self.collection, ids, full=True)
        found, fetch = {}, []
        for doc, ident in zip(batch, ids):
            digest = self.digests.get(id_key(ident))
            if digest is None:
                continue
            if hashlib.md5(encoded(doc)).digest() == digest:
                found[id_key(ident)] = SAME
            else:
                fetch.append(ident)
        if fetch:  # the bytes differ: theirs, to compare field by field (or to report a collision)
            found.update(existing(self.collection, fetch, full=True))
        return found


def same_document(ours, theirs):
    """Whether the target's document equals the one we would write (field order aside)."""
    if theirs is SAME:
        return True
    theirs = encoded(theirs)
    if encoded(ours) == theirs:
        return True
    codec = codec_options()
    return bson.decode(encoded(ours), codec) == bson.decode(theirs, codec)


class Loader:
    """Writes prepared documents to one target collection in batches, as the module docs describe.

    With ``precheck``, a batch's ``_id``s are looked up (``target``, a TargetLookup) before its
    insert while lookups find something: not in a collection that held no documents when the
    restore began, and, when each lookup is a query, not after a batch of which none was present
    (a resumed restore has left a prefix of the backup's ``_id`` order) until an insert meets a
    duplicate key again; check mode looks up every batch. A duplicate an insert meets is resolved
    one by one, so a skipped lookup skips no check.
    """

    def __init__(self, collection, settings, report, check_mode=False, precheck=True, target=None):
        self.collection = collection  # reads come back faster as RawBSONDocument (restore_collection)
        self.settings, self.report = settings, report
        self.check_mode, self.precheck = check_mode, precheck
        self.target = target or TargetLookup(collection)
        self.lookup = precheck and not self.target.empty

    def load(self, batch):
        report = self.report
        ids = [doc_id(d) for d in batch]
        present = self.target.present(batch, ids) if self.lookup else {}
        if self.lookup and not present and not self.check_mode and self.target.digests is None:
            self.lookup = False  # (check mode writes nothing to meet; a digest lookup costs nothing)
        new = []
        for doc, ident in zip(batch, ids):
            theirs = present.get(id_key(ident))
            if theirs is None:
                new.append(doc)
            elif same_document(doc, theirs):
                report["skipped_duplicates"] += 1
            else:
                self._collision(doc)
        if not new:
            return
        if self.check_mode:
            report["inserted"] += len(new)
            return
        try:
            self.collection.insert_many(new, ordered=False)
            report["inserted"] += len(new)
        except BulkWriteError as exc:
            report["inserted"] += exc.details.get("nInserted", 0)
            retry = []
            for error in exc.details.get("writeErrors", []):
                doc = new[error["index"]]
                if error.get("code") == DUPLICATE_KEY:
                    self.lookup = self.precheck
                    self._duplicate(doc, error)
                else:
                    retry.append(doc)
            for doc in retry:
                self._insert_one(doc)

    def _insert_one(self, doc):
        try:
            self.collection.insert_one(doc)
            self.report["inserted"] += 1
        except DuplicateKeyError as exc:
            self._duplicate(doc, exc.details or {})
        except PyMongoError as exc:
            self.report.fail(doc_id(doc), str(exc))

    def _duplicate(self, doc, error):
        """A duplicate-key error from the server: another writer, or a unique index other than ``_id``."""
        pattern = error.get("keyPattern") or {}
        theirs = None
        if not pattern or list(pattern) == ["_id"]:
            theirs = existing(self.collection, [doc_id(doc)], full=True).get(id_key(doc_id(doc)))
        if theirs is None:  # the key taken is another unique index's
            taken = extjson(error.get("keyValue") or pattern) if pattern else "a unique index"
            self.report["skipped_duplicates"] += 1
            self.report.collide(doc_id(doc), f"skipped: unique index key {taken} is taken by another document "
                                             "at the target")
        elif same_document(doc, theirs):
            self.report["skipped_duplicates"] += 1
        else:
            self._collision(doc)

    def _collision(self, doc):
        policy, report = self.settings.on_duplicate, self.report
        if policy == "skip":
            report["skipped_duplicates"] += 1
            report.collide(doc_id(doc), "kept the target's document (on_duplicate=skip)")
        elif policy == "replace":
            if not self.check_mode:
                try:
                    self.collection.replace_one({"_id": doc_id(doc)}, doc)
                except PyMongoError as exc:
                    report.fail(doc_id(doc), f"replace failed: {exc}")
                    return
            report["replaced"] += 1
            report.collide(doc_id(doc), "replaced the target's document (on_duplicate=replace)")
        else:
            report.collide(doc_id(doc), "failed (on_duplicate=fail)")
            report.fail(doc_id(doc), "a different document with this _id exists at the target (on_duplicate=fail)")


def batches(items, size):
    batch = []
    for item in items:
        if item is None:
            continue
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def restore_indexes(collection, indexes, check_mode):
    """Create the backup's indexes that the target lacks (by name); returns their names."""
    have = set(collection.index_information())
    created = []
    for index in indexes:
        name = index.get("name")
        if not name or name == "_id_" or name in have:
            continue
        options = {k: v for k, v in index.items() if k not in ("v", "key", "ns", "name")}
        if not check_mode:
            collection.create_index(list(index["key"].items()), name=name, **options)
        created.append(name)
    return created


def ensure_collection(database, name, options, check_mode):
    """Create the collection with its backed-up options (capped, validator...) when it is new."""
    if not options or name in database.list_collection_names(filter={"name": name}):
        return False
    if not check_mode:
        database.create_collection(name, **options)
    return True


def restore_collection(client, root, entry, target_db, settings, metadata, batch_size=1000, check_mode=False,
                       precheck=True, indexes=True, indexes_first=False, on_batch=None):
    """Restore one manifest entry; returns its Report. ``on_batch(report)`` is called after every batch."""
    started = time.monotonic()
    name = f"{entry['db']}.{entry['collection']}"
    report = Report(name)
    options, index_specs = metadata
    database = client[target_db]
    collection = database.get_collection(entry["collection"], codec_options=raw_codec_options())
    where = f"collection {target_db}.{entry['collection']}"
    try:
        created = ensure_collection(database, entry["collection"], options, check_mode)
        if indexes and indexes_first:
            report["indexes_created"] = restore_indexes(collection, index_specs, check_mode)
        transform = Transform(settings, report)
        target = TargetLookup(collection, entry.get("count") or 0) if precheck else None
        loader = Loader(collection, settings, report, check_mode, precheck, target)
        with documents(root, entry) as raw_docs:
            for batch in batches((transform.prepare(raw) for raw in raw_docs), batch_size):
                loader.load(batch)
                if on_batch is not None:
                    on_batch(report)
        if indexes and not indexes_first:
            report["indexes_created"] = restore_indexes(collection, index_specs, check_mode)
    except PyMongoError as exc:
        raise MongoError(explain(exc, "the target", where)) from exc
    report["created"] = created
    report["seconds"] = round(time.monotonic() - started, 3)
    return report


def verify_collection(client, root, entry, target_db, settings, batch_size=1000):
    """Check that every document the backup should have put at the target is there and equal."""
    started = time.monotonic()
    report = Report(f"{entry['db']}.{entry['collection']}")
    report.update(expected=0, present=0, missing=0, differing=0)
    collection = client[target_db].get_collection(entry["collection"], codec_options=raw_codec_options())
    transform = Transform(settings, report)
    try:
        target = TargetLookup(collection, entry.get("count") or 0)
        with documents(root, entry) as raw_docs:
            for batch in batches((transform.prepare(raw) for raw in raw_docs), batch_size):
                ids = [doc_id(d) for d in batch]
                present = target.present(batch, ids)
                for doc, ident in zip(batch, ids):
                    report["expected"] += 1
                    theirs = present.get(id_key(ident))
                    if theirs is None:
                        report["missing"] += 1
                        report.fail(ident, "missing at the target")
                        continue
                    report["present"] += 1
                    if same_document(doc, theirs):
                        continue
                    if settings.on_duplicate == "skip":
                        report.collide(ident, "differs at the target (kept there by on_duplicate=skip)")
                    else:
                        report["differing"] += 1
                        report.fail(ident, "differs at the target")
    except PyMongoError as exc:
        raise MongoError(explain(exc, "the target", f"collection {target_db}.{entry['collection']}")) from exc
    report["seconds"] = round(time.monotonic() - started, 3)
    return report
