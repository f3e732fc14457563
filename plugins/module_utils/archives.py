# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack a bundle directory into one archive for carrying, and open a carried one again."""

from __future__ import annotations

import os
import tarfile
import tempfile
import zipfile

from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError


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
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise MigrationError(f"cannot write the archive {path}: {exc.strerror or exc}") from exc
    return path, md5_file(path)[0]


def open_bundle(src, scratch):
    """The bundle directory for ``src``: itself, or an archive extracted (safely) into ``scratch``."""
    if os.path.isdir(src):
        return src
    if not os.path.exists(src):
        raise MigrationError(f"the bundle {src} does not exist")
    try:
        if zipfile.is_zipfile(src):
            with zipfile.ZipFile(src) as archive:
                archive.extractall(scratch)
        else:
            with tarfile.open(src) as archive:
                archive.extractall(scratch, filter="data")
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise MigrationError(f"cannot read the bundle archive {src}: {exc}") from exc
    return scratch
