# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole-file writes readers never see half of: a temporary sibling, fsync, then a rename."""

from __future__ import annotations

import os
import tempfile

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError


class FileWriteError(MigrationError):
    """A file could not be read or written in place."""


def read_text_if_exists(path):
    """Current text of a file, or None when it does not exist (for compare-then-write)."""
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FileWriteError(f"cannot read {path}: {exc.strerror or exc}") from exc


def write_text_atomic(path, text, mode=0o644):
    """Write a file through a temporary sibling and a rename, so readers never see half of it."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    except OSError as exc:
        raise FileWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise FileWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
