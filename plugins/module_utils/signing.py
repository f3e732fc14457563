# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed manifests: a bundle whose manifest was changed (or re-hashed) by someone without the key is refused.

Two schemes, both from the ``cryptography`` package Ansible itself needs:

- ``hmac-sha256``: a secret both sides hold (``key``);
- ``ed25519``: the exporter signs with a private key (``key_file``, PEM), the importer checks with the
  public key (``key_file``, PEM) - it cannot sign, so it cannot forge.

The signature covers the manifest's exact bytes; the manifest lists every other file's SHA-256, so a
changed file fails its digest and a changed manifest fails its signature. The signature file
(``manifest.sig``) is JSON: ``{"algorithm", "key_id", "signature"}`` (base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

SIGNATURE_FILE = "manifest.sig"
ALGORITHMS = ("hmac-sha256", "ed25519")


class SignatureError(MigrationError):
    """A signature that is missing, malformed or does not match: the bundle was altered, or the key is wrong."""


def signing_options():
    """Argument spec of a signing or checking key (the doc fragment mlops.migration.signing documents it)."""
    return dict(type="dict", no_log=False, options=dict(
        algorithm=dict(type="str", choices=list(ALGORITHMS), default="hmac-sha256"),
        key=dict(type="str", no_log=True),
        key_file=dict(type="path"),
    ), required_one_of=[("key", "key_file")], mutually_exclusive=[("key", "key_file")])


def _ed25519():
    try:
        from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives.asymmetric import ed25519  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise SignatureError("ed25519 signatures need the 'cryptography' package") from exc
    return serialization, ed25519


def _read_key_file(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise SignatureError(f"cannot read the key file {path}: {exc.strerror or exc}") from exc


def _hmac_key(settings):
    key = settings.get("key")
    if key is None:
        key = _read_key_file(settings["key_file"]).strip()
    return key.encode() if isinstance(key, str) else key


def _key_id(material):
    return hashlib.sha256(material).hexdigest()[:16]


def sign(data, settings):
    """The signature record of ``data`` (bytes) with the settings' key."""
    algorithm = settings.get("algorithm") or "hmac-sha256"
    if algorithm == "hmac-sha256":
        key = _hmac_key(settings)
        if not key:
            raise SignatureError("the HMAC key is empty")
        signature = hmac.new(key, data, hashlib.sha256).digest()
        key_id = _key_id(hmac.new(key, b"mlops.migration key id", hashlib.sha256).digest())
    elif algorithm == "ed25519":
        serialization, ed25519 = _ed25519()
        try:
            private = serialization.load_pem_private_key(_read_key_file(settings["key_file"]), password=None)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"{settings['key_file']} is not an unencrypted PEM private key: {exc}") from exc
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise SignatureError(f"{settings['key_file']} is not an ed25519 private key")
        signature = private.sign(data)
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        key_id = _key_id(public)
    else:
        raise SignatureError(f"unknown signature algorithm {algorithm!r} (choose {', '.join(ALGORITHMS)})")
    return {"algorithm": algorithm, "key_id": key_id, "signature": base64.b64encode(signature).decode("ascii")}


def verify(data, record, settings, what="the bundle"):
    """Raise SignatureError unless ``record`` is a valid signature of ``data`` under the settings' key."""
    if not isinstance(record, dict) or not record.get("signature"):
        raise SignatureError(f"{what} is not signed, and a signature is required")
    algorithm = settings.get("algorithm") or "hmac-sha256"
    if record.get("algorithm") != algorithm:
        raise SignatureError(f"{what} is signed with {record.get('algorithm')!r}, and {algorithm!r} was expected")
    try:
        signature = base64.b64decode(record["signature"], validate=True)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"the signature of {what} is not base64: refused") from exc
    if algorithm == "hmac-sha256":
        expected = hmac.new(_hmac_key(settings), data, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise SignatureError(f"the signature of {what} does not match its manifest: it was altered after "
                                 "signing, or the key differs; refused before any write")
        return True
    serialization, _ed = _ed25519()
    try:
        public = serialization.load_pem_public_key(_read_key_file(settings["key_file"]))
        public.verify(signature, data)
    except ValueError as exc:
        raise SignatureError(f"{settings['key_file']} is not a PEM public key: {exc}") from exc
    except Exception as exc:  # cryptography's InvalidSignature
        raise SignatureError(f"the ed25519 signature of {what} does not match its manifest: it was altered "
                             "after signing, or the key differs; refused before any write") from exc
    return True


def dumps(record):
    return json.dumps(record, indent=2, sort_keys=True) + "\n"
