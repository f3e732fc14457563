"""postgres_backup and postgres_restore on two real PostgreSQL clusters with an oSPARC-shaped schema: a merge into a
deployment that has rows with the same ids and users with the same e-mails, its checks, re-run, check mode, stage
and whole-merge rollback, kill and resume, a one-project subset, the signed project archive with its S3 objects,
and bad input refused before any write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import uuid

import psycopg
import pytest

from tests import postgres_platform as platform
from tests.stack.process import free_port

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = ("shared@example.org",)
PLAN = {"stages": platform.STAGES, "tables": platform.TABLE_PLANS, "references": platform.REFERENCES}


def _modules():
    from ansible_collections.mlops.migration.plugins.module_utils.postgres import (  # pylint: disable=import-outside-toplevel
        bundle,
        dump,
        merge,
    )
    return bundle, dump, merge


def new_database(server, prefix):
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with server.connect(autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return dict(server.connection, database=name)


def connect(params):
    return psycopg.connect(host=params["host"], port=params["port"], user=params["user"], password=params["password"],
                           dbname=params["database"])


@pytest.fixture
def deployments(postgres_pair):
    """A source deployment (alpha: 3 users) and a target (beta: 2 users) with the same ids, one e-mail on both."""
    source = new_database(postgres_pair["source"], "alpha")
    target = new_database(postgres_pair["target"], "beta")
    objects = {}
    for params, name, users, bucket in ((source, "alpha", 3, objects), (target, "beta", 2, None)):
        with connect(params) as conn:
            platform.create_schema(conn)
            platform.seed(conn, name, users=users, shared_emails=SHARED, bucket_objects=bucket)
    return source, target, objects


def backup(source, dest, **extra):
    _bundle, dump, _merge = _modules()
    return dump.backup(dict(source, dest=str(dest), **extra))


def merge_into(target, src, plan=None, check_mode=False, **extra):
    bundle, _dump, merge = _modules()
    opened = bundle.open_bundle(str(src), extra.pop("verify", None))
    conn = connect(target)
    try:
        return merge.Merge(conn, opened, dict(plan or PLAN, **extra), check_mode=check_mode).run()
    finally:
        conn.close()
        opened.close()


def check_integrity(conn):
    """Every foreign key holds (the server checks) and every key inside JSONB and text names the right row."""
    rows = conn.execute("SELECT id, workbench FROM projects").fetchall()
    for project, workbench in rows:
        nodes = {row[0] for row in conn.execute("SELECT node_id FROM projects_nodes WHERE project_id = %s", [project])}
        assert {int(key) for key in workbench} == nodes, (project, workbench)
        for node in workbench.values():
            for link in node.get("inputs", {}).values():
                assert link["nodeUuid"] in nodes
    for key, project, node in conn.execute("SELECT object_key, project_id, node_id FROM file_meta_data"):
        assert key.startswith(f"{project}/{node}/"), key
    for table in platform.TABLES:  # no orphan (NOT VALID constraints would allow them; none are)
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE NOT convalidated").fetchone()[0] == 0, table


def rows_of(conn, query, *args):
    return conn.execute(query, args).fetchall()


def test_merge_keeps_both_deployments_merges_users_and_rewrites_every_reference(deployments, tmp_path):
    source, target, _objects = deployments
    with connect(target) as conn:
        before = platform.snapshot(conn)
    manifest, changed = backup(source, tmp_path / "bundle")
    assert {e["table"]: e["rows"] for e in manifest["tables"]}["public.projects"] == 6 and changed
    result = merge_into(target, tmp_path / "bundle", ledger_dir=str(tmp_path / "ledger"))
    assert [s["status"] for s in result["stages"]] == ["done", "done", "done"]
    with connect(target) as conn:
        check_integrity(conn)
        after = platform.snapshot(conn)
        # the target's own rows are all still there; the shared user is one row, named as the source names it
        for table in ("groups", "projects", "projects_nodes", "comp_tasks", "file_meta_data", "payments_transactions"):
            assert set(before[table]) <= set(after[table]), table
        assert rows_of(conn, "SELECT name FROM users WHERE email = %s", SHARED[0]) == [("alpha user 0",)]
        assert rows_of(conn, "SELECT count(*) FROM users")[0][0] == 2 + 3 - 1
        assert rows_of(conn, "SELECT count(*) FROM projects")[0][0] == 4 + 6
        assert rows_of(conn, "SELECT count(*) FROM projects_nodes")[0][0] == 12 + 18
        # the shared user's source projects now belong to the target's user with that e-mail
        shared = rows_of(conn, "SELECT id FROM users WHERE email = %s", SHARED[0])[0][0]
        assert rows_of(conn, "SELECT count(*) FROM projects WHERE prj_owner = %s", shared)[0][0] == 2 + 2
        # a folder's parent is the merged parent, and the sub folder's workspace is its own
        assert rows_of(conn, "SELECT count(*) FROM folders f JOIN folders p ON p.folder_id = f.parent_folder_id "
                             "WHERE f.name = 'sub 1' AND p.name = 'top 1'")[0][0] == 2
        # sequences moved past the new keys: plain inserts work in every table with one
        gid = conn.execute("INSERT INTO groups (name) VALUES ('after') RETURNING gid").fetchone()[0]
        uid = conn.execute("INSERT INTO users (email, name, primary_gid) VALUES ('new@x', 'n', %s) RETURNING id",
                           [gid]).fetchone()[0]
        workspace = conn.execute("INSERT INTO workspaces (name, owner_primary_gid) VALUES ('w', %s) "
                                 "RETURNING workspace_id", [gid]).fetchone()[0]
        folder = conn.execute("INSERT INTO folders (name, workspace_id) VALUES ('f', %s) RETURNING folder_id",
                              [workspace]).fetchone()[0]
        project = conn.execute("INSERT INTO projects (uuid, name, prj_owner, folder_id) VALUES (%s, 'p', %s, %s) "
                               "RETURNING id", [uuid.uuid4(), uid, folder]).fetchone()[0]
        node = conn.execute("INSERT INTO projects_nodes (project_id, key) VALUES (%s, 'k') RETURNING node_id",
                            [project]).fetchone()[0]
        conn.execute("INSERT INTO comp_tasks (project_id, node_id, state) VALUES (%s, %s, 'NEW')", [project, node])
        conn.execute("INSERT INTO file_meta_data (object_key, file_size, sha256) VALUES ('x/y', 0, '')")
        conn.rollback()
    ledger = json.loads((tmp_path / "ledger" / result["migration"] / "ledger.json").read_text())
    assert set(ledger["stages"]) == {"users", "platform", "studies"}
    assert ledger["key_maps"]["public.projects"]["strategy"] == "offset"
    assert ledger["key_maps"]["public.users"]["strategy"] == "natural"

    # re-run: the bundle is rewritten identically, the merge skips every stage and inserts nothing
    _manifest, changed = backup(source, tmp_path / "bundle")
    assert changed == []
    again = merge_into(target, tmp_path / "bundle")
    assert [s["status"] for s in again["stages"]] == ["done before"] * 3 and not again["changed"]
    with connect(target) as conn:
        assert platform.snapshot(conn) == after

    # the finished merge rolled back: the target as it was, the shared user's name too
    _bundle, _dump, merge = _modules()
    with connect(target) as conn:
        undone = merge.rollback(conn, result["migration"])
        assert undone["rows_restored"]["public.users"] == 1
        assert platform.snapshot(conn) == before
        assert rows_of(conn, "SELECT count(*) FROM mlops_migration.stages")[0][0] == 0


def test_check_mode_reports_the_merge_and_writes_nothing(deployments, tmp_path):
    source, target, _objects = deployments
    backup(source, tmp_path / "bundle")
    with connect(target) as conn:
        before = platform.snapshot(conn)
        sequence = rows_of(conn, "SELECT last_value FROM projects_nodes_node_id_seq")
    result = merge_into(target, tmp_path / "bundle", check_mode=True)
    assert [s["status"] for s in result["stages"]] == ["checked (rolled back: check mode)"] * 3
    assert result["stages"][2]["tables"]["public.projects_nodes"]["inserted"] == 18
    with connect(target) as conn:
        assert platform.snapshot(conn) == before
        assert rows_of(conn, "SELECT to_regnamespace('mlops_migration')")[0][0] is None
        assert rows_of(conn, "SELECT last_value FROM projects_nodes_node_id_seq") == sequence


def test_a_failed_stage_is_rolled_back_and_the_stages_before_it_stay_done(deployments, tmp_path):
    source, target, _objects = deployments
    backup(source, tmp_path / "bundle")
    bundle, _dump, merge = _modules()
    with connect(target) as conn:
        before = platform.snapshot(conn)
    # users by offset: the shared e-mail collides in the first stage; nothing at all is written
    plan = dict(PLAN, tables={"projects_nodes": {"key": "remap"}})
    with pytest.raises(merge.PostgresError, match=r"stage users rolled back.*duplicate key value.*email"):
        merge_into(target, tmp_path / "bundle", plan)
    with connect(target) as conn:
        assert platform.snapshot(conn) == before
    # a study names a node that is in no bundle: the studies stage fails its check, users and platform stay done
    with connect(source) as conn:
        conn.execute("UPDATE projects SET workbench = workbench || '{\"99999\": {}}' WHERE id = 1")
        conn.commit()
    backup(source, tmp_path / "bundle")
    with pytest.raises(merge.PostgresError, match=r"stage studies rolled back.*99999"):
        merge_into(target, tmp_path / "bundle")
    with connect(target) as conn:
        stages = rows_of(conn, "SELECT stage FROM mlops_migration.stages ORDER BY stage")
        assert stages == [("platform",), ("users",)]
        after = platform.snapshot(conn)
        for table in ("folders", "projects", "projects_nodes", "comp_tasks", "file_meta_data"):
            assert after[table] == before[table], table
        assert len(after["users"]) == 4


def test_killed_merge_resumes_without_duplicates(deployments, tmp_path):
    source, target, _objects = deployments
    with connect(source) as conn:
        owner = rows_of(conn, "SELECT min(id) FROM users")[0][0]
        platform.seed_bulk(conn, projects=1500, nodes_per_project=40, owner=owner)
        expected = {table: rows_of(conn, f"SELECT count(*) FROM {table}")[0][0] for table in platform.TABLES}
    backup(source, tmp_path / "bundle")
    with connect(target) as conn:
        start = {table: rows_of(conn, f"SELECT count(*) FROM {table}")[0][0] for table in platform.TABLES}
    script = (f"import sys; sys.path.insert(0, {REPO!r}); import tests.conftest; "
              "from tests.integration.test_postgres import merge_into; import json; "
              f"merge_into(json.loads({json.dumps(target)!r}), {str(tmp_path / 'bundle')!r})")
    child = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)  # pylint: disable=consider-using-with
    try:
        deadline = time.monotonic() + 120
        done = []
        while time.monotonic() < deadline and child.poll() is None:
            with connect(target) as conn:
                if rows_of(conn, "SELECT to_regclass('mlops_migration.stages')")[0][0]:
                    done = rows_of(conn, "SELECT stage FROM mlops_migration.stages")
            if ("platform",) in done:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the merge ended before it could be killed; give it more rows"
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    with connect(target) as conn:
        for _attempt in range(100):  # the server rolls the killed client's transaction back when it sees it gone
            if not rows_of(conn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mlops.migration' "
                                 "AND state <> 'idle'")[0][0]:
                break
            time.sleep(0.1)
        stages = {row[0] for row in rows_of(conn, "SELECT stage FROM mlops_migration.stages")}
        assert "studies" not in stages and "users" in stages
        assert rows_of(conn, "SELECT count(*) FROM projects")[0][0] == start["projects"]
    result = merge_into(target, tmp_path / "bundle")
    assert [s["status"] for s in result["stages"]] == ["done before", "done before", "done"]
    with connect(target) as conn:
        check_integrity(conn)
        for table in ("projects", "projects_nodes", "comp_tasks", "file_meta_data", "folders"):
            assert rows_of(conn, f"SELECT count(*) FROM {table}")[0][0] == start[table] + expected[table], table


def test_one_project_subset_carries_the_project_and_what_it_needs(deployments, tmp_path):
    source, target, _objects = deployments
    with connect(source) as conn:
        project, owner, folder = rows_of(conn, "SELECT id, prj_owner, folder_id FROM projects WHERE name = 'alpha study 1.1'")[0]
        parent = rows_of(conn, "SELECT parent_folder_id FROM folders WHERE folder_id = %s", folder)[0][0]
    manifest, _changed = backup(source, tmp_path / "bundle", root={"table": "projects", "column": "id", "values": [project]})
    rows = {e["table"].split(".")[1]: e["rows"] for e in manifest["tables"]}
    assert rows["projects"] == 1 and rows["projects_nodes"] == 3 and rows["comp_tasks"] == 3 and rows["file_meta_data"] == 3
    assert rows["users"] == 1 and rows["folders"] == 2  # the owner; the project's folder and its parent
    assert parent is not None
    assert "payments_transactions" not in rows  # nothing the project does not need
    stages = [{"name": "project", "tables": [e["table"] for e in manifest["tables"]]}]
    result = merge_into(target, tmp_path / "bundle", dict(PLAN, stages=stages))
    assert result["stages"][0]["tables"]["public.projects"]["inserted"] == 1
    with connect(target) as conn:
        check_integrity(conn)
        assert rows_of(conn, "SELECT count(*) FROM projects WHERE name = 'alpha study 1.1'")[0][0] == 1
        assert rows_of(conn, "SELECT count(*) FROM projects WHERE name LIKE 'alpha%%'")[0][0] == 1
        owner_email = rows_of(conn, "SELECT u.email FROM projects p JOIN users u ON u.id = p.prj_owner "
                                    "WHERE p.name = 'alpha study 1.1'")[0][0]
    assert owner_email == "user1@alpha.example" and owner


def test_signed_project_archive_round_trip_and_tampering_refused(deployments, tmp_path, seaweedfs_pair):
    source, target, objects = deployments
    _bundle, _dump, merge = _modules()
    from ansible_collections.mlops.migration.plugins.module_utils.postgres import bundle as bundles  # pylint: disable=import-outside-toplevel
    from ansible_collections.mlops.migration.plugins.module_utils.postgres.objects import ObjectImport  # pylint: disable=import-outside-toplevel
    from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import open_bucket  # pylint: disable=import-outside-toplevel
    from ansible_collections.mlops.migration.plugins.module_utils.signing import SignatureError  # pylint: disable=import-outside-toplevel

    src_s3, dst_s3 = s3_location(seaweedfs_pair["source"], "alpha-files"), s3_location(seaweedfs_pair["target"], "beta-files")
    src_bucket, _created = open_bucket(src_s3, create=True)
    for key, body in objects.items():
        src_bucket.client.put_object(Bucket="alpha-files", Key=key, Body=body)
    with connect(source) as conn:
        project = rows_of(conn, "SELECT id FROM projects WHERE name = 'alpha study 2.0'")[0][0]
    key = {"algorithm": "hmac-sha256", "key": "a secret the exporter and importer share"}
    dest = tmp_path / "export"
    params = dict(source, dest=str(dest), root={"table": "projects", "column": "id", "values": [project]},
                  objects={"table": "file_meta_data", "column": "object_key", "bucket": "alpha-files"}, sign=key)
    manifest, _changed = _modules()[1].backup(params, s3_client=src_bucket.client)
    assert len(manifest["objects"]) == 3
    archive = str(tmp_path / "export.tar")
    bundles.pack(str(dest), archive)
    stages = [{"name": "project", "tables": [e["table"] for e in manifest["tables"]]}]
    plan = dict(PLAN, stages=stages, key="remap", tables={"users": TABLE_USERS, "groups": {"key": "remap"}})
    with connect(target) as conn:
        before = platform.snapshot(conn)

    def run_import(path, verify=None):
        verify = verify or key
        target_bucket, _created = open_bucket(dst_s3, create=True)
        opened = bundles.open_bundle(path, verify, str(tmp_path))
        conn = connect(target)
        try:
            objects_to = ObjectImport(target_bucket, "file_meta_data", "object_key")
            return merge.Merge(conn, opened, plan, objects=objects_to).run(), target_bucket
        finally:
            conn.close()
            opened.close()

    # altered: a row file changed and the manifest's digest recomputed, then re-packed; the signature catches it
    tampered_dir = tmp_path / "tampered"
    with tarfile.open(archive) as tar:
        tar.extractall(tampered_dir)  # noqa: S202 - our own archive, in a test
    rows_file = next((tampered_dir / "rows").glob("public.projects.copy*"))
    rows_file.write_bytes(rows_file.read_bytes() + b"\x00")
    man = json.loads((tampered_dir / "manifest.json").read_text())
    for entry in man["tables"]:
        if entry["file"].startswith("rows/public.projects."):
            entry.update(bundles._digest_file(str(rows_file)))  # pylint: disable=protected-access
    (tampered_dir / "manifest.json").write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")
    tampered = str(tmp_path / "tampered.tar")
    bundles.pack(str(tampered_dir), tampered)
    with pytest.raises(SignatureError, match="does not match its manifest"):
        run_import(tampered)
    with pytest.raises(SignatureError, match="does not match its manifest"):
        run_import(archive, verify={"algorithm": "hmac-sha256", "key": "a wrong key"})
    os.unlink(tampered_dir / "manifest.sig")
    bundles.pack(str(tampered_dir), tampered)
    with pytest.raises(SignatureError, match="not signed"):
        run_import(tampered)
    with connect(target) as conn:
        assert platform.snapshot(conn) == before
    target_bucket, _created = open_bucket(dst_s3, create=True)
    assert list(target_bucket.client.list_objects_v2(Bucket="beta-files").get("Contents", [])) == []

    # an import whose rows fail after the objects went up removes them again
    with connect(target) as conn:
        conn.execute("ALTER TABLE comp_tasks ADD CONSTRAINT refuse_imports CHECK (state <> 'SUCCESS') NOT VALID")
        conn.commit()
    with pytest.raises(merge.PostgresError, match="refuse_imports"):
        run_import(archive)
    assert list(target_bucket.client.list_objects_v2(Bucket="beta-files").get("Contents", [])) == []
    with connect(target) as conn:
        conn.execute("ALTER TABLE comp_tasks DROP CONSTRAINT refuse_imports")
        conn.commit()

    # the round trip: new keys, the objects under the keys their rows now name, byte for byte
    result, bucket = run_import(archive)
    assert result["stages"][0]["status"] == "done"
    with connect(target) as conn:
        check_integrity(conn)
        keys = [row[0] for row in rows_of(conn, "SELECT object_key FROM file_meta_data f JOIN projects p "
                                                "ON p.id = f.project_id WHERE p.name = 'alpha study 2.0' ORDER BY 1")]
        new_project = rows_of(conn, "SELECT id FROM projects WHERE name = 'alpha study 2.0'")[0][0]
    assert len(keys) == 3 and all(k.startswith(f"{new_project}/") for k in keys)
    sent = sorted(body for k, body in objects.items() if k.startswith(f"{project}/"))
    got = sorted(bucket.client.get_object(Bucket="beta-files", Key=k)["Body"].read() for k in keys)
    assert got == sent


TABLE_USERS = {"key": "natural", "natural_key": ["email"]}


def s3_location(server, bucket):
    return {"endpoint_url": server.endpoint_url, "access_key": server.access_key, "secret_key": server.secret_key,
            "region": "us-east-1", "bucket": bucket, "prefix": "", "client": "builtin", "validate_certs": True}


def test_bad_input_is_refused_before_any_write(deployments, tmp_path, postgres_pair):
    source, target, _objects = deployments
    bundle, dump, merge = _modules()
    from ansible_collections.mlops.migration.plugins.module_utils.common import CredentialsRefused, Unreachable  # pylint: disable=import-outside-toplevel

    with pytest.raises(CredentialsRefused, match="refused the credentials"):
        dump.backup(dict(source, password="wrong", dest=str(tmp_path / "b")))
    with pytest.raises(Unreachable, match="did not answer"):
        dump.backup(dict(source, port=free_port(), dest=str(tmp_path / "b")))
    with pytest.raises(merge.PostgresError, match="no table public.nope"):
        dump.backup(dict(source, tables=["users", "nope"], dest=str(tmp_path / "b")))
    backup(source, tmp_path / "bundle")
    with connect(target) as conn:
        before = platform.snapshot(conn)
    for plan, message in (
            (dict(PLAN, tables={"nope": {"key": "offset"}}), "does not hold"),
            (dict(PLAN, tables={"users": {"key": "sideways"}}), r"tables.users.key is 'sideways'"),
            (dict(PLAN, tables={"users": {"key": "natural"}}), "needs natural_key"),
            (dict(PLAN, tables={"users": {"key": "natural", "natural_key": ["name"]}}), "not unique at the target"),
            (dict(PLAN, stages=platform.STAGES[:2]), "in no stage"),
            (dict(PLAN, stages=list(reversed(platform.STAGES))), "of the later stage"),
            (dict(PLAN, references=[{"table": "projects", "column": "nope", "to": "projects_nodes", "json_keys": True}]),
             "no column 'nope'")):
        with pytest.raises(merge.PostgresError, match=message):
            merge_into(target, tmp_path / "bundle", merge.checked_plan(plan))
    with pytest.raises(merge.PostgresError, match="no column extra"):
        with connect(source) as conn:
            conn.execute("ALTER TABLE payments_transactions ADD COLUMN extra text")
            conn.commit()
        backup(source, tmp_path / "bundle")
        merge_into(target, tmp_path / "bundle")
    # a bundle file changed on disk is refused by its digest
    rows_file = next((tmp_path / "bundle" / "rows").glob("public.users.copy*"))
    rows_file.write_bytes(b"garbage")
    with pytest.raises(bundle.BundleError, match="does not match the manifest"):
        merge_into(target, tmp_path / "bundle")
    with connect(target) as conn:
        assert platform.snapshot(conn) == before
        assert rows_of(conn, "SELECT to_regnamespace('mlops_migration')")[0][0] is None
