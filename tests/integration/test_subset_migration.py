"""User and project subsets through playbooks/migrate.yml on the embedded demo platform: a subset moves
exactly the files and S3 objects its documents and its tasks' events name (counted against the seeded
references), nothing of other projects; a dangling reference is reported with its document id (or fails
the run before anything is written when the plan says so); a second subset migrated later into the same
target adds its files without touching the first; a re-run changes nothing; --check writes nothing.

One stack for the module, seeded as ``make demo`` seeds it, plus one task whose artifact names a file that
is not on the fileserver. The tests run in file order.
"""

from __future__ import annotations

import hashlib
import os
import re

import boto3
import pymongo
import pytest

from tests import clearml_documents, clearml_events
from tests.integration.ansible_run import run_playbook
from tests.stack import demo_platform

pytestmark = pytest.mark.integration
PLAYBOOK = "playbooks/migrate.yml"
INVENTORY = "inventories/demo"
FILES = demo_platform.FILES_URL  # with its trailing slash
S3_URL = f"s3://{demo_platform.BUCKET}/{demo_platform.S3_PREFIX}"
DANGLING = "dangling0000000000000000000000000"
TARGET = {"demo_target_bucket": "subset-bucket", "demo_target_db": "backend_subset",
          "demo_fileserver_landing": "subset-fileserver"}
DOCS = demo_platform.documents()
PROJECT = DOCS["project"][1]
USER = DOCS["user"][0]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with demo_platform.running(str(tmp_path_factory.mktemp("subset-platform"))) as state:
        # a task of the project, in a status that moves, whose artifact is not on the fileserver
        task = dict(DOCS["task"][10], _id=DANGLING, name="dangling", status="completed", execution={"artifacts": {
            "gone_output": {"key": "gone", "mode": "output",
                            "uri": f"{FILES}{PROJECT['name']}/dangling.{DANGLING}/artifacts/gone/gone.csv"}}})
        mongo(state, "source", "backend").task.insert_one(task)
        yield state


def mongo(state, side, name):
    return pymongo.MongoClient(state["mongo"][side]["uri"], serverSelectionTimeoutMS=20000)[name]


@pytest.fixture
def run(platform, tmp_path):
    def go(scope, scope_id, name, expect_rc=0, **kwargs):
        # the dangling task this module adds names a file that does not exist: the ClearML tracker pair fails such a
        # task (it cannot fetch the artifact; tests/integration/test_clearml_server.py covers that), so it is left out
        extra = dict(TARGET, demo_name=name, migration_scope=scope, migration_scope_id=scope_id,
                     demo_clearml_tasks_to_mlflow=False, **kwargs.pop("extra_vars", {}))
        return run_playbook(PLAYBOOK, INVENTORY, str(tmp_path), env_vars={"MLOPS_DEMO_DIR": platform["workdir"]},
                            extra_vars=extra, expect_rc=expect_rc, **kwargs)
    return go


def expected(tasks):
    """``(fileserver paths, keys below the bucket prefix)`` the seeded references of ``tasks`` (and of the models
    of every task of theirs that is backed up, ``models_of``) name."""
    files, keys = set(), set()
    kept = [t for t in tasks if t["status"] in clearml_documents.KEPT_STATUSES]
    for task in kept:
        for artifact in task["execution"]["artifacts"].values():
            uri = artifact["uri"]
            if uri.startswith(FILES):
                files.add(uri[len(FILES):])
            elif uri.startswith(S3_URL):
                keys.add(uri[len(S3_URL):])
    ids = {t["_id"] for t in tasks}
    files.update(m["uri"][len(FILES):] for m in DOCS["model"] if m["task"] in ids)
    files.update(demo_platform.event_image_paths(DOCS, {t["_id"] for t in kept}))
    return files, keys


def project_expected():
    return expected([t for t in DOCS["task"] if t["project"] == PROJECT["_id"]])


def user_expected():
    return expected([t for t in DOCS["task"] if t["user"] == USER["_id"]])


def landed(platform):
    root = os.path.join(platform["ssh"]["target"]["root"], TARGET["demo_fileserver_landing"])
    out = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            stat = os.stat(path)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = (hashlib.md5(handle.read()).hexdigest(), stat.st_ino, stat.st_mtime_ns)
    return out


def source_md5(platform, rel):
    with open(os.path.join(demo_platform.fileserver_dir(platform), rel), "rb") as handle:
        return hashlib.md5(handle.read()).hexdigest()


def target_keys(platform, prefix):
    info = platform["s3"]["target"]
    client = boto3.client("s3", endpoint_url=info["endpoint_url"], aws_access_key_id=info["access_key"],
                          aws_secret_access_key=info["secret_key"], region_name=info["region"])
    try:
        return {o["Key"][len(prefix):] for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=TARGET["demo_target_bucket"], Prefix=prefix) for o in page.get("Contents", [])}
    except client.exceptions.NoSuchBucket:
        return set()


def named(result, prefix):
    """The results of the tasks whose name (after a role's ``role : ``) starts with ``prefix``, that ran."""
    return [r["result"] for r in result.results
            if r["task"].split(" : ", 1)[-1].startswith(prefix) and not r["result"].get("skipped")]


def subset_results(result):
    return named(result, "Work out the subset's files and objects")


def file_lists(result):
    return [item for r in named(result, "Move file lists") for item in r.get("results", []) if not item.get("skipped")]


def test_check_lists_what_the_project_would_move_and_writes_nothing(run, platform):
    files, keys = project_expected()
    result = run("project", PROJECT["_id"], "p1", check=True)
    shown = [r["msg"] for r in named(result, "Show what the subset moves")]
    assert shown, result.stdout[-3000:]
    assert re.search(rf"{re.escape(FILES)} {len(files)} file\(s\)", shown[0]), shown[0]
    assert re.search(rf"{re.escape(S3_URL)} {len(keys)} object\(s\)", shown[0]), shown[0]
    assert "1 reference(s) name nothing" in shown[0] and DANGLING in shown[0]
    assert landed(platform) == {} and target_keys(platform, "") == set()
    assert "backend_subset" not in pymongo.MongoClient(platform["mongo"]["target"]["uri"]).list_database_names()
    assert not os.path.exists(os.path.join(platform["workdir"], "p1-state", "migration-state.sqlite"))


def test_a_missing_file_fails_the_run_before_anything_moves_when_the_plan_says_so(run, platform):
    result = run("project", PROJECT["_id"], "strict", expect_rc=2, extra_vars={
        "demo_on_missing_file": "fail", "demo_fileserver_landing": "strict-fileserver"})
    assert f"backend.task/{DANGLING}" in result.stdout and "no such file" in result.stdout
    assert "step files_bulk failed" in result.stdout
    assert not os.path.exists(os.path.join(platform["ssh"]["target"]["root"], "strict-fileserver"))
    assert target_keys(platform, "") == set()


def test_one_project_moves_exactly_its_files_and_objects(run, platform):
    files, keys = project_expected()
    result = run("project", PROJECT["_id"], "p1")
    moved = landed(platform)
    assert set(moved) == files  # nothing of other projects, nothing left behind
    assert all(rel.startswith(PROJECT["name"] + "/") for rel in moved)
    assert all(md5 == source_md5(platform, rel) for rel, (md5, _ino, _mtime) in moved.items())
    assert target_keys(platform, "fileserver/") == files  # the landed tree into S3, paths unchanged
    assert target_keys(platform, "clearml/") == keys and len(keys) == 2
    # the subset's whole directories went by rsync, one run for all of them
    assert "rsync" in {i["item"]["method"] for i in file_lists(result)}
    for found in subset_results(result):
        assert found["missing_count"] == 1 and found["missing"][0]["document"] == f"backend.task/{DANGLING}"
    target = mongo(platform, "target", "backend_subset")
    kept = {t["_id"] for t in DOCS["task"] if t["project"] == PROJECT["_id"]
            and t["status"] in clearml_documents.KEPT_STATUSES} | {DANGLING}
    assert {t["_id"] for t in target.task.find()} == kept
    assert not re.search(re.escape(FILES), str(list(target.task.find())))  # the moved documents point at the target
    # the events step moved the events of the project's kept tasks only
    index = clearml_events.index_name("training_debug_image", demo_platform.COMPANY)
    moved_tasks = {doc["task"] for doc in clearml_events.search_docs(platform["search"]["target"]["url"], index).values()}
    assert moved_tasks == kept - {DANGLING}
    with open(os.path.join(platform["workdir"], "p1-state", "report.md"), encoding="utf-8") as handle:
        report = handle.read()
    assert "## Missing references" in report and f"backend.task/{DANGLING}" in report


def test_the_same_project_again_changes_nothing(run, platform):
    before = landed(platform)
    result = run("project", PROJECT["_id"], "p1")
    recap = re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", result.stdout, re.M)
    assert recap and all(int(changed) == 0 for _host, changed in recap), recap
    assert landed(platform) == before


def test_a_user_subset_later_adds_its_files_and_leaves_the_project_s_alone(run, platform):
    before = landed(platform)
    p_files, p_keys = project_expected()
    u_files, u_keys = user_expected()
    assert u_files - p_files and u_files & p_files  # the user has tasks in the project and elsewhere
    result = run("user", USER["_id"], "u0")
    after = landed(platform)
    assert set(after) == p_files | u_files
    assert all(after[rel] == before[rel] for rel in before)  # not rewritten: same inode, same mtime
    assert target_keys(platform, "clearml/") == p_keys | u_keys
    assert target_keys(platform, "fileserver/") == p_files | u_files
    # the user's models share their projects' model folders with other users' models: single files, by tar
    tar = [i for i in file_lists(result) if i["item"]["method"] == "tar"]
    assert tar and all("/models/" in path for i in tar for path in i["item"]["files"])
    target = mongo(platform, "target", "backend_subset")
    assert {t["_id"] for t in target.task.find({"user": USER["_id"]})} >= {
        t["_id"] for t in DOCS["task"] if t["user"] == USER["_id"] and t["status"] in clearml_documents.KEPT_STATUSES}


# -- the modules alone, on the same servers: bad input is refused before anything is read or written ----

def module_play(platform, tmp_path, name, **args):
    return run_playbook(local_play(platform, name, args), "localhost,", str(tmp_path), expect_rc=None)


def local_play(platform, name, args):
    return [{"name": "module", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": platform["python"]},
             "tasks": [{"name": "the module", f"mlops.migration.{name}": args}]}]


def subset_args(platform, tmp_path, **changes):
    s3 = platform["s3"]["source"]
    args = {"uri": platform["mongo"]["source"]["uri"],
            "collections": [{"db": "backend", "name": "project", "query": {"_id": PROJECT["_id"]}},
                            {"db": "backend", "name": "task", "query_from": {"collection": "project", "field": "project"}}],
            "references": [{"collection": "backend.task", "path": "execution.artifacts.*.uri"}],
            "mappings": [{"url": FILES, "dir": demo_platform.fileserver_dir(platform)},
                         {"url": S3_URL, "bucket": demo_platform.BUCKET, "prefix": demo_platform.S3_PREFIX}],
            "s3": {"endpoint_url": s3["endpoint_url"], "access_key": s3["access_key"], "secret_key": s3["secret_key"],
                   "bucket": demo_platform.BUCKET},
            "dest": str(tmp_path / "subset.json")}
    args.update(changes)
    return args


def the_result(run):
    return run.task("the module")["result"]


def test_subset_files_alone_reruns_unchanged_and_check_writes_nothing(platform, tmp_path):
    dest = tmp_path / "subset.json"
    checked = run_playbook(local_play(platform, "subset_files", subset_args(platform, tmp_path)), "localhost,",
                           str(tmp_path), check=True)
    assert not dest.exists() and the_result(checked)["kinds"]["subset s3 objects"]["found"] == 2
    first = the_result(module_play(platform, tmp_path, "subset_files", **subset_args(platform, tmp_path)))
    again = the_result(module_play(platform, tmp_path, "subset_files", **subset_args(platform, tmp_path)))
    assert first["changed"] and not again["changed"] and dest.exists()
    assert first["locations"] == again["locations"] and first["missing_count"] == 1


@pytest.mark.parametrize("change, message", [
    ({"references": [{"collection": "backend.task", "path": "x", "kind": "folder"}]}, "kind must be one of"),
    ({"mappings": [{"url": FILES}]}, "needs either dir"),
    ({"references": [{"index": "events-*", "path": "url"}]}, "search (the server of the events) is required"),
    ({"s3": {"bucket": "no-such-bucket"}}, "bucket no-such-bucket does not exist"),
    ({"s3": {"secret_key": "wrong"}}, "rejected the credentials"),
    ({"uri": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=2000"}, "127.0.0.1:1"),
])
def test_subset_files_refuses_bad_input_before_writing(platform, tmp_path, change, message):
    args = subset_args(platform, tmp_path)
    if "s3" in change:
        args["s3"] = dict(args["s3"], **change.pop("s3"))
        if args["s3"]["bucket"] == "no-such-bucket":
            args["mappings"] = [{"url": S3_URL, "bucket": "no-such-bucket"}]
    args.update(change)
    result = module_play(platform, tmp_path, "subset_files", **args)
    assert result.returncode == 2 and message in the_result(result)["msg"], the_result(result)["msg"]
    assert not (tmp_path / "subset.json").exists()


def test_s3_sync_moves_only_the_listed_keys(platform, tmp_path):
    source, target = platform["s3"]["source"], platform["s3"]["target"]
    loc = {k: source[k] for k in ("endpoint_url", "access_key", "secret_key")}
    dst = dict({k: target[k] for k in ("endpoint_url", "access_key", "secret_key")}, bucket="keys-bucket")
    wanted = sorted(k[len(demo_platform.S3_PREFIX):] for k in demo_platform.s3_objects(DOCS) if "preds.csv" in k)[:3]
    args = {"source": dict(loc, bucket=demo_platform.BUCKET, prefix=demo_platform.S3_PREFIX), "create_bucket": True,
            "target": dict(dst, prefix=demo_platform.S3_PREFIX), "keys": wanted}
    copied = the_result(module_play(platform, tmp_path, "s3_sync", **args))
    assert (copied["found"], copied["copied"], copied["verified"]) == (3, 3, 3)
    assert target_keys_of(target, "keys-bucket") == {demo_platform.S3_PREFIX + k for k in wanted}
    again = the_result(module_play(platform, tmp_path, "s3_sync", **args))
    assert (again["changed"], again["already_present"]) == (False, 3)
    missing = module_play(platform, tmp_path, "s3_sync", **{**args, "keys": wanted + ["not/there.bin"]})
    assert missing.returncode == 2 and "not/there.bin: a listed key that is not at the source" in the_result(missing)["msg"]
    refused = module_play(platform, tmp_path, "s3_sync", **{**args, "delete_extra": True})
    assert refused.returncode == 2 and "delete_extra cannot be used with keys" in the_result(refused)["msg"]


def target_keys_of(info, bucket):
    client = boto3.client("s3", endpoint_url=info["endpoint_url"], aws_access_key_id=info["access_key"],
                          aws_secret_access_key=info["secret_key"], region_name=info["region"])
    return {o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])}
