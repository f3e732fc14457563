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
  ssh_tunnel:
    description:
      - Reach the server through an ssh bastion (paramiko on the host that runs the module) - for a server
        that listens only inside its host. A local forward on 127.0.0.1 to the host and port of O(uri) (one host) or O(host) and O(port) as
        the bastion sees them is opened for the module's run and closed after it.
      - The bastion's host key must be in C(known_hosts); an unknown or changed key is refused.
    type: dict
    suboptions:
      host:
        description: The bastion's address.
        type: str
        required: true
      port:
        description: Its ssh port.
        type: int
        default: 22
      user:
        description: The user logged in as.
        type: str
        required: true
      key_file:
        description: The private key file logged in with.
        type: path
        required: true
      known_hosts:
        description: A known_hosts file holding the bastion's host key.
        type: path
        required: true
      timeout:
        description: Seconds to wait for the bastion.
        type: int
        default: 20
requirements:
- pymongo >= 4.6 on the host that runs the module
- paramiko, for O(ssh_tunnel)
"""

    # The collections read (mongo_backup, subset_files).
    COLLECTIONS = r"""
options:
  collections:
    description:
      - Collections to read, in order (to back up, or to work a subset's files out from). A collection referenced
        by O(collections[].query_from) must come before the one that references it.
      - A user or project subset's are what the filter P(mlops.migration.scope_collections#filter) gives.
    type: list
    elements: dict
    default: []
    suboptions:
      db:
        description: Database of the collection.
        type: str
        required: true
      name:
        description: Collection name.
        type: str
        required: true
      query:
        description:
          - Filter the documents. Extended JSON values such as C($oid) and C($date)
            mappings are understood.
        type: dict
      query_from:
        description:
          - Also require O(collections[].query_from.field) to be one of the C(_id)s read from
            another collection of the same database (listed earlier).
        type: dict
        suboptions:
          collection:
            description: The earlier collection whose C(_id)s to follow.
            type: str
            required: true
          field:
            description: Field of this collection that holds those ids, for example C(project) or C(task).
            type: str
            required: true
"""
