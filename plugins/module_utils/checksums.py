# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MD5 hashing, S3 multipart ETags and md5sum-compatible manifests.

Importable without Ansible. Files are read in fixed-size chunks into one reused
buffer, so memory stays flat however large the file is.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass, field

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map

CHUNK_SIZE = 1024 * 1024
MD5_HEX_LENGTH = 32
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class ManifestError(MigrationError):
    """A manifest could not be read, or a file could not be hashed."""


def new_md5():
    """An md5 object; md5 here is an integrity check, not a security control."""
    return hashlib.md5(usedforsecurity=False)


def md5_fileobj(fileobj, chunk_size=CHUNK_SIZE):
    """Return ``(hexdigest, size)`` of what is left to read in a binary file object."""
    digest = new_md5()
    size = 0
    readinto = getattr(fileobj, "readinto", None)
    if readinto is None:
        for chunk in iter(lambda: fileobj.read(chunk_size), b""):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    while True:
        count = readinto(buf)
        if not count:
            break
        digest.update(view[:count])
        size += count
    return digest.hexdigest(), size


def md5_file(path, chunk_size=CHUNK_SIZE):
    """Return ``(hexdigest, size)`` of a file, naming the file in any error."""
    try:
        with open(path, "rb", buffering=0) as handle:
            return md5_fileobj(handle, chunk_size)
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from exc


# --- S3 ETags ---------------------------------------------------------------

def normalize_etag(etag):
    """Strip the quotes S3 puts around ETags."""
    return (etag or "").strip().strip('"')


def is_multipart_etag(etag):
    """True for an ETag of the ``<md5 of part md5s>-<parts>`` form."""
    value = normalize_etag(etag)
    head, sep, count = value.partition("-")
    return bool(sep) and len(head) == MD5_HEX_LENGTH and count.isdigit()


def etag_part_count(etag):
    """Number of parts a multipart ETag says the object was uploaded in (1 for a plain md5)."""
    value = normalize_etag(etag)
    return int(value.rsplit("-", 1)[1]) if is_multipart_etag(value) else 1


def multipart_etag(part_digests):
    """ETag S3 gives a multipart upload: md5 of the concatenated binary part md5s, ``-N``."""
    part_digests = list(part_digests)
    if not part_digests:
        raise ValueError("a multipart ETag needs at least one part")
    combined = new_md5()
    for digest in part_digests:
        combined.update(digest)
    return f"{combined.hexdigest()}-{len(part_digests)}"


def multipart_etag_of_fileobj(fileobj, part_size, chunk_size=CHUNK_SIZE):
    """Multipart ETag of a stream uploaded in parts of ``part_size`` bytes (last part shorter)."""
    if part_size <= 0:
        raise ValueError("part_size must be positive")
    part_digests = []
    part = new_md5()
    in_part = 0
    while True:
        chunk = fileobj.read(min(chunk_size, part_size - in_part))
        if not chunk:
            break
        part.update(chunk)
        in_part += len(chunk)
        if in_part == part_size:
            part_digests.append(part.digest())
            part = new_md5()
            in_part = 0
    if in_part or not part_digests:
        part_digests.append(part.digest())
    return multipart_etag(part_digests)


def multipart_etag_of_file(path, part_size, chunk_size=CHUNK_SIZE):
    """Multipart ETag of a local file for a given part size, naming the file in any error."""
    try:
        with open(path, "rb") as handle:
            return multipart_etag_of_fileobj(handle, part_size, chunk_size)
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from exc


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


def parse_manifest_line(line, lineno=0, source="manifest"):
    """Parse one md5sum line into ``(md5_hex, name)``; binary-mode ``*`` is accepted."""
    text = line.rstrip("\n")
    escaped = text.startswith("\\")
    if escaped:
        text = text[1:]
    md5_hex, sep, rest = text.partition(" ")
    if (not sep or len(md5_hex) != MD5_HEX_LENGTH or not rest or rest[0] not in " *"
            or not all(c in "0123456789abcdefABCDEF" for c in md5_hex)):
        raise ManifestError(
            f"{source} line {lineno}: not an md5sum line (expected '<32 hex digits>  <path>'): {line.rstrip()[:120]!r}")
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


def read_manifest(path):
    """Read a manifest into ``{name: md5}``; malformed lines and repeated paths are errors."""
    entries = {}
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                md5_hex, name = parse_manifest_line(line, lineno, path)
                if name in entries:
                    raise ManifestError(f"{path} line {lineno}: '{name}' is listed twice")
                entries[name] = md5_hex
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror or exc}") from exc
    return entries


def read_text_if_exists(path):
    """Current text of a file, or None when it does not exist (for compare-then-write)."""
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from exc


def write_text_atomic(path, text, mode=0o644):
    """Write a file through a temporary sibling and a rename, so readers never see half of it."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    except OSError as exc:
        raise ManifestError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise ManifestError(f"cannot write {path}: {exc.strerror or exc}") from exc


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
