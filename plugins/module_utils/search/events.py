# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rewriting URLs inside search documents (ClearML's events) with the rules of module_utils/rewrite.py.

A rule with ``paths`` applies to the strings at those dotted paths; a rule without applies to
every string of the document but those under ``untouched`` fields (ClearML's console ``msg``: the
scope document keeps console lines byte for byte). Fields holding JSON text (``text_fields``:
ClearML's ``plot_str``) carry URLs in the middle of the text, so there a rule replaces its ``from``
wherever it occurs. Fields holding that text compressed (``compressed_fields``: ClearML's
``plot_data``, base64 of zlib, written when a plot is large) are decompressed, rewritten the same
way, and compressed again as the ClearML server does (``base64.encodebytes(zlib.compress(text, 1))``);
``plot_len`` follows the new length.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import zlib

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

CLEARML_TEXT_FIELDS = ("plot_str",)
CLEARML_COMPRESSED_FIELDS = ("plot_data",)
CLEARML_UNTOUCHED = ("msg",)


class EventRewriter:
    """``rewriter(doc) -> doc`` with the rules applied; ``rewritten`` counts the strings changed."""

    def __init__(self, rules, text_fields=CLEARML_TEXT_FIELDS, compressed_fields=CLEARML_COMPRESSED_FIELDS,
                 untouched=CLEARML_UNTOUCHED):
        self.everywhere = [rule for rule in rules if rule.paths is None]
        self.by_path = {}
        for rule in rules:
            for path in rule.paths or ():
                self.by_path.setdefault(path, []).append(rule)
        self.text_fields, self.compressed = set(text_fields), set(compressed_fields)
        self.untouched = set(untouched)
        self.rewritten = 0
        self.lock = threading.Lock()  # slices rewrite side by side
        self.needles = sorted({rule.old for rule in rules})
        # a "from" that JSON escapes (quotes, backslashes, control characters) cannot be looked for in the text
        self.hard = any(json.dumps(old, ensure_ascii=False)[1:-1] != old for old in self.needles)

    def __bool__(self):
        return bool(self.everywhere or self.by_path)

    def may_change(self, text):
        """Whether the rules can change a document whose canonical JSON is ``text`` (False only when no
        rule's ``from`` occurs in it and it holds no compressed field); a document it clears is left as it is."""
        if self.hard or any(f'"{name}":' in text for name in self.compressed):
            return True
        return any(old in text for old in self.needles)

    def __call__(self, doc):
        return self._value(doc, "") if self else doc

    def _value(self, value, path):
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                sub = f"{path}.{key}" if path else key
                if key in self.compressed and isinstance(item, str):
                    out[key] = self._compressed(item, sub)
                elif key in self.untouched and sub not in self.by_path:
                    out[key] = item
                else:
                    out[key] = self._value(item, sub)
            if out.get("plot_len") is not None and "plot_data" not in out and isinstance(out.get("plot_str"), str):
                out["plot_len"] = len(out["plot_str"])
            return out
        if isinstance(value, list):
            return [self._value(item, path) for item in value]
        if isinstance(value, str):
            return self._text(value, path, inside=path.rsplit(".", 1)[-1] in self.text_fields)
        return value

    def _text(self, text, path, inside=False):
        new = text
        for rule in self.by_path.get(path, []) + self.everywhere:
            new = new.replace(rule.old, rule.new) if inside else rule.apply(new)
        if new != text:
            with self.lock:
                self.rewritten += 1
        return new

    def _compressed(self, data, path):
        text = unpacked_text(data, path)
        new = self._text(text, path, inside=True)
        if new == text:
            return data  # unchanged: the stored bytes stay as they were
        return base64.encodebytes(zlib.compress(new.encode("utf-8"), level=1)).decode("ascii")


def unpacked_text(data, path):
    """The text of a compressed field (ClearML's ``plot_data``: base64 of zlib-compressed UTF-8)."""
    try:
        return zlib.decompress(base64.b64decode(data)).decode("utf-8")
    except (binascii.Error, zlib.error, UnicodeDecodeError) as exc:
        raise MigrationError(f"{path} is not base64 of zlib-compressed UTF-8 text: {exc}") from exc
