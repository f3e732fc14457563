# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Merge a PostgreSQL bundle into a database that already has rows: new keys, rewritten references, stages.

Per table, a key strategy (``keep``, ``offset``, ``remap``, ``natural``) gives every source row of a table with
one integer primary key its key at the target; the pairs are the table's *key map*. Every column that holds
such a key - a foreign key, composite ones too, followed through the tables it passes (``user_to_groups.uid``
maps through ``users``) - is rewritten through the key map of the table it ends at, and so are keys inside
JSON(B) or text columns the plan names (``references``).

A stage (the plan's ``stages``: platform configuration, users, services, studies ...) runs in one transaction:

1. each table's rows are COPYed from the bundle into a temporary table, and the new keys of its rows not yet
   in the key map are worked out and added to it (all the stage's tables first, so references that point
   forward, like a project's workbench naming its nodes, find their keys);
2. the named JSON and text references are rewritten; an S3 object the rows name is uploaded under its new key;
3. the rows are inserted in foreign-key order, in one ``INSERT ... SELECT`` a table joined to the key maps;
4. sequences are moved past the highest key, and the stage is checked: every key-map row present at the
   target, the content of every inserted row equal to the bundle's (a digest of the columns no key map
   changed), every reference resolved, deferred foreign keys checked; then the stage is recorded done.

A failure anywhere rolls the stage back (and removes the objects it uploaded); the stages before it stay
done. The key maps and the stage checkpoints live in the target database's schema ``mlops_migration``,
written in the same transaction as the rows, so they can never disagree with them; a re-run skips done
stages and inserts nothing twice, and ``rollback`` undoes the finished stages by them. After each stage they
are also exported into the ledger directory (``<ledger_dir>/<migration>/``), for rewriting S3 keys or MongoDB
documents that name these rows. Check mode runs every stage and rolls it back (sequences untouched).
"""

from __future__ import annotations

import datetime
import functools
import gzip
import hashlib
import json
import os
import re

from ansible_collections.mlops.migration.plugins.module_utils.atomic import durable_replace, write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.counts import Counts
from ansible_collections.mlops.migration.plugins.module_utils.postgres.catalog import dependency_order, read_catalog
from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import (
    PostgresError,
    copy_chunks,
    psycopg,
    qualified,
    quote_table,
    split_table,
    sql,
)

STRATEGIES = ("keep", "offset", "remap", "natural")
ON_DUPLICATE = ("skip", "update", "fail")
LEDGER = "mlops_migration"
DEFAULT_MARGIN = 1000


def table_plan_options():
    """Argument spec of one table's entry in ``tables``."""
    return dict(
        key=dict(type="str", choices=list(STRATEGIES)),
        on_duplicate=dict(type="str", choices=list(ON_DUPLICATE)),
        offset=dict(type="int"),
        margin=dict(type="int"),
        natural_key=dict(type="list", elements="str"),
        update=dict(type="list", elements="str", default=[]),
    )


def reference_options():
    """Argument spec of one entry of ``references``: keys held in a JSON(B) or text column."""
    return dict(
        table=dict(type="str", required=True),
        column=dict(type="str", required=True),
        to=dict(type="str", required=True),
        json_keys=dict(type="bool", default=False),
        json_field=dict(type="str"),
        pattern=dict(type="str"),
    )


def _check_entry(where, entry, options):
    if not isinstance(entry, dict):
        raise PostgresError(f"{where} is not a mapping: {entry!r}")
    unknown = sorted(set(entry) - set(options))
    if unknown:
        raise PostgresError(f"{where} has unknown keys {', '.join(unknown)} (it takes {', '.join(sorted(options))})")
    for name, spec in options.items():
        value = entry.get(name)
        if value is None:
            if spec.get("required"):
                raise PostgresError(f"{where} needs {name}")
            continue
        if "choices" in spec and value not in spec["choices"]:
            raise PostgresError(f"{where}.{name} is {value!r}; it takes one of {', '.join(spec['choices'])}")
        kind = {"str": str, "int": int, "bool": bool, "list": list}[spec["type"]]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise PostgresError(f"{where}.{name} must be a {spec['type']}, not {type(value).__name__}")


def checked_plan(params):
    """The merge options, their shapes checked (a malformed plan fails here, naming the bad key)."""
    for name, entry in (params.get("tables") or {}).items():
        _check_entry(f"tables.{name}", entry or {}, table_plan_options())
    for index, entry in enumerate(params.get("stages") or []):
        _check_entry(f"stages[{index}]", entry, {"name": {"type": "str", "required": True},
                                                 "tables": {"type": "list", "required": True}})
    for index, entry in enumerate(params.get("references") or []):
        _check_entry(f"references[{index}]", entry, reference_options())
    return params


class LedgerNames:
    """The ledger's tables in the target database for one migration."""

    def __init__(self, migration):
        self.migration = migration

    def _name(self, prefix, table):
        return sql.Identifier(LEDGER, self.bare(prefix, table))

    def bare(self, prefix, table):
        """The name of a ledger table in the schema ``mlops_migration``."""
        return f"{prefix}_" + hashlib.sha256(f"{self.migration}|{table}".encode()).hexdigest()[:24]

    def key_map(self, table):
        return self._name("km", table)

    def inserted(self, table):
        return self._name("ir", table)


LEDGER_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {LEDGER};
CREATE TABLE IF NOT EXISTS {LEDGER}.tables (
    migration text NOT NULL, tbl text NOT NULL, strategy text NOT NULL, key_offset bigint,
    PRIMARY KEY (migration, tbl));
CREATE TABLE IF NOT EXISTS {LEDGER}.stages (
    migration text NOT NULL, stage text NOT NULL, finished timestamptz NOT NULL, tables jsonb NOT NULL,
    PRIMARY KEY (migration, stage));
"""


def _ident_list(columns, alias=None):
    if alias:
        return sql.SQL(", ").join(sql.Identifier(alias, col) for col in columns)
    return sql.SQL(", ").join(sql.Identifier(col) for col in columns)


class Reference:
    """Keys of table ``to`` held inside a JSON(B) or text column, and how to find them."""

    def __init__(self, spec):
        self.table = qualified(spec["table"])
        self.column = spec["column"]
        self.to = qualified(spec["to"])
        self.json_keys = bool(spec.get("json_keys"))
        self.json_field = spec.get("json_field")
        self.pattern = re.compile(spec["pattern"]) if spec.get("pattern") else None
        if self.pattern is not None and self.pattern.groups != 1:
            raise PostgresError(f"references: the pattern for {self.table}.{self.column} needs exactly one group "
                                "(the key), it has {self.pattern.groups}")
        if not (self.json_keys or self.json_field or self.pattern):
            raise PostgresError(f"references: {self.table}.{self.column} needs json_keys, json_field or pattern")

    def bind(self, key_map, unresolved, resolved):
        """Map through ``key_map`` from now on: new keys go to ``resolved``, unknown ones to ``unresolved``."""
        self._lookup = key_map.get
        self._unresolved, self._resolved = unresolved, resolved
        if self.json_field is None and self.pattern is None:
            self._walk = _unchanged  # only the top-level keys hold keys
        if self.pattern is not None:
            def one(match):
                whole, start = match.group(0), match.start(0)
                return (whole[:match.start(1) - start] + str(self._translate(match.group(1)))
                        + whole[match.end(1) - start:])
            self._sub = functools.partial(self.pattern.sub, one)
        return self

    def rewrite(self, value):
        """``value`` with every key of ``to`` it holds mapped (after ``bind``)."""
        if isinstance(value, str) and self.pattern is not None:
            return self._sub(value)
        if self.json_keys and isinstance(value, dict):
            return {str(self._translate(name)): self._walk(item) for name, item in value.items()}
        return self._walk(value)

    def _translate(self, key):
        try:
            new = self._lookup(int(key))
        except (TypeError, ValueError):
            new = None
        if new is None:
            self._unresolved.add(key)
            return key
        self._resolved.add(new)
        return str(new) if isinstance(key, str) else new

    def _walk(self, node):
        if isinstance(node, dict):
            return {name: self._translate(item) if name == self.json_field and not isinstance(item, (dict, list))
                    else self._walk(item) for name, item in node.items()}
        if isinstance(node, list):
            return [self._walk(item) for item in node]
        if isinstance(node, str) and self.pattern is not None:
            return self._sub(node)
        return node


def _unchanged(node):
    return node


class _Shift:
    """The key map of a table whose keys move by a fixed amount (keep: 0, offset: its offset)."""

    def __init__(self, offset):
        self.offset = int(offset)

    def get(self, key):
        return key + self.offset  # the key's row is looked up at the target after the insert (_verify_references)


class Merge:
    """One merge of a checked bundle into the target connection ``conn``."""

    def __init__(self, conn, bundle, params, check_mode=False, progress=None, objects=None):
        self.conn = conn
        self.bundle = bundle
        self.check_mode = check_mode
        self.progress = progress
        self.objects = objects  # an ObjectImport, when the bundle's S3 objects go to a bucket
        source = bundle.manifest.get("source") or {}
        self.migration = params.get("migration") or f"{source.get('database')}@{source.get('host')}"
        self.names = LedgerNames(self.migration)
        self.default_key = params.get("key") or "offset"
        self.default_duplicate = params.get("on_duplicate") or "skip"
        self.margin = DEFAULT_MARGIN if params.get("margin") is None else params["margin"]
        self.table_plans = {qualified(name): dict(spec or {}) for name, spec in (params.get("tables") or {}).items()}
        self.references = [Reference(spec) for spec in params.get("references") or []]
        self.ledger_dir = params.get("ledger_dir")
        self.catalog = bundle.catalog
        self.bundle_tables = [name for name in bundle.manifest.get("order", []) if name in bundle.tables]
        self.stage_specs = params.get("stages") or [{"name": "all", "tables": self.bundle_tables}]
        self.kinds = {}
        self.stage_results = []
        self.deferred = []
        self.target = None
        self.stages = []
        self.temp = {}
        self.uploaded = []

    # -- the plan, checked before any write -------------------------------------------------------------

    def plan_for(self, name):
        spec = self.table_plans.get(name, {})
        table = self.catalog.tables[name]
        key = spec.get("key") or (self.default_key if self.own_key(name) else "keep")
        return {"key": key, "on_duplicate": spec.get("on_duplicate") or self.default_duplicate,
                "offset": spec.get("offset"), "margin": self.margin if spec.get("margin") is None else spec["margin"],
                "natural_key": list(spec.get("natural_key") or []), "update": list(spec.get("update") or []),
                "table": table}

    def own_key(self, name):
        """The integer primary key column a table's own key map translates (None when another table's does)."""
        table = self.catalog.tables[name]
        column = table.integer_key
        if column is None:
            return None
        for fk in table.foreign_keys:
            if column in fk["columns"] and fk["table"] in self.bundle.tables and fk["table"] != name:
                return None
        return column

    def key_owner(self, name, column, seen=()):
        """The table whose key map translates ``name.column``, following foreign keys; None if none does."""
        if (name, column) in seen:
            return None
        table = self.catalog.tables.get(name)
        if table is None:
            return None
        for fk in table.foreign_keys:
            if column in fk["columns"] and fk["table"] in self.bundle.tables and fk["table"] != name:
                return self.key_owner(fk["table"], fk["ref_columns"][fk["columns"].index(column)],
                                      seen + ((name, column),))
        if column == self.own_key(name):
            return name
        for fk in table.foreign_keys:  # a self-reference
            if column in fk["columns"] and fk["table"] == name:
                return self.key_owner(name, fk["ref_columns"][fk["columns"].index(column)], seen + ((name, column),))
        return None

    def check_plan(self):
        """Every error a plan or a target can cause that is known before writing: raised here."""
        unknown = sorted(set(self.table_plans) - set(self.bundle.tables))
        if unknown:
            raise PostgresError(f"tables names {', '.join(unknown)}, which the bundle does not hold "
                                f"(it holds {', '.join(self.bundle_tables)})")
        schemas = sorted({split_table(name)[0] for name in self.bundle_tables})
        self.target = read_catalog(self.conn, schemas, self.bundle_tables)
        for name in self.bundle_tables:
            self._check_table(name)
        for ref in self.references:
            for name in (ref.table, ref.to):
                if name not in self.bundle.tables:
                    raise PostgresError(f"references: {name} is not a table of the bundle")
            self.catalog.tables[ref.table].column_type(ref.column)
            if not self.own_key(ref.to):
                raise PostgresError(f"references: {ref.to} has no integer key of its own to map")
        self._check_stages()
        self.conn.rollback()

    def _check_table(self, name):
        plan = self.plan_for(name)
        table, target = plan["table"], self.target.tables[name]
        missing = [col for col in table.column_names if col not in target.column_names]
        if missing:
            raise PostgresError(f"table {name} at the target has no column {', '.join(missing)}")
        key = self.own_key(name)
        if plan["key"] != "keep" and not key:
            raise PostgresError(f"table {name}: key {plan['key']} needs one integer primary key of its own; "
                                f"it has {table.primary_key or 'none'}")
        if not table.primary_key:
            raise PostgresError(f"table {name} has no primary key: rows cannot be matched on a re-run")
        if plan["key"] in ("remap", "natural") and key not in target.sequences:
            raise PostgresError(f"table {name}: key {plan['key']} takes new keys from the target's sequence, "
                                f"and {name}.{key} has none (use offset)")
        if plan["key"] == "natural":
            if not plan["natural_key"]:
                raise PostgresError(f"table {name}: key natural needs natural_key (the columns that identify a row)")
            for col in plan["natural_key"] + plan["update"]:
                table.column_type(col)
            if sorted(plan["natural_key"]) not in [sorted(u) for u in target.unique + [target.primary_key]]:
                raise PostgresError(f"table {name}: natural_key {plan['natural_key']} is not unique at the target "
                                    "(no unique constraint on exactly those columns)")
            keyed = [col for col in plan["update"] if col == key or self.key_owner(name, col)]
            if keyed:
                raise PostgresError(f"table {name}: update names key columns {keyed}; only other columns can be updated")
        if plan["offset"] is not None and plan["key"] != "offset":
            raise PostgresError(f"table {name}: offset is given but key is {plan['key']}")

    def _check_stages(self):
        order, self.deferred = dependency_order(self.catalog.restricted(self.bundle_tables))
        placed = {}
        for index, spec in enumerate(self.stage_specs):
            names = [qualified(name) for name in spec.get("tables") or []]
            for name in names:
                if name not in self.bundle.tables:
                    raise PostgresError(f"stage {spec['name']} names {name}, which the bundle does not hold")
                if name in placed:
                    raise PostgresError(f"{name} is in two stages ({self.stage_specs[placed[name]]['name']}, {spec['name']})")
                placed[name] = index
        left = [name for name in self.bundle_tables if name not in placed]
        if left:
            raise PostgresError(f"the bundle's tables {', '.join(left)} are in no stage: add them to a stage")
        for name, index in placed.items():
            for fk in self.catalog.tables[name].foreign_keys:
                if placed.get(fk["table"], -1) > index:
                    raise PostgresError(f"stage {self.stage_specs[index]['name']}: {name} references {fk['table']} "
                                        f"of the later stage {self.stage_specs[placed[fk['table']]]['name']}")
        for ref in self.references:
            if placed[ref.to] > placed[ref.table]:
                raise PostgresError(f"references: {ref.table}.{ref.column} names keys of {ref.to}, "
                                    "which a later stage moves")
        self.stages = [(spec["name"], [name for name in order if placed[name] == index])
                       for index, spec in enumerate(self.stage_specs)]

    # -- running ----------------------------------------------------------------------------------------

    def run(self):
        self.check_plan()
        total = sum(self.bundle.tables[name]["rows"] for name in self.bundle_tables)
        if self.progress:
            self.progress.update(done=0, total=total, force=True)
        done_rows = 0
        for stage, tables in self.stages:
            finished = self._finished(stage)
            if finished:
                for name in tables:
                    rows = self.bundle.tables[name]["rows"]
                    self.kinds[f"rows {name}"] = Counts(dry_run=self.check_mode, found=rows, copied=0, present=rows,
                                                        verified=rows)
                self.stage_results.append({"stage": stage, "status": "done before", "finished": finished})
            else:
                try:
                    self._stage(stage, tables)
                except (MigrationError, psycopg.Error) as exc:
                    self.conn.rollback()
                    self._remove_uploaded()
                    cause = exc.diag.message_primary if isinstance(exc, psycopg.Error) and exc.diag.message_primary else exc
                    raise PostgresError(f"stage {stage} rolled back, the target as it was before it: {cause}",
                                        result=self.result(failed_stage=stage)) from exc
            done_rows += sum(self.bundle.tables[name]["rows"] for name in tables)
            if self.progress:
                self.progress.update(done=done_rows)
        if self.check_mode:
            self.conn.rollback()
            self._remove_uploaded()
        return self.result()

    def _finished(self, stage):
        exists = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{LEDGER}.stages"]).fetchone()[0]
        row = exists and self.conn.execute(f"SELECT finished FROM {LEDGER}.stages WHERE migration = %s AND stage = %s",
                                           [self.migration, stage]).fetchone()
        if not self.check_mode:  # check mode runs every stage in one transaction, rolled back at the end
            self.conn.rollback()
        return row[0].isoformat() if row else None

    def _stage(self, stage, tables):
        conn = self.conn
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{LEDGER}:{self.migration}"])
        conn.execute(LEDGER_DDL)
        deferred = [name for name in self.deferred if name.rsplit(".", 1)[0] in tables]
        if deferred:  # "<schema>.<table>.<constraint>"
            conn.execute(sql.SQL("SET CONSTRAINTS {} DEFERRED").format(sql.SQL(", ").join(
                sql.Identifier(name.split(".", 1)[0], name.rsplit(".", 1)[1]) for name in deferred)))
        self.temp = {}
        for index, name in enumerate(tables):
            self._load(name, index)
        for name in tables:
            if self.own_key(name):
                self._new_keys(name)
        resolved = self._rewrite_references(tables)
        if self.objects and self.objects.table in tables:
            self.uploaded = self.objects.upload(self, self.check_mode)
        counts = {}
        for name in tables:
            counts[name] = self._insert(name)
        for name in tables:
            self._update_matched(name)
        if not self.check_mode:
            self._advance_sequences(tables)
        for name in tables:
            self._verify(name, counts[name])
        self._verify_references(resolved)
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        finished = datetime.datetime.now(datetime.timezone.utc)
        summary = {name: counts[name] for name in tables}
        conn.execute(f"INSERT INTO {LEDGER}.stages (migration, stage, finished, tables) VALUES (%s, %s, %s, %s)",
                     [self.migration, stage, finished, json.dumps({"order": tables, "counts": summary})])
        for name in tables:
            found = self.bundle.tables[name]["rows"]
            self.kinds[f"rows {name}"] = Counts(dry_run=self.check_mode, found=found, copied=counts[name]["inserted"],
                                                present=found - counts[name]["inserted"],
                                                verified=None if self.check_mode else found)
        if not self.check_mode:
            conn.commit()
            self.uploaded = []
            self._export_ledger(stage, tables, finished)
        self.stage_results.append({"stage": stage, "status": "checked (rolled back: check mode)" if self.check_mode
                                   else "done", "finished": finished.isoformat(), "tables": summary,
                                   "deferred": deferred})

    def _remove_uploaded(self):
        if self.objects and self.uploaded:
            self.objects.remove(self.uploaded)
        self.uploaded = []

    def _load(self, name, index):
        table = self.catalog.tables[name]
        stg = sql.Identifier(f"mlops_stage_{len(self.stage_results)}_{index}")
        columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(col["name"]), sql.SQL(col["type"]))
                                     for col in table.columns)
        self.conn.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(stg, columns))
        with self.conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(stg)) as copy:
                with self.bundle.rows(name) as rows:
                    for chunk in iter(lambda: rows.read(1 << 20), b""):
                        copy.write(chunk)
        self.conn.execute(sql.SQL("ANALYZE {}").format(stg))
        self.temp[name] = {"stage": stg, "new": sql.Identifier(f"mlops_new_{len(self.stage_results)}_{index}")}

    def _offset(self, name, key, plan):
        row = self.conn.execute(f"SELECT key_offset FROM {LEDGER}.tables WHERE migration = %s AND tbl = %s",
                                [self.migration, name]).fetchone()
        if row and row[0] is not None:
            return row[0]
        if plan["offset"] is not None:
            return plan["offset"]
        top = self.conn.execute(sql.SQL("SELECT COALESCE(max({}), 0) FROM {}").format(
            sql.Identifier(key), quote_table(name))).fetchone()[0]
        return int(top) + int(plan["margin"])

    def _new_keys(self, name):
        """The key map of a table's rows not in it yet: (src, dst, matched) in ``mlops_new_<i>``, added to the map."""
        plan, key = self.plan_for(name), self.own_key(name)
        stg, new, km = self.temp[name]["stage"], self.temp[name]["new"], self.names.key_map(name)
        self.conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (src bigint PRIMARY KEY, dst bigint NOT NULL, "
                                  "inserted boolean NOT NULL, old jsonb)").format(km))
        offset = None
        target_key = sql.Identifier("t", key)
        join = sql.SQL("")
        matched = sql.SQL("false")
        if plan["key"] == "keep":
            dst = sql.Identifier("s", key)
        elif plan["key"] == "offset":
            offset = self._offset(name, key, plan)
            dst = sql.SQL("s.{} + {}").format(sql.Identifier(key), sql.Literal(offset))
        else:
            dst = self._fresh_key(name, key)
            if plan["key"] == "natural":
                on = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(col)) for col in plan["natural_key"])
                join = sql.SQL(" LEFT JOIN {} t ON {}").format(quote_table(name), on)
                dst = sql.SQL("COALESCE({}, {})").format(target_key, dst)
                matched = sql.SQL("{} IS NOT NULL").format(target_key)
        self.conn.execute(sql.SQL(
            "CREATE TEMP TABLE {new} ON COMMIT DROP AS SELECT s.{key} AS src, {dst} AS dst, {matched} AS matched "
            "FROM {stg} s{join} WHERE NOT EXISTS (SELECT 1 FROM {km} k WHERE k.src = s.{key})").format(
                new=new, key=sql.Identifier(key), dst=dst, matched=matched, stg=stg, join=join, km=km))
        self.conn.execute(sql.SQL("ANALYZE {}").format(new))
        self.conn.execute(sql.SQL("INSERT INTO {km} (src, dst, inserted) SELECT src, dst, NOT matched FROM {new}").format(
            km=km, new=new))
        self.conn.execute(f"INSERT INTO {LEDGER}.tables (migration, tbl, strategy, key_offset) VALUES (%s, %s, %s, %s) "
                          "ON CONFLICT (migration, tbl) DO NOTHING", [self.migration, name, plan["key"], offset])
        if plan["key"] == "keep" and plan["on_duplicate"] == "fail":
            count, first = self.conn.execute(sql.SQL(
                "SELECT count(*), min(n.dst) FROM {new} n JOIN {table} t ON t.{key} = n.dst").format(
                    new=new, table=quote_table(name), key=sql.Identifier(key))).fetchone()
            if count:
                raise PostgresError(f"{count} row(s) of {name} have keys the target already holds (first: {first}); "
                                    "on_duplicate is fail")

    def _fresh_key(self, name, key):
        """New keys from the target's sequence (in check mode: past the highest key, the sequence untouched)."""
        sequence = self.target.tables[name].sequences[key]
        if not self.check_mode:
            return sql.SQL("nextval({})").format(sql.Literal(sequence))
        top = self.conn.execute(sql.SQL("SELECT COALESCE(max({}), 0) FROM {}").format(
            sql.Identifier(key), quote_table(name))).fetchone()[0]
        return sql.SQL("{} + row_number() OVER ()").format(sql.Literal(int(top)))

    def _shift(self, name):
        """A ``_Shift`` when the keys of ``name`` move by a fixed amount (strategies keep and offset), else None."""
        row = self.conn.execute(f"SELECT strategy, key_offset FROM {LEDGER}.tables WHERE migration = %s AND tbl = %s",
                                [self.migration, name]).fetchone()
        return _Shift(row[1] or 0) if row and row[0] in ("keep", "offset") else None

    def _key_map(self, name):
        """What references to ``name`` map through: its offset (keep, offset) or its key map read into memory."""
        shift = self._shift(name)
        if shift is not None:
            return shift
        return dict(self.conn.execute(sql.SQL("SELECT src, dst FROM {}").format(self.names.key_map(name))).fetchall())

    def _rewrite_references(self, tables):
        """Rewrite the keys held in JSON and text columns of the stage's rows; ``{table: set of new keys}``.

        The references of one column are applied in one pass, in the plan's order: the rows are read in batches
        through a server-side cursor, the changed values go back by COPY into a temporary table and one UPDATE,
        so memory stays at a batch (and the key map of a remapped table).
        """
        from psycopg.types.json import Jsonb  # pylint: disable=import-outside-toplevel

        resolved, columns = {}, {}
        for ref in self.references:
            if ref.table in tables:
                columns.setdefault((ref.table, ref.column), []).append(ref)
        for number, ((table, name), refs) in enumerate(columns.items()):
            unresolved = [set() for _ref in refs]
            for ref, missing in zip(refs, unresolved):
                ref.bind(self._key_map(ref.to), missing, resolved.setdefault(ref.to, set()))
            renames = self.objects and (table, name) == (self.objects.table, self.objects.column)
            stg, column = self.temp[table]["stage"], sql.Identifier(name)
            changed = sql.Identifier(f"mlops_changed_{len(self.stage_results)}_{number}")
            self.conn.execute(sql.SQL("CREATE TEMP TABLE {} (row_id tid, value {}) ON COMMIT DROP").format(
                changed, sql.SQL(self.catalog.tables[table].column_type(name))))
            batch = []
            with self.conn.cursor(name=f"mlops_refs_{number}") as cur:
                cur.itersize = 5000
                cur.execute(sql.SQL("SELECT ctid::text, {} FROM {} WHERE {} IS NOT NULL").format(column, stg, column))
                for ctid, value in cur:
                    new = value
                    for ref in refs:
                        new = ref.rewrite(new)
                    if new == value:
                        continue
                    batch.append((ctid, Jsonb(new) if isinstance(new, (dict, list)) else new))
                    if renames:
                        self.objects.rename(value, new)
                    if len(batch) >= 5000:
                        self._copy_rows(changed, batch)
            self._copy_rows(changed, batch)
            for ref, missing in zip(refs, unresolved):
                if missing:
                    sample = ", ".join(sorted(map(str, missing))[:5])
                    raise PostgresError(f"{ref.table}.{ref.column} names {len(missing)} key(s) of {ref.to} that are "
                                        f"neither in the bundle nor in the key map (first: {sample})")
            self.conn.execute(sql.SQL("UPDATE {stg} s SET {col} = c.value FROM {changed} c WHERE s.ctid = c.row_id").format(
                stg=stg, col=column, changed=changed))
        return resolved

    def _copy_rows(self, table, rows):
        if rows:
            with self.conn.cursor() as cur:
                with cur.copy(sql.SQL("COPY {} (row_id, value) FROM STDIN").format(table)) as copy:
                    for row in rows:
                        copy.write_row(row)
        rows.clear()

    def _column_exprs(self, name):
        """``(select list, joins, checks)`` of a table's mapped rows from its stage table ``s``.

        A foreign key into a table whose keys move by a fixed amount is mapped by arithmetic; its join to the key
        map (``checks`` needs it) is left out of the select's ``joins``.
        """
        table, key = self.catalog.tables[name], self.own_key(name)
        exprs, joins, checks = [], [], []
        for index, col in enumerate(table.column_names):
            ident = sql.Identifier(col)
            if col == key:
                exprs.append(sql.SQL("n.dst AS {}").format(ident))
                continue
            owner = self.key_owner(name, col)
            if owner is None:
                exprs.append(sql.SQL("s.{0} AS {0}").format(ident))
                continue
            alias = sql.Identifier(f"k{index}")
            join = sql.SQL(" LEFT JOIN {km} {a} ON {a}.src = s.{col}").format(km=self.names.key_map(owner), a=alias, col=ident)
            shift = self._shift(owner)
            if shift is None:
                joins.append(join)
                exprs.append(sql.SQL("{}.dst AS {}").format(alias, ident))
            else:
                exprs.append(sql.SQL("s.{0} + {1} AS {0}").format(ident, sql.Literal(shift.offset)))
            checks.append((col, owner, join, sql.SQL("s.{col} IS NOT NULL AND {a}.src IS NULL").format(col=ident, a=alias)))
        return exprs, joins, checks

    def _mapped(self, name, matched):
        """``SELECT`` of a table's rows with every key mapped (those of its new rows that are ``matched`` or not)."""
        exprs, joins, _checks = self._column_exprs(name)
        stg = self.temp[name]["stage"]
        key = self.own_key(name)
        query = sql.SQL("SELECT {} FROM {} s").format(sql.SQL(", ").join(exprs), stg)
        if key:
            query += sql.SQL(" JOIN {} n ON n.src = s.{} AND n.matched = {}").format(
                self.temp[name]["new"], sql.Identifier(key), sql.Literal(matched))
        return query + sql.SQL("").join(joins)

    def _check_unmapped(self, name):
        _exprs, _joins, checks = self._column_exprs(name)
        if not checks:
            return
        stg = self.temp[name]["stage"]
        counts = sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE {0}), min(s.{1}::text) FILTER (WHERE {0})").format(
            cond, sql.Identifier(col)) for col, _owner, _join, cond in checks)
        joins = sql.SQL("").join(join for _col, _owner, join, _cond in checks)
        row = self.conn.execute(sql.SQL("SELECT {} FROM {} s").format(counts, stg) + joins).fetchone()
        for index, (col, owner, _join, _cond) in enumerate(checks):
            if row[2 * index]:
                raise PostgresError(f"{name}.{col}: {row[2 * index]} value(s) name rows of {owner} that are neither in "
                                    f"the bundle nor in the key map (first: {row[2 * index + 1]})")

    def _insert(self, name):
        plan, table, key = self.plan_for(name), self.catalog.tables[name], self.own_key(name)
        self._check_unmapped(name)
        target = quote_table(name)
        columns = _ident_list(table.column_names)
        pk = _ident_list(table.primary_key)
        found = self.bundle.tables[name]["rows"]
        if key is None:
            inserted = self.names.inserted(name)
            self.conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (pk jsonb PRIMARY KEY)").format(inserted))
            pk_json = sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
                sql.SQL("{}, {}").format(sql.Literal(col), sql.Identifier(col)) for col in table.primary_key))
            conflict = sql.SQL("ON CONFLICT ({}) DO NOTHING").format(pk)
            if plan["on_duplicate"] == "fail":
                conflict = sql.SQL("")
            cur = self.conn.execute(sql.SQL(
                "WITH ins AS (INSERT INTO {target} ({columns}) {override}SELECT * FROM ({mapped}) m {conflict} "
                "RETURNING {pk_json}) INSERT INTO {inserted} (pk) SELECT * FROM ins ON CONFLICT DO NOTHING").format(
                    target=target, columns=columns, mapped=self._mapped(name, False), conflict=conflict,
                    pk_json=pk_json, inserted=inserted, override=self._override(name)))
            return {"found": found, "inserted": cur.rowcount, "matched": 0}
        km, new = self.names.key_map(name), self.temp[name]["new"]
        keep = plan["key"] == "keep"
        if keep and plan["on_duplicate"] == "update":
            self.conn.execute(sql.SQL("UPDATE {km} k SET old = to_jsonb(t), inserted = false FROM {target} t, {new} n "
                                      "WHERE n.src = k.src AND t.{key} = k.dst").format(
                                          km=km, target=target, new=new, key=sql.Identifier(key)))
            others = [col for col in table.column_names if col != key]
            conflict = sql.SQL("ON CONFLICT ({}) DO UPDATE SET ({}) = ROW({})").format(
                sql.Identifier(key), _ident_list(others), _ident_list(others, "excluded"))
        elif keep and plan["on_duplicate"] == "skip":
            conflict = sql.SQL("ON CONFLICT ({}) DO NOTHING").format(sql.Identifier(key))
        else:
            conflict = sql.SQL("")
        insert = sql.SQL("INSERT INTO {target} ({columns}) {override}SELECT * FROM ({mapped}) m {conflict}").format(
            target=target, columns=columns, mapped=self._mapped(name, False), conflict=conflict,
            override=self._override(name))
        skipped = 0
        if keep and plan["on_duplicate"] == "skip":
            inserted, skipped = self.conn.execute(sql.SQL(
                "WITH ins AS ({insert} RETURNING {key}), "
                "fix AS (UPDATE {km} k SET inserted = false FROM {new} n WHERE n.src = k.src AND k.inserted "
                "AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.{key} = k.dst) RETURNING 1) "
                "SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM fix)").format(
                    insert=insert, key=sql.Identifier(key), km=km, new=new)).fetchone()
        else:
            inserted = self.conn.execute(insert).rowcount
        matched = self.conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE matched").format(new)).fetchone()[0]
        if keep and plan["on_duplicate"] == "update":
            inserted = self.conn.execute(sql.SQL("SELECT count(*) FROM {km} k JOIN {new} n ON n.src = k.src "
                                                 "WHERE k.old IS NULL").format(km=km, new=new)).fetchone()[0]
        return {"found": found, "inserted": inserted, "matched": matched, "skipped": skipped}

    def _override(self, name):
        return sql.SQL("OVERRIDING SYSTEM VALUE ") if self.target.tables[name].always_identity else sql.SQL("")

    def _update_matched(self, name):
        """Natural-key matches: the plan's ``update`` columns set from the bundle, the old row kept for a rollback."""
        plan, key = self.plan_for(name), self.own_key(name)
        if plan["key"] != "natural" or not plan["update"]:
            return
        km, new, target = self.names.key_map(name), self.temp[name]["new"], quote_table(name)
        self.conn.execute(sql.SQL("UPDATE {km} k SET old = to_jsonb(t) FROM {target} t, {new} n "
                                  "WHERE n.matched AND n.src = k.src AND t.{key} = k.dst").format(
                                      km=km, target=target, new=new, key=sql.Identifier(key)))
        cols = plan["update"]
        self.conn.execute(sql.SQL("UPDATE {target} t SET ({cols}) = ROW({vals}) FROM ({mapped}) m "
                                  "WHERE t.{key} = m.{key}").format(
                                      target=target, cols=_ident_list(cols), vals=_ident_list(cols, "m"),
                                      mapped=self._mapped(name, True), key=sql.Identifier(key)))

    def _advance_sequences(self, tables):
        for name in tables:
            for column, sequence in self.target.tables[name].sequences.items():
                self.conn.execute(sql.SQL(
                    "SELECT setval({seq}::regclass, m) FROM (SELECT max({col}) AS m FROM {table}) x "
                    "WHERE m IS NOT NULL AND m > COALESCE(pg_sequence_last_value({seq}::regclass), 0)").format(
                        seq=sql.Literal(sequence), col=sql.Identifier(column), table=quote_table(name)))

    def _verify(self, name, counts):
        """Every key-map row of the table present at the target; inserted rows equal to the bundle's."""
        key, target = self.own_key(name), quote_table(name)
        table = self.catalog.tables[name]
        if key is None:
            missing = self.conn.execute(sql.SQL(
                "SELECT count(*) FROM {ir} r WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {match})").format(
                    ir=self.names.inserted(name), target=target, match=sql.SQL(" AND ").join(
                        sql.SQL("t.{0}::text = r.pk->>{1}").format(sql.Identifier(col), sql.Literal(col))
                        for col in table.primary_key))).fetchone()[0]
            if missing:
                raise PostgresError(f"{missing} inserted row(s) of {name} are not at the target")
            return
        km, new, stg = self.names.key_map(name), self.temp[name]["new"], self.temp[name]["stage"]
        missing = self.conn.execute(sql.SQL(
            "SELECT count(*) FROM {km} k WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE t.{key} = k.dst)").format(
                km=km, target=target, key=sql.Identifier(key))).fetchone()[0]
        if missing:
            raise PostgresError(f"{missing} row(s) of {name} in the key map are not at the target")
        plain = [col for col in table.columns if col["name"] != key and self.key_owner(name, col["name"]) is None
                 and not any(ref.table == name and ref.column == col["name"] for ref in self.references)]
        if not plain:
            return

        def digest(alias):
            return sql.SQL("sum(hashtextextended(ROW({})::text, 0)::numeric)").format(sql.SQL(", ").join(
                sql.SQL("{}.{}::{}").format(sql.Identifier(alias), sql.Identifier(col["name"]), sql.SQL(col["type"]))
                for col in plain))
        plan = self.plan_for(name)
        if plan["key"] == "keep" and plan["on_duplicate"] == "skip":  # the key map says which rows went in
            rows = sql.SQL("JOIN {km} k ON k.src = n.src WHERE k.inserted").format(km=km)
        else:
            rows = sql.SQL("WHERE NOT n.matched")
        source, written = self.conn.execute(sql.SQL(
            "SELECT (SELECT {ds} FROM {stg} s JOIN {new} n ON n.src = s.{key} {rows}), "
            "(SELECT {dt} FROM {target} t JOIN {new} n ON n.dst = t.{key} {rows})").format(
                ds=digest("s"), dt=digest("t"), stg=stg, new=new, target=target, rows=rows,
                key=sql.Identifier(key))).fetchone()
        if source != written:
            raise PostgresError(f"the rows of {name} written at the target differ from the bundle's "
                                f"(content digest {written} != {source})")
        counts["verified"] = counts["inserted"]

    def _verify_references(self, resolved):
        for name, keys in resolved.items():
            key = self.own_key(name)
            if not keys:
                continue
            missing = self.conn.execute(sql.SQL(
                "SELECT count(*) FROM unnest(%b::bigint[]) r(k) WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE t.{} = r.k)").format(
                    quote_table(name), sql.Identifier(key)), [list(keys)]).fetchone()[0]
            if missing:
                raise PostgresError(f"{missing} key(s) of {name} named by references are not at the target")

    def _export_ledger(self, stage, tables, finished):
        """The stage's key maps and checkpoint, as files in ``<ledger_dir>/<migration>/``."""
        if not self.ledger_dir:
            return
        directory = os.path.join(self.ledger_dir, re.sub(r"[^A-Za-z0-9_.@-]", "_", self.migration))
        os.makedirs(directory, exist_ok=True)
        ledger_path = os.path.join(directory, "ledger.json")
        try:
            with open(ledger_path, encoding="utf-8") as handle:
                ledger = json.load(handle)
        except (OSError, ValueError):
            ledger = {"migration": self.migration, "stages": {}, "key_maps": {}}
        for name in tables:
            if not self.own_key(name):
                continue
            path = os.path.join(directory, f"{name}.keymap.tsv.gz")
            digest = hashlib.sha256()
            with gzip.open(path + ".tmp", "wb", compresslevel=1) as out:
                with self.conn.cursor() as cur:
                    with cur.copy(sql.SQL("COPY (SELECT src, dst, inserted FROM {} ORDER BY src) TO STDOUT").format(
                            self.names.key_map(name))) as copy:
                        for data in copy_chunks(copy):
                            out.write(data)
                            digest.update(data)
            durable_replace(path + ".tmp", path)
            offset = self.conn.execute(f"SELECT strategy, key_offset FROM {LEDGER}.tables WHERE migration = %s AND tbl = %s",
                                       [self.migration, name]).fetchone()
            ledger["key_maps"][name] = {"file": os.path.basename(path), "sha256_of_rows": digest.hexdigest(),
                                        "strategy": offset[0], "offset": offset[1]}
        self.conn.rollback()
        ledger["stages"][stage] = {"finished": finished.isoformat(), "tables": tables}
        write_text_atomic(ledger_path, json.dumps(ledger, indent=2, sort_keys=True) + "\n")

    def result(self, failed_stage=None):
        out = {"migration": self.migration, "stages": self.stage_results, "deferred": self.deferred,
               "changed": any(s["status"] != "done before" for s in self.stage_results)}
        if failed_stage:
            out["failed_stage"] = failed_stage
        return out


def rollback(conn, migration, check_mode=False):
    """Undo every finished stage of ``migration`` by its key maps (newest stage first); the ledger removed too."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{LEDGER}.stages"]).fetchone()[0]
    if not exists:
        conn.rollback()
        return {"migration": migration, "changed": False, "stages": [], "rows_deleted": {}, "rows_restored": {}}
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{LEDGER}:{migration}"])
    stages = conn.execute(f"SELECT stage, tables FROM {LEDGER}.stages WHERE migration = %s ORDER BY finished DESC",
                          [migration]).fetchall()
    strategies = dict(conn.execute(f"SELECT tbl, strategy FROM {LEDGER}.tables WHERE migration = %s", [migration]).fetchall())
    names = LedgerNames(migration)
    deleted, restored = {}, {}
    for _stage, record in stages:
        order = list(record["order"])
        catalog = read_catalog(conn, sorted({split_table(n)[0] for n in order}), order)
        for name in reversed(order):
            table = catalog.tables[name]
            target = quote_table(name)
            if name in strategies:
                key = sql.Identifier(table.primary_key[0])
                km = names.key_map(name)
                cols = [col["name"] for col in table.columns
                        if col["name"] != table.primary_key[0] and col.get("identity") != "always"]
                restored[name] = 0 if not cols else conn.execute(sql.SQL(
                    "UPDATE {target} t SET ({cols}) = (SELECT {rcols} FROM jsonb_populate_record(NULL::{target}, k.old) r) "
                    "FROM {km} k WHERE k.old IS NOT NULL AND t.{key} = k.dst").format(
                        target=target, cols=_ident_list(cols), rcols=_ident_list(cols, "r"), km=km, key=key)).rowcount
                deleted[name] = conn.execute(sql.SQL("DELETE FROM {target} t USING {km} k WHERE k.inserted AND t.{key} = k.dst").format(
                    target=target, km=km, key=key)).rowcount
                conn.execute(sql.SQL("DROP TABLE {}").format(km))
            else:
                ir = names.inserted(name)
                if conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{LEDGER}." + names.bare("ir", name)]).fetchone()[0]:
                    deleted[name] = conn.execute(sql.SQL("DELETE FROM {target} t USING {ir} r WHERE {match}").format(
                        target=target, ir=ir, match=sql.SQL(" AND ").join(
                            sql.SQL("t.{0}::text = r.pk->>{1}").format(sql.Identifier(col), sql.Literal(col))
                            for col in table.primary_key))).rowcount
                    conn.execute(sql.SQL("DROP TABLE {}").format(ir))
    conn.execute(f"DELETE FROM {LEDGER}.stages WHERE migration = %s", [migration])
    conn.execute(f"DELETE FROM {LEDGER}.tables WHERE migration = %s", [migration])
    if check_mode:
        conn.rollback()
    else:
        conn.commit()
    return {"migration": migration, "changed": bool(stages), "stages": [stage for stage, _tables in stages],
            "rows_deleted": deleted, "rows_restored": restored}
