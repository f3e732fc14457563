"""Benchmark: search_copy's direct copy of ClearML events against a bare scroll + bulk loop.

Starts two loopback OpenSearch nodes (tests/stack/opensearch.py), seeds the source with the
ClearML event templates and BENCH_EVENTS (default 1,000,000) scalar events over 200 tasks plus
BENCH_PLOTS (default 20,000) plot events carrying image URLs (every fourth large and stored
compressed), then in the same run, each in its own process (for its peak RSS):

  bare    a scroll sorted by _doc and one _bulk per page, with the collection's own client
          and the same batch size (1,000), nothing looked up, rewritten or read back
  ours    module_utils/search/copy.py's copy_index as search_copy runs it: URLs rewritten in
          plots (compressed ones unpacked and packed again), every written document read back,
          the order-free digests and the documents per task compared at both servers,
          BENCH_SLICES (default 2) sliced scrolls side by side

and prints events/s of each, the ratio (goal: ours at least 0.8x the bare loop's events/s) and
our peak RSS (goal: under 250 MB).

    .venv/bin/python benchmarks/events_copy.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from benchmarks.measure import run_measured, settle  # noqa: E402  pylint: disable=wrong-import-position
from tests import clearml_events  # noqa: E402  pylint: disable=wrong-import-position

COMPANY = "bench"
FILES_URL = "http://files.source.example:8081"
RULES = [{"from": FILES_URL + "/", "to": "s3://target-bucket/fileserver/", "match": "prefix"}]
BATCH = 1000


def indices():
    return [clearml_events.index_name(kind, COMPANY) for kind in ("training_stats_scalar", "plot")]


def seed(url, events, plots):
    from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchClient  # pylint: disable=C0415

    client = SearchClient(url)
    clearml_events.install_templates(client.call)
    tasks = [f"{n:032x}" for n in range(200)]
    per_task = events // len(tasks)

    def image_url(it, n):
        return f"{FILES_URL}/bench/task.{it % 200:032x}/metrics/plot/image_{it:06d}_{n:03d}.png"

    streams = {
        indices()[0]: (pair for task in tasks for pair in clearml_events.scalars(
            task, COMPANY, max(1, per_task // 4))),
        indices()[1]: (pair for n, task in enumerate(tasks) for pair in clearml_events.plots(
            task, COMPANY, plots // len(tasks), image_url, large_images=20)),
    }
    for index, pairs in streams.items():
        page = []
        for pair in pairs:
            page.append(pair)
            if len(page) == 5000:
                client.bulk(index, page)
                page = []
        if page:
            client.bulk(index, page)
        client.refresh(index)
    counts = {index: client.count(index) for index in indices()}
    client.close()
    return counts


def bare(source_url, target_url, suffix):
    from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchClient  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.search.copy import target_settings  # pylint: disable=C0415

    source, target = SearchClient(source_url), SearchClient(target_url)
    moved = 0
    for index in indices():
        meta = source.index(index)
        target.create_index(index + suffix, meta.get("mappings") or {}, target_settings(meta))
        for hits in source.scroll(index, {"match_all": {}}, BATCH):
            target.bulk(index + suffix, [(hit["_id"], hit["_source"]) for hit in hits])
            moved += len(hits)
    return {"moved": moved}


def ours(source_url, target_url, suffix, slices):
    from ansible_collections.mlops.migration.plugins.module_utils.rewrite import parse_rules  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchClient  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.search.copy import copy_index  # pylint: disable=C0415
    from ansible_collections.mlops.migration.plugins.module_utils.search.events import EventRewriter  # pylint: disable=C0415

    source, target = SearchClient(source_url), SearchClient(target_url)
    rewriter = EventRewriter(parse_rules(RULES))
    out = {"moved": 0, "verified": 0, "failed": 0, "digests_same": True, "tasks_checked": 0}
    for index in indices():
        loaded, tasks = copy_index(source, target, index, index + suffix, None, BATCH, rewriter, slices=slices)
        out["moved"] += loaded.counts.copied
        out["verified"] += loaded.counts.verified
        out["failed"] += loaded.counts.failed
        out["digests_same"] = out["digests_same"] and loaded.digests.as_dict()["same"]
        out["tasks_checked"] += tasks["checked"] or 0
    out["rewritten"] = rewriter.rewritten
    return out


def child(argv):
    mode, source_url, target_url, suffix = argv[:4]
    started = time.monotonic()
    if mode == "bare":
        result = bare(source_url, target_url, suffix)
    else:
        result = ours(source_url, target_url, suffix, int(argv[4]))
    result["seconds"] = time.monotonic() - started
    print(json.dumps(result))


def measured(mode, source, target, suffix, *extra):
    settle()
    _seconds, rss, out = run_measured([sys.executable, os.path.abspath(__file__), "--child", mode, source.url,
                                       target.url, suffix, *extra])
    result = json.loads(out)
    result["rss_mb"] = rss
    return result


def main():
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return
    from tests.stack.opensearch import OpenSearchNode  # pylint: disable=import-outside-toplevel

    events, plots = int(os.environ.get("BENCH_EVENTS", 1_000_000)), int(os.environ.get("BENCH_PLOTS", 20_000))
    slices = os.environ.get("BENCH_SLICES", "2")
    work = tempfile.mkdtemp(prefix="bench-events-", dir=os.path.join(REPO, ".bench") if os.path.isdir(
        os.path.join(REPO, ".bench")) else None)
    nodes = [OpenSearchNode(side, os.path.join(work, side)) for side in ("source", "target")]
    try:
        for node in nodes:
            node.start()
        source, target = nodes
        started = time.monotonic()
        counts = seed(source.url, events, plots)
        total = sum(counts.values())
        print(f"seeded {counts} in {time.monotonic() - started:.0f} s")
        base = measured("bare", source, target, "-bare")
        mine = measured("ours", source, target, "-ours", slices)
        for name, result in (("bare scroll+bulk", base), (f"search_copy (slices={slices})", mine)):
            print(f"{name:28s} {result['moved']:>9} events {result['seconds']:7.1f} s "
                  f"{result['moved'] / result['seconds']:9.0f} events/s  peak RSS {result['rss_mb']:.0f} MB")
        print(f"ours: verified {mine['verified']}, failed {mine['failed']}, digests same {mine['digests_same']}, "
              f"tasks compared {mine['tasks_checked']}, strings rewritten {mine['rewritten']}")
        ratio = (mine["moved"] / mine["seconds"]) / (base["moved"] / base["seconds"])
        print(f"events/s ratio ours/bare: {ratio:.2f}x (goal >= 0.8x); our peak RSS {mine['rss_mb']:.0f} MB "
              f"(goal < 250 MB); {total} events")
    finally:
        for node in nodes:
            node.stop()


if __name__ == "__main__":
    main()
