# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rewrite rules for string values in documents: artifact, model and debug-image URLs that move
from the source's file server or S3 to the target's.

A rule is ``{from, to, match: prefix|substring, paths: [dotted paths]}``; without ``paths`` it
applies to every string anywhere in the document. A string gets the rules whose paths lead
to it, then the rules without paths; it counts once however many rules changed it. The
documents are edited as encoded bytes by module_utils/mongo/bson_edit.py.
"""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError


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
    """A list of rules sorted for module_utils/mongo/bson_edit.py: rules with paths, and rules for every string."""

    def __init__(self, rules):
        self.rules = list(rules)
        self.everywhere = [r for r in self.rules if r.paths is None]
        self.path_rules = [(r, path) for r in self.rules if r.paths is not None for path in r.paths]
        self.needles = tuple({r.old.encode("utf-8") for r in self.everywhere})

    def __bool__(self):
        return bool(self.rules)

    def may_change(self, raw):
        """False when no every-string rule's text occurs in the encoded document ``raw``."""
        return any(needle in raw for needle in self.needles)
