#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_export
short_description: Export the objects under a bucket prefix to a bundle directory (and archive) with an md5 manifest
version_added: 0.1.0
description:
  - Writes every object under O(source.bucket)/O(source.prefix) to C(<dest>/objects/<key below the prefix>),
    keys kept byte for byte as paths (spaces, unicode, C(+), C(%), deep nesting, zero-byte
    objects); directory-marker keys (ending in C(/)) become directories and are recorded in
    C(<dest>/export.json) so M(mlops.migration.s3_import) recreates them.
  - Each object is checked while it streams against its ETag (multipart objects with their
    real part sizes) before it is renamed into place; C(<dest>/MD5SUMS) lists every file.
  - Objects already exported with the same ETag are not downloaded again, so an interrupted
    export resumes; files of objects no longer in the bucket are removed.
  - O(archive) packs the bundle into C(<dest>.zip) or C(<dest>.tar.gz) for carrying across
    an air gap and returns the archive's own md5 to check after every hop.
  - Every file's SHA-256 goes into the bundle's seal, C(SHA256SUMS) (with O(sign), signed in C(SHA256SUMS.sig)), which
    M(mlops.migration.s3_import) checks before any write.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.s3
  - mlops.migration.s3.source
  - mlops.migration.progress
  - mlops.migration.seal.sign
options:
  dest:
    description: Bundle directory on the host that runs the module.
    type: path
    required: true
  include:
    description: Glob patterns (on the key below the prefix); when given, only matching keys.
    type: list
    elements: str
    default: []
  exclude:
    description: Glob patterns of keys to leave out.
    type: list
    elements: str
    default: []
  keys:
    description:
      - Export only these keys (relative to O(source.prefix)), for example the objects a subset's documents
        name (M(mlops.migration.subset_files)); up to 1,000 are looked up one HEAD each, without listing the bucket.
      - A key the source does not have fails.
    type: list
    elements: str
  archive:
    description: Pack the bundle for carrying.
    type: str
    choices: [none, zip, tar.gz]
    default: none
  parallel:
    description: Objects downloaded at once.
    type: int
    default: 8
attributes:
  check_mode:
    support: full
    description: Lists the keys that would be downloaded (RV(to_copy)); writes nothing.
  diff_mode:
    support: none
    description: The keys that would change are returned in check mode instead.
"""

EXAMPLES = r"""
- name: Export a project's ClearML data for the air gap
  mlops.migration.s3_export:
    source:
      endpoint_url: https://minio.old.example.com
      access_key: "{{ s3_access_key }}"
      secret_key: "{{ s3_secret_key }}"
      bucket: clearml
      prefix: clearml-data/ProjectA/
    dest: /srv/export/projecta
    archive: zip
  register: exported

- name: Note the archive's md5 to check after every copy
  ansible.builtin.debug:
    msg: "{{ exported.archive }} md5 {{ exported.archive_md5 }}"
"""

RETURN = r"""
kinds:
  description: Counts per kind of object (C(s3 objects)), each with the fields of RV(counts).
  returned: always
  type: dict
found:
  description: Objects found under the prefix (after include/exclude).
  returned: always
  type: int
  sample: 1204
copied:
  description: Objects downloaded (in check mode, that would be).
  returned: always
  type: int
  sample: 12
already_present:
  description: Objects already exported with the same ETag, and directory markers.
  returned: always
  type: int
  sample: 1192
verified:
  description: Downloads checked against their source ETag.
  returned: always
  type: int
  sample: 12
failed_count:
  description: Objects that could not be exported.
  returned: always
  type: int
  sample: 0
failures:
  description: The first 20 failures with key and reason.
  returned: always
  type: list
  elements: dict
  sample: []
bytes:
  description: Bytes downloaded.
  returned: always
  type: int
  sample: 1048576
manifest:
  description: Path of the bundle's manifest.
  returned: always
  type: str
  sample: /srv/export/projecta/MD5SUMS
archive:
  description: Path of the archive, when O(archive) is not V(none).
  returned: when archive is not none
  type: str
  sample: /srv/export/projecta.zip
archive_md5:
  description: md5 of the archive file itself.
  returned: when archive is not none
  type: str
  sample: 9e107d9d372bb6826bd81d3542a419d6
to_copy:
  description: The first 100 paths (below the prefix) that would be transferred, in check mode.
  returned: always
  type: list
  elements: str
  sample: [models/mnist.pt]
seconds:
  description: Wall time.
  returned: always
  type: float
  sample: 20.1
counts:
  description:
    - This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
    - C(found), C(filtered_out), C(copied), C(present), C(verified), C(failed), C(bytes), C(seconds), C(failures) (each with
      C(object) and C(reason)), C(pending) (check mode), C(dry_run); V(null) where the module does not measure it.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.bundle_seal import seal
from ansible_collections.mlops.migration.plugins.module_utils.common import run_module
from ansible_collections.mlops.migration.plugins.module_utils.files.archives import packed
from ansible_collections.mlops.migration.plugins.module_utils.s3.bundle import export_bucket, MANIFEST
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import location_options, open_bucket
from ansible_collections.mlops.migration.plugins.module_utils.signing import signing_options
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="dict", required=True, options=location_options()),
            dest=dict(type="path", required=True),
            include=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            keys=dict(type="list", elements="str", no_log=False),
            archive=dict(type="str", choices=["none", "zip", "tar.gz"], default="none"),
            parallel=dict(type="int", default=8),
            sign=signing_options(),
            **progress_file.PROGRESS_OPTIONS,
        ),
        supports_check_mode=True,
    )
    run_module(module, lambda: export(module, module.params), "object(s) not exported")


def export(module, params):
    dest = params["dest"].rstrip("/")
    source, _created = open_bucket(params["source"], params["parallel"] + 2)
    progress = progress_file.start(module, f"s3_export {source.bucket}/{source.prefix} -> {dest}")
    result = export_bucket(source, dest, params["include"], params["exclude"], params["parallel"], module.check_mode,
                           progress=progress, keys=params["keys"])
    progress_file.finish(progress, result)
    result["manifest"] = os.path.join(dest, MANIFEST)
    if not result["failed_count"] and not module.check_mode:
        # every file's SHA-256, signed with a key: what an import checks before any write
        result["changed"] = seal(dest, params["sign"], params["parallel"]) or result["changed"]
    if result["failed_count"] or params["archive"] == "none":
        return result  # a bundle with failures is not packed
    archive, archive_md5, result["changed"] = packed(dest, params["archive"], result["changed"], module.check_mode)
    result.update(archive=archive, archive_md5=archive_md5)
    return result


if __name__ == "__main__":
    main()
