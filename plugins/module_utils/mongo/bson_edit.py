# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Edit encoded BSON documents without decoding them.

A restore touches a few fields of each document: the ones a filter reads, the ones removed,
the strings rewritten. Decoding a whole document to Python objects and encoding it again costs
more than all of that, so here documents stay bytes: elements are scanned by their type and
length, containers are entered only when a path leads into them or their bytes contain a
rewrite rule's text, and a changed container is rebuilt from slices with new lengths.
Untouched elements are copied as they are, so every other value keeps its exact bytes.

Path semantics follow MongoDB's: a path through an array applies to each document in it, and a
numeric component selects one element.
"""

from __future__ import annotations

import struct

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

_INT32 = struct.Struct("<i")
_FIXED = {0x01: 8, 0x06: 0, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16,
          0x7F: 0, 0xFF: 0}
_PREFIXED = (0x02, 0x0D, 0x0E)  # string, code, symbol: int32 length then bytes
_SIZED = (0x03, 0x04, 0x0F)  # document, array, code with scope: int32 total size
STRING, DOCUMENT, ARRAY = 0x02, 0x03, 0x04
# Per element type: its fixed value size, or -1 (int32 length + bytes), -2 (int32 total size), -3 (other).
_SIZE = tuple(_FIXED.get(k, -1 if k in _PREFIXED else -2 if k in _SIZED else -3) for k in range(256))


class BsonError(MigrationError):
    """Bytes that are not a well-formed BSON document."""


def document_end(raw, start):
    """The offset of the terminating zero of the document at ``start``; BsonError when its size is impossible."""
    if start < 0 or start + 5 > len(raw):
        raise BsonError(f"a document at byte {start} is cut off")
    size = _INT32.unpack_from(raw, start)[0]
    if size < 5 or start + size > len(raw) or raw[start + size - 1] != 0:
        raise BsonError(f"the document at byte {start} claims {size} bytes, which its bytes do not hold")
    return start + size - 1


def _bad_element(pos, end, name_end, value_end):
    """Why the element at ``pos`` is malformed (it would run past its document or not move on), or None."""
    if name_end < 0 or name_end >= end:
        return f"the name of the element at byte {pos} runs past the end of its document"
    if value_end > end:
        return f"element at byte {pos} runs past the end of its document"
    if value_end <= name_end:
        return f"element at byte {pos} has a negative length"
    return None


def elements(raw, start=0):
    """Yield (type, element start, name end, value end) for each element of the document at ``start``."""
    end = document_end(raw, start)
    pos = start + 4
    while pos < end:
        kind = raw[pos]
        name_end = raw.find(b"\x00", pos + 1, end)
        value = name_end + 1
        size = _SIZE[kind]
        if size >= 0:
            value_end = value + size
        elif size == -1:
            value_end = value + 4 + _INT32.unpack_from(raw, value)[0]
        elif size == -2:
            value_end = value + _INT32.unpack_from(raw, value)[0]
        else:
            value_end = _other_end(raw, kind, value, pos)
        problem = _bad_element(pos, end, name_end, value_end)
        if problem:
            raise BsonError(problem)
        yield kind, pos, name_end, value_end
        pos = value_end


def _other_end(raw, kind, value, pos):
    """End of the value of the rarer element types."""
    if kind == 0x05:  # binary: length, subtype, bytes
        return value + 5 + _INT32.unpack_from(raw, value)[0]
    if kind == 0x0B:  # regex: two C strings (past the end when a terminator is missing)
        first = raw.find(b"\x00", value)
        second = raw.find(b"\x00", first + 1) if first >= 0 else -1
        return second + 1 if second >= 0 else len(raw) + 1
    if kind == 0x0C:  # DBPointer: string then 12-byte id
        return value + 4 + _INT32.unpack_from(raw, value)[0] + 12
    raise BsonError(f"unknown BSON element type 0x{kind:02x} at byte {pos}")


def document(parts):
    """A BSON document from encoded elements."""
    body = b"".join(parts)
    return _INT32.pack(len(body) + 5) + body + b"\x00"


def top_level(raw, names):
    """The encoded document made of just the top-level fields ``names`` (bytes) of ``raw``, in order."""
    wanted, parts = set(names), []
    for _kind, pos, name_end, value_end in elements(raw):
        if raw[pos + 1:name_end] in wanted:
            parts.append(raw[pos:value_end])
            if len(parts) == len(wanted):
                break
    return document(parts)


class Node:
    """What happens at one path: removed (``unset``), strings rewritten by ``rules``, and deeper paths."""

    __slots__ = ("unset", "rules", "children")

    def __init__(self):
        self.unset, self.rules, self.children = False, [], {}

    def child(self, name):
        return self.children.setdefault(name.encode("utf-8"), Node())


def plan(unset_fields=(), path_rules=()):
    """The tree of paths for fields to remove and (rule, path) rewrites; None when there is nothing."""
    root = Node()
    for path in unset_fields:
        node = root
        for part in path.split("."):
            node = node.child(part)
        node.unset = True
    for rule, path in path_rules:
        node = root
        for part in path.split("."):
            node = node.child(part)
        node.rules.append(rule)
    return root if root.children else None


def _string_element(raw, pos, name_end, value_end, rules):
    text = raw[name_end + 5:value_end - 1].decode("utf-8", "surrogatepass")
    new = text
    for rule in rules:
        new = rule.apply(new)
    if new == text:
        return None
    data = new.encode("utf-8", "surrogatepass")
    return raw[pos:name_end + 1] + _INT32.pack(len(data) + 1) + data + b"\x00"


class Editor:
    """Removes fields and rewrites strings in encoded documents; counts what it changed.

    ``tree`` comes from ``plan``; ``everywhere`` rules apply to every string whose bytes hold
    one of ``needles`` (their texts), and containers without a needle are not entered for them.
    """

    def __init__(self, tree, everywhere=(), needles=()):
        self.tree, self.everywhere, self.needles = tree, list(everywhere), tuple(needles)
        self.unset = self.rewritten = 0

    def _next_hit(self, raw, start, end):
        """Position of the first rule text in ``raw[start:end]``, or -1."""
        best = -1
        for needle in self.needles:
            found = raw.find(needle, start, end)
            if found != -1 and (best == -1 or found < best):
                best = found
        return best

    def edit(self, raw):
        """The edited bytes of ``raw``, or None when nothing changed."""
        return self._container(raw, 0, self.tree, False)

    def _container(self, raw, start, node, is_array):  # pylint: disable=too-many-branches
        """Edit the document (or array) whose bytes begin at ``start``; None when unchanged.

        Elements are only sized, not decoded, unless a path leads into them or the next
        occurrence of a rule's text lies inside them.
        """
        end = document_end(raw, start)
        children = node.children if node is not None else None
        hit = self._next_hit(raw, start + 4, end) if self.everywhere else -1
        each = is_array and node is not None  # the node applies to every element
        if not children and not each and hit == -1:
            return None
        parts, last, pos = [], start + 4, start + 4
        # The sizing of elements() written out inline: this loop runs for every element the
        # restore looks at, and the generator costs about 10% of the whole pipeline.
        sizes, unpack, find = _SIZE, _INT32.unpack_from, raw.find
        lengths = {len(name) for name in children} if children else ()
        pending = len(children) if children else 0  # paths not reached yet
        while pos < end:
            if not pending and hit == -1 and not each:
                break  # nothing further in this container can change
            kind = raw[pos]
            name_end = find(b"\x00", pos + 1, end)
            value = name_end + 1
            size = sizes[kind]
            if size >= 0:
                value_end = value + size
            elif size == -1:
                value_end = value + 4 + unpack(raw, value)[0]
            elif size == -2:
                value_end = value + unpack(raw, value)[0]
            else:
                value_end = _other_end(raw, kind, value, pos)
            if value_end > end or value_end <= name_end or name_end < 0:
                raise BsonError(_bad_element(pos, end, name_end, value_end))
            if hit != -1 and hit < value:
                hit = self._next_hit(raw, value, end)
            child = children.get(raw[pos + 1:name_end]) if name_end - pos - 1 in lengths else None
            if child is not None and not is_array:
                pending -= 1
            new = None
            if child is not None or each or hit != -1 and hit < value_end:
                if is_array:  # node's paths apply to each element; a numeric component picks one
                    if kind == STRING:
                        new = self._string(raw, pos, name_end, value_end,
                                           (node.rules if node is not None else []) + (child.rules if child else []))
                    elif kind == DOCUMENT:
                        new = self._nested(raw, pos, name_end, value_end, child or node, False)
                    elif kind == ARRAY:
                        new = self._nested(raw, pos, name_end, value_end, child, True)
                elif child is not None and child.unset:
                    self.unset += 1
                    new = b""
                elif kind == STRING:
                    new = self._string(raw, pos, name_end, value_end, child.rules if child is not None else [])
                elif kind in (DOCUMENT, ARRAY):
                    new = self._nested(raw, pos, name_end, value_end, child, kind == ARRAY)
            if new is not None:
                parts.append(raw[last:pos])
                parts.append(new)
                last = value_end
            pos = value_end
        if not parts:
            return None
        parts.append(raw[last:end])
        return document(parts)

    def _string(self, raw, pos, name_end, value_end, rules):
        if self.everywhere and self._next_hit(raw, name_end + 5, value_end - 1) != -1:
            rules = rules + self.everywhere
        if not rules:
            return None
        new = _string_element(raw, pos, name_end, value_end, rules)
        if new is not None:
            self.rewritten += 1
        return new

    def _nested(self, raw, pos, name_end, value_end, node, is_array):
        new = self._container(raw, name_end + 1, node, is_array)
        return None if new is None else raw[pos:name_end + 1] + new
