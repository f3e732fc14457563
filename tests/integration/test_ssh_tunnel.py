"""ssh_tunnel: the search and MongoDB modules reach a server through an ssh bastion (the stack's sshd
on 127.0.0.2) when the server listens on another loopback address (127.0.0.1), the bastion's host
key checked; an unknown host key is refused before anything is read or written."""

from __future__ import annotations

import json
import uuid

import pytest

pytestmark = pytest.mark.integration


def bastion(ssh_stack, known_hosts=None):
    host = ssh_stack["ssh"]["source"]
    return {"host": host.host, "port": host.port, "user": host.user, "key_file": host.client_key,
            "known_hosts": known_hosts or host.known_hosts}


def one_task(module, args):
    return [{"name": module, "hosts": "target", "gather_facts": False,
             "tasks": [{"name": module, f"mlops.migration.{module}": args}]}]


def test_search_copy_and_preflight_through_a_bastion(playbook, ssh_stack, search_pair):
    node = search_pair["source"]
    assert node.host == "127.0.0.1" and ssh_stack["ssh"]["source"].host == "127.0.0.2"
    index = f"events-log-tunnel-{uuid.uuid4().hex[:6]}"
    lines = []
    for n in range(300):
        lines += [json.dumps({"index": {"_index": index, "_id": f"line-{n}"}}),
                  json.dumps({"task": "t1", "type": "log", "msg": f"line {n}"})]
    node.request("POST", "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
    tunnelled = {"url": node.url, "ssh_tunnel": bastion(ssh_stack)}
    checked = playbook(one_task("preflight_check", {"kind": "search", "search": tunnelled})).task("preflight_check")
    assert checked["result"]["checked"]["distribution"] == "opensearch"
    args = {"source": tunnelled, "target": {"url": search_pair["target"].url}, "indices": [index], "batch_size": 64}
    copied = playbook(one_task("search_copy", args)).task("search_copy")["result"]
    assert (copied["counts"]["copied"], copied["counts"]["verified"]) == (300, 300)
    assert copied["indices"][0]["digest"]["same"]
    assert not playbook(one_task("search_copy", args)).task("search_copy")["result"]["changed"]


def test_an_unknown_host_key_is_refused_before_any_write(playbook, ssh_stack, search_pair, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    index = f"events-log-refused-{uuid.uuid4().hex[:6]}"
    search_pair["source"].request("PUT", f"/{index}/_doc/one?refresh=true", {"task": "t1", "msg": "x"})
    args = {"source": {"url": search_pair["source"].url, "ssh_tunnel": bastion(ssh_stack, str(empty))},
            "target": {"url": search_pair["target"].url}, "indices": [index]}
    refused = playbook(one_task("search_copy", args), expect_rc=2).task("search_copy")["result"]
    assert "cannot open an ssh tunnel through" in refused["msg"] and "not found in known_hosts" in refused["msg"]
    assert index not in str(search_pair["target"].request("GET", "/_cat/indices?format=json"))


def test_mongo_backup_through_a_bastion(playbook, ssh_stack, mongo_pair, tmp_path):
    import pymongo  # pylint: disable=import-outside-toplevel

    database = f"tunnel_{uuid.uuid4().hex[:6]}"
    client = pymongo.MongoClient(mongo_pair["source"].uri)
    try:
        client[database]["task"].insert_many([{"_id": f"t{n}", "n": n} for n in range(25)])
    finally:
        client.close()
    args = {"uri": mongo_pair["source"].uri, "ssh_tunnel": bastion(ssh_stack), "databases": [database],
            "dest": str(tmp_path / "backup")}
    result = playbook(one_task("mongo_backup", args)).task("mongo_backup")["result"]
    assert result["changed"] and result["counts"]["found"] == 25
