"""Unit tests of module_utils/mongo/query.py: dotted paths and local filters."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.mongo import query as d

DOC = {"_id": 1, "status": "completed", "tags": ["a", "b"], "n": 5, "flag": True,
       "execution": {"queue": "q1", "artifacts": [{"uri": "u1", "mode": "output"}, {"uri": "u2"}]}}


@pytest.mark.parametrize("path,values", [
    ("status", ["completed"]),
    ("execution.queue", ["q1"]),
    ("execution.artifacts.uri", ["u1", "u2"]),
    ("execution.artifacts.1.uri", ["u2"]),
    ("execution.nothing", []),
    ("tags", [["a", "b"]]),
])
def test_path_values(path, values):
    assert d.path_values(DOC, path) == values


@pytest.mark.parametrize("query,expected", [
    ({"status": "completed"}, True),
    ({"status": {"$in": ["created", "completed"]}}, True),
    ({"status": {"$nin": ["completed"]}}, False),
    ({"status": {"$ne": "failed"}}, True),
    ({"tags": "b"}, True),
    ({"tags": {"$in": ["z"]}}, False),
    ({"n": {"$gt": 4, "$lte": 5}}, True),
    ({"n": {"$lt": 5}}, False),
    ({"n": {"$gt": "a"}}, False),
    ({"flag": 1}, False),
    ({"n": True}, False),
    ({"missing": None}, True),
    ({"missing": {"$exists": False}}, True),
    ({"execution.queue": {"$exists": True}}, True),
    ({"execution.artifacts.mode": "output"}, True),
    ({"$or": [{"status": "failed"}, {"n": 5}]}, True),
    ({"$and": [{"status": "completed"}, {"n": 6}]}, False),
    ({"$nor": [{"status": "failed"}]}, True),
])
def test_matches(query, expected):
    d.check_filter(query)
    assert d.matches(DOC, query) is expected


@pytest.mark.parametrize("query,complaint", [
    ({"status": {"$regex": "x"}}, "$regex is not supported"),
    ({"$where": "1"}, "$where is not supported"),
    ({"$or": []}, "non-empty list"),
    ({"status": {"$in": "completed"}}, "$in needs a list"),
    (["status"], "must be a mapping"),
])
def test_check_filter_names_what_is_unsupported(query, complaint):
    with pytest.raises(d.FilterError, match=complaint.replace("$", r"\$")):
        d.check_filter(query)


def test_filter_fields_lists_the_top_level_fields_read():
    query = {"status": "x", "execution.queue": 1, "$or": [{"a.b": 1}, {"$nor": [{"c": 2}]}]}
    assert d.filter_fields(query) == {"status", "execution", "a", "c"}
