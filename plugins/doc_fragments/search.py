# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of a search server connection (module_utils/search/client.py: connection_options).

ansible-test reads doc fragments as string literals, so the suboptions are written out once per
option that holds a connection (SOURCE, TARGET, CHECKED); keep them in step with
``connection_options()``. A module with two servers extends SOURCE and TARGET.
"""

from __future__ import annotations


class ModuleDocFragment:
    # What every module talking to a search server shares.
    DOCUMENTATION = r"""
options: {}
notes:
  - Plain REST over HTTP/1.1, the same calls on Elasticsearch 7 and 8 and OpenSearch 2.
"""

    # The server read from.
    SOURCE = r"""
options:
  source:
    description: The search server to read.
    type: dict
    required: true
    suboptions:
      url:
        description: The server's URL, C(http://) or C(https://). A C(user:password@) in it is used as basic auth and never shown.
        type: str
        required: true
      username:
        description: Basic-auth user.
        type: str
      password:
        description: Basic-auth password. Never logged or returned.
        type: str
      api_key:
        description: An API key (sent as C(Authorization ApiKey)). Never logged or returned.
        type: str
      validate_certs:
        description: Check the server's TLS certificate.
        type: bool
        default: true
      ca_bundle:
        description: CA bundle to check the certificate against.
        type: path
      timeout:
        description: Seconds to wait for a reply.
        type: int
        default: 120
      ssh_tunnel:
        description:
          - Reach the server through an ssh bastion (paramiko on the host that runs the module) - for a server
            that listens only inside its host. A local forward on 127.0.0.1 to the host and port of C(url) as
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
"""

    # The server written to.
    TARGET = r"""
options:
  target:
    description: The search server to write.
    type: dict
    required: true
    suboptions:
      url:
        description: The server's URL, C(http://) or C(https://). A C(user:password@) in it is used as basic auth and never shown.
        type: str
        required: true
      username:
        description: Basic-auth user.
        type: str
      password:
        description: Basic-auth password. Never logged or returned.
        type: str
      api_key:
        description: An API key (sent as C(Authorization ApiKey)). Never logged or returned.
        type: str
      validate_certs:
        description: Check the server's TLS certificate.
        type: bool
        default: true
      ca_bundle:
        description: CA bundle to check the certificate against.
        type: path
      timeout:
        description: Seconds to wait for a reply.
        type: int
        default: 120
      ssh_tunnel:
        description:
          - Reach the server through an ssh bastion (paramiko on the host that runs the module) - for a server
            that listens only inside its host. A local forward on 127.0.0.1 to the host and port of C(url) as
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
"""

    # A server to check (preflight).
    CHECKED = r"""
options:
  search:
    description:
      - A search server. M(mlops.migration.preflight_check) checks it (for V(search)); M(mlops.migration.subset_files)
        reads the events of a subset's tasks from it.
    type: dict
    suboptions:
      url:
        description: The server's URL, C(http://) or C(https://). A C(user:password@) in it is used as basic auth and never shown.
        type: str
        required: true
      username:
        description: Basic-auth user.
        type: str
      password:
        description: Basic-auth password. Never logged or returned.
        type: str
      api_key:
        description: An API key (sent as C(Authorization ApiKey)). Never logged or returned.
        type: str
      validate_certs:
        description: Check the server's TLS certificate.
        type: bool
        default: true
      ca_bundle:
        description: CA bundle to check the certificate against.
        type: path
      timeout:
        description: Seconds to wait for a reply.
        type: int
        default: 120
      ssh_tunnel:
        description:
          - Reach the server through an ssh bastion (paramiko on the host that runs the module) - for a server
            that listens only inside its host. A local forward on 127.0.0.1 to the host and port of C(url) as
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
"""

    # Which documents move: a query, and the tasks that move.
    SELECTION = r"""
options:
  query:
    description: Only the documents matching this query (the Query DSL). All documents when omitted.
    type: dict
  task_ids:
    description: Only the documents whose O(task_field) is one of these (the tasks that move).
    type: list
    elements: str
  tasks_from:
    description:
      - Take O(task_ids) from a backup written by M(mlops.migration.mongo_backup) (its directory or zip,
        checked against its manifest first), as the C(_id) of every document of O(tasks_collection). The
        events that move are then those of the tasks the MongoDB step moves, with no second filter to
        drift from it.
    type: path
  tasks_collection:
    description: The collection of the O(tasks_from) backup whose documents are the tasks.
    type: str
    default: backend.task
  tasks_filter:
    description:
      - A MongoDB filter the O(tasks_from) task documents must match to count as moving, the same
        filter (the same plan value) the restore applies to O(tasks_collection) (for a ClearML server
        the statuses kept), so a task the restore leaves out keeps its events out too.
      - The filter language of M(mlops.migration.mongo_restore)'s C(collections.<name>.filter).
    type: dict
  task_field:
    description: The field O(task_ids) are matched against, and the documents are counted by per task.
    type: str
    default: task
"""

    # Index names at the target.
    RENAME = r"""
options:
  index_rename:
    description:
      - Substring replacements applied in order to each index name to make the target's, for example
        a ClearML company id that differs at the target.
    type: list
    elements: dict
    default: []
    suboptions:
      from:
        description: Text to replace.
        type: str
        required: true
      to:
        description: Its replacement.
        type: str
        required: true
"""

    # URLs rewritten inside the documents (ClearML's events).
    REWRITE = r"""
options:
  rewrite:
    description:
      - Rules rewriting string values on the way, as M(mlops.migration.mongo_restore) takes them
        (C(from), C(to), C(match) V(prefix) or V(substring), C(paths)), for debug-image and plot-image URLs
        that move with the files. Documents are compared and verified after the rewrite.
      - A rule without C(paths) applies to every string but those under O(untouched_fields).
    type: list
    elements: dict
    default: []
  text_fields:
    description: Fields holding JSON text with URLs inside (ClearML's plot C(plot_str)); a rule replaces its C(from) anywhere in them.
    type: list
    elements: str
    default: [plot_str]
  compressed_fields:
    description:
      - Fields holding such text zlib-compressed and base64-encoded (ClearML's C(plot_data), written for
        large plots); they are decompressed, rewritten and compressed again as the ClearML server does.
    type: list
    elements: str
    default: [plot_data]
  untouched_fields:
    description: Fields rules without C(paths) leave alone (ClearML's console C(msg), kept byte for byte).
    type: list
    elements: str
    default: [msg]
"""
