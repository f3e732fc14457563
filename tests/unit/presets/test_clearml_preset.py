"""The ClearML preset: a plan of endpoints, the fileserver and URL prefixes becomes the parts a
ClearML server migration runs, by the scope document; the plan's own parts win; bad input is named."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.migration.plugins.filter.checked_plan import checked_plan
from ansible_collections.mlops.migration.plugins.filter.preset_plan import preset_plan
from ansible_collections.mlops.migration.plugins.module_utils.presets import clearml
from tests.unit.awx.test_awx_templates import PLAN_SPEC

PLAN = {
    "preset": "clearml",
    "clearml": {
        "mongo": {"source": {"uri": "mongodb://old"}, "target": {"uri": "mongodb://new"}},
        "search": {"source": {"url": "http://old:9200"}, "target": {"url": "http://new:9200"}},
        "company": {"from": "c0ffee", "to": "beef"},
        "fileserver": {"url": "http://files.old:8081", "src": "/opt/clearml/data/fileserver/",
                       "dest": "/srv/landing/fileserver/", "to_s3": {"bucket": "clearml", "prefix": "fileserver/"}},
        "urls": [{"from": "s3://old-bucket/", "to": "s3://clearml/"}],
    },
}


def test_the_preset_encodes_the_scope_document():
    plan = preset_plan(PLAN)
    assert "preset" not in plan and "clearml" not in plan
    task = plan["mongo"]["collections"]["backend.task"]
    assert task["filter"] == {"status": {"$in": ["created", "in_progress", "completed", "published", "publishing"]}}
    assert set(task["unset_fields"]) == {"status_reason", "status_message", "execution.queue", "output.destination"}
    fileserver_rule = {"from": "http://files.old:8081/", "to": "s3://clearml/fileserver/", "match": "prefix"}
    bucket_rule = {"from": "s3://old-bucket/", "to": "s3://clearml/", "match": "prefix"}
    assert plan["mongo"]["rewrite"][:2] == [fileserver_rule, bucket_rule]
    assert {"from": "c0ffee", "to": "beef", "match": "prefix", "paths": ["company"]} in plan["mongo"]["rewrite"]
    events = plan["events"]
    assert events["indices"] == ["events-*-c0ffee"] and events["templates"] == ["events_*"]
    assert events["index_rename"] == [{"from": "-c0ffee", "to": "-beef"}]
    assert fileserver_rule in events["rewrite"] and events["source"] == {"url": "http://old:9200"}
    assert plan["files"]["trees"] == [{"src": "/opt/clearml/data/fileserver/", "dest": "/srv/landing/fileserver/",
                                       "to_s3": {"bucket": "clearml", "prefix": "fileserver/", "create_bucket": False}}]
    assert any("console" in text.lower() for text in plan["scope"]["not_migrated"])
    assert any("Debug samples" in text for text in plan["scope"]["migrated"])
    checked = checked_plan({"migration": plan}, PLAN_SPEC)["migration"]  # the expanded plan passes the plan check
    assert checked["events"]["mode"] == "direct" and checked["mongo"]["scope"] == "full"


def test_the_plans_own_keys_win_and_a_plan_without_a_preset_is_left_alone():
    own = dict(PLAN, events={"indices": ["events-log-c0ffee"]}, mongo={"on_duplicate": "replace"})
    plan = preset_plan(own)
    assert plan["events"]["indices"] == ["events-log-c0ffee"] and plan["events"]["templates"] == ["events_*"]
    assert plan["mongo"]["on_duplicate"] == "replace" and plan["mongo"]["source"] == {"uri": "mongodb://old"}
    assert preset_plan({"mongo": {"source": {}}}) == {"mongo": {"source": {}}}


@pytest.mark.parametrize("plan, message", [
    ({"preset": "kubeflow"}, "preset 'kubeflow' is not one of clearml"),
    ({"preset": "clearml"}, "needs a clearml part"),
    ({"preset": "clearml", "clearml": {"fileserver": {"url": "http://f:8081"}}}, "clearml.fileserver.to_s3.bucket"),
    ({"preset": "clearml", "clearml": {"urls": [{"from": "s3://a/"}]}}, "clearml.urls[0] must be a mapping"),
])
def test_a_malformed_preset_is_named(plan, message):
    with pytest.raises(AnsibleFilterError, match="the migration plan is malformed") as caught:
        preset_plan(plan)
    assert message in str(caught.value)


def test_every_url_field_list_names_a_collection_or_index_of_the_server():
    assert clearml.TASKS in clearml.URL_FIELDS and all(
        name.startswith(("backend.", "events-")) for name in clearml.URL_FIELDS)
