"""mongo_backup and mongo_restore through ansible-playbook on the sshd hosts, against two FerretDB
servers (and, for the BSON types FerretDB v1 cannot store, two mongoeco wire servers), with
ClearML-shaped data."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import os
import subprocess
import uuid

import bson
import pytest
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

from tests import clearml_documents as clearml

pytestmark = pytest.mark.integration

NEW_URL = "s3://target-bucket/clearml"
# Every BSON type FerretDB v1 stores as MongoDB does, and every kind of _id.
PORTABLE_TYPES = [
    {"_id": ObjectId(), "when": datetime.datetime(2024, 5, 6, 7, 8, 9, 123000),
     "blob": Binary(b"\x00\xffraw", 0), "uuid": Binary(b"0123456789abcdef", 4), "big": Int64(2 ** 40),
     "float": 1.5, "nested": {"list": [1, {"deep": "ü"}, "x"]}, "none": None, "flag": False,
     "ts": Timestamp(1700000000, 1), "pattern": Regex("^a.*", "i")},
    {"_id": "string-id", "empty": {}, "empty_list": []},
    {"_id": 42, "int": 7},
    {"_id": {"compound": 1, "key": "x"}, "v": 1},
]
# What FerretDB v1 cannot store (MONGO_WIRE_QUIRKS.md): restored on mongoeco and real MongoDB.
WIRE_ONLY_TYPES = [
    {"_id": "wire-only", "price": Decimal128("10.10"), "nested": {"list": [1, [2, [3]], {"deep": "ü"}]},
     "lo": MinKey(), "hi": MaxKey()},
]


def all_types(server):
    return PORTABLE_TYPES + ([] if server.server == "ferretdb" else WIRE_ONLY_TYPES)


def connection(server):
    return {"uri": server.uri}


def play(hosts, module, args, name="run"):
    return [{"name": name, "hosts": hosts, "gather_facts": False,
             "tasks": [{"name": name, f"mlops.migration.{module}": args}]}]


@pytest.fixture
def dbs(mongo_pair):
    """A fresh source database name filled with ClearML-shaped data plus every BSON type; the target name."""
    name = f"backend_{uuid.uuid4().hex[:8]}"
    data = clearml.backend()
    with mongo_pair["source"].client() as client:
        for coll, docs in data.items():
            client[name][coll].insert_many(docs)
        client[name].types.insert_many([dict(d) for d in all_types(mongo_pair["source"])])
        client[name].task.create_index([("project", 1), ("name", 1)], name="project_name")
    return name, data


@pytest.fixture
def places(ssh_stack, dbs):
    root = ssh_stack["ssh"]["source"].root
    return os.path.join(root, dbs[0], "backup"), os.path.join(root, dbs[0], "backup.zip")


def target_docs(mongo_pair, db, coll):
    with mongo_pair["target"].client() as client:
        return {bson.encode({"k": d["_id"]}): d for d in client[db][coll].find()}


@pytest.mark.mongo_implementation("ferretdb", "mongoeco")
def test_full_backup_restore_rerun_check_and_verify(playbook, mongo_pair, dbs, places):
    name, data = dbs
    types = all_types(mongo_pair["source"])
    dest, zip_path = places
    backup = {**connection(mongo_pair["source"]), "databases": [name], "dest": dest, "archive": "zip"}

    checked = playbook(play("source", "mongo_backup", backup), check=True)
    assert checked.task("run")["result"]["documents"] == sum(map(len, data.values())) + len(types)
    assert not os.path.exists(dest)

    first = playbook(play("source", "mongo_backup", backup)).task("run")["result"]
    assert first["changed"] and sorted(first["changed_collections"]) == sorted(
        f"{name}.{c}" for c in [*data, "types"])
    assert {e["collection"]: e["count"] for e in first["collections"]}["task"] == len(data["task"])
    with open(os.path.join(dest, name, "task.metadata.json"), encoding="utf-8") as handle:
        assert "project_name" in {i["name"] for i in json.load(handle)["indexes"]}
    again = playbook(play("source", "mongo_backup", backup)).task("run")["result"]
    assert not again["changed"] and again["archive_md5"] == first["archive_md5"]

    restore = {**connection(mongo_pair["target"]), "src": zip_path, "db_map": {name: name + "_t"}}
    dry = playbook(play("target", "mongo_restore", restore), check=True).task("run")["result"]
    assert dry["totals"]["inserted"] == first["documents"] and dry["changed"]
    with mongo_pair["target"].client() as client:
        assert client[name + "_t"].list_collection_names() == []  # (listDatabases: see MONGO_WIRE_QUIRKS.md)

    loaded = playbook(play("target", "mongo_restore", restore)).task("run")["result"]
    assert (loaded["totals"]["inserted"], loaded["totals"]["failed"]) == (first["documents"], 0)
    for coll, docs in [*data.items(), ("types", types)]:
        there = target_docs(mongo_pair, name + "_t", coll)
        assert len(there) == len(docs)
        for doc in docs:  # every value, every BSON type, byte for byte
            assert bson.encode(there[bson.encode({"k": doc["_id"]})]) == bson.encode(doc)
    with mongo_pair["target"].client() as client:
        assert "project_name" in client[name + "_t"].task.index_information()

    rerun = playbook(play("target", "mongo_restore", restore)).task("run")["result"]
    assert not rerun["changed"]
    assert (rerun["totals"]["inserted"], rerun["totals"]["skipped_duplicates"]) == (0, first["documents"])

    verified = playbook(play("target", "mongo_restore", {**restore, "state": "verified"})).task("run")["result"]
    assert verified["totals"]["present"] == first["documents"] and verified["totals"]["missing"] == 0


def test_project_and_user_subsets_follow_the_associations(playbook, mongo_pair, dbs, places):
    name, data = dbs
    dest = places[0] + "-subsets"
    proj = data["project"][1]
    by_project = {**connection(mongo_pair["source"]), "dest": dest + "/project", "collections": [
        {"db": name, "name": "project", "query": {"_id": proj["_id"]}},
        {"db": name, "name": "task", "query_from": {"collection": "project", "field": "project"}},
        {"db": name, "name": "model", "query_from": {"collection": "task", "field": "task"}}]}
    result = playbook(play("source", "mongo_backup", by_project)).task("run")["result"]
    counts = {e["collection"]: e["count"] for e in result["collections"]}
    tasks = [t for t in data["task"] if t["project"] == proj["_id"]]
    task_ids = {t["_id"] for t in tasks}
    assert counts == {"project": 1, "task": len(tasks),
                      "model": len([m for m in data["model"] if m["task"] in task_ids])}

    owner = data["user"][0]["_id"]
    by_user = {**connection(mongo_pair["source"]), "dest": dest + "/user", "collections": [
        {"db": name, "name": "user", "query": {"_id": owner}},
        {"db": name, "name": "project", "query": {"user": owner}},
        {"db": name, "name": "task", "query": {"user": owner}},
        {"db": name, "name": "model", "query": {"user": owner}}]}
    result = playbook(play("source", "mongo_backup", by_user)).task("run")["result"]
    counts = {e["collection"]: e["count"] for e in result["collections"]}
    assert counts == {c: len([d for d in data[c] if d.get("user", d["_id"]) == owner])
                      for c in ("user", "project", "task", "model")}
    assert counts["task"] > 0


def test_filter_unset_and_rewrite_with_counts(playbook, mongo_pair, dbs, places):
    name, data = dbs
    dest = places[0]
    playbook(play("source", "mongo_backup", {**connection(mongo_pair["source"]), "dest": dest,
                                             "collections": [{"db": name, "name": "task"},
                                                             {"db": name, "name": "model"}]}))
    restore = {**connection(mongo_pair["target"]), "src": dest, "db_map": {name: name + "_f"},
               "rewrite": [{"from": clearml.FILES_URL, "to": NEW_URL, "match": "prefix"}],
               "collections": {f"{name}.task": {
                   "filter": {"status": {"$in": clearml.KEPT_STATUSES}},
                   "unset_fields": ["status_reason", "status_message", "execution.queue", "output.destination"]}}}
    result = playbook(play("target", "mongo_restore", restore)).task("run")["result"]
    per = {r["collection"].split(".")[1]: r for r in result["collections"]}
    kept = [t for t in data["task"] if t["status"] in clearml.KEPT_STATUSES]
    assert (per["task"]["inserted"], per["task"]["filtered_out"]) == (len(kept), len(data["task"]) - len(kept))
    assert per["task"]["rewritten"] == 2 * len(kept)  # two artifact URIs each
    assert per["task"]["unset"] == 4 * len(kept)
    assert per["model"]["rewritten"] == len(data["model"])
    there = target_docs(mongo_pair, name + "_f", "task")
    sample = there[bson.encode({"k": kept[0]["_id"]})]
    assert "status_reason" not in sample and "queue" not in sample["execution"]
    assert "destination" not in sample["output"]
    assert all(a["uri"].startswith(NEW_URL + "/") for a in sample["execution"]["artifacts"].values())
    models = target_docs(mongo_pair, name + "_f", "model")
    assert all(m["uri"].startswith(NEW_URL) for m in models.values())
    verified = playbook(play("target", "mongo_restore", {**restore, "state": "verified"})).task("run")["result"]
    assert verified["totals"]["present"] == len(kept) + len(data["model"])


def test_partially_restored_target_skips_what_is_there(playbook, mongo_pair, dbs, places):
    name, data = dbs
    dest = places[0]
    playbook(play("source", "mongo_backup", {**connection(mongo_pair["source"]), "dest": dest,
                                             "collections": [{"db": name, "name": "task"}]}))
    with mongo_pair["target"].client() as client:  # an earlier, interrupted restore
        client[name + "_p"].task.insert_many(data["task"][:15])
    restore = {**connection(mongo_pair["target"]), "src": dest, "db_map": {name: name + "_p"},
               "precheck": False, "batch_size": 10}
    fallback = playbook(play("target", "mongo_restore", restore)).task("run")["result"]["totals"]
    assert (fallback["inserted"], fallback["skipped_duplicates"], fallback["collisions"]) == (
        len(data["task"]) - 15, 15, 0)
    precheck = playbook(play("target", "mongo_restore", {**restore, "precheck": True})).task("run")["result"]
    assert not precheck["changed"] and precheck["totals"]["skipped_duplicates"] == len(data["task"])


def test_two_sources_consolidate_and_collisions_follow_the_policy(playbook, mongo_pair, dbs, places):
    name, data = dbs
    second = name + "_second"
    with mongo_pair["source"].client() as client:  # another server's projects: two ids collide
        clash = [{**data["project"][0], "name": "someone else's"}, {**data["project"][1]}]
        client[second].project.insert_many(clash + [{"_id": "only-in-second", "name": "new"}])
    for db in (name, second):
        playbook(play("source", "mongo_backup", {**connection(mongo_pair["source"]), "dest": f"{places[0]}-{db}",
                                                 "collections": [{"db": db, "name": "project"}]}))
    into = name + "_c"

    def restore(db, **extra):
        args = {**connection(mongo_pair["target"]), "src": f"{places[0]}-{db}", "db_map": {db: into}, **extra}
        return playbook(play("target", "mongo_restore", args), expect_rc=None).task("run")

    assert restore(name)["result"]["totals"]["inserted"] == len(data["project"])
    merged = restore(second)["result"]
    assert (merged["totals"]["inserted"], merged["totals"]["skipped_duplicates"],
            merged["totals"]["collisions"]) == (1, 2, 1)
    assert merged["collections"][0]["collided"] == [
        {"id": data["project"][0]["_id"], "outcome": "kept the target's document (on_duplicate=skip)"}]
    failing = restore(second, on_duplicate="fail")
    assert failing["status"] == "failed" and data["project"][0]["_id"] in failing["result"]["msg"]
    replaced = restore(second, on_duplicate="replace")["result"]
    assert replaced["totals"]["replaced"] == 1
    assert target_docs(mongo_pair, into, "project")[bson.encode({"k": data["project"][0]["_id"]})]["name"] == \
        "someone else's"


@pytest.mark.parametrize("damage,complaint", [
    ("truncate", "truncated"), ("flip", "md5"), ("count", "documents, the manifest says"),
    ("manifest", "not valid JSON")])
def test_a_damaged_backup_is_refused_before_any_write(playbook, mongo_pair, dbs, places, damage, complaint):
    name, _data = dbs
    dest = f"{places[0]}-{damage}"
    playbook(play("source", "mongo_backup", {**connection(mongo_pair["source"]), "dest": dest, "compress": False,
                                             "collections": [{"db": name, "name": "task"}]}))
    path = os.path.join(dest, name, "task.bson")
    manifest_path = os.path.join(dest, "manifest.json")
    with open(path, "r+b") as handle:
        size = os.path.getsize(path)
        if damage == "truncate":
            handle.truncate(size - 100)
        elif damage == "flip":
            handle.seek(size // 2)
            byte = handle.read(1)
            handle.seek(size // 2)
            handle.write(bytes([byte[0] ^ 0x20]))
    if damage in ("count", "manifest"):
        with open(manifest_path, encoding="utf-8") as handle:
            text = handle.read()
        manifest = json.loads(text)
        manifest["collections"][0]["count"] += 1
        with open(manifest_path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(manifest) if damage == "count" else text[:-20])
    run = playbook(play("target", "mongo_restore", {**connection(mongo_pair["target"]), "src": dest,
                                                    "db_map": {name: name + "_x"}}), expect_rc=2)
    message = run.task("run")["result"]["msg"]
    assert complaint in message
    if damage != "manifest":
        assert "task.bson" in message and "nothing was restored" in message
    with mongo_pair["target"].client() as client:
        assert client[name + "_x"].list_collection_names() == []


def test_gzip_backup_damage_is_found_too(playbook, mongo_pair, dbs, places):
    name, _data = dbs
    dest = places[0] + "-gz"
    playbook(play("source", "mongo_backup", {**connection(mongo_pair["source"]), "dest": dest,
                                             "collections": [{"db": name, "name": "task"}]}))
    path = os.path.join(dest, name, "task.bson.gz")
    with gzip.open(path, "rb") as handle:
        body = handle.read()
    with gzip.open(path, "wb") as handle:
        handle.write(body[:-7])
    run = playbook(play("target", "mongo_restore", {**connection(mongo_pair["target"]), "src": dest}), expect_rc=2)
    assert "task.bson.gz" in run.task("run")["result"]["msg"]


def test_wrong_credentials_and_unreachable_servers_are_explained(playbook, mongo_pair, dbs, places):
    name, _data = dbs
    source = mongo_pair["source"]
    wrong = source.uri.replace(source.password, "not-the-password")
    run = playbook(play("source", "mongo_backup", {"uri": wrong, "databases": [name], "dest": places[0]}),
                   expect_rc=2)
    assert "refused the credentials" in run.task("run")["result"]["msg"]
    assert not os.path.exists(places[0])
    nowhere = {"host": "127.0.0.1", "port": 9, "connect_timeout": 2, "databases": [name], "dest": places[0]}
    run = playbook(play("source", "mongo_backup", nowhere), expect_rc=2)
    assert "cannot reach MongoDB at 127.0.0.1:9" in run.task("run")["result"]["msg"]
    bad_plan = {**connection(source), "dest": places[0], "collections": [
        {"db": name, "name": "task", "query_from": {"collection": "project", "field": "project"}}]}
    run = playbook(play("source", "mongo_backup", bad_plan), expect_rc=2)
    assert "must be listed before" in run.task("run")["result"]["msg"]


def test_a_collection_named_like_a_path_stays_inside_the_backup(playbook, mongo_pair, places):
    name = f"paths_{uuid.uuid4().hex[:8]}"
    weird = "runs/2024/escaped"  # (pymongo refuses '..' in names; the unit tests cover names with it)
    with mongo_pair["source"].client() as client:
        client[name][weird].insert_many([{"_id": n} for n in range(3)])
    dest = places[0] + "-paths"
    result = playbook(play("source", "mongo_backup", {**connection(mongo_pair["source"]), "dest": dest,
                                                      "databases": [name]})).task("run")["result"]
    assert [e["file"] for e in result["collections"]] == [f"{name}/runs%2F2024%2Fescaped.bson.gz"]
    assert sorted(os.listdir(os.path.join(dest, name))) == ["runs%2F2024%2Fescaped.bson.gz",
                                                            "runs%2F2024%2Fescaped.metadata.json"]
    restored = playbook(play("target", "mongo_restore", {**connection(mongo_pair["target"]), "src": dest}))
    assert restored.task("run")["result"]["totals"]["inserted"] == 3
    with mongo_pair["target"].client() as client:
        assert client[name][weird].count_documents({}) == 3


def test_a_signed_backup_edited_and_rehashed_is_refused_before_any_write(playbook, mongo_pair, dbs, places):
    name, _data = dbs
    dest = f"{places[0]}-signed"
    key = {"algorithm": "hmac-sha256", "key": "air-gap"}
    backup = {**connection(mongo_pair["source"]), "dest": dest, "compress": False,
              "collections": [{"db": name, "name": "task"}], "sign": key}
    assert playbook(play("source", "mongo_backup", backup)).task("run")["result"]["changed"]
    assert not playbook(play("source", "mongo_backup", backup)).task("run")["result"]["changed"]
    with open(os.path.join(dest, "SHA256SUMS"), encoding="utf-8") as handle:
        sealed = handle.read()
    assert "  manifest.json\n" in sealed and f"  {name}/task.bson\n" in sealed
    restore = {**connection(mongo_pair["target"]), "src": dest, "db_map": {name: name + "_signed"}, "verify": key}

    # a byte of a document changed, and the manifest's md5 recomputed: only the seal tells
    path = os.path.join(dest, name, "task.bson")
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))
    manifest_path = os.path.join(dest, "manifest.json")
    with open(manifest_path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    with open(path, "rb") as handle:
        manifest["collections"][0]["md5"] = hashlib.md5(handle.read()).hexdigest()
    with open(manifest_path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest))
    edited = playbook(play("target", "mongo_restore", restore), expect_rc=2).task("run")["result"]["msg"]
    assert "does not match its SHA256SUMS" in edited and f"{name}/task.bson" in edited, edited
    # the seal recomputed as well (without the key): the signature refuses it
    names = sorted(os.path.relpath(os.path.join(d, n), dest) for d, _s, ns in os.walk(dest) for n in ns
                   if not n.startswith("SHA256SUMS"))
    sums = subprocess.run(["sha256sum", "--", *names], cwd=dest, capture_output=True, text=True, check=True).stdout
    with open(os.path.join(dest, "SHA256SUMS"), "w", encoding="utf-8") as handle:
        handle.write(sums)
    forged = playbook(play("target", "mongo_restore", restore), expect_rc=2).task("run")["result"]["msg"]
    assert "altered after signing" in forged and "refused before any write" in forged, forged
    with mongo_pair["target"].client() as client:
        assert name + "_signed" not in client.list_database_names()
