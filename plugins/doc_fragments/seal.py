# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of a bundle's seal (module_utils/bundle_seal.py): the sign option of an export, the verify option
of an import."""

from __future__ import annotations


class ModuleDocFragment:
    SIGN = r"""
options:
  sign:
    description:
      - Sign the bundle's seal (C(SHA256SUMS), every file's SHA-256, the bundle's own manifests included) with this
        key (C(SHA256SUMS.sig)).
    type: dict
    suboptions:
      algorithm:
        description: C(hmac-sha256) (a shared secret) or C(ed25519) (a private key in O(sign.key_file)).
        type: str
        choices: [hmac-sha256, ed25519]
        default: hmac-sha256
      key:
        description: The HMAC secret.
        type: str
      key_file:
        description: A file holding the HMAC secret, or the ed25519 private key (PEM, unencrypted).
        type: path
notes:
  - The seal lists every file's SHA-256 in C(sha256sum) format (C(cd <bundle> && sha256sum -c SHA256SUMS) checks
    it without this collection); the signature covers the seal's exact bytes, so a bundle changed anywhere after
    it was signed - a data file, a manifest, the seal itself, even with its digests recomputed - is refused by an
    import that checks with the key, before any write.
"""

    VERIFY = r"""
options:
  verify:
    description:
      - Require the bundle's seal to be signed with this key (the secret for C(hmac-sha256), the public key for
        C(ed25519)), and refuse, before any write, a bundle whose signature is missing or does not match.
      - Without it a bundle's seal (C(SHA256SUMS)), when it has one, is still checked against every file.
    type: dict
    suboptions:
      algorithm:
        description: C(hmac-sha256) or C(ed25519).
        type: str
        choices: [hmac-sha256, ed25519]
        default: hmac-sha256
      key:
        description: The HMAC secret.
        type: str
      key_file:
        description: A file holding the HMAC secret, or the ed25519 public key (PEM).
        type: path
"""
