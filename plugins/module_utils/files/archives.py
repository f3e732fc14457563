# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack a bundle directory into one archive for carrying, and open a carried one again."""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib

from ansible_collections.mlops.migration.plugins.module_utils.atomic import durable_replace
from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.paths import UnsafePath, confined


def pack(dest, archive):
    """Pack a bundle directory into ``<dest>.zip`` or ``<dest>.tar.gz``; returns (path, md5).

    Members are added in sorted order, so an unchanged tree packs to the same bytes.
    """
    path = dest.rstrip("/") + (".zip" if archive == "zip" else ".tar.gz")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        if archive == "zip":
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as out:
                for base, dirs, files in os.walk(dest):
                    dirs.sort()
                    for name in sorted(files) + ([] if files or dirs else [""]):
                        full = os.path.join(base, name)
                        out.write(full, os.path.relpath(full, dest) + ("/" if not name else ""))
        else:
            with tarfile.open(tmp, "w:gz") as out:
                out.add(dest, arcname=".")
        durable_replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise MigrationError(f"cannot write the archive {path}: {exc.strerror or exc}") from exc
    return path, md5_file(path)[0]


MAX_ENTRIES = 5_000_000  # members one archive may hold
RESERVE = 64 * 1024 * 1024  # bytes left free on the file system an archive is extracted to
CHUNK = 1024 * 1024


def packed(dest, archive, changed, check_mode=False):
    """``(path, md5, changed)`` of the bundle ``dest`` packed as ``archive`` (``zip`` or ``tar.gz``): packed
    again when the bundle ``changed`` or the archive is missing (not in check mode), else as it is."""
    path = dest + (".zip" if archive == "zip" else ".tar.gz")
    if not check_mode and (changed or not os.path.exists(path)):
        path, md5 = pack(dest, archive)
        return path, md5, True
    return path, md5_file(path)[0] if os.path.exists(path) else None, changed or not os.path.exists(path)


@contextlib.contextmanager
def opened_bundle(src, prefix="mlops-bundle-"):
    """``with opened_bundle(src) as root:`` a bundle directory, or an archive extracted beside itself.

    The archive is extracted into a temporary directory next to it (on its file system, not a
    tmpfs), bounded in members and bytes, and removed afterwards.
    """
    if os.path.isdir(src):
        yield src
        return
    if not os.path.exists(src):
        raise MigrationError(f"the bundle {src} does not exist")
    scratch = tempfile.mkdtemp(prefix=prefix, dir=os.path.dirname(os.path.abspath(src)))
    try:
        extract(src, scratch)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def extract(src, dest, max_entries=MAX_ENTRIES, max_bytes=None):
    """Extract a zip or tar(.gz) archive's files and directories into ``dest``, safely.

    Every member's path must stay inside ``dest``; links, devices and other special members are
    refused; at most ``max_entries`` members and ``max_bytes`` bytes (default: the free space of
    ``dest``'s file system less a reserve) are written, counted as they are written, so an
    archive whose headers lie is stopped too. Needs no tarfile extraction filter.
    """
    if max_bytes is None:
        stat = os.statvfs(dest)
        max_bytes = max(0, stat.f_bavail * stat.f_frsize - RESERVE)
    budget = {"entries": max_entries, "bytes": max_bytes}
    try:
        if zipfile.is_zipfile(src):
            with zipfile.ZipFile(src) as archive:
                for info in archive.infolist():
                    kind = "link" if (info.external_attr >> 16) & 0o170000 == 0o120000 else \
                        "dir" if info.is_dir() else "file"
                    _member(dest, info.filename, kind, lambda i=info: archive.open(i), budget, src)
        else:
            with tarfile.open(src, "r:*") as archive:
                for info in archive:
                    kind = "dir" if info.isdir() else "file" if info.isreg() else "link"
                    _member(dest, info.name, kind, lambda i=info: archive.extractfile(i), budget, src)
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error) as exc:
        raise MigrationError(f"cannot read the bundle archive {src}: {exc}") from exc


def _member(dest, name, kind, opener, budget, src):
    budget["entries"] -= 1
    if budget["entries"] < 0:
        raise MigrationError(f"the bundle archive {src} holds more than {MAX_ENTRIES:,} members; nothing is used")
    rel = name[2:] if name.startswith("./") else name
    if rel in ("", ".", "./"):
        return
    if kind == "link":
        raise MigrationError(f"the bundle archive {src} holds {name!r}, a link or special file: bundles hold only "
                             "files and directories")
    try:
        path = confined(dest, rel.rstrip("/") if kind == "dir" else rel, "archive member")
    except UnsafePath as exc:
        raise MigrationError(f"the bundle archive {src}: {exc}") from exc
    if kind == "dir":
        os.makedirs(path, exist_ok=True)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with opener() as data, open(path, "wb") as out:
        for chunk in iter(lambda: data.read(CHUNK), b""):
            budget["bytes"] -= len(chunk)
            if budget["bytes"] < 0:
                raise MigrationError(f"the bundle archive {src} unpacks to more than its file system has free "
                                     f"(stopped at {name!r}); nothing is used")
            out.write(chunk)
