"""Unit tests of module_utils/postgres/catalog.py: insert order, cycles, and subset conditions."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.postgres.catalog import (
    Catalog,
    Table,
    at,
    dependency_order,
    subset_predicates,
)
from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import PostgresError


def fk(name, columns, table, ref_columns, deferrable=False):
    return {"name": name, "columns": columns, "table": table, "ref_columns": ref_columns, "deferrable": deferrable}


def table(name, *fks, key="id"):
    return Table(name, [{"name": key, "type": "integer"}, {"name": "parent", "type": "integer"},
                        {"name": "owner", "type": "integer"}], [key], foreign_keys=fks)


def test_every_table_comes_after_the_tables_it_references():
    catalog = Catalog([
        table("public.nodes", fk("nodes_project", ["owner"], "public.projects", ["id"])),
        table("public.projects", fk("projects_owner", ["owner"], "public.users", ["id"])),
        table("public.users"),
        table("public.folders", fk("folders_parent", ["parent"], "public.folders", ["id"])),  # a self-reference
    ])
    order, deferred = dependency_order(catalog)
    assert order.index("public.users") < order.index("public.projects") < order.index("public.nodes")
    assert "public.folders" in order
    assert deferred == []  # a self-reference needs no deferral


def test_a_cycle_is_broken_at_its_deferrable_key_and_said():
    catalog = Catalog([
        table("public.users", fk("users_group", ["owner"], "public.groups", ["id"], deferrable=True)),
        table("public.groups", fk("groups_owner", ["owner"], "public.users", ["id"])),
    ])
    order, deferred = dependency_order(catalog)
    assert order == ["public.users", "public.groups"]
    assert deferred == ["public.users.users_group"]


def test_a_cycle_without_a_deferrable_key_is_an_error_naming_it():
    catalog = Catalog([
        table("public.users", fk("users_group", ["owner"], "public.groups", ["id"])),
        table("public.groups", fk("groups_owner", ["owner"], "public.users", ["id"])),
    ])
    with pytest.raises(PostgresError, match=r"public.groups -> public.users form a cycle and none of them is DEFERRABLE"):
        dependency_order(catalog)


def test_a_subset_follows_keys_down_from_the_root_and_up_to_what_its_rows_need():
    catalog = Catalog([
        table("public.users"),
        table("public.projects", fk("projects_owner", ["owner"], "public.users", ["id"])),
        table("public.nodes", fk("nodes_project", ["owner"], "public.projects", ["id"])),
        table("public.unrelated"),
    ])
    order, _deferred = dependency_order(catalog)
    conditions = subset_predicates(catalog, "projects", "id", order)
    assert conditions["public.projects"].startswith('(@."id" = ANY(%(root)s)')
    assert '"public"."projects"' in conditions["public.nodes"]  # down: the nodes of the selected projects
    assert '"public"."projects"' in conditions["public.users"]  # up: the owner the projects need
    assert "public.unrelated" not in conditions  # holds no rows
    assert "@" not in at(conditions["public.nodes"], "t") and 't."owner"' in at(conditions["public.nodes"], "t")


def test_a_root_column_the_table_lacks_is_an_error():
    catalog = Catalog([table("public.users")])
    with pytest.raises(PostgresError, match="public.users has no column 'email'"):
        subset_predicates(catalog, "users", "email", ["public.users"])


def test_the_catalogue_survives_its_json_form():
    catalog = Catalog([table("public.projects", fk("projects_owner", ["owner"], "public.users", ["id"]))])
    again = Catalog.from_dict(catalog.to_dict())
    assert again.to_dict() == catalog.to_dict()
    assert again["projects"].integer_key == "id"
    with pytest.raises(PostgresError, match="no table public.nope in the catalogue"):
        again["nope"]  # pylint: disable=pointless-statement
