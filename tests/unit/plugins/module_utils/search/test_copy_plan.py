"""Unit tests of module_utils/search/copy.py and client.py that need no server."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchClient, SearchError
from ansible_collections.mlops.migration.plugins.module_utils.search.copy import selection, target_settings


def test_selection_narrows_to_the_tasks_that_move():
    assert selection() == {"match_all": {}}
    assert selection(task_ids=["b", "a"]) == {"terms": {"task": ["a", "b"]}}
    assert selection({"term": {"type": "log"}}, ["a"], "task_id") == {
        "bool": {"filter": [{"term": {"type": "log"}}, {"terms": {"task_id": ["a"]}}]}}
    assert selection(task_ids=[]) == {"terms": {"task": []}}  # no task moves: no event moves


def test_the_copy_leaves_the_source_index_identity_out():
    meta = {"settings": {"index": {"uuid": "x", "creation_date": "1", "provided_name": "i", "version": {"created": "1"},
                                   "number_of_shards": "1", "number_of_replicas": "0", "analysis": {"a": 1}}}}
    assert target_settings(meta) == {"number_of_shards": "1", "number_of_replicas": "0", "analysis": {"a": 1}}


def test_urls_and_credentials():
    client = SearchClient("http://bob:s3cret@127.0.0.1:9201/prefix")
    assert client.url == "http://127.0.0.1:9201/prefix" and client.base == "/prefix"
    assert client.auth.startswith("Basic ") and "s3cret" not in client.url
    with pytest.raises(SearchError, match="not an http"):
        SearchClient("ftp://127.0.0.1")
