"""search_copy through ansible-playbook between the two real OpenSearch nodes: ClearML-shaped event
indices, a copy filtered by the tasks that move, to another company id; re-run, check mode, a killed
copy resumed, a missing index and an unreachable server."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

pytestmark = pytest.mark.integration
TASK = "copy events"
OLD, NEW = "d1bd92a3b039400cbafc60a7a5b1e52b", "0e0f7e3b8a1c4c1b9c7f5a1d2e3f4a5b"
# The fields of clearml-server's events template for scalar events (apiserver/elastic/index_templates).
SCALAR_MAPPING = {"dynamic": "strict", "properties": {
    "@timestamp": {"type": "date"}, "timestamp": {"type": "date"}, "type": {"type": "keyword"},
    "task": {"type": "keyword"}, "iter": {"type": "long"}, "metric": {"type": "keyword"},
    "variant": {"type": "keyword"}, "value": {"type": "float"}, "worker": {"type": "keyword"},
    "company_id": {"type": "keyword"}, "model_event": {"type": "boolean"}}}


def scalar_events(tasks, iterations):
    for task in tasks:
        for it in range(iterations):
            for variant in ("train", "val"):
                yield f"{task}-{it}-{variant}", {
                    "@timestamp": 1_700_000_000_000 + it, "timestamp": 1_700_000_000_000 + it,
                    "type": "training_stats_scalar", "task": task, "iter": it, "metric": "loss",
                    "variant": variant, "value": 1.0 / (it + 1), "worker": "w1", "company_id": OLD,
                    "model_event": False}


@pytest.fixture
def events(search_pair):
    node = search_pair["source"]
    index = f"events-training_stats_scalar-{OLD}-{uuid.uuid4().hex[:6]}"
    settings = {"number_of_shards": 1, "number_of_replicas": 0}
    node.request("PUT", f"/{index}", {"mappings": SCALAR_MAPPING, "settings": settings})
    tasks = [f"task{n}" for n in range(5)]
    lines = []
    for ident, doc in scalar_events(tasks, 150):
        lines += [json.dumps({"index": {"_index": index, "_id": ident}}), json.dumps(doc)]
    node.request("POST", "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
    return index, tasks


def play(search_pair, index, **options):
    args = dict(source={"url": search_pair["source"].url}, target={"url": search_pair["target"].url},
                indices=[index], index_rename=[{"from": OLD, "to": NEW}], batch_size=200)
    args.update(options)
    return [{"name": "copy", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": TASK, "mlops.migration.search_copy": args}]}]


def target_docs(search_pair, index):
    node = search_pair["target"]
    node.request("POST", f"/{index}/_refresh")
    found, reply = {}, node.request("POST", f"/{index}/_search?scroll=1m", {"size": 1000, "sort": ["_doc"]})
    while reply["hits"]["hits"]:
        found.update({hit["_id"]: hit["_source"] for hit in reply["hits"]["hits"]})
        reply = node.request("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": reply["_scroll_id"]})
    return found


def test_filtered_copy_keeps_ids_mapping_and_a_rerun_writes_nothing(playbook, search_pair, events):
    index, tasks = events
    moving = tasks[:3]
    target_index = index.replace(OLD, NEW)
    checked = playbook(play(search_pair, index, task_ids=moving), check=True).task(TASK)["result"]
    assert checked["changed"] and checked["indices"][0]["created"]
    assert (checked["counts"]["found"], checked["counts"]["copied"]) == (900, 900)
    assert target_index not in str(search_pair["target"].request("GET", "/_cat/indices?format=json"))

    first = playbook(play(search_pair, index, task_ids=moving)).task(TASK)["result"]
    counts = first["kinds"][f"search documents {target_index}"]
    assert (counts["found"], counts["copied"], counts["verified"], counts["failed"]) == (900, 900, 900, 0)
    verified = first["indices"][0]
    assert verified["digest"]["same"] and verified["digest"]["source"] == verified["digest"]["target"]
    assert verified["tasks"] == {"field": "task", "checked": 3, "differing": []}
    copied = target_docs(search_pair, target_index)
    expected = dict(scalar_events(moving, 150))
    assert copied == expected  # ids kept, documents byte-for-byte, no event of a task that stays
    mapping = search_pair["target"].request("GET", f"/{target_index}/_mapping")[target_index]["mappings"]
    assert mapping["dynamic"] == "strict" and mapping["properties"]["iter"] == {"type": "long"}

    again = playbook(play(search_pair, index, task_ids=moving)).task(TASK)["result"]
    assert not again["changed"] and again["counts"]["present"] == 900 and again["counts"]["copied"] == 0


def test_a_partial_target_is_completed_and_a_changed_document_rewritten(playbook, search_pair, events):
    index, _tasks = events
    target_index = index.replace(OLD, NEW)
    playbook(play(search_pair, index))
    node = search_pair["target"]
    node.request("POST", f"/{target_index}/_refresh")  # the copy does not refresh; a search sees refreshed documents
    node.request("POST", f"/{target_index}/_delete_by_query?refresh=true", {"query": {"term": {"task": "task4"}}})
    node.request("POST", f"/{target_index}/_update/task0-0-train?refresh=true", {"doc": {"value": 99.0}})
    resumed = playbook(play(search_pair, index)).task(TASK)["result"]
    assert resumed["counts"]["copied"] == 301 and resumed["counts"]["present"] == 1500 - 301
    assert target_docs(search_pair, target_index)["task0-0-train"]["value"] == 1.0
    assert resumed["indices"][0]["digest"]["same"] and resumed["indices"][0]["tasks"]["checked"] == 5

    # a document at the target that the source does not hold is named by its task, not hidden
    node.request("PUT", f"/{target_index}/_doc/stray?refresh=true", dict(scalar_events(["task2"], 1))["task2-0-val"])
    stray = playbook(play(search_pair, index), expect_rc=2).task(TASK)["result"]
    assert stray["counts"]["failed"] == 1 and stray["indices"][0]["tasks"]["differing"] == [
        {"task": "task2", "source": 300, "target": 301}]


def test_a_killed_copy_resumes_and_ends_with_every_document_once(search_pair, events, ssh_stack, tmp_path):
    import signal  # pylint: disable=import-outside-toplevel
    import time  # pylint: disable=import-outside-toplevel

    from tests.integration.ansible_run import run_playbook, start_playbook  # pylint: disable=import-outside-toplevel

    index, tasks = events
    target_index, node = index.replace(OLD, NEW), search_pair["target"]
    slow = play(search_pair, index, batch_size=10, slices=1)  # 150 pages: time to kill it in the middle
    ansible = start_playbook(slow, ssh_stack.inventory_file, str(tmp_path))
    try:
        deadline, written = time.monotonic() + 120, 0
        while time.monotonic() < deadline and ansible.poll() is None:
            try:
                node.request("POST", f"/{target_index}/_refresh")
                written = node.request("GET", f"/{target_index}/_count")["count"]
            except OSError:  # the index is not there yet (urllib's HTTPError is an OSError)
                written = 0
            if written >= 200:
                break
            time.sleep(0.1)
        assert ansible.poll() is None and 200 <= written < 1500, f"killed at {written} of 1500"
    finally:
        if ansible.poll() is None:
            os.killpg(ansible.pid, signal.SIGKILL)
        ansible.wait()
    resumed = run_playbook(play(search_pair, index), ssh_stack.inventory_file, str(tmp_path)).task(TASK)["result"]
    counts = resumed["counts"]
    assert counts["found"] == 1500 and counts["present"] >= 200 and counts["copied"] == 1500 - counts["present"]
    assert counts["failed"] == 0 and resumed["indices"][0]["digest"]["same"]
    assert target_docs(search_pair, target_index) == dict(scalar_events(tasks, 150))  # each once, none missing


def test_missing_index_and_unreachable_server_fail_before_any_write(playbook, search_pair, events):
    missing = playbook(play(search_pair, "events-log-nosuchcompany"), expect_rc=2).task(TASK)["result"]
    assert "index events-log-nosuchcompany does not exist" in missing["msg"]
    none = playbook(play(search_pair, "events-*-nosuchcompany"), expect_rc=2).task(TASK)["result"]
    assert "no index matches events-*-nosuchcompany" in none["msg"]
    plays = play(search_pair, events[0])
    plays[0]["tasks"][0]["mlops.migration.search_copy"]["target"]["url"] = "http://127.0.0.1:9"
    down = playbook(plays, expect_rc=2).task(TASK)["result"]
    assert "cannot reach the search server http://127.0.0.1:9" in down["msg"]
    assert events[0].replace(OLD, NEW) not in str(search_pair["target"].request("GET", "/_cat/indices?format=json"))


FILES_OLD, FILES_NEW = "http://files.old.example.com:8081/", "s3://target-bucket/files/"


def test_urls_are_rewritten_inside_plots_compressed_or_not_and_console_lines_kept(playbook, search_pair):
    import base64  # pylint: disable=import-outside-toplevel
    import zlib  # pylint: disable=import-outside-toplevel

    node, suffix = search_pair["source"], uuid.uuid4().hex[:6]
    images = [FILES_OLD + f"proj/task0/metrics/img-{n}.png" for n in range(300)]
    big_plot = json.dumps({"layout": {"images": [{"source": url} for url in images]}})
    docs = {
        f"events-plot-{OLD}-{suffix}": {
            "small": {"task": "task0", "type": "plot", "plot_str": json.dumps({"layout": {"images": [
                {"source": images[0]}]}})},
            "large": {"task": "task0", "type": "plot", "plot_len": len(big_plot),
                      "plot_data": base64.encodebytes(zlib.compress(big_plot.encode(), level=1)).decode("ascii")}},
        f"events-training_debug_image-{OLD}-{suffix}": {
            "img": {"task": "task0", "type": "training_debug_image", "url": images[1]}},
        f"events-log-{OLD}-{suffix}": {
            "line": {"task": "task0", "type": "log", "msg": f"saved {images[2]}"}},
    }
    for index, by_id in docs.items():
        for ident, doc in by_id.items():
            node.request("PUT", f"/{index}/_doc/{ident}?refresh=true", doc)
    plays = play(search_pair, "", rewrite=[{"from": FILES_OLD, "to": FILES_NEW, "match": "prefix"}])
    plays[0]["tasks"][0]["mlops.migration.search_copy"]["indices"] = list(docs)
    result = playbook(plays).task(TASK)["result"]
    assert result["counts"]["copied"] == 4 and result["counts"]["verified"] == 4 and result["rewritten"] == 3
    at = {index: target_docs(search_pair, index.replace(OLD, NEW)) for index in docs}
    plots = at[f"events-plot-{OLD}-{suffix}"]
    assert FILES_NEW in plots["small"]["plot_str"] and FILES_OLD not in plots["small"]["plot_str"]
    unpacked = zlib.decompress(base64.b64decode(plots["large"]["plot_data"])).decode()
    assert unpacked == big_plot.replace(FILES_OLD, FILES_NEW)
    assert at[f"events-training_debug_image-{OLD}-{suffix}"]["img"]["url"] == images[1].replace(FILES_OLD, FILES_NEW)
    assert at[f"events-log-{OLD}-{suffix}"]["line"]["msg"] == f"saved {images[2]}"  # console lines untouched
    assert not playbook(plays).task(TASK)["result"]["changed"]


def test_the_events_that_move_are_those_of_the_backed_up_tasks(playbook, search_pair, events, mongo_pair, tmp_path):
    import pymongo  # pylint: disable=import-outside-toplevel

    index, _tasks = events
    database = f"backend_{uuid.uuid4().hex[:6]}"
    client = pymongo.MongoClient(mongo_pair["source"].uri)
    try:
        client[database]["task"].insert_many([{"_id": "task0", "status": "completed"},
                                              {"_id": "task3", "status": "published"}])
    finally:
        client.close()
    backup = str(tmp_path / "mongo-backup")
    playbook([{"name": "backup", "hosts": "source", "gather_facts": False, "tasks": [
        {"name": "backup", "mlops.migration.mongo_backup": {
            "uri": mongo_pair["source"].uri, "collections": [{"db": database, "name": "task"}], "dest": backup,
            "archive": "zip"}}]}])
    # the restore's own status filter leaves task3 out, so its events stay out too
    plays = play(search_pair, index.replace(OLD, "*"), tasks_from=backup + ".zip", tasks_collection=f"{database}.task",
                 tasks_filter={"status": {"$in": ["completed"]}})
    narrowed = playbook(plays, check=True).task(TASK)["result"]
    assert narrowed["tasks"] == 1 and narrowed["counts"]["copied"] == 300
    assert narrowed["indices"][0]["source"] == index  # the wildcard matched the one index
    plays = play(search_pair, index, tasks_from=backup + ".zip", tasks_collection=f"{database}.task")
    result = playbook(plays).task(TASK)["result"]
    assert result["tasks"] == 2 and result["counts"]["copied"] == 600
    assert {doc["task"] for doc in target_docs(search_pair, index.replace(OLD, NEW)).values()} == {"task0", "task3"}

    with open(os.path.join(backup, database, "task.bson.gz"), "ab") as handle:
        handle.write(b"tampered")
    plays = play(search_pair, index, tasks_from=backup, tasks_collection=f"{database}.task")
    refused = playbook(plays, expect_rc=2).task(TASK)["result"]
    assert "task.bson.gz" in refused["msg"] and "does not match its manifest" in refused["msg"]


def bundle_play(module, args):
    return [{"name": module, "hosts": "source", "gather_facts": False, "tasks": [
        {"name": module, f"mlops.migration.{module}": args}]}]


def test_bundle_round_trip_and_a_tampered_bundle_is_refused(playbook, search_pair, events, tmp_path):
    index, tasks = events
    dest = str(tmp_path / "events")
    export = dict(source={"url": search_pair["source"].url}, indices=[index], dest=dest, task_ids=tasks[:2],
                  archive="zip", batch_size=128)
    checked = playbook(bundle_play("search_export", export), check=True).task("search_export")["result"]
    assert checked["counts"]["found"] == 600 and not os.path.exists(dest)
    first = playbook(bundle_play("search_export", export)).task("search_export")["result"]
    assert first["changed"] and first["counts"]["copied"] == 600 and first["archive_md5"]
    again = playbook(bundle_play("search_export", export)).task("search_export")["result"]
    assert not again["changed"] and again["counts"]["present"] == 600 and again["archive_md5"] == first["archive_md5"]

    load = dict(target={"url": search_pair["target"].url}, src=first["archive"],
                index_rename=[{"from": OLD, "to": NEW}], batch_size=128)
    target_index = index.replace(OLD, NEW)
    dry = playbook(bundle_play("search_import", load), check=True).task("search_import")["result"]
    assert dry["counts"]["copied"] == 600 and target_index not in str(
        search_pair["target"].request("GET", "/_cat/indices?format=json"))
    loaded = playbook(bundle_play("search_import", load)).task("search_import")["result"]
    assert (loaded["counts"]["copied"], loaded["counts"]["verified"]) == (600, 600)
    assert loaded["indices"][0]["digest"]["same"] and loaded["indices"][0]["target"] == target_index
    assert target_docs(search_pair, target_index) == dict(scalar_events(tasks[:2], 150))
    assert not playbook(bundle_play("search_import", load)).task("search_import")["result"]["changed"]

    with open(os.path.join(dest, "indices", f"{index}.ndjson"), "r+", encoding="utf-8") as handle:
        text = handle.read().replace('"value":1.0', '"value":7.0', 1)
        handle.seek(0)
        handle.write(text)
    tampered = dict(load, src=dest, index_rename=[{"from": OLD, "to": "tampered"}])
    refused = playbook(bundle_play("search_import", tampered), expect_rc=2).task("search_import")["result"]
    assert "does not match its MD5SUMS" in refused["msg"] and f"indices/{index}.ndjson" in refused["msg"]
    assert index.replace(OLD, "tampered") not in str(search_pair["target"].request("GET", "/_cat/indices?format=json"))


def test_index_templates_travel_first_directly_and_in_a_bundle(playbook, search_pair, tmp_path):
    from tests import clearml_events  # pylint: disable=import-outside-toplevel

    source, target = search_pair["source"], search_pair["target"]
    clearml_events.install_templates(source.request)
    company = uuid.uuid4().hex[:8]
    index = clearml_events.index_name("plot", company)
    source.request("POST", "/_bulk?refresh=true", clearml_events.bulk_body(index, clearml_events.plots(
        "task0", company, 4, lambda it, n: f"{FILES_OLD}img-{it}-{n}.png")), "application/x-ndjson")
    args = dict(source={"url": source.url}, target={"url": target.url}, indices=[f"events-*-{company}"],
                templates=["events_*"])
    copied = playbook(bundle_play("search_copy", args)).task("search_copy")["result"]
    assert "component_template events_common" in copied["templates"] and "index_template events_plot" in copied["templates"]
    assert target.request("GET", "/_index_template/events_plot")["index_templates"][0]["index_template"]["composed_of"] == [
        "events_common"]
    assert copied["counts"]["copied"] == 4 and copied["indices"][0]["source"] == index
    again = playbook(bundle_play("search_copy", args)).task("search_copy")["result"]
    assert again["templates"] == [] and not again["changed"]

    target.request("DELETE", "/_index_template/events_plot")
    dest = str(tmp_path / "bundle")
    exported = playbook(bundle_play("search_export", dict(source={"url": source.url}, dest=dest, indices=[index],
                                                          templates=["events_plot"]))).task("search_export")["result"]
    assert exported["changed"] and os.path.isfile(os.path.join(dest, "templates.json"))
    loaded = playbook(bundle_play("search_import", dict(target={"url": target.url}, src=dest))).task("search_import")
    assert loaded["result"]["templates"] == ["index_template events_plot"]  # its component is there already


def test_urls_inside_hyper_dataset_frames_are_rewritten(playbook, search_pair):
    """Hyper-datasets are ClearML Enterprise's (no open-source server stores them, none runs here): a frame
    document is built with the fields of the SDK's SingleFrame (sources with uri, preview and masks);
    rules without paths reach every string, however deeply nested."""
    index = f"frames-{uuid.uuid4().hex[:6]}"
    frame = {"id": "f1", "sources": [
        {"id": "front", "uri": FILES_OLD + "ds/1/front.jpg", "preview": {"uri": FILES_OLD + "ds/1/front-p.jpg"},
         "masks": [{"id": "seg", "uri": FILES_OLD + "ds/1/front-mask.png"}]}],
        "meta": {"note": "kept"}, "rois": [{"label": ["car"], "poly": [1, 2, 3, 4]}]}
    search_pair["source"].request("PUT", f"/{index}/_doc/f1?refresh=true", frame)
    plays = play(search_pair, index, rewrite=[{"from": FILES_OLD, "to": FILES_NEW, "match": "prefix"}])
    result = playbook(plays).task(TASK)["result"]
    assert result["rewritten"] == 3 and result["counts"]["verified"] == 1
    moved = target_docs(search_pair, index)["f1"]
    assert moved == json.loads(json.dumps(frame).replace(FILES_OLD, FILES_NEW))


@pytest.fixture(scope="module")
def secured_search(tmp_path_factory):
    """One OpenSearch node that asks for basic credentials (the stack runner's BasicAuthPlugin)."""
    from tests.stack.opensearch import OpenSearchNode  # pylint: disable=import-outside-toplevel

    node = OpenSearchNode("secured", str(tmp_path_factory.mktemp("secured-search")), basic_auth="migrate:right-secret")
    try:
        node.start()
    except Exception as exc:  # the message carries the server's log tail
        pytest.fail(f"could not start the secured search node: {exc}", pytrace=False)
    yield node
    node.stop()


def test_wrong_credentials_are_refused_before_any_write(playbook, search_pair, secured_search, events):
    index, _tasks = events
    wrong = {"url": secured_search.url, "username": "migrate", "password": "wrong-secret"}
    plays = play(search_pair, index)
    plays[0]["tasks"][0]["mlops.migration.search_copy"]["target"] = wrong
    refused = playbook(plays, expect_rc=2)
    result = refused.task(TASK)["result"]
    assert f"the search server {secured_search.url} refused the credentials" in result["msg"] and "401" in result["msg"]
    assert "wrong-secret" not in refused.stdout
    assert secured_search.request("GET", "/_cat/indices?format=json") == []  # nothing was created
    checked = playbook([{"name": "check", "hosts": "source", "gather_facts": False, "tasks": [
        {"name": "check", "mlops.migration.preflight_check": {"kind": "search", "search": wrong}}]}], expect_rc=2)
    assert "refused the credentials" in checked.task("check")["result"]["msg"]

    plays[0]["tasks"][0]["mlops.migration.search_copy"]["target"] = dict(wrong, password="right-secret")
    copied = playbook(plays).task(TASK)["result"]
    assert copied["counts"]["copied"] == 1500 and copied["counts"]["verified"] == 1500


def test_a_signed_bundle_rehashed_after_an_edit_is_refused_before_any_write(playbook, search_pair, events, tmp_path):
    index, tasks = events
    dest = str(tmp_path / "signed-events")
    key = {"algorithm": "hmac-sha256", "key": "air-gap"}
    export = dict(source={"url": search_pair["source"].url}, indices=[index], dest=dest, task_ids=tasks[:1], sign=key)
    assert playbook(bundle_play("search_export", export)).task("search_export")["result"]["changed"]
    assert not playbook(bundle_play("search_export", export)).task("search_export")["result"]["changed"]
    lines = os.path.join(dest, "indices", f"{index}.ndjson")
    with open(lines, "r+", encoding="utf-8") as handle:
        text = handle.read().replace('"value":1.0', '"value":7.0', 1)
        handle.seek(0)
        handle.write(text)
    # MD5SUMS recomputed as md5sum writes it: the bundle's own check passes, the seal does not
    names = sorted(os.path.relpath(os.path.join(d, n), dest) for d, _s, ns in os.walk(dest) for n in ns
                   if n not in ("MD5SUMS", "SHA256SUMS", "SHA256SUMS.sig"))
    sums = subprocess.run(["md5sum", "--", *names], cwd=dest, capture_output=True, text=True, check=True).stdout
    with open(os.path.join(dest, "MD5SUMS"), "w", encoding="utf-8") as handle:
        handle.write(sums)
    load = dict(target={"url": search_pair["target"].url}, src=dest, index_rename=[{"from": OLD, "to": "signed"}],
                verify=key)
    refused = playbook(bundle_play("search_import", load), expect_rc=2).task("search_import")["result"]["msg"]
    assert "does not match its SHA256SUMS" in refused and f"indices/{index}.ndjson" in refused, refused
    names.append("MD5SUMS")
    sums = subprocess.run(["sha256sum", "--", *sorted(names)], cwd=dest, capture_output=True, text=True,
                          check=True).stdout
    with open(os.path.join(dest, "SHA256SUMS"), "w", encoding="utf-8") as handle:
        handle.write(sums)
    forged = playbook(bundle_play("search_import", load), expect_rc=2).task("search_import")["result"]["msg"]
    assert "altered after signing" in forged, forged
    assert index.replace(OLD, "signed") not in str(search_pair["target"].request("GET", "/_cat/indices?format=json"))
