"""Benchmark: a PostgreSQL merge with offsets and remapped foreign keys against a bare COPY out and COPY in.

Starts the loopback stack's two PostgreSQL clusters, creates the oSPARC-shaped schema (tests/postgres_platform.py)
on both, and seeds (outside the measured time) BENCH_PG_ROWS rows (default 1,000,000) over 8 related tables of the
source - groups, users, user_to_groups, folders (a self-reference), projects (a JSONB workbench), projects_nodes,
comp_tasks, file_meta_data - and a tenth of that at the target, with the same integer ids. Then, in the same run:

  ours   postgres_backup's backup (COPY binary, gzip level 1, SHA-256 and md5 of every file) into a bundle, then
         postgres_restore's merge into the target that has rows: every table offset past the target's keys, every
         foreign key rewritten through the key maps, sequences moved, each table's content digest checked
  bare   per table, in dependency order, COPY (FORMAT binary) out of the source into a file, then COPY in from it
         into a database with the same schema and no rows: the least any tool must do (no remapping, no checks)

Each side runs as its own process (time and peak RSS measured from outside, the servers' work inside the time).
Prints both, rows/s, and the ratio (goal: ours >= 0.5x the bare rows/s, peak RSS < 250 MB).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from benchmarks.measure import run_measured  # noqa: E402  pylint: disable=wrong-import-position

TABLES = ("groups", "users", "user_to_groups", "folders", "projects", "projects_nodes", "comp_tasks", "file_meta_data")
# rows per unit: a user (with its group), two group memberships, two folders, four projects with three nodes,
# a task and a file each: 1 + 1 + 2 + 2 + 4 + 12 + 12 + 12 = 46 rows
ROWS_PER_USER = 46

SEED = """
INSERT INTO groups (gid, name, type) SELECT g, 'group ' || g, 'PRIMARY' FROM generate_series(1, %(users)s) g;
INSERT INTO users (id, email, name, primary_gid, created)
  SELECT g, 'user' || g || %(domain)s, 'user ' || g, g, '2024-01-01' FROM generate_series(1, %(users)s) g;
INSERT INTO user_to_groups (uid, gid, access_rights)
  SELECT g, g, '{"read": true}'::jsonb FROM generate_series(1, %(users)s) g
  UNION ALL SELECT g, 1, '{"read": true}' FROM generate_series(2, %(users)s) g
  UNION ALL SELECT 1, 2, '{}';
INSERT INTO folders (folder_id, name, parent_folder_id, created_by_gid)
  SELECT g, 'top ' || g, NULL, g FROM generate_series(1, %(users)s) g;
INSERT INTO folders (folder_id, name, parent_folder_id, created_by_gid)
  SELECT %(users)s + g, 'sub ' || g, g, g FROM generate_series(1, %(users)s) g;
INSERT INTO projects (id, uuid, name, prj_owner, workbench, folder_id, creation_date, price)
  SELECT p, md5(%(domain)s || p)::uuid, 'study ' || p, (p - 1) / 4 + 1,
         jsonb_build_object((3 * p - 2)::text, jsonb_build_object('label', 'a'), (3 * p - 1)::text,
                            jsonb_build_object('label', 'b'), (3 * p)::text, jsonb_build_object('label', 'c')),
         (p - 1) / 4 + 1, '2024-03-01', 1.5
  FROM generate_series(1, 4 * %(users)s) p;
INSERT INTO projects_nodes (node_id, project_id, key, label, required_resources)
  SELECT n, (n - 1) / 3 + 1, 'simcore/services/comp/itis/sleeper', 'node ' || n, '{"CPU": 1}'
  FROM generate_series(1, 12 * %(users)s) n;
INSERT INTO comp_tasks (project_id, node_id, state, outputs, start) OVERRIDING SYSTEM VALUE
  SELECT (n - 1) / 3 + 1, n, 'SUCCESS', '{"output_1": "x"}', '2024-03-02' FROM generate_series(1, 12 * %(users)s) n;
INSERT INTO file_meta_data (id, object_key, project_id, node_id, user_id, file_size, sha256)
  SELECT n, ((n - 1) / 3 + 1) || '/' || n || '/out.dat', (n - 1) / 3 + 1, n, ((n - 1) / 3) / 4 + 1, n, md5(n::text)
  FROM generate_series(1, 12 * %(users)s) n;
SELECT setval('groups_gid_seq', %(users)s), setval('users_id_seq', %(users)s),
       setval('folders_folder_id_seq', 2 * %(users)s), setval('projects_id_seq', 4 * %(users)s),
       setval('projects_nodes_node_id_seq', 12 * %(users)s), setval('file_meta_data_id_seq', 12 * %(users)s)
"""

PLAN = {
    "exclude_tables": ["workspaces", "payments_transactions"],
    "references": [{"table": "projects", "column": "workbench", "to": "projects_nodes", "json_keys": True},
                   {"table": "file_meta_data", "column": "object_key", "to": "projects", "pattern": r"^(\d+)/"},
                   {"table": "file_meta_data", "column": "object_key", "to": "projects_nodes", "pattern": r"^\d+/(\d+)/"}],
}


def connection(info, database):
    return {"host": info["host"], "port": info["port"], "user": info["user"], "password": info["password"],
            "database": database}


def create(info, database, users, domain):
    import psycopg  # pylint: disable=import-outside-toplevel

    from tests import postgres_platform  # pylint: disable=import-outside-toplevel

    with psycopg.connect(info["dsn"], autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        admin.execute(f'CREATE DATABASE "{database}"')
    params = connection(info, database)
    with psycopg.connect(**{"host": params["host"], "port": params["port"], "user": params["user"],
                            "password": params["password"], "dbname": database}) as conn:
        postgres_platform.create_schema(conn)
        if users:
            for statement in SEED.split(";"):
                if statement.strip():
                    conn.execute(statement, {"users": users, "domain": domain})
            conn.execute("ANALYZE")  # statistics for the planner
            conn.commit()
    return params


def ours(source, target, workdir):
    from ansible_collections.mlops.migration.plugins.module_utils.postgres import bundle, dump, merge  # pylint: disable=import-outside-toplevel
    from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import connect  # pylint: disable=import-outside-toplevel

    manifest, _changed = dump.backup(dict(source, dest=os.path.join(workdir, "bundle"), exclude_tables=PLAN["exclude_tables"]))
    opened = bundle.open_bundle(os.path.join(workdir, "bundle"))
    conn = connect(target)
    try:
        result = merge.Merge(conn, opened, {"references": PLAN["references"]}).run()
    finally:
        conn.close()
    inserted = sum(counts["inserted"] for stage in result["stages"] for counts in stage["tables"].values())
    print(json.dumps({"rows": sum(e["rows"] for e in manifest["tables"]), "inserted": inserted}))


def bare(source, target, workdir):
    import psycopg  # pylint: disable=import-outside-toplevel

    def connect(params):
        return psycopg.connect(host=params["host"], port=params["port"], user=params["user"],
                               password=params["password"], dbname=params["database"])

    rows = 0
    with connect(source) as src, connect(target) as dst:
        for table in TABLES:
            path = os.path.join(workdir, f"{table}.copy")
            with open(path, "wb") as out, src.cursor() as cur:
                with cur.copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
                    for data in copy:
                        out.write(data)
                rows += cur.rowcount
            with open(path, "rb") as data, dst.cursor() as cur:
                with cur.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                    for chunk in iter(lambda: data.read(1 << 20), b""):
                        copy.write(chunk)
        dst.commit()
    print(json.dumps({"rows": rows}))


def main():
    if len(sys.argv) > 1:
        side, source, target, workdir = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
        (ours if side == "ours" else bare)(source, target, workdir)
        return
    from tests.stack.stack import Stack  # pylint: disable=import-outside-toplevel

    rows = int(os.environ.get("BENCH_PG_ROWS", "1000000"))
    users = max(1, rows // ROWS_PER_USER)
    with tempfile.TemporaryDirectory(prefix="bench-postgres-") as workdir:
        stack = Stack(os.path.join(workdir, "stack"), ["postgres"]).start()
        try:
            src_info, dst_info = stack["postgres"]["source"].describe(), stack["postgres"]["target"].describe()
            dst_info["dsn"] = stack["postgres"]["target"].dsn
            src_info["dsn"] = stack["postgres"]["source"].dsn
            source = create(src_info, "source", users, "@inhouse.example")
            target = create(dst_info, "merged", users // 10, "@cloud.example")
            empty = create(dst_info, "plain", 0, "")
            print(f"source: {users * ROWS_PER_USER:,} rows over {len(TABLES)} tables; target: {users // 10 * ROWS_PER_USER:,} "
                  "rows with the same ids")
            for side in ("ours", "bare"):
                os.makedirs(os.path.join(workdir, side), exist_ok=True)
            mine = run_measured([sys.executable, os.path.abspath(__file__), "ours", json.dumps(source),
                                 json.dumps(target), os.path.join(workdir, "ours")])
            theirs = run_measured([sys.executable, os.path.abspath(__file__), "bare", json.dumps(source),
                                   json.dumps(empty), os.path.join(workdir, "bare")])
        finally:
            stack.stop()
    total = json.loads(theirs[2])["rows"]
    merged = json.loads(mine[2])
    assert merged["inserted"] == merged["rows"] == total, (merged, total)
    print(f"\n{'':44} {'seconds':>8} {'peak RSS':>9} {'rows/s':>10}")
    for label, (seconds, peak, _out) in (("backup + merge (offsets, FKs remapped, checked)", mine),
                                         ("bare COPY out + COPY in (no remapping)", theirs)):
        print(f"{label:44} {seconds:8.1f} {peak:7.0f}MB {total / seconds:10,.0f}")
    print(f"\nPostgreSQL merge: {theirs[0] / mine[0]:.2f}x the bare COPY's rows/s (goal >= 0.5x); "
          f"peak RSS {mine[1]:.0f} MB (goal < 250 MB)")


if __name__ == "__main__":
    main()
