# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors and result conventions shared by every module of the collection."""

from __future__ import annotations


class MigrationError(Exception):
    """A failure a module reports with ``fail_json``: the message names the object and the cause."""


def first_items(items, limit=20):
    """The first ``limit`` items of a list, for results that stay readable."""
    return list(items[:limit])
