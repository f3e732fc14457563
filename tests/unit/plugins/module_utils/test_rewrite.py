"""Unit tests of module_utils/rewrite.py: parsing and sorting rules (applying them: mongo/test_bson_edit.py)."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.rewrite import RewriteError, Rewriter, parse_rules


def test_may_change_looks_at_encoded_bytes():
    rewriter = Rewriter(parse_rules([{"from": "http://fïles/", "to": "x"}]))
    assert rewriter.may_change("xx http://fïles/ yy".encode())
    assert not rewriter.may_change(b"nothing here")
    assert not Rewriter([])


def test_rules_with_paths_are_kept_apart_from_rules_for_every_string():
    rewriter = Rewriter(parse_rules([{"from": "a", "to": "b", "paths": ["x.y", "z"]}, {"from": "c", "to": "d"}]))
    assert [(r.old, p) for r, p in rewriter.path_rules] == [("a", "x.y"), ("a", "z")]
    assert [r.old for r in rewriter.everywhere] == ["c"] and rewriter.needles == (b"c",)
    prefix, substring = parse_rules([{"from": "ab", "to": "X"}, {"from": "ab", "to": "X", "match": "substring"}])
    assert (prefix.apply("abcab"), substring.apply("abcab"), prefix.apply("cab")) == ("Xcab", "XcX", "cab")


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
