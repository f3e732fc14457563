# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decoded BSON documents: dotted paths and MongoDB-style filters evaluated locally.

A restore filters documents read from backup files, so the query language is evaluated
here rather than by a server. The subset covers what migrations filter on: equality
(an array field matches when any element does), ``$eq $ne $in $nin $exists $gt $gte $lt
$lte``, and ``$and $or $nor``. Anything else is refused when the filter is parsed, before
any document is read.
"""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

_MISSING = object()
_COMPARE = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}
_FIELD_OPERATORS = {"$eq", "$ne", "$in", "$nin", "$exists"} | set(_COMPARE)
_LOGICAL = {"$and", "$or", "$nor"}


class FilterError(MigrationError):
    """A filter uses something this evaluator does not support."""


def path_values(doc, path):
    """Values at a dotted ``path``, descending into arrays as MongoDB does; [] when absent."""
    values = [doc]
    for part in path.split("."):
        found = []
        for value in values:
            if isinstance(value, dict):
                if part in value:
                    found.append(value[part])
            elif isinstance(value, list):
                if part.isdigit() and int(part) < len(value):
                    found.append(value[int(part)])
                else:
                    found.extend(v[part] for v in value if isinstance(v, dict) and part in v)
        values = found
    return values


def filter_fields(query):
    """The top-level field names a (checked) filter reads."""
    fields = set()
    for key, cond in query.items():
        if key in _LOGICAL:
            for sub in cond:
                fields |= filter_fields(sub)
        else:
            fields.add(key.split(".", 1)[0])
    return fields


def check_filter(query, where="filter"):
    """Raise FilterError naming the first unsupported part of ``query``."""
    if not isinstance(query, dict):
        raise FilterError(f"{where} must be a mapping, got {type(query).__name__}")
    for key, cond in query.items():
        if key in _LOGICAL:
            if not isinstance(cond, list) or not cond:
                raise FilterError(f"{where}: {key} needs a non-empty list of filters")
            for i, sub in enumerate(cond):
                check_filter(sub, f"{where}.{key}[{i}]")
        elif key.startswith("$"):
            raise FilterError(f"{where}: operator {key} is not supported (supported: {', '.join(sorted(_LOGICAL))})")
        elif _is_operator_dict(cond):
            for op, arg in cond.items():
                if op not in _FIELD_OPERATORS:
                    raise FilterError(f"{where}.{key}: operator {op} is not supported "
                                      f"(supported: {', '.join(sorted(_FIELD_OPERATORS))})")
                if op in ("$in", "$nin") and not isinstance(arg, list):
                    raise FilterError(f"{where}.{key}: {op} needs a list")


def _is_operator_dict(cond):
    return isinstance(cond, dict) and bool(cond) and all(k.startswith("$") for k in cond)


def _same(value, wanted):
    # BSON keeps booleans and numbers apart: true does not match 1
    return value == wanted and isinstance(value, bool) == isinstance(wanted, bool)


def _equal(values, wanted):
    for value in values:
        if _same(value, wanted) or (isinstance(value, list) and any(_same(v, wanted) for v in value)):
            return True
    return not values and wanted is None


def _compare(values, op, wanted):
    for value in values:
        for item in (value if isinstance(value, list) else [value]):
            try:
                if not isinstance(item, bool) and _COMPARE[op](item, wanted):
                    return True
            except TypeError:  # different BSON types never match a comparison
                continue
    return False


def _field_matches(values, cond):
    if not _is_operator_dict(cond):
        return _equal(values, cond)
    for op, arg in cond.items():
        if op == "$eq":
            ok = _equal(values, arg)
        elif op == "$ne":
            ok = not _equal(values, arg)
        elif op == "$in":
            ok = any(_equal(values, a) for a in arg)
        elif op == "$nin":
            ok = not any(_equal(values, a) for a in arg)
        elif op == "$exists":
            ok = bool(values) == bool(arg)
        else:
            ok = _compare(values, op, arg)
        if not ok:
            return False
    return True


def matches(doc, query):
    """Whether ``doc`` matches ``query`` (checked beforehand with check_filter)."""
    for key, cond in query.items():
        if key == "$and":
            ok = all(matches(doc, sub) for sub in cond)
        elif key == "$or":
            ok = any(matches(doc, sub) for sub in cond)
        elif key == "$nor":
            ok = not any(matches(doc, sub) for sub in cond)
        else:
            ok = _field_matches(path_values(doc, key), cond)
        if not ok:
            return False
    return True
