"""Unit tests of module_utils/state/report.py: module results summed per object kind, and rendered."""

import base64
import json

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind
from ansible_collections.mlops.migration.plugins.module_utils.files.sync import file_counts
from ansible_collections.mlops.migration.plugins.module_utils.mongo.load import collection_counts
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import TransferReport
from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import CopyReport
from ansible_collections.mlops.migration.plugins.module_utils.state.report import (
    build_report,
    host_totals,
    plan_context,
    progress_by_step,
    render_markdown,
    render_table,
    ReportError,
    status_lines,
    summarize,
)
from ansible_collections.mlops.migration.plugins.module_utils.state.report_html import render_html


def s3_result(dry_run=False, **values):
    """What the S3 modules return, made by their own report type."""
    report = TransferReport(dry_run=dry_run)
    for name, value in dict(dict(found=10, copied=4, already_present=6, verified=4, failed_count=0), **values).items():
        setattr(report, name, value)
    return report.as_dict()


S3 = s3_result()


def test_s3_and_loop_results_add_up():
    looped = {"results": [dict(S3), s3_result(copied=1, already_present=8, verified=1, failed_count=1,
                                              failures=[{"key": "a b.png", "reason": "BadDigest"}]), {"skipped": True}]}
    objects = summarize([{"module": "mlops.migration.s3_sync", "result": looped}])
    counts = objects["s3 objects"]
    assert (counts["found"], counts["copied"], counts["present"], counts["verified"], counts["failed"]) == (20, 5, 14, 5, 1)
    assert counts["filtered_out"] is None
    assert counts["failures"] == ["a b.png: BadDigest"]


def test_verification_counts_present_objects_as_verified_and_the_rest_as_failed():
    objects = summarize([{"module": "s3_sync", "verification": True,
                          "result": s3_result(dry_run=True, copied=2, already_present=8, to_copy=["x", "y"])}])
    counts = objects["s3 objects"]
    assert (counts["verified"], counts["failed"], counts["copied"]) == (8, 2, None)
    assert counts["failures"] == ["x: not at the target", "y: not at the target"]


def test_mongo_restore_and_its_check_by_collection_with_fields():
    restore = by_kind({"documents backend.task": collection_counts(
        {"collection": "backend.task", "found": 30, "filtered_out": 15, "inserted": 10,
         "replaced": 1, "skipped_duplicates": 4, "failed": 0, "failures": []})})
    check = by_kind({"documents backend.task": collection_counts(
        {"collection": "backend.task", "found": 30, "filtered_out": 15, "expected": 15,
         "present": 15, "missing": 0, "differing": 0, "failures": []})})
    objects = summarize([{"module": "mongo_restore", "result": restore},
                         {"module": "mongo_restore", "result": check, "verification": True,
                          "fields": ["verified", "failed"]}])
    counts = objects["documents backend.task"]
    assert (counts["found"], counts["filtered_out"], counts["copied"], counts["present"], counts["verified"],
            counts["failed"]) == (30, 15, 11, 4, 15, 0)


def test_tracker_kinds_files_and_labels():
    report = CopyReport()
    report.counts["runs"].update(found=6, copied=5, updated=1)
    report.counts["experiments"].update(found=2, copied=2)
    copy = report.result()
    files = by_kind({"files": file_counts({"transferred": 3, "verified": 7, "mismatched": ["a"], "missing": []})})
    objects = summarize([{"module": "tracker_copy", "result": copy},
                         {"module": "file_sync", "kind": "models", "result": files}])
    assert objects["tracker runs"]["copied"] == 6 and objects["tracker runs"]["verified"] == 6
    assert objects["models files"]["found"] == 8 and objects["models files"]["failed"] == 1
    assert objects["models files"]["failures"] == ["a: differs"]


@pytest.mark.parametrize("entry", [{"result": {}}, {"module": "rsync", "result": {"transferred": 3}}, "s3_sync"])
def test_unknown_or_malformed_results_are_refused(entry):
    with pytest.raises(ReportError):
        summarize([entry])


STEPS = {
    "files_bulk": {"state": "done", "started": 1_700_000_000, "finished": 1_700_000_002.5,
                   "summary": {"objects": summarize([{"module": "s3_sync", "result": S3}])}, "progress": {}},
    "s3": {"state": "failed", "started": 1_700_000_003, "finished": 1_700_000_010,
           "summary": {"error": "bucket <x> does not exist"}, "progress": {}},
    "mongo": {"state": "running", "started": 1_700_000_011, "finished": None, "summary": {}, "progress": {}},
}
PLAN = ["files_bulk", "s3", "mongo", "trackers"]


def test_markdown_html_and_table_show_every_planned_step():
    report = build_report("Report", PLAN, STEPS)
    text = render_markdown(report)
    assert "| files_bulk | done | 2023-11-14 22:13:20 UTC | 2.5 s |" in text
    assert "| trackers | not run |  |  |" in text
    assert "| files_bulk | s3 objects | 10 | - | 4 | 6 | 4 | 0 |" in text
    assert "- s3: bucket \\<x\\> does not exist" in text  # no HTML gets into the Markdown
    assert report["verdict"] == {"status": "incomplete", "detail": "step s3 failed: bucket <x> does not exist"}
    page = render_html(report)
    assert "bucket &lt;x&gt; does not exist" in page and "<td class=\"failed\">failed</td>" in page
    table = render_table(PLAN, STEPS)
    assert table[1].split() == ["files_bulk", "done", "2.5", "s"]
    assert any(line.split()[:3] == ["files_bulk", "s3", "objects"] for line in table)


def done(started, seconds, objects, hosts=None):
    return {"state": "done", "started": started, "finished": started + seconds, "progress": {},
            "summary": {"objects": objects, **({"hosts": hosts} if hosts else {})}}


def test_totals_per_category_merge_the_passes_of_one_kind():
    bulk = summarize([{"result": s3_result(found=10, copied=10, already_present=0, verified=10)}])
    delta = summarize([{"result": s3_result(found=12, copied=2, already_present=10, verified=2)}])
    check = summarize([{"verification": True, "fields": ["verified", "failed"],
                        "result": s3_result(dry_run=True, found=12, copied=0, already_present=12)}])
    steps = {"files_bulk": done(100, 5, bulk), "files_delta": done(200, 2, delta), "verify": done(210, 1, check)}
    report = build_report("r", ["files_bulk", "files_delta", "verify"], steps)
    assert report["totals"] == {"objects": {"found": 12, "filtered_out": None, "copied": 12, "present": 0,
                                            "verified": 12, "failed": 0, "bytes": 0}}
    assert report["verdict"]["status"] == "complete"
    (item,) = report["verification"]
    assert (item["kind"], item["verified"], item["total"], item["coverage"]) == ("s3 objects", 12, 12, 1.0)
    assert "ETag" in item["method"]
    assert report["wall_seconds"] == 111


def test_failed_objects_make_the_verdict_and_carry_the_command_that_retries_them():
    failing = summarize([{"result": s3_result(failed_count=1, failures=[{"key": "a.png", "reason": "BadDigest"}])}])
    report = build_report("r", ["s3"], {"s3": done(0, 1, failing)}, context={"retry": "ansible-playbook m.yml -i inv"})
    assert report["verdict"]["status"] == "complete with failures"
    (failure,) = report["failures"]
    assert (failure["object"], failure["reason"]) == ("a.png", "BadDigest")
    assert failure["retry"] == "ansible-playbook m.yml -i inv --tags s3 -e migration_force=true"


def test_history_shows_each_run_and_a_run_that_did_nothing_reports_as_the_last_one():
    first = summarize([{"result": S3}])
    history = {"2026-01-01T00:00:00Z": {"s3": done(0, 1, first)}, "2026-01-02T00:00:00Z": {"s3": done(86400, 2, first)}}
    steps = {"s3": done(86400, 2, first)}
    report = build_report("r", ["s3"], steps, history, run="2026-01-02T00:00:00Z")
    again = build_report("r", ["s3"], steps, history, run="2026-01-03T00:00:00Z")
    assert report == again
    assert [run["current"] for run in report["history"]] == [False, True]
    assert "| s3 | done, 1.0 s, 4 copied | done, 2.0 s, 4 copied |" in render_markdown(report)


def test_hosts_get_their_share_of_the_timeline():
    hosts = host_totals({"t1": [{"result": s3_result(copied=3)}], "t2": [{"result": s3_result(copied=1)}]})
    assert hosts["t1"]["copied"] == 3 and hosts["t2"]["copied"] == 1
    page = render_html(build_report("r", ["s3"], {"s3": done(0, 4, summarize([{"result": S3}]), hosts)}))
    assert page.count('class="bar step-bar') == 1 and page.count('class="bar host-bar') == 2


def test_plan_context_leaves_credentials_out():
    plan = {"s3": {"buckets": [{"source": {"endpoint_url": "http://s3.old:8333", "access_key": "AK", "secret_key": "SK",
                                           "bucket": "b", "prefix": "p/"}, "target": {"bucket": "c"}}]},
            "mongo": {"source": {"uri": "mongodb://admin:hunter2@db.old:27017/"}, "target": {"uri": "mongodb://db.new/"},
                      "collections": {"backend.task": {"unset_fields": ["execution.queue"]}}},
            "postgres": {"source": {"host": "pg.old", "user": "app", "password": "pw", "database": "simcore"},
                         "target": {"host": "pg.new", "user": "app", "password": "pw2", "database": "simcore"},
                         "exclude_tables": ["payments"]}}
    context = plan_context(plan, "full", "ansible-playbook x")
    text = repr(context)
    for secret in ("SK", "hunter2", "pw2", "'pw'"):
        assert secret not in text
    assert context["endpoints"][1]["source"] == "mongodb://admin:***@db.old:27017/"
    assert context["endpoints"][2]["source"] == "postgresql://app@pg.old:5432/simcore"
    assert context["rules"]["mongo"] == ["backend.task: fields removed execution.queue"]
    assert context["rules"]["postgres"] == ["tables left out: payments"]


def test_status_shows_the_progress_of_a_running_step():
    record = {"what": "mongo_restore x", "done": 500, "total": 2000, "bytes": 3 * 1024 * 1024, "rate": 250.0,
              "eta_seconds": 6.0, "updated": 1_700_000_020}
    older = dict(record, done=100, updated=1_700_000_015)
    files = [{"source": "/state/mongo.progress.json", "content": base64.b64encode(json.dumps(r).encode()).decode()}
             for r in (record, older)] + [{"source": "/state/s3.progress.json", "content": "bm90IGpzb24="}]
    progress = progress_by_step(files)
    assert progress == {"mongo": record}
    lines = status_lines(PLAN, STEPS, progress)
    mongo = next(line for line in lines if line.startswith("mongo"))
    assert mongo.split()[:6] == ["mongo", "running", "500/2000", "3.0", "MiB", "250.0/s"]
    assert "6 s" in mongo
    assert next(line for line in lines if line.startswith("trackers")).split() == ["trackers", "not", "run"]


def test_names_and_failures_cannot_break_the_markdown_or_the_html():
    import re  # pylint: disable=import-outside-toplevel

    from ansible_collections.mlops.migration.plugins.module_utils.state.report import COLUMNS  # pylint: disable=C0415

    hostile = "key|with pipe\n# Heading\n<script>alert(1)</script>"
    steps = {"s3": {"state": "failed", "started": 0, "finished": 1, "summary": {
        "error": hostile, "objects": {hostile: {"found": "<b>5</b>", "failures": [hostile]}}}}}
    report = build_report("report", ["s3"], steps)
    text = render_markdown(report)
    assert "\n# Heading" not in text and "<script>" not in text
    rows = [line for line in text.splitlines() if line.startswith("| s3 | key")]
    assert [len(re.findall(r"(?<!\\)\|", line)) for line in rows] == [len(COLUMNS) + 3]  # no cell added
    assert "key\\|with pipe # Heading \\<script\\>" in text
    page = render_html(report)
    assert "<script>" not in page and "<b>5</b>" not in page and "&lt;b&gt;5&lt;/b&gt;" in page
