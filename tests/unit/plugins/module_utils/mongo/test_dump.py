"""Unit tests of reading backups (module_utils/mongo/dump.py) without a server."""

import io
import json
import os

import bson
import pytest

from ansible_collections.mlops.migration.plugins.module_utils.mongo import dump as md
from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.mongo.connection import MongoError

DOCS = [bson.encode({"i": i, "s": "x" * (i * 37 % 5000)}) for i in range(3000)]


def test_iter_raw_slices_documents_across_read_blocks():
    big = bson.encode({"b": b"y" * (3 << 20)})
    data = b"".join(DOCS)
    assert list(md.iter_raw(io.BytesIO(data), "f")) == DOCS
    assert list(md.iter_raw(io.BytesIO(big + DOCS[0] + big), "f")) == [big, DOCS[0], big]


@pytest.mark.parametrize("data,complaint", [
    (b"".join(DOCS[:3])[:-10], "document 2 is truncated"),
    (b"".join(DOCS[:3]) + b"\x05\x00", "truncated after 3 documents"),
    (b"\xff\xff\xff\x7f" + b"\x00" * 10, "impossible length"),
    (DOCS[0][:-1] + b"\x01", "no terminating zero byte"),
])
def test_iter_raw_names_the_damage(data, complaint):
    with pytest.raises(MongoError, match=complaint):
        list(md.iter_raw(io.BytesIO(data), "db/coll.bson"))


def write_backup(root, docs, count=None, md5=None):
    os.makedirs(os.path.join(root, "db"))
    path = os.path.join(root, "db", "c.bson")
    with open(path, "wb") as handle:
        handle.write(b"".join(docs))
    with open(os.path.join(root, "db", "c.metadata.json"), "w", encoding="utf-8") as handle:
        handle.write("{}\n")
    entry = {"db": "db", "collection": "c", "file": "db/c.bson", "md5": md5 or md5_file(path)[0],
             "count": len(docs) if count is None else count, "metadata": "db/c.metadata.json",
             "metadata_md5": md5_file(os.path.join(root, "db", "c.metadata.json"))[0]}
    with open(os.path.join(root, md.MANIFEST), "w", encoding="utf-8") as handle:
        handle.write(md.render_manifest([entry]))
    return entry


def test_check_backup_accepts_a_good_backup_and_names_bad_files(tmp_path):
    entry = write_backup(str(tmp_path / "good"), DOCS[:10])
    md.check_backup(str(tmp_path / "good"), md.read_manifest(str(tmp_path / "good")))
    assert md.read_metadata(str(tmp_path / "good"), entry) == ({}, [])
    write_backup(str(tmp_path / "count"), DOCS[:10], count=11)
    with pytest.raises(MongoError, match="db/c.bson: 10 documents, the manifest says 11"):
        md.check_backup(str(tmp_path / "count"), md.read_manifest(str(tmp_path / "count")))
    write_backup(str(tmp_path / "md5"), DOCS[:10], md5="0" * 32)
    with pytest.raises(MongoError, match="db/c.bson: md5 .* the manifest says 0{32}"):
        md.check_backup(str(tmp_path / "md5"), md.read_manifest(str(tmp_path / "md5")))


def test_a_mongodump_directory_without_manifest_is_listed_unverified(tmp_path):
    root = tmp_path / "dump"
    (root / "backend").mkdir(parents=True)
    (root / "backend" / "task.bson").write_bytes(b"".join(DOCS[:2]))
    (root / "backend" / "task.metadata.json").write_text(json.dumps({"indexes": [{"key": {"a": 1}, "name": "a_1"}]}))
    with pytest.raises(MongoError, match="has no manifest.json, so nothing in it can be verified"):
        md.read_manifest(str(root))  # unless asked for, a directory without a manifest is refused
    entries = md.read_manifest(str(root), plain_dump=True)
    assert [(e["collection"], e["md5"], e["count"]) for e in entries] == [("task", None, None)]
    md.check_backup(str(root), entries)
    assert md.read_metadata(str(root), entries[0])[1] == [{"key": {"a": 1}, "name": "a_1"}]


@pytest.mark.parametrize("text,complaint", [
    ("{", "not valid JSON"), ('{"format": "other"}', "not a mongo_backup manifest"),
    (json.dumps({"format": md.FORMAT, "collections": [{"db": "x"}]}), "lacks collection, count, file, md5")])
def test_a_bad_manifest_is_refused(tmp_path, text, complaint):
    (tmp_path / md.MANIFEST).write_text(text)
    with pytest.raises(MongoError, match=complaint):
        md.read_manifest(str(tmp_path))


def test_backup_specs_are_checked_before_connecting():
    with pytest.raises(MongoError, match="must be listed before"):
        md.parse_specs([], [{"db": "b", "name": "task", "query_from": {"collection": "project", "field": "p"}}])
    with pytest.raises(MongoError, match="listed twice"):
        md.parse_specs([], [{"db": "b", "name": "t"}, {"db": "b", "name": "t"}])
    with pytest.raises(MongoError, match=r"collections\[0\] has unknown keys: qeury"):
        md.parse_specs([], [{"db": "b", "name": "t", "qeury": {}}])
    spec = md.parse_specs([], [{"db": "b", "name": "t", "query": {"_id": {"$oid": "5f0c5f0c5f0c5f0c5f0c5f0c"}}}])[0]
    assert isinstance(spec.query["_id"], bson.ObjectId)


@pytest.mark.parametrize("change,complaint", [
    ({"md5": None}, "md5 is None, not an md5"),
    ({"count": None}, "count is None, not a document count"),
    ({"metadata_md5": None}, "metadata_md5 is None"),
    ({"file": "../../outside.bson"}, "climbs out of its directory"),
    ({"file": "/etc/passwd"}, "not a plain relative path"),
    ({"metadata": "db/../../x.json"}, "climbs out of its directory"),
])
def test_a_manifest_cannot_switch_verification_off_or_point_outside(tmp_path, change, complaint):
    entry = write_backup(str(tmp_path), DOCS[:3])
    with open(tmp_path / md.MANIFEST, "w", encoding="utf-8") as handle:
        handle.write(md.render_manifest([dict(entry, **change)]))
    with pytest.raises(MongoError, match=complaint):
        md.read_manifest(str(tmp_path))


def test_an_edited_metadata_file_is_refused(tmp_path):
    write_backup(str(tmp_path), DOCS[:3])
    ttl = {"indexes": [{"key": {"created": 1}, "name": "gone", "expireAfterSeconds": 0}]}
    (tmp_path / "db" / "c.metadata.json").write_text(json.dumps(ttl))
    with pytest.raises(MongoError, match="db/c.metadata.json: md5 differs from the manifest's"):
        md.check_backup(str(tmp_path), md.read_manifest(str(tmp_path)))


@pytest.mark.parametrize("name,expected", [
    ("task", "task"), ("../../../X", "%2E.%2F..%2F..%2FX"), ("a/b", "a%2Fb"), ("100%", "100%25"),
    (".hidden", "%2Ehidden")])
def test_names_are_one_path_component(name, expected):
    assert md.file_name(name) == expected and "/" not in md.file_name(name)


def test_stale_files_outside_the_backup_are_never_removed(tmp_path):
    outside = tmp_path / "outside.bson"
    outside.write_bytes(b"keep")
    dest = tmp_path / "backup"
    (dest / "db").mkdir(parents=True)
    (dest / "db" / "old.bson").write_bytes(b"stale")
    old = [{"file": "../outside.bson", "metadata": str(outside)}, {"file": "db/old.bson"}]
    md._remove_stale(str(dest), old, [])  # pylint: disable=protected-access
    assert outside.read_bytes() == b"keep" and not (dest / "db" / "old.bson").exists()
