"""Unit tests of the checked_plan filter against the migration role's real plan spec."""

import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.migration.plugins.filter.checked_plan import FilterModule, checked_plan

SPEC_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "migration", "meta",
                         "argument_specs.yml")


@pytest.fixture(scope="module")
def spec():
    with open(SPEC_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["argument_specs"]["plan"]["options"]


def test_defaults_are_filled_in_at_every_level(spec):
    plan = checked_plan({"migration": {"s3": {"buckets": [{"source": {"bucket": "a"}, "target": {"bucket": "b"}}]},
                                       "trackers": [{"source": {"tracking_uri": "x"}, "target": {"tracking_uri": "y"}}]}},
                        spec)
    assert plan["migration_type"] == "full" and plan["migration_force"] is False
    assert plan["migration"]["s3"]["mode"] == "direct" and plan["migration"]["s3"]["buckets"][0]["create_bucket"] is False
    assert plan["migration"]["trackers"][0]["include"][0] == "params"
    assert plan["migration"]["state_host"] == "localhost" and plan["migration"]["mongo"] is None
    assert FilterModule().filters()["checked_plan"] is checked_plan


@pytest.mark.parametrize("values, named", [
    ({"migration": {"s3": {"bukets": []}}}, "bukets"),
    ({"migration": {"mongo": {"source": {}}}}, "target"),
    ({"migration": {"files": {"trees": [{"src": "/a"}]}}}, "dest"),
    ({"migration": {}, "migration_type": "quick"}, "migration_type"),
    ({"migration": {"min_free_mb": "lots"}}, "min_free_mb"),
    ({}, "migration"),
])
def test_malformed_plans_name_the_bad_key(spec, values, named):
    with pytest.raises(AnsibleFilterError, match=named):
        checked_plan(values, spec)


def test_non_mappings_are_refused(spec):
    with pytest.raises(AnsibleFilterError):
        checked_plan(["migration"], spec)


def test_switches_given_as_none_count_as_not_given(spec):
    plan = checked_plan({"migration": {}, "migration_scope": None, "migration_scope_id": None}, spec)
    assert plan["migration_scope"] is None and plan["migration_type"] == "full"
    assert checked_plan({"migration": {}, "migration_scope": "user"}, spec)["migration_scope"] == "user"
