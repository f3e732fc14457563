"""Unit tests of module_utils/mongo/scopes.py: a subset applied to the ClearML tracker sources of a plan."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.mongo.scopes import scoped_trackers

PAIRS = [{"source": {"kind": "mlflow", "tracking_uri": "http://a"}, "target": {"kind": "mlflow"}},
         {"source": {"kind": "clearml_server", "mongo_uri": "mongodb://m"}, "target": {"kind": "mlflow"}},
         {"source": {"kind": "clearml_api", "task_filter": {"status": "completed"}}, "target": {"kind": "mlflow"}}]


def test_a_project_subset_narrows_the_clearml_sources_only():
    scoped = scoped_trackers(PAIRS, "project", "p1")
    assert scoped[0] == PAIRS[0]
    assert scoped[1]["source"] == {"kind": "clearml_server", "mongo_uri": "mongodb://m", "task_filter": {"project": "p1"}}
    assert scoped[2]["source"]["task_filter"] == {"$and": [{"status": "completed"}, {"project": "p1"}]}
    assert PAIRS[1]["source"].get("task_filter") is None  # the plan given is not changed


@pytest.mark.parametrize("scope", [None, "full"])
def test_no_subset_leaves_the_pairs_as_they_are(scope):
    assert scoped_trackers(PAIRS, scope, None) == PAIRS


@pytest.mark.parametrize("scope,scope_id,message", [("team", "x", "scope must be one of"),
                                                    ("user", "", "scope user needs the user's id")])
def test_a_bad_scope_is_refused(scope, scope_id, message):
    with pytest.raises(MigrationError, match=message):
        scoped_trackers(PAIRS, scope, scope_id)
