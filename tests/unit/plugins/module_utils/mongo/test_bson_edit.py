"""Unit tests of module_utils/mongo/bson_edit.py: scanning, top-level fields, unset and rewrite on encoded documents."""

import copy
import datetime
import random

import bson
import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

from ansible_collections.mlops.migration.plugins.module_utils.mongo import bson_edit as be
from ansible_collections.mlops.migration.plugins.module_utils.rewrite import Rewriter, parse_rules

OLD = "http://files.src:8081/"
EVERY_TYPE = {"_id": ObjectId(), "double": 1.5, "string": "ü" + OLD, "doc": {"a": 1}, "array": [1, "x"],
              "binary": Binary(b"\x00\x01", 0), "uuid": Binary(b"0123456789abcdef", 4), "bool": True,
              "date": datetime.datetime(2024, 1, 2, 3, 4, 5, 6000), "null": None, "regex": Regex("^a", "i"),
              "code": Code("x()"), "code_scope": Code("y()", {"v": 1}), "int32": 7, "ts": Timestamp(5, 6),
              "int64": Int64(2 ** 40), "decimal": Decimal128("1.10"), "min": MinKey(), "max": MaxKey()}


def edit(doc, unset=(), rules=()):
    """(edited document or None, unset count, rewritten count) through an Editor, as the restore builds it."""
    rewriter = Rewriter(parse_rules(rules))
    editor = be.Editor(be.plan(unset, rewriter.path_rules), rewriter.everywhere, rewriter.needles)
    new = editor.edit(bson.encode(doc))
    return (None if new is None else bson.decode(new)), editor.unset, editor.rewritten


def test_elements_walk_every_bson_type():
    raw = bson.encode(EVERY_TYPE)
    names = [raw[pos + 1:end].decode() for _kind, pos, end, _value_end in be.elements(raw)]
    assert names == list(EVERY_TYPE)


def test_top_level_picks_fields_exactly():
    raw = bson.encode(EVERY_TYPE)
    assert bson.decode(be.top_level(raw, [b"date", b"decimal", b"absent"])) == {
        "date": EVERY_TYPE["date"], "decimal": EVERY_TYPE["decimal"]}


def test_untouched_values_keep_their_bytes_around_an_edit():
    doc = dict(EVERY_TYPE, uri=OLD + "m.pt")
    new, unset, rewritten = edit(doc, ["null"], [{"from": OLD, "to": "s3://b/", "paths": ["uri"]}])
    expected = copy.deepcopy(doc)
    del expected["null"]
    expected["uri"] = "s3://b/m.pt"
    assert bson.encode(new) == bson.encode(expected) and (unset, rewritten) == (1, 1)


def test_nothing_to_do_returns_none():
    assert edit({"a": "s3://x", "b": {"c": 1}}, ["d.e"], [{"from": OLD, "to": "x"}]) == (None, 0, 0)


def test_prefix_everywhere_counts_each_changed_string():
    doc = {"uri": OLD + "a/model.pt", "note": "see " + OLD + "x", "other": "s3://keep/me",
           "execution": {"artifacts": [{"uri": OLD + "a.csv"}, {"uri": "s3://elsewhere/b.csv"}]},
           "list": [OLD + "1", OLD + "2", 3]}
    new, _unset, rewritten = edit(doc, rules=[{"from": OLD, "to": "s3://new/"}])
    assert rewritten == 4
    assert new["note"] == "see " + OLD + "x"  # prefix only
    assert new["execution"]["artifacts"][0]["uri"] == "s3://new/a.csv"
    assert new["list"][:2] == ["s3://new/1", "s3://new/2"]
    new, _unset, rewritten = edit(doc, rules=[{"from": OLD, "to": "s3://new/", "match": "substring"}])
    assert rewritten == 5 and new["note"] == "see s3://new/x"


def test_paths_through_arrays_and_numeric_components():
    doc = {"uri": OLD + "top", "execution": {"artifacts": [{"uri": OLD + "a"}, {"uri": OLD + "b"}]},
           "list": [OLD + "1", 3], "models": [{"uri": OLD + "m0"}, {"uri": OLD + "m1"}]}
    rules = [{"from": OLD, "to": "s3://n/", "paths": ["execution.artifacts.uri", "list", "models.1.uri"]}]
    new, _unset, rewritten = edit(doc, rules=rules)
    assert rewritten == 4
    assert new["uri"] == OLD + "top"
    assert [a["uri"] for a in new["execution"]["artifacts"]] == ["s3://n/a", "s3://n/b"]
    assert new["list"] == ["s3://n/1", 3]
    assert [m["uri"] for m in new["models"]] == [OLD + "m0", "s3://n/m1"]


def test_unset_nested_and_in_array_elements():
    doc = {"a": {"b": 1, "c": 2}, "list": [{"x": 1}, {"x": 2}, {"y": 3}], "keep": 1}
    new, unset, _rewritten = edit(doc, ["a.b", "list.x", "nothing.here"])
    assert unset == 3
    assert new == {"a": {"c": 2}, "list": [{}, {}, {"y": 3}], "keep": 1}


def reference(doc, unset, old, new):
    """What the editor must produce, written plainly on decoded documents: unset, then prefix-rewrite everywhere."""
    doc = copy.deepcopy(doc)

    def drop(node, parts):
        if isinstance(node, list):
            for item in node:
                drop(item, parts)
        elif isinstance(node, dict) and parts[0] in node:
            if len(parts) == 1:
                del node[parts[0]]
            else:
                drop(node[parts[0]], parts[1:])

    def swap(node):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if isinstance(value, str) and value.startswith(old):
                node[key] = new + value[len(old):]
            elif isinstance(value, (dict, list)):
                swap(value)

    for path in unset:
        drop(doc, path.split("."))
    swap(doc)
    return doc


def random_doc(rng, depth=0):
    doc = {}
    for index in range(rng.randint(0, 6)):
        kind = rng.random()
        name = rng.choice(["a", "b", "uri", "ü", f"f{index}"])
        if kind < 0.3:
            doc[name] = rng.choice([OLD, "x" + OLD, "plain", ""]) + str(rng.random())
        elif kind < 0.5 and depth < 3:
            doc[name] = random_doc(rng, depth + 1)
        elif kind < 0.65 and depth < 3:
            doc[name] = [random_doc(rng, depth + 1) if rng.random() < 0.5 else OLD + "e" for _i in range(3)]
        else:
            doc[name] = rng.choice([1, 2.5, None, True, datetime.datetime(2020, 1, 1), Decimal128("3")])
    return doc


@pytest.mark.parametrize("seed", range(40))
def test_matches_a_plain_reference_on_random_documents(seed):
    rng = random.Random(seed)
    doc = random_doc(rng)
    unset = ["a.b", "uri", "f1.a"]
    new, _unset, _rewritten = edit(doc, unset, [{"from": OLD, "to": "s3://n/"}])
    assert bson.encode(new if new is not None else doc) == bson.encode(reference(doc, unset, OLD, "s3://n/"))


def test_corrupt_bytes_are_reported():
    raw = bytearray(bson.encode({"a": "x", "b": 1}))
    raw[4] = 0x42  # no such element type
    with pytest.raises(be.BsonError, match="unknown BSON element type 0x42"):
        list(be.elements(bytes(raw)))


def _with_string_length(length):
    """{"a": "hello", "b": 1} with the string's length field replaced."""
    raw = bytearray(bson.encode({"a": "hello", "b": 1}))
    raw[7:11] = length.to_bytes(4, "little", signed=True)
    return bytes(raw)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("raw", [
    _with_string_length(-7), _with_string_length(-4), _with_string_length(2 ** 31 - 1),
    b"\x05\x00\x00\x00",  # cut off before its terminator
    b"\xff\xff\xff\x7f\x00",  # claims 2 GiB
    b"\x0c\x00\x00\x00\x03a\x00\x01\x00\x00\x00\x00",  # a nested document of impossible size
    b"\x0c\x00\x00\x00\x0ba\x00xy\x00\x00",  # a regex without its second terminator
    b"\x08\x00\x00\x00\x02abc",  # a name without its terminator
])
def test_malformed_elements_are_errors_never_loops(raw):
    rewriter = Rewriter(parse_rules([{"from": "hel", "to": "x", "match": "substring"}]))
    editor = be.Editor(be.plan(["zzz"], rewriter.path_rules), rewriter.everywhere, rewriter.needles)
    for attempt in (lambda: list(be.elements(raw)), lambda: editor.edit(raw)):
        with pytest.raises((be.BsonError, IndexError, ValueError)):
            attempt()
