# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rewrite rules for string values in documents: artifact, model and debug-image URLs that move
from the source's file server or S3 to the target's.

A rule is ``{from, to, match: prefix|substring, paths: [dotted paths]}``; without ``paths`` it
applies to every string anywhere in the document. Rules apply in the order given; the count
is of string values changed, by each rule with paths and once by all rules without.
"""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.documents import path_values


class RewriteError(MigrationError):
    """A malformed rewrite rule."""


class Rule:
    __slots__ = ("old", "new", "prefix", "paths")

    def __init__(self, old, new, prefix, paths):
        self.old, self.new, self.prefix, self.paths = old, new, prefix, paths

    def apply(self, text):
        if self.prefix:
            return self.new + text[len(self.old):] if text.startswith(self.old) else text
        return text.replace(self.old, self.new) if self.old in text else text


def parse_rules(rules, where="rewrite"):
    """Rules from their option form; RewriteError names the first malformed one."""
    parsed = []
    for i, rule in enumerate(rules or []):
        name = f"{where}[{i}]"
        if not isinstance(rule, dict):
            raise RewriteError(f"{name} must be a mapping with from, to and match")
        unknown = set(rule) - {"from", "to", "match", "paths"}
        if unknown:
            raise RewriteError(f"{name} has unknown keys: {', '.join(sorted(unknown))}")
        old, new = rule.get("from"), rule.get("to")
        if not isinstance(old, str) or not old:
            raise RewriteError(f"{name}.from must be a non-empty string")
        if not isinstance(new, str):
            raise RewriteError(f"{name}.to must be a string")
        match = rule.get("match", "prefix")
        if match not in ("prefix", "substring"):
            raise RewriteError(f"{name}.match must be prefix or substring, not {match!r}")
        paths = rule.get("paths") or None
        if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths)):
            raise RewriteError(f"{name}.paths must be a list of dotted field paths")
        parsed.append(Rule(old, new, match == "prefix", tuple(paths) if paths else None))
    return parsed


class Rewriter:
    """Applies a list of rules to documents in place and counts rewritten values."""

    def __init__(self, rules):
        self.rules = list(rules)
        self.everywhere = [r for r in self.rules if r.paths is None]
        self.needles = tuple({r.old.encode("utf-8") for r in self.rules})

    def __bool__(self):
        return bool(self.rules)

    def may_change(self, raw):
        """False when no rule's text occurs in the encoded document ``raw``, so it can pass untouched."""
        return any(needle in raw for needle in self.needles)

    def _rewrite_string(self, text, rules):
        for rule in rules:
            text = rule.apply(text)
        return text

    def _walk(self, container, rules):
        count = 0
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            if isinstance(value, str):
                new = self._rewrite_string(value, rules)
                if new != value:
                    container[key] = new
                    count += 1
            elif isinstance(value, (dict, list)):
                count += self._walk(value, rules)
        return count

    def _at_path(self, doc, path, rule):
        head, _dot, last = path.rpartition(".")
        parents = path_values(doc, head) if head else [doc]
        count = 0
        for parent in parents:
            for holder in (parent if isinstance(parent, list) else [parent]):
                if not isinstance(holder, dict) or last not in holder:
                    continue
                value = holder[last]
                if isinstance(value, str):
                    new = rule.apply(value)
                    if new != value:
                        holder[last] = new
                        count += 1
                elif isinstance(value, list):
                    for i, item in enumerate(value):
                        if isinstance(item, str) and rule.apply(item) != item:
                            value[i] = rule.apply(item)
                            count += 1
        return count

    def apply(self, doc):
        """Rewrite ``doc`` in place; returns how many string values changed."""
        count = 0
        for rule in self.rules:
            if rule.paths is not None:
                for path in rule.paths:
                    count += self._at_path(doc, path, rule)
        if self.everywhere:
            count += self._walk(doc, self.everywhere)
        return count
