"""The pure part of a subset's files: reference paths, URLs in values and in text, mappings, and which
directories move whole. Directory trees are real (tmp_path); no server is involved."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.subset.files import by_mapping, collect, locate_dir
from ansible_collections.mlops.migration.plugins.module_utils.subset.references import (
    ancestors,
    parse_mappings,
    parse_specs,
    ReferenceSpecError,
    resolve,
    urls_in,
    values_at,
    whole_directories,
)

FILES = "http://files.example:8081/"


def test_values_at_walks_stars_and_lists():
    doc = {"execution": {"artifacts": {"a_output": {"uri": "u1"}, "b_output": {"uri": "u2"}}},
           "models": {"output": [{"uri": "m1"}, {"uri": "m2"}, {"name": "no uri"}]}}
    assert values_at(doc, "execution.artifacts.*.uri") == [
        ("execution.artifacts.a_output.uri", "u1"), ("execution.artifacts.b_output.uri", "u2")]
    assert [v for _f, v in values_at(doc, "models.output.uri")] == ["m1", "m2"]
    assert [f for f, _v in values_at(doc, "models.output.*.uri")] == ["models.output.0.uri", "models.output.1.uri"]
    assert values_at(doc, "nothing.here") == []


def test_urls_whole_values_and_embedded_text():
    assert urls_in(FILES + "Project 0/a b.csv", [FILES]) == [FILES + "Project 0/a b.csv"]
    assert urls_in("see " + FILES + "x.png", [FILES]) == []  # not embedded: only a value that is a URL
    plot = '{"images": [{"source": "%sP/t.1/metrics/a.png"}, {"source": "%sP/t.1/b.png"}]}' % (FILES, FILES)
    assert urls_in(plot, [FILES], embedded=True) == [FILES + "P/t.1/metrics/a.png", FILES + "P/t.1/b.png"]
    assert urls_in(12, [FILES]) == []


def test_longest_prefix_wins_and_unmapped_is_none():
    mappings = parse_mappings([{"url": "s3://bucket/", "bucket": "bucket"},
                               {"url": "s3://bucket/clearml/", "bucket": "bucket", "prefix": "clearml/"}])
    mapping, rel = resolve("s3://bucket/clearml/P/x.csv", mappings)
    assert (mapping.prefix, rel) == ("clearml/", "P/x.csv")
    assert resolve("https://elsewhere/x", mappings) is None


@pytest.mark.parametrize("specs, message", [
    ([{"path": "uri"}], "needs a path and a collection"),
    ([{"collection": "task", "path": "uri"}], "must be db.name"),
    ([{"collection": "b.task", "path": "uri", "kind": "folder"}], "kind must be one of"),
    ([{"collection": "b.task", "path": "plot_data", "compressed": True}], "applies to an index"),
    ([{"collection": "b.task", "index": "events-*", "path": "url"}], "both a collection and an index"),
])
def test_malformed_reference_specs_are_refused(specs, message):
    with pytest.raises(ReferenceSpecError, match=message):
        parse_specs(specs)


@pytest.mark.parametrize("mappings, message", [
    ([{"dir": "/x"}], "needs a url"),
    ([{"url": FILES}], "neither"),
    ([{"url": FILES, "dir": "/x", "bucket": "b"}], "both"),
    ([{"url": FILES, "dir": "/x"}, {"url": FILES, "dir": "/y"}], "mapped twice"),
])
def test_malformed_mappings_are_refused(mappings, message):
    with pytest.raises(ReferenceSpecError, match=message):
        parse_mappings(mappings)


def test_whole_directories_are_the_topmost_owned_ones():
    listing = {"P": ["P/t1/a", "P/t1/b", "P/t2/a"], "P/t1": ["P/t1/a", "P/t1/b"], "P/t2": ["P/t2/a"],
               "Q": ["Q/m1", "Q/m2"]}
    owned = {"P/t1/a", "P/t1/b", "Q/m1"}
    assert whole_directories(owned, listing) == (["P/t1"], ["Q/m1"])
    assert whole_directories(owned | {"P/t2/a"}, listing) == (["P"], ["Q/m1"])
    assert ancestors("a/b/c.txt") == ["a/b", "a"]


def _tree(root, files):
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)


def test_filtered_documents_do_not_bring_their_files_and_dangling_ones_are_named(tmp_path):
    _tree(tmp_path, ["P/t1/a.csv", "P/t1/b.csv", "P/t2/a.csv", "models/m1.pt", "models/m2.pt", "top.txt"])
    specs = parse_specs([{"collection": "b.task", "path": "artifacts.*"}, {"collection": "b.model", "path": "uri"}])
    docs = [("b.task", {"_id": "t1", "status": "completed", "artifacts": {"a": FILES + "P/t1/a.csv", "b": FILES + "P/t1/b.csv"}}),
            ("b.task", {"_id": "t2", "status": "failed", "artifacts": {"a": FILES + "P/t2/a.csv"}}),
            ("b.task", {"_id": "t3", "status": "completed", "artifacts": {"gone": FILES + "P/t3/gone.csv",
                                                                          "away": "https://elsewhere/x"}}),
            ("b.model", {"_id": "m1", "uri": FILES + "models/m1.pt"}),
            ("b.model", {"_id": "m9", "uri": FILES + "../etc/passwd"})]
    refs, tasks, seen = collect(docs, specs, {"b.task": {"status": "completed"}}, [FILES], "b.task")
    assert tasks == ["t1", "t3"] and seen == {"b.task": {"read": 3, "kept": 2}, "b.model": {"read": 2, "kept": 2}}
    mappings = parse_mappings([{"url": FILES, "dir": str(tmp_path)}])
    grouped, unmapped = by_mapping(refs, mappings)
    assert unmapped == []  # the other URL is not a file reference of a mapped prefix at all
    found = locate_dir(str(tmp_path), grouped[0])
    assert found["directories"] == ["P/t1"] and found["files"] == ["models/m1.pt"]
    assert (found["count"], found["bytes"]) == (3, 30)
    assert sorted((m["document"], m["field"]) for m in found["missing"]) == [
        ("b.model/m9", "uri"), ("b.task/t3", "artifacts.gone")]
    assert "climbs out" in [m for m in found["missing"] if m["document"] == "b.model/m9"][0]["reason"]


def test_directory_references_own_everything_under_them(tmp_path):
    _tree(tmp_path, ["datasets/d1/1.jpg", "datasets/d1/2.jpg", "datasets/d2/1.jpg"])
    specs = parse_specs([{"collection": "b.dataset", "path": "root", "kind": "directory"},
                         {"collection": "b.project", "path": "dest", "kind": "destination"}])
    docs = [("b.dataset", {"_id": "d1", "root": FILES + "datasets/d1"}),
            ("b.dataset", {"_id": "d3", "root": FILES + "datasets/d3"}),
            ("b.project", {"_id": "p", "dest": FILES + "outputs/none-yet"})]
    refs, _tasks, _seen = collect(docs, specs, {}, [FILES])
    found = locate_dir(str(tmp_path), by_mapping(refs, parse_mappings([{"url": FILES, "dir": str(tmp_path)}]))[0][0])
    assert found["directories"] == ["datasets/d1"] and found["files"] == [] and found["count"] == 2
    assert [m["document"] for m in found["missing"]] == ["b.dataset/d3"]  # a destination not there is no error
