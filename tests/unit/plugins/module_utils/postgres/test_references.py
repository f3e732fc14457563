"""Unit tests of module_utils/postgres/merge.py's Reference: keys inside JSON and text rewritten through key maps."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import PostgresError
from ansible_collections.mlops.migration.plugins.module_utils.postgres.merge import Reference, _Shift


def bound(spec, key_map):
    unresolved, resolved = set(), set()
    return Reference(dict({"table": "projects", "column": "workbench", "to": "projects_nodes"}, **spec)).bind(
        key_map, unresolved, resolved), unresolved, resolved


def test_json_keys_map_the_objects_keys_and_leave_the_values_alone():
    ref, unresolved, resolved = bound({"json_keys": True}, {1: 101, 2: 102})
    value = {"1": {"label": "a", "inputs": {"nodeUuid": "2"}}, "2": {"label": "b"}}
    assert ref.rewrite(value) == {"101": {"label": "a", "inputs": {"nodeUuid": "2"}}, "102": {"label": "b"}}
    assert resolved == {101, 102} and not unresolved


def test_json_field_maps_every_member_of_that_name_at_any_depth():
    ref, unresolved, resolved = bound({"json_field": "nodeUuid"}, {2: 102, 3: 103})
    value = {"1": {"inputs": [{"nodeUuid": 2}, {"nodeUuid": "3"}], "nodeUuid": {"not": "a key"}}}
    assert ref.rewrite(value) == {"1": {"inputs": [{"nodeUuid": 102}, {"nodeUuid": "103"}], "nodeUuid": {"not": "a key"}}}
    assert resolved == {102, 103} and not unresolved


def test_a_pattern_maps_its_group_in_text_and_keeps_the_rest():
    ref, unresolved, _resolved = bound({"column": "object_key", "pattern": r"^(\d+)/"}, _Shift(1000))
    assert ref.rewrite("7/15/out.dat") == "1007/15/out.dat"
    assert ref.rewrite("no-key/out.dat") == "no-key/out.dat"
    assert not unresolved


def test_keys_missing_from_the_map_are_collected_not_guessed():
    ref, unresolved, resolved = bound({"json_keys": True}, {1: 101})
    assert ref.rewrite({"1": {}, "9": {}, "x": {}}) == {"101": {}, "9": {}, "x": {}}
    assert unresolved == {"9", "x"} and resolved == {101}


def test_references_of_one_column_apply_in_the_plans_order():
    unresolved, resolved = set(), set()
    project = Reference({"table": "files", "column": "key", "to": "projects", "pattern": r"^(\d+)/"}).bind(
        _Shift(100), unresolved, resolved)
    node = Reference({"table": "files", "column": "key", "to": "nodes", "pattern": r"^\d+/(\d+)/"}).bind(
        {5: 55}, unresolved, resolved)
    assert node.rewrite(project.rewrite("3/5/f")) == "103/55/f"


@pytest.mark.parametrize("spec, message", [
    ({}, "needs json_keys, json_field or pattern"),
    ({"pattern": r"^\d+/"}, "needs exactly one group"),
    ({"pattern": r"^(\d+)/(\d+)"}, "needs exactly one group"),
])
def test_a_reference_without_a_way_to_find_keys_is_refused(spec, message):
    with pytest.raises(PostgresError, match=message):
        Reference(dict({"table": "t", "column": "c", "to": "u"}, **spec))
