# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The schema and constraint catalogue of a PostgreSQL database, its dependency order, and subsets.

``read_catalog`` reads the tables of some schemas from ``pg_catalog``: columns with their types
(generated columns left out: the server computes them), primary keys, unique constraints, foreign keys
(composite ones too, with whether they can be deferred) and the sequences that feed columns (serial
and identity). It is plain data (``to_dict``/``from_dict``), stored in a bundle beside its rows.

``dependency_order`` sorts tables so that every table comes after those it references; a cycle is
broken at foreign keys declared DEFERRABLE (checked at commit instead), and one without any is an error.

``subset_predicates`` selects rows that follow foreign keys from a root (one user and what they own,
one project and its nodes): the root's rows, the rows that reference selected rows (down the keys),
and the rows those need (up the keys), as one SQL condition per table.
"""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import PostgresError, qualified

INTEGER_TYPES = ("smallint", "integer", "bigint")


class Table:
    """One table of the catalogue."""

    def __init__(self, name, columns, primary_key=(), unique=(), foreign_keys=(), sequences=None, rows_estimate=0):
        self.name = name
        self.columns = list(columns)  # [{"name", "type", "not_null"}]
        self.primary_key = list(primary_key)
        self.unique = [list(cols) for cols in unique]
        self.foreign_keys = [dict(fk) for fk in foreign_keys]  # {"name", "columns", "table", "ref_columns", "deferrable"}
        self.sequences = dict(sequences or {})  # column -> sequence (qualified)
        self.rows_estimate = rows_estimate

    @property
    def column_names(self):
        return [col["name"] for col in self.columns]

    def column_type(self, name):
        for col in self.columns:
            if col["name"] == name:
                return col["type"]
        raise PostgresError(f"table {self.name} has no column {name!r}")

    @property
    def always_identity(self):
        """True when a column is GENERATED ALWAYS AS IDENTITY (an insert of its values must override it)."""
        return any(col.get("identity") == "always" for col in self.columns)

    @property
    def integer_key(self):
        """The one integer primary key column, or None (composite, text or no key)."""
        if len(self.primary_key) == 1 and self.column_type(self.primary_key[0]) in INTEGER_TYPES:
            return self.primary_key[0]
        return None

    def to_dict(self):
        return {"name": self.name, "columns": self.columns, "primary_key": self.primary_key, "unique": self.unique,
                "foreign_keys": self.foreign_keys, "sequences": self.sequences, "rows_estimate": self.rows_estimate}

    @classmethod
    def from_dict(cls, record):
        return cls(record["name"], record["columns"], record.get("primary_key", ()), record.get("unique", ()),
                   record.get("foreign_keys", ()), record.get("sequences"), record.get("rows_estimate", 0))


class Catalog:
    """Tables by qualified name."""

    def __init__(self, tables):
        self.tables = {table.name: table for table in tables}

    def __contains__(self, name):
        return qualified(name) in self.tables

    def __getitem__(self, name):
        try:
            return self.tables[qualified(name)]
        except KeyError:
            raise PostgresError(f"no table {qualified(name)} in the catalogue "
                                f"(it has {', '.join(sorted(self.tables)) or 'none'})") from None

    def to_dict(self):
        return {"tables": [table.to_dict() for table in self.tables.values()]}

    @classmethod
    def from_dict(cls, record):
        return cls([Table.from_dict(table) for table in record.get("tables", [])])

    def restricted(self, names):
        """The catalogue of some of its tables only."""
        return Catalog([self[name] for name in names])


TABLES_SQL = """
SELECT c.oid, n.nspname || '.' || c.relname, GREATEST(c.reltuples, 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s)
ORDER BY 2
"""
COLUMNS_SQL = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated <> '', a.attidentity
FROM pg_attribute a
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
CONSTRAINTS_SQL = """
SELECT c.conrelid, c.conname, c.contype, c.condeferrable,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.pos),
       fn.nspname || '.' || fc.relname,
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.pos)
FROM pg_constraint c
LEFT JOIN pg_class fc ON fc.oid = c.confrelid LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE c.conrelid = ANY(%s) AND c.contype IN ('p', 'u', 'f')
ORDER BY c.conrelid, c.conname
"""
SEQUENCES_SQL = """
SELECT d.refobjid, a.attname, sn.nspname || '.' || s.relname
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.refobjid = ANY(%s) AND d.deptype IN ('a', 'i')
"""


def read_catalog(conn, schemas=("public",), tables=None, exclude=()):
    """The catalogue of ``schemas`` (only ``tables`` when given, never ``exclude``); a missing table is an error."""
    rows = conn.execute(TABLES_SQL, [list(schemas)]).fetchall()
    by_name = {name: (oid, estimate) for oid, name, estimate in rows}
    wanted = [qualified(name) for name in tables] if tables else sorted(by_name)
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise PostgresError(f"no table {', '.join(missing)} in the database (schemas {', '.join(schemas)}; "
                            f"it has {', '.join(sorted(by_name)) or 'none'})")
    skip = {qualified(name) for name in exclude}
    wanted = [name for name in wanted if name not in skip]
    oids = {by_name[name][0]: name for name in wanted}
    columns, keys, unique, foreign, sequences = {}, {}, {}, {}, {}
    for relid, name, type_, not_null, generated, identity in conn.execute(COLUMNS_SQL, [list(oids)]):
        if not generated:
            columns.setdefault(relid, []).append({"name": name, "type": type_, "not_null": not_null,
                                                  "identity": {"a": "always", "d": "by default"}.get(identity)})
    for relid, name, kind, deferrable, cols, ref_table, ref_cols in conn.execute(CONSTRAINTS_SQL, [list(oids)]):
        if kind == "p":
            keys[relid] = cols
        elif kind == "u":
            unique.setdefault(relid, []).append(cols)
        else:
            foreign.setdefault(relid, []).append({"name": name, "columns": cols, "table": ref_table,
                                                  "ref_columns": ref_cols, "deferrable": deferrable})
    for relid, column, sequence in conn.execute(SEQUENCES_SQL, [list(oids)]):
        sequences.setdefault(relid, {})[column] = sequence
    return Catalog([Table(name, columns.get(oid, []), keys.get(oid, ()), unique.get(oid, ()), foreign.get(oid, ()),
                          sequences.get(oid), by_name[name][1]) for oid, name in oids.items()])


def dependency_order(catalog):
    """``(tables in insert order, foreign keys deferred to break cycles)``.

    Self-references need nothing (a statement's rows are checked at its end). A cycle between tables is
    broken at its DEFERRABLE foreign keys; a cycle with none is an error naming it.
    """
    names = sorted(catalog.tables)
    edges = {name: {} for name in names}  # child -> {parent: [fk, ...]}
    for name in names:
        for fk in catalog.tables[name].foreign_keys:
            if fk["table"] in edges and fk["table"] != name:
                edges[name].setdefault(fk["table"], []).append(fk)
    deferred = []
    while True:
        order, remaining = _kahn(names, edges)
        if not remaining:
            return order, deferred
        breakable = [(child, parent, fk) for child in sorted(remaining) for parent, fks in edges[child].items()
                     if parent in remaining for fk in fks if fk["deferrable"]]
        if not breakable:
            cycle = " -> ".join(sorted(remaining))
            raise PostgresError(f"the foreign keys between {cycle} form a cycle and none of them is DEFERRABLE: "
                                "make one DEFERRABLE (ALTER TABLE ... ALTER CONSTRAINT ... DEFERRABLE) or leave a table out")
        for child, parent, fk in breakable:
            edges[child][parent].remove(fk)
            if not edges[child][parent]:
                del edges[child][parent]
            deferred.append(f"{child}.{fk['name']}")


def _kahn(names, edges):
    placed, order = set(), []
    progress = True
    while progress:
        progress = False
        for name in names:
            if name not in placed and all(parent in placed for parent in edges[name]):
                placed.add(name)
                order.append(name)
                progress = True
    return order, set(names) - placed


def _tuple(alias, columns):
    cols = ", ".join(f'{alias}."{col}"' for col in columns)
    return f"({cols})" if len(columns) > 1 else cols


def _ident(name):
    schema, _dot, table = name.partition(".")
    return f'"{schema}"."{table}"'


class _Aliases:
    """Fresh table aliases for nested subqueries (``s1``, ``s2`` ...)."""

    def __init__(self):
        self.count = 0

    def __call__(self):
        self.count += 1
        return f"s{self.count}"


def subset_predicates(catalog, root_table, root_column, order):
    """``{table: SQL condition}`` of the rows a subset from ``root_table.root_column = ANY(%(root)s)`` holds, each
    condition naming its table's columns as ``@."column"`` (``at(condition, alias)`` puts the alias in); a table
    without a condition holds no rows. The root's values are the query parameter ``root``.
    """
    root_table = qualified(root_table)
    catalog[root_table].column_type(root_column)
    alias = _Aliases()
    down = {root_table: f'@."{root_column}" = ANY(%(root)s)'}
    for name in order:  # parents before children: a table's condition is final before its children read it
        if name == root_table:
            continue
        clauses = []
        for fk in catalog.tables[name].foreign_keys:
            parent = fk["table"]
            if parent in down and parent != name:
                a = alias()
                clauses.append(f"{_tuple('@', fk['columns'])} IN (SELECT {_tuple(a, fk['ref_columns'])} "
                               f"FROM {_ident(parent)} {a} WHERE {at(down[parent], a)})")
        if clauses:
            down[name] = "(" + " OR ".join(clauses) + ")"
    selected = dict(down)
    for name in reversed(order):  # children before parents: the rows the selected rows need
        if name not in selected:
            continue
        for fk in catalog.tables[name].foreign_keys:
            parent = fk["table"]
            if parent not in catalog.tables:
                continue
            a = alias()
            if parent == name and len(fk["columns"]) == 1:
                need = _recursive_parents(name, fk, selected[name], a, alias())
            else:
                need = (f"{_tuple('@', fk['ref_columns'])} IN (SELECT {_tuple(a, fk['columns'])} "
                        f"FROM {_ident(name)} {a} WHERE {at(selected[name], a)})")
            selected[parent] = f"({selected[parent]} OR {need})" if parent in selected else need
    return selected


def at(condition, alias):
    """A subset condition with its table's alias put in."""
    return condition.replace("@.", f"{alias}.")


def _recursive_parents(name, fk, condition, a, b):
    """Rows a self-reference reaches from the selected rows (a folder's parents up to the top)."""
    child, parent = fk["columns"][0], fk["ref_columns"][0]
    return (f'@."{parent}" IN (WITH RECURSIVE up(k) AS (SELECT {a}."{child}" FROM {_ident(name)} {a} '
            f'WHERE {at(condition, a)} UNION SELECT {b}."{child}" FROM {_ident(name)} {b} JOIN up ON {b}."{parent}" = up.k) '
            "SELECT k FROM up)")
