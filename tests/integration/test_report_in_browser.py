"""report.html as people see it: written by migration_report through ansible-playbook from a state file that
migration_step recorded, rendered by headless Chromium (Debian's ``chromium``), screenshotted, and its DOM
checked: the verdict, totals equal to the state file's, a timeline bar per step, nothing fetched from
anywhere, and an object key holding ``<script>`` shown as text."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from html.parser import HTMLParser

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind, Counts

pytestmark = pytest.mark.integration

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
HOSTILE = "clearml/<script>alert('x')</script>.png"
PLAN = ["files_bulk", "s3", "mongo"]


def chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no chromium: 'make deps' installs Debian's chromium package (as root)"
    return found


def result(kind, **counts):
    return by_kind({kind: Counts(**counts)})


def step_task(name, state_dir, **args):
    return {"name": f"step {name} {args.get('state')}", "mlops.migration.migration_step": {
        "state_dir": state_dir, "name": name, "run": "2026-12-07T10:00:00Z", **args}}


class Dom(HTMLParser):
    """Elements (tag, attributes) and the text of the page Chromium serialised."""

    def __init__(self):
        super().__init__()
        self.elements, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs, _text="")))

    def handle_data(self, data):
        self.text.append(data)
        if self.elements:
            self.elements[-1][1]["_text"] += data  # the text right after an element's start: a cell's own


def test_the_report_renders_in_chromium_with_its_facts_and_nothing_fetched(playbook, ssh_stack, tmp_path):
    state_dir = os.path.join(ssh_stack["ssh"]["source"].root, "browser-report")
    failed_object = Counts(found=40, copied=39, present=0, verified=39, bytes=39 * 2048)
    failed_object.fail(HOSTILE, "BadDigest: the md5 differs")
    tasks = [
        step_task("files_bulk", state_dir, state="running"),
        step_task("files_bulk", state_dir, state="done", host_results={"source-host": [
            {"result": result("files", found=12, copied=12, present=0, verified=12, failed=0, bytes=12 * 4096)}]}),
        step_task("s3", state_dir, state="running"),
        step_task("s3", state_dir, state="done", host_results={
            "transfer-1": [{"result": by_kind({"s3 objects": failed_object})}],
            "transfer-2": [{"result": result("s3 objects", found=10, copied=4, present=6, verified=4, failed=0, bytes=4096)}]}),
        step_task("mongo", state_dir, state="running"),
        step_task("mongo", state_dir, state="done", host_results={"target-host": [
            {"result": result("documents backend.task", found=30, filtered_out=15, copied=15, present=0, verified=15,
                              failed=0)}]}),
        {"name": "report", "mlops.migration.migration_report": {
            "state_dir": state_dir, "steps": PLAN, "title": "Migration report (full)", "run": "2026-12-07T10:00:00Z",
            "context": "{{ plan | mlops.migration.report_context('full', 'ansible-playbook playbooks/migrate.yml -i inv') }}"},
         "vars": {"plan": {"s3": {"buckets": [{
             "source": {"endpoint_url": "http://s3.old.example:8333", "access_key": "AKOLD", "secret_key": "old-secret",
                        "bucket": "clearml"},
             "target": {"endpoint_url": "http://s3.new.example:8333", "access_key": "AKNEW", "secret_key": "new-secret",
                        "bucket": "clearml"}}]},
             "mongo": {"source": {"uri": "mongodb://admin:mongo-secret@db.old.example:27017/"},
                       "target": {"uri": "mongodb://admin:other-secret@db.new.example:27017/"},
                       "collections": {"backend.task": {"filter": {"status": {"$in": ["completed"]}}}}}}}},
    ]
    run = playbook([{"name": "record", "hosts": "source", "gather_facts": False, "tasks": tasks}])
    written = run.task("report")["result"]
    assert written["verdict"]["status"] == "complete with failures"
    page = os.path.join(state_dir, "report.html")
    with open(page, encoding="utf-8") as handle:
        source_html = handle.read()
    for secret in ("old-secret", "new-secret", "mongo-secret", "other-secret"):
        assert secret not in source_html

    shot = tmp_path / "report.png"
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--screenshot={shot}", "--window-size=1280,2400", f"file://{page}"],
                   check=True, capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dumped = subprocess.run([chromium(), *CHROMIUM_FLAGS, "--dump-dom", f"file://{page}"], check=True,
                            capture_output=True, timeout=120, text=True).stdout
    dom = Dom()
    dom.feed(dumped)

    (verdict,) = [a for t, a in dom.elements if t == "div" and a.get("id") == "verdict"]
    assert verdict["data-status"] == "complete with failures"

    with sqlite3.connect(os.path.join(state_dir, "migration-state.sqlite")) as db:
        summaries = {name: json.loads(summary) for name, summary in db.execute("SELECT name, summary FROM steps")}
    expected = {}
    for summary in summaries.values():
        for kind, counts in summary["objects"].items():
            category = {"files": "files", "s3 objects": "objects", "documents backend.task": "documents"}[kind]
            expected[category] = {c: counts[c] for c in ("found", "copied", "present", "verified", "failed")}
    cards, current = {}, None
    for tag, attrs in dom.elements:
        if tag == "div" and "data-category" in attrs:
            current = cards.setdefault(attrs["data-category"], {})
        elif tag == "dd" and current is not None and attrs.get("data-column"):
            current[attrs["data-column"]] = attrs["_text"]
    assert set(cards) == set(expected) == {"files", "objects", "documents"}
    for category, counts in expected.items():  # one step per kind here: the card shows the state file's counts
        assert {c: cards[category][c] for c in counts} == {c: str(v) for c, v in counts.items()}, category
    assert cards["objects"]["found"] == "50" and cards["objects"]["failed"] == "1"
    assert cards["documents"]["filtered_out"] == "15"
    with open(os.path.join(state_dir, "report.json"), encoding="utf-8") as handle:
        assert json.load(handle)["verdict"] == written["verdict"]
    text = " ".join(dom.text)

    bars = [a for t, a in dom.elements if t == "rect"]
    assert sorted(a["data-step"] for a in bars if "step-bar" in a.get("class", "")) == sorted(PLAN)
    assert sorted(a["data-host"] for a in bars if "host-bar" in a.get("class", "")) == [
        "source-host", "target-host", "transfer-1", "transfer-2"]

    for tag, attrs in dom.elements:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed"), (tag, attrs)
        for name in ("src", "href", "srcset", "data", "action"):
            assert name not in attrs, (tag, attrs)
    assert "@import" not in source_html and "url(" not in source_html
    assert HOSTILE in text  # the key is text on the page, not an element
    assert "ansible-playbook playbooks/migrate.yml -i inv --tags s3 -e migration_force=true" in text
    assert "mongodb://admin:***@db.old.example:27017/" in text
    assert 'backend.task: only documents matching {"status": {"$in": ["completed"]}}' in text
