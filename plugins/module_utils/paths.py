# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths that come from outside (artifact names, bundle manifests, collection names) kept inside a root."""

from __future__ import annotations

import os

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError


class UnsafePath(MigrationError):
    """A relative path that would leave the directory it is meant for."""


def confined(root, relative, what="path"):
    """``root``/``relative``, or UnsafePath for an absolute path, a ``..`` part, a NUL, or a link out of ``root``."""
    text = str(relative)
    if not text or "\0" in text or os.path.isabs(text) or text.startswith("\\"):
        raise UnsafePath(f"{what} {text!r} is not a plain relative path")
    parts = text.replace("\\", "/").split("/")
    if any(part == ".." for part in parts):
        raise UnsafePath(f"{what} {text!r} climbs out of its directory ('..')")
    path = os.path.join(root, text)
    base = os.path.realpath(root)
    resolved = os.path.realpath(path)
    if resolved != base and not resolved.startswith(base.rstrip(os.sep) + os.sep):
        raise UnsafePath(f"{what} {text!r} resolves outside {root}")
    return path
