# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""md5sum-compatible manifests of files, trees and archive members, and their comparison.

Importable without Ansible. Files are read in fixed-size chunks into one reused buffer, so
memory stays flat however large the file is.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass, field

from ansible_collections.mlops.migration.plugins.module_utils.checksums import (
    CHUNK_SIZE,
    MD5_HEX_LENGTH,
    ManifestError,
    md5_file,
    md5_fileobj,
)
from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


# --- md5sum-compatible manifests -------------------------------------------

def _escape_name(name):
    """md5sum's escaping: a name holding a backslash or newline gets a leading backslash."""
    if "\\" not in name and "\n" not in name and "\r" not in name:
        return name, False
    return name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r"), True


def _unescape_name(name):
    out = []
    chars = iter(name)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        nxt = next(chars, "")
        mapped = {"\\": "\\", "n": "\n", "r": "\r"}.get(nxt)
        if mapped is None:
            raise ValueError(f"bad escape '\\{nxt}'")
        out.append(mapped)
    return "".join(out)


def format_manifest_line(md5_hex, name):
    """One line as ``md5sum`` prints it (text mode, two spaces)."""
    escaped, needs_prefix = _escape_name(name)
    prefix = "\\" if needs_prefix else ""
    return f"{prefix}{md5_hex}  {escaped}\n"


def parse_manifest_line(line, lineno=0, source="manifest", length=MD5_HEX_LENGTH):
    """Parse one md5sum line (or sha256sum line: ``length`` 64) into ``(hex digest, name)``; binary-mode ``*`` is
    accepted."""
    text = line.rstrip("\n")
    escaped = text.startswith("\\")
    if escaped:
        text = text[1:]
    md5_hex, sep, rest = text.partition(" ")
    if (not sep or len(md5_hex) != length or not rest or rest[0] not in " *"
            or not all(c in "0123456789abcdefABCDEF" for c in md5_hex)):
        tool = "an md5sum" if length == MD5_HEX_LENGTH else "a sha256sum"
        raise ManifestError(f"{source} line {lineno}: not {tool} line (expected '<{length} hex digits>  <path>'): "
                            f"{line.rstrip()[:120]!r}")
    name = rest[1:]
    if not name:
        raise ManifestError(f"{source} line {lineno}: the path is empty")
    if escaped:
        try:
            name = _unescape_name(name)
        except ValueError as exc:
            raise ManifestError(f"{source} line {lineno}: {exc}") from exc
    return md5_hex.lower(), name


def render_manifest(entries):
    """Manifest text for ``{name: md5}``, sorted by name so the same tree gives the same bytes."""
    return "".join(format_manifest_line(entries[name], name) for name in sorted(entries))


def read_manifest(path, length=MD5_HEX_LENGTH):
    """Read a manifest into ``{name: md5}`` (``{name: sha256}`` with ``length`` 64); malformed lines and repeated
    paths are errors."""
    entries = {}
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                md5_hex, name = parse_manifest_line(line, lineno, path, length)
                if name in entries:
                    raise ManifestError(f"{path} line {lineno}: '{name}' is listed twice")
                entries[name] = md5_hex
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror or exc}") from exc
    return entries


@dataclass
class TreeHash:
    """What hashing a file, tree or archive found."""

    entries: dict = field(default_factory=dict)
    bytes: int = 0
    skipped: list = field(default_factory=list)


def _excluded(name, exclude):
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude)


def iter_tree_files(root, exclude=(), skipped=None):
    """Yield ``(relative name, absolute path)`` for every regular file under ``root``.

    Names use ``/``; the walk is depth-first in name order, holding one sorted directory
    listing per level. Symlinks and special files are not followed; they go to ``skipped``.
    """
    stack = [("", iter(_sorted_entries(root)))]
    while stack:
        prefix, entries = stack[-1]
        item = next(entries, None)
        if item is None:
            stack.pop()
            continue
        name = prefix + item.name
        if _excluded(name, exclude):
            continue
        if item.is_symlink():
            if skipped is not None:
                skipped.append(name)
        elif item.is_dir(follow_symlinks=False):
            stack.append((name + "/", iter(_sorted_entries(item.path))))
        elif item.is_file(follow_symlinks=False):
            yield name, item.path
        elif skipped is not None:
            skipped.append(name)


def _sorted_entries(directory):
    try:
        with os.scandir(directory) as scan:
            return sorted(scan, key=lambda item: item.name)
    except OSError as exc:
        raise ManifestError(f"cannot list {directory}: {exc.strerror or exc}") from exc


def hash_tree(root, exclude=(), parallel=2, chunk_size=CHUNK_SIZE):
    """Hash every regular file under ``root`` with ``parallel`` threads (hashlib frees the GIL)."""
    result = TreeHash()
    files = iter_tree_files(root, exclude, result.skipped)
    for (name, _path), (md5_hex, size) in bounded_map(
            lambda item: md5_file(item[1], chunk_size), files, parallel):
        result.entries[name] = md5_hex
        result.bytes += size
    return result


def hash_file(path, chunk_size=CHUNK_SIZE):
    """Hash one file as a one-line manifest named by its base name."""
    md5_hex, size = md5_file(path, chunk_size)
    return TreeHash(entries={os.path.basename(path): md5_hex}, bytes=size)


def is_archive(path):
    """True when the name says zip or tar archive."""
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def hash_archive_members(path, exclude=(), chunk_size=CHUNK_SIZE):
    """Hash each regular member of a zip or tar archive, streamed, without extracting it."""
    import tarfile  # pylint: disable=import-outside-toplevel  # only archives pay for it (S3 sync starts faster)
    import zipfile  # pylint: disable=import-outside-toplevel

    result = TreeHash()
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    name = info.filename
                    if info.is_dir() or _excluded(name, exclude):
                        continue
                    if stat.S_ISLNK(info.external_attr >> 16):
                        result.skipped.append(name)
                        continue
                    with archive.open(info) as member:
                        md5_hex, size = md5_fileobj(member, chunk_size)
                    result.entries[name] = md5_hex
                    result.bytes += size
            return result
        with tarfile.open(path, mode="r|*") as archive:
            for info in archive:
                name = info.name[2:] if info.name.startswith("./") else info.name
                if info.isdir() or _excluded(name, exclude):
                    continue
                if not info.isfile():
                    result.skipped.append(name)
                    continue
                md5_hex, size = md5_fileobj(archive.extractfile(info), chunk_size)
                result.entries[name] = md5_hex
                result.bytes += size
        return result
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise ManifestError(f"cannot read archive {path}: {exc}") from exc


@dataclass
class ManifestDiff:
    """How an actual set of files differs from a manifest."""

    verified: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    extra: list = field(default_factory=list)

    @property
    def ok(self):
        return not (self.mismatched or self.missing or self.extra)

    def summary(self, limit=20):
        """One readable sentence naming the first bad paths of each kind."""
        parts = []
        for label, names in (("mismatched", self.mismatched), ("missing", self.missing),
                             ("extra", self.extra)):
            if names:
                shown = ", ".join(names[:limit])
                more = f" and {len(names) - limit} more" if len(names) > limit else ""
                parts.append(f"{len(names)} {label} ({shown}{more})")
        return "; ".join(parts) if parts else "all files match"


def compare_manifests(expected, actual):
    """Compare ``{name: md5}`` maps: what the manifest lists against what is there."""
    diff = ManifestDiff()
    for name in sorted(expected):
        if name not in actual:
            diff.missing.append(name)
        elif actual[name] != expected[name]:
            diff.mismatched.append(name)
        else:
            diff.verified.append(name)
    diff.extra = sorted(name for name in actual if name not in expected)
    return diff
