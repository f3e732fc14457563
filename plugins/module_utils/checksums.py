# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MD5 (and SHA-256) hashing and S3 multipart ETag math.

Importable without Ansible. Files are read in fixed-size chunks into one reused buffer, so
memory stays flat however large the file is.
"""

from __future__ import annotations

import hashlib

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

CHUNK_SIZE = 1024 * 1024
MD5_HEX_LENGTH = 32


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


def sha256_file(path, chunk_size=CHUNK_SIZE):
    """The SHA-256 hex digest of a file (what the ClearML SDK records of an artifact)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(chunk_size), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


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
