# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole-file writes readers never see half of, and a power cut does not lose once they returned: a temporary
sibling, fsync of the file, a rename, fsync of the directory (the rename itself is then on disk)."""

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
        fsync_directory(directory)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise FileWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc


def fsync_directory(directory):
    """Flush a directory's entries (a rename or a new file in it) to disk; a file system that cannot is left be."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and platforms) do not fsync directories
    finally:
        os.close(fd)


def durable_replace(tmp, path, synced=False):
    """``os.replace(tmp, path)`` that survives a power cut once it returns: the file's bytes flushed first (unless
    ``synced``: the writer did), the directory's new entry after."""
    if not synced:
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_directory(os.path.dirname(os.path.abspath(path)))
