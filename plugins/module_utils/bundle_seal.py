# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The seal of a bundle directory: every file's SHA-256, and optionally a signature over that list.

    <bundle>/SHA256SUMS       sha256sum-compatible: every file of the bundle (its own manifests included),
                              relative to the bundle's root - ``cd <bundle> && sha256sum -c SHA256SUMS``
    <bundle>/SHA256SUMS.sig   when signed: ``{"algorithm", "key_id", "signature"}`` over SHA256SUMS's bytes
                              (module_utils/signing.py: HMAC-SHA256 or ed25519)

The bundles' own manifests (MD5SUMS, manifest.json, export.json) catch accidents; the seal catches someone who
edits a file and its md5 too: a changed file fails its SHA-256, a changed SHA256SUMS fails the signature, and a
check with a key refuses a bundle that is not signed. ``check_seal`` runs before any write of an import.
"""

from __future__ import annotations

import json
import os

from ansible_collections.mlops.migration.plugins.module_utils import signing
from ansible_collections.mlops.migration.plugins.module_utils.atomic import read_text_if_exists, write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.checksums import ManifestError, sha256_file
from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map
from ansible_collections.mlops.migration.plugins.module_utils.files.manifest import (
    compare_manifests,
    iter_tree_files,
    read_manifest,
    render_manifest,
)

SEAL_FILE = "SHA256SUMS"
SEAL_SIGNATURE = "SHA256SUMS.sig"
SHA256_HEX_LENGTH = 64
NOT_SEALED = (SEAL_FILE, SEAL_SIGNATURE, "*.part", ".tmp-*", "*/.tmp-*")  # the seal itself, and work in progress


class BundleTampered(MigrationError):
    """A bundle whose files, manifests or signature do not match its seal."""


def bundle_files(root):
    """``{rel: path}`` of every file the seal covers."""
    return dict(iter_tree_files(root, exclude=NOT_SEALED))


def seal(root, sign=None, parallel=4, known=None, check_mode=False):
    """Write ``root``'s SHA256SUMS (and its signature with ``sign``: signing settings); returns whether either
    changed. ``known`` ({rel: sha256}) spares reading files whose digest the caller has."""
    known = known or {}
    files = bundle_files(root)
    digests = {rel: known[rel] for rel in files if rel in known}
    todo = [(rel, path) for rel, path in files.items() if rel not in digests]
    for (rel, _path), digest in bounded_map(lambda item: sha256_file(item[1]), todo, parallel):
        digests[rel] = digest
    text = render_manifest(digests)
    changed = read_text_if_exists(os.path.join(root, SEAL_FILE)) != text
    if changed and not check_mode:
        write_text_atomic(os.path.join(root, SEAL_FILE), text)
    if sign:
        record = json.dumps(signing.sign(text.encode("utf-8", "surrogateescape"), sign), sort_keys=True) + "\n"
        if read_text_if_exists(os.path.join(root, SEAL_SIGNATURE)) != record:
            changed = True
            if not check_mode:
                write_text_atomic(os.path.join(root, SEAL_SIGNATURE), record)
    return changed


def check_seal(root, verify=None, parallel=4, later=(), what="the bundle"):
    """Check ``root`` against its seal before anything is written from it: the signature (required with
    ``verify``), then that the bundle holds exactly the files SHA256SUMS lists, each with its SHA-256 - except
    those in ``later``, which the caller checks as it reads them. Returns ``{rel: sha256}`` as listed, or None for
    a bundle without a seal (one written before 0.2.0) when no key is given."""
    seal_path = os.path.join(root, SEAL_FILE)
    text = read_text_if_exists(seal_path)
    if text is None:
        if verify:
            raise BundleTampered(f"{what} {root} is not sealed ({SEAL_FILE} is missing), and a signature is "
                                 "required: refused before any write")
        return None
    if verify:
        record_text = read_text_if_exists(os.path.join(root, SEAL_SIGNATURE))
        try:
            record = json.loads(record_text) if record_text is not None else None
        except ValueError:
            record = None
        try:
            signing.verify(text.encode("utf-8", "surrogateescape"), record, verify, what=f"{what} {root}")
        except signing.SignatureError as exc:
            raise BundleTampered(str(exc)) from exc
    try:
        listed = read_manifest(seal_path, SHA256_HEX_LENGTH)
    except ManifestError as exc:
        raise BundleTampered(f"{what}'s {SEAL_FILE} is damaged ({exc}): refused before any write") from exc
    files = bundle_files(root)
    found = {rel: listed[rel] for rel in later if rel in files and rel in listed}
    todo = [(rel, path) for rel, path in files.items() if rel not in found]
    for (rel, _path), digest in bounded_map(lambda item: sha256_file(item[1]), todo, parallel):
        found[rel] = digest
    diff = compare_manifests(listed, found)
    if not diff.ok:
        raise BundleTampered(f"{what} {root} does not match its {SEAL_FILE} (changed after it was written): "
                             f"{diff.summary()}; refused before any write")
    return listed
