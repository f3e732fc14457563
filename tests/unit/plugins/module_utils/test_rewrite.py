"""Unit tests of module_utils/rewrite.py."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.rewrite import RewriteError, Rewriter, parse_rules

OLD = "http://files.src:8081/"


def doc():
    return {"uri": OLD + "a/model.pt", "note": "see " + OLD + "x", "other": "s3://keep/me",
            "execution": {"artifacts": [{"uri": OLD + "a.csv"}, {"uri": "s3://elsewhere/b.csv"}]},
            "list": [OLD + "1", OLD + "2", 3]}


def test_prefix_everywhere_counts_each_changed_string():
    rewriter = Rewriter(parse_rules([{"from": OLD, "to": "s3://new/"}]))
    out = doc()
    assert rewriter.apply(out) == 4
    assert out["uri"] == "s3://new/a/model.pt"
    assert out["note"] == "see " + OLD + "x"  # prefix only
    assert out["execution"]["artifacts"][0]["uri"] == "s3://new/a.csv"
    assert out["list"] == ["s3://new/1", "s3://new/2", 3]


def test_substring_rewrites_inside_text():
    rewriter = Rewriter(parse_rules([{"from": OLD, "to": "s3://new/", "match": "substring"}]))
    out = doc()
    assert rewriter.apply(out) == 5
    assert out["note"] == "see s3://new/x"


def test_paths_limit_where_rules_apply():
    rewriter = Rewriter(parse_rules([{"from": OLD, "to": "s3://new/", "paths": ["execution.artifacts.uri", "list"]}]))
    out = doc()
    assert rewriter.apply(out) == 3
    assert out["uri"] == OLD + "a/model.pt"
    assert out["execution"]["artifacts"][0]["uri"] == "s3://new/a.csv"
    assert out["list"][:2] == ["s3://new/1", "s3://new/2"]


def test_may_change_looks_at_encoded_bytes():
    rewriter = Rewriter(parse_rules([{"from": "http://fïles/", "to": "x"}]))
    assert rewriter.may_change("xx http://fïles/ yy".encode())
    assert not rewriter.may_change(b"nothing here")
    assert not Rewriter([])


@pytest.mark.parametrize("rules,complaint", [
    ([{"to": "x"}], r"rewrite\[0\].from"),
    ([{"from": "a", "to": 1}], r"rewrite\[0\].to"),
    ([{"from": "a", "to": "b", "match": "regex"}], "prefix or substring"),
    ([{"from": "a", "to": "b", "paths": "uri"}], "paths"),
    ([{"from": "a", "to": "b", "form": 1}], "unknown keys: form"),
    (["a"], "mapping"),
])
def test_bad_rules_are_named(rules, complaint):
    with pytest.raises(RewriteError, match=complaint):
        parse_rules(rules)
