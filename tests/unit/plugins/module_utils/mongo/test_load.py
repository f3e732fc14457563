"""Unit tests of the restore pipeline (module_utils/mongo/load.py, connection.py lookups) on mongomock."""

import bson
import mongomock
import pytest
from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError, WriteError

from ansible_collections.mlops.migration.plugins.module_utils.mongo import connection as mongo
from ansible_collections.mlops.migration.plugins.module_utils.mongo import load as ml
from ansible_collections.mlops.migration.plugins.module_utils.rewrite import parse_rules


@pytest.fixture
def coll():
    return mongomock.MongoClient().db.coll


def load(coll, docs, policy="skip", check_mode=False, precheck=True, batch_size=3):
    report = ml.Report("db.coll")
    loader = ml.Loader(coll, ml.Settings(on_duplicate=policy), report, check_mode, precheck)
    for batch in ml.batches(docs, batch_size):
        loader.load(batch)
    return report


def docs(n, start=0, **extra):
    return [{"_id": i, "value": i, **extra} for i in range(start, start + n)]


def test_new_documents_go_in_and_a_rerun_skips_them_all(coll):
    first = load(coll, docs(7))
    assert (first["inserted"], first["skipped_duplicates"]) == (7, 0)
    again = load(coll, docs(7))
    assert (again["inserted"], again["skipped_duplicates"], again["collisions"]) == (0, 7, 0)
    assert coll.count_documents({}) == 7


@pytest.mark.parametrize("policy,inserted,replaced,failed,value", [
    ("skip", 3, 0, 0, "theirs"), ("replace", 3, 2, 0, "ours"), ("fail", 3, 0, 2, "theirs")])
def test_collisions_follow_the_policy_and_are_listed(coll, policy, inserted, replaced, failed, value):
    coll.insert_many([{"_id": 1, "value": "theirs"}, {"_id": 2, "value": "theirs"}])
    report = load(coll, [{"_id": i, "value": "ours" if i else "x"} for i in range(5)], policy)
    assert (report["inserted"], report["replaced"], report["failed"], report["collisions"]) == \
        (inserted, replaced, failed, 2)
    assert [c["id"] for c in report["collided"]] == [1, 2]
    assert policy in report["collided"][0]["outcome"]
    assert coll.find_one({"_id": 1})["value"] == value


def test_field_order_alone_is_not_a_collision(coll):
    coll.insert_one({"_id": 1, "b": 2, "a": 1})
    report = load(coll, [{"_id": 1, "a": 1, "b": 2}], "fail")
    assert (report["skipped_duplicates"], report["collisions"], report["failed"]) == (1, 0, 0)


def test_without_precheck_duplicates_fall_back_and_are_counted(coll):
    load(coll, docs(4))
    coll.update_one({"_id": 3}, {"$set": {"value": "changed at the target"}})
    report = load(coll, docs(8), precheck=False, batch_size=8)
    assert (report["inserted"], report["skipped_duplicates"], report["collisions"]) == (4, 4, 1)
    assert report["collided"][0]["id"] == 3
    assert coll.count_documents({}) == 8


def test_a_unique_index_conflict_is_skipped_and_named(coll):
    coll.create_index("name", unique=True)
    coll.insert_one({"_id": "a", "name": "taken"})
    report = load(coll, [{"_id": "b", "name": "taken"}, {"_id": "c", "name": "free"}])
    assert (report["inserted"], report["skipped_duplicates"]) == (1, 1)
    assert "unique index" in report["collided"][0]["outcome"] and report["collided"][0]["id"] == "b"


class Rejecting:
    """A collection whose server rejects documents with ``bad`` set (a validation error, code 121)."""

    def __init__(self, inner):
        self.inner = inner

    def find(self, *args, **kwargs):
        return self.inner.find(*args, **kwargs)

    def insert_many(self, documents, ordered=False):
        good = [d for d in documents if not d.get("bad")]
        if good:
            self.inner.insert_many(good, ordered=ordered)
        errors = [{"index": i, "code": 121, "errmsg": "Document failed validation"}
                  for i, d in enumerate(documents) if d.get("bad")]
        if errors:
            raise BulkWriteError({"nInserted": len(good), "writeErrors": errors})

    def insert_one(self, document):
        if document.get("bad"):
            raise WriteError("Document failed validation", 121)
        return self.inner.insert_one(document)


def test_other_errors_are_retried_alone_and_recorded_per_document(coll):
    batch = docs(3) + [{"_id": 10, "bad": True}]
    report = load(Rejecting(coll), batch, batch_size=10)
    assert (report["inserted"], report["failed"]) == (3, 1)
    assert report["failures"] == [{"id": 10, "reason": "Document failed validation"}]


def test_check_mode_counts_and_writes_nothing(coll):
    coll.insert_many([{"_id": 0, "value": 0}, {"_id": 1, "value": "theirs"}])
    report = load(coll, docs(5), "replace", check_mode=True)
    assert (report["inserted"], report["skipped_duplicates"], report["replaced"]) == (3, 1, 1)
    assert coll.count_documents({}) == 2 and coll.find_one({"_id": 1})["value"] == "theirs"


def test_transform_filters_edits_and_passes_untouched_documents_as_their_bytes():
    report = ml.Report("db.task")
    settings = ml.Settings({"status": {"$in": ["completed"]}}, ["status_reason"],
                           parse_rules([{"from": "http://old/", "to": "s3://new/"}]))
    transform = ml.Transform(settings, report)
    kept = bson.encode({"_id": 1, "status": "completed", "uri": "s3://other/x"})
    rewritten = bson.encode({"_id": 2, "status": "completed", "status_reason": "x", "uri": "http://old/a"})
    dropped = bson.encode({"_id": 3, "status": "failed"})
    out = [transform.prepare(raw) for raw in (kept, rewritten, dropped)]
    assert isinstance(out[0], RawBSONDocument) and out[0].raw == kept
    assert bson.decode(out[1].raw) == {"_id": 2, "status": "completed", "uri": "s3://new/a"}
    assert out[2] is None
    assert (report["found"], report["filtered_out"], report["rewritten"], report["unset"]) == (3, 1, 1, 1)
    fast = ml.Transform(ml.Settings(), ml.Report("x"))
    assert fast.prepare(rewritten).raw == rewritten
    assert ml.doc_id(out[1]) == 2 and ml.doc_id({"_id": 5}) == 5


def test_batches_skip_filtered_documents():
    assert [len(b) for b in ml.batches([1, None, 2, 3, None, 4, 5], 2)] == [2, 2, 1]


def test_id_keys_tell_types_apart_and_hash_documents():
    assert mongo.id_key(1) != mongo.id_key(True)
    assert mongo.id_key({"a": 1}) == mongo.id_key({"a": 1})
    assert mongo.id_key(1) == mongo.id_key(1.0)  # one value for a unique index, as on the server


class Spy:
    def __init__(self, inner):
        self.inner, self.queries = inner, []

    def find(self, query, *args, **kwargs):
        self.queries.append(query)
        return self.inner.find(query, *args, **kwargs)


def test_existing_uses_an_id_range_for_one_ordered_type_and_in_otherwise(coll):
    ids = [bson.ObjectId() for _i in range(5)]
    coll.insert_many([{"_id": i} for i in ids] + [{"_id": "s"}, {"_id": 7}])
    spy = Spy(coll)
    assert len(mongo.existing(spy, ids[1:4])) == 3
    assert set(spy.queries[-1]["_id"]) == {"$gte", "$lte"}
    assert len(mongo.existing(spy, [ids[0], "s", 7, "absent"])) == 3
    assert set(spy.queries[-1]["_id"]) == {"$in"}
    assert mongo.existing(spy, []) == {}


def test_settings_are_validated_before_anything_runs():
    with pytest.raises(mongo.MongoError, match="unknown keys: filtr"):
        ml.parse_settings({"backend.task": {"filtr": {}}}, [], "skip")
    with pytest.raises(mongo.MongoError, match="<db>.<collection>"):
        ml.parse_settings({"task": {}}, [], "skip")
    with pytest.raises(mongo.MigrationError, match=r"\$regex"):
        ml.parse_settings({"backend.task": {"filter": {"name": {"$regex": "x"}}}}, [], "skip")
    settings_for = ml.parse_settings({"backend.task": {"on_duplicate": "replace"}}, [], "skip")
    assert settings_for("backend.task").on_duplicate == "replace"
    assert settings_for("backend.model").on_duplicate == "skip"


class CountingFinds:
    """A collection whose ``find`` calls (the batch lookups) are counted."""

    def __init__(self, coll):
        self._coll, self.finds = coll, 0

    def find(self, *args, **kwargs):
        self.finds += 1
        return self._coll.find(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._coll, name)


def adaptive_load(coll, documents, target_empty, check_mode=False):
    counted = CountingFinds(coll)
    report = ml.Report("db.coll")
    lookup = ml.TargetLookup(counted)  # a query per batch (what a collection too large to read once gets)
    lookup.empty = target_empty
    loader = ml.Loader(counted, ml.Settings(), report, check_mode, True, lookup)
    for batch in ml.batches(documents, 3):
        loader.load(batch)
    return report, counted.finds


def test_lookups_run_only_while_they_find_something(coll):
    report, finds = adaptive_load(coll, docs(9), target_empty=True)  # a fresh collection: no lookups
    assert (report["inserted"], finds) == (9, 0)
    report, finds = adaptive_load(coll, docs(15), target_empty=False)  # resumed: 9 present, then 6 new
    assert (report["inserted"], report["skipped_duplicates"]) == (6, 9)
    assert finds == 4  # three batches found theirs, the fourth found none, the fifth was not looked up
    coll.insert_many(docs(3, start=30, value="theirs"))  # another writer's documents after a gap
    report, finds = adaptive_load(coll, docs(39), target_empty=False)
    assert (report["inserted"], report["skipped_duplicates"], report["collisions"]) == (21, 18, 3)
    # 6 batch lookups up to the first that found none; the inserts that met the other writer's
    # _ids resolved them one by one (3) and turned lookups on again, until the next batch found none (1)
    assert finds == 6 + 3 + 1
    assert coll.count_documents({}) == 39 and coll.find_one({"_id": 31})["value"] == "theirs"


def test_check_mode_looks_up_every_batch(coll):
    coll.insert_many(docs(3, start=6))
    report, finds = adaptive_load(coll, docs(9), target_empty=False, check_mode=True)
    assert (report["inserted"], report["skipped_duplicates"], finds) == (6, 3, 3)
    assert coll.count_documents({}) == 3


def test_a_rerun_reads_the_target_once_and_fetches_only_what_differs(coll):
    coll.insert_many(docs(30, a=1, b=2))
    coll.replace_one({"_id": 4}, {"_id": 4, "value": 4, "b": 2, "a": 1})  # the same fields in another order
    coll.replace_one({"_id": 7}, {"_id": 7, "value": "theirs", "a": 1, "b": 2})  # another document, same _id
    counted = CountingFinds(coll)
    lookup = ml.TargetLookup(counted, expected=30)
    assert lookup.digests is not None and counted.finds == 1  # one read of the whole collection
    report = ml.Report("db.coll")
    loader = ml.Loader(counted, ml.Settings(), report, False, True, lookup)
    for batch in ml.batches(docs(30, a=1, b=2), 10):
        loader.load(batch)
    assert (report["inserted"], report["skipped_duplicates"], report["collisions"]) == (0, 30, 1)
    assert counted.finds == 1 + 1  # then one query, for the two documents of one batch whose bytes differ


def test_a_target_much_larger_than_the_backup_is_not_read_whole(coll):
    coll.insert_many(docs(3000))
    counted = CountingFinds(coll)
    lookup = ml.TargetLookup(counted, expected=10)
    assert lookup.digests is None and counted.finds == 1  # read no further than twice the backup, then
    # per-batch queries, as before
