# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the PostgreSQL connection options (module_utils/postgres/connection.py: connection_options)
and of a signing key (module_utils/signing.py: signing_options).

Keep it in step with those functions.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  host:
    description: Server host name or address.
    type: str
    default: localhost
  port:
    description: Server port.
    type: int
    default: 5432
  user:
    description: Role to log in as.
    type: str
    required: true
  password:
    description: Password of O(user) (SCRAM or md5). Never logged or returned.
    type: str
  database:
    description: Database to connect to.
    type: str
    required: true
  sslmode:
    description: libpq's C(sslmode).
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  sslrootcert:
    description: CA certificates to check the server's certificate against (with O(sslmode=verify-ca) or C(verify-full)).
    type: path
  connect_timeout:
    description: Seconds to wait for the server before failing with an "unreachable" error.
    type: int
    default: 10
requirements:
  - psycopg >= 3.1 (C(psycopg[binary]) brings its own libpq)
"""

    SIGNING = r"""
options: {}
notes:
  - A signature covers the manifest's exact bytes, and the manifest lists every file's SHA-256, so a bundle
    changed anywhere - a row file, an object, the catalogue, the manifest itself, even when its digests were
    recomputed - is refused by a check with the key, before any write.
  - C(hmac-sha256) signs and checks with one secret (C(key), or C(key_file) holding it); C(ed25519) signs with
    a private key (C(key_file), PEM, unencrypted) and checks with the public key (C(key_file), PEM), so whoever
    only checks cannot sign.
"""
