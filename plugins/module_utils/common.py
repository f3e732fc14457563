# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors and result conventions shared by every module of the collection."""

from __future__ import annotations


class MigrationError(Exception):
    """A failure a module reports with ``fail_json``: the message names the object and the cause."""


def failure_summary(result, what):
    """``N object(s) <what> (key: reason; ...)`` from a transfer result's count and first failures."""
    first = "; ".join(f"{f['key']}: {f['reason']}" for f in result["failures"][:5])
    return f"{result['failed_count']} object(s) {what} ({first})"
