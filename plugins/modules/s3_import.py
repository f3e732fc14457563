#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_import
short_description: Upload a bundle made by s3_export into a bucket, refusing it unless every file matches its manifest
version_added: 0.1.0
description:
  - Takes a bundle directory or its zip/tar.gz archive, as M(mlops.migration.s3_export) writes
    them, and first verifies every file against the bundle's C(MD5SUMS). If any file is
    mismatched, missing or extra, nothing is uploaded and the task fails naming the files.
  - A file over 16 MiB is read once, not twice; its md5 is checked as its parts are uploaded, and these uploads
    are completed only after every such file matched and the smaller ones are in, so a mismatched large file
    still fails the import with no object of it visible at the target (RV(read_once)). In check mode every
    file is read and checked first.
  - A multipart upload an interrupted import left for a key is carried on; its parts whose size and md5 match
    are kept, not sent again (RV(bytes_resumed)).
  - Uploads carry Content-MD5 on every PUT and every multipart part, store the whole-object
    md5 as C(md5chksum) metadata, and each object's resulting ETag is checked.
  - Objects already at the target with the same md5 are skipped (O(overwrite=different)),
    so a re-run or an interrupted import uploads only what is missing.
  - A bundle's seal (C(SHA256SUMS), every file's SHA-256), when it has one, is checked before any write, and with
    O(verify) its signature is required - a file edited and its md5 recomputed, or the seal recomputed too, is refused.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.s3
  - mlops.migration.s3.target
  - mlops.migration.progress
  - mlops.migration.seal.verify
options:
  src:
    description:
      - Bundle directory, or its C(.zip) / C(.tar.gz) archive, on the host that runs the module.
      - With O(manifest), a plain directory tree whose files become the objects.
    type: path
    required: true
  manifest:
    description:
      - An md5sum manifest (as M(mlops.migration.md5_manifest) writes it) of the plain directory tree
        O(src), for trees that are not bundles, such as a ClearML fileserver's files moved by
        M(mlops.migration.file_sync). Every file is checked against it before anything is uploaded.
    type: path
  overwrite:
    description:
      - V(different) replaces objects whose md5 differs and skips identical ones; V(never)
        leaves any existing key alone; V(always) uploads everything again.
    type: str
    choices: [never, different, always]
    default: different
  create_bucket:
    description: Create the bucket when it does not exist.
    type: bool
    default: false
  parallel:
    description: Objects uploaded at once.
    type: int
    default: 8
attributes:
  check_mode:
    support: full
    description: Verifies the bundle and lists the keys that would be uploaded (RV(to_copy)); writes nothing.
  diff_mode:
    support: none
    description: The keys that would change are returned in check mode instead.
"""

EXAMPLES = r"""
- name: Import the carried bundle into the enclave's S3
  mlops.migration.s3_import:
    target:
      endpoint_url: https://s3.enclave.example.com
      access_key: "{{ s3_access_key }}"
      secret_key: "{{ s3_secret_key }}"
      bucket: clearml
      prefix: clearml-data/ProjectA/
    src: /incoming/projecta.zip
    create_bucket: true
"""

RETURN = r"""
kinds:
  description: Counts per kind of object (C(s3 objects)), each with the fields of RV(counts).
  returned: always
  type: dict
found:
  description: Files in the bundle (and directory markers).
  returned: always
  type: int
  sample: 1204
copied:
  description: Objects uploaded (in check mode, that would be).
  returned: always
  type: int
  sample: 1204
already_present:
  description: Objects already at the target with the same content.
  returned: always
  type: int
  sample: 0
verified:
  description: Uploads whose stored ETag was checked.
  returned: always
  type: int
  sample: 1204
verified_by:
  description: How uploads were verified, with counts (C(md5), C(multipart-etag)).
  returned: always
  type: dict
  sample: {md5: 1200, multipart-etag: 4}
failed_count:
  description: Objects that could not be uploaded.
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
  description: Bytes uploaded.
  returned: always
  type: int
  sample: 1048576
bytes_resumed:
  description: Of RV(bytes), those in parts an interrupted import had uploaded, checked by md5 and kept.
  returned: always
  type: int
  sample: 0
read_once:
  description: Files over 16 MiB not read before the upload, their md5 checked as they were uploaded.
  returned: always
  type: int
  sample: 4
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


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.bundle_seal import check_seal
from ansible_collections.mlops.migration.plugins.module_utils.common import run_module
from ansible_collections.mlops.migration.plugins.module_utils.files.archives import opened_bundle
from ansible_collections.mlops.migration.plugins.module_utils.s3.bundle import check_bundle, import_bundle, OBJECTS
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import location_options, open_bucket
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import TransferReport
from ansible_collections.mlops.migration.plugins.module_utils.signing import signing_options
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file

THRESHOLD = 16 * 1024 * 1024  # import_bundle's multipart threshold: larger files are uploaded in parts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type="dict", required=True, options=location_options()),
            src=dict(type="path", required=True),
            overwrite=dict(type="str", choices=["never", "different", "always"], default="different"),
            create_bucket=dict(type="bool", default=False),
            parallel=dict(type="int", default=8),
            manifest=dict(type="path"),
            verify=signing_options(),
            **progress_file.PROGRESS_OPTIONS,
        ),
        mutually_exclusive=[("manifest", "verify")],  # a plain tree has no seal
        supports_check_mode=True,
    )
    run_module(module, lambda: upload(module, module.params), "object(s) not imported")


def upload(module, params):
    with opened_bundle(params["src"], "mlops-s3-import-") as root:
        # a corrupt bundle is refused before any write; a file over the multipart threshold is checked as it is
        # uploaded instead (read once), its upload completed only once every such file matched
        files = check_bundle(root, manifest=params["manifest"], read_later=None if module.check_mode else THRESHOLD)
        sealed = None
        if not params["manifest"]:  # every file's SHA-256 too, and the signature with a key (the unread ones' later)
            sealed = check_seal(root, params["verify"], later={f"{OBJECTS}/{rel}" for rel in files.unread},
                                what="the S3 bundle")
        target, created = open_bucket(params["target"], params["parallel"] + 2, params["create_bucket"],
                                      module.check_mode)
        if created and module.check_mode:
            return dict(TransferReport(dry_run=True).as_dict(), changed=True,
                        msg=f"bucket {target.bucket} would be created")
        progress = progress_file.start(module, f"s3_import {params['src']} -> {target.bucket}/{target.prefix}")
        result = import_bundle(root, target, params["overwrite"], params["parallel"], module.check_mode, files=files,
                               manifest=params["manifest"], progress=progress, sealed=sealed)
        progress_file.finish(progress, result)
    result["changed"] = result["changed"] or created
    return result


if __name__ == "__main__":
    main()
