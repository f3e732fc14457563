# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the MongoDB connection options (module_utils/mongo/connection.py: connection_options).

Keep it in step with ``connection_options()``.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  uri:
    description:
    - MongoDB connection string (C(mongodb://) or C(mongodb+srv://)). When given, O(host) and O(port)
      are ignored; the other options below override what the URI says.
    - The authentication mechanism comes from the URI or O(auth_mechanism); nothing is assumed.
    type: str
  host:
    description: Server host name, when O(uri) is not given.
    type: str
    default: localhost
  port:
    description: Server port, when O(uri) is not given.
    type: int
    default: 27017
  username:
    description: User to authenticate as.
    type: str
  password:
    description: Password of O(username). Never logged or returned.
    type: str
  auth_source:
    description: Database that holds the user's credentials (C(admin) for most deployments).
    type: str
  auth_mechanism:
    description: Authentication mechanism, for example C(SCRAM-SHA-256).
    type: str
  tls:
    description: Connect with TLS.
    type: bool
  tls_ca_file:
    description: CA certificates to check the server's certificate against.
    type: path
  tls_certificate_key_file:
    description: Client certificate and key, for X.509 authentication.
    type: path
  tls_allow_invalid_certificates:
    description: Accept a server certificate that does not verify. Only for testing.
    type: bool
    default: false
  connect_timeout:
    description: Seconds to wait for the server before failing with an "unreachable" error.
    type: int
    default: 20
requirements:
- pymongo >= 4.6 on the host that runs the module
"""
