#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: md5_manifest
short_description: Create or verify an md5sum-compatible manifest of a file, a directory tree or an archive
version_added: 0.1.0
description:
  - Hashes a file, every regular file under a directory, or every member of a zip or tar
    archive, and writes the result as a manifest that C(md5sum -c) accepts.
  - With O(state=verified) it hashes again and fails, naming every path that is mismatched,
    missing or extra, when what is on disk differs from the manifest.
  - Files are read in 1 MiB chunks into one reused buffer, so memory stays flat on
    multi-GB files; several files are hashed at once with O(parallel) threads.
  - Symlinks and special files are not followed or hashed; they are returned in RV(skipped).
author:
  - mlops.migration developers (@mlops-migration)
options:
  path:
    description:
      - The file, directory or archive to hash.
    type: path
    required: true
  manifest:
    description:
      - Where the manifest is written (O(state=present)) or read (O(state=verified)).
      - Defaults to O(path) with C(.md5) appended, beside the tree rather than inside it.
      - A manifest inside the tree is never listed in itself.
    type: path
  state:
    description:
      - V(present) writes the manifest when it is missing or differs from what is on disk.
      - V(verified) writes nothing and fails unless every path in the manifest is present
        with the same md5 and nothing else is there.
    type: str
    choices: [present, verified]
    default: present
  archive_contents:
    description:
      - When O(path) is a zip or tar archive (optionally gzip, bzip2 or xz compressed), hash
        its members as they would be once extracted, streamed without extracting them.
      - A manifest made of a directory then verifies an archive of that directory, which is
        how a bundle is checked after every hop across an air gap.
      - When false, an archive is hashed as one file.
    type: bool
    default: false
  exclude:
    description:
      - Glob patterns (matched against the path relative to O(path)) of files and
        directories to leave out.
    type: list
    elements: str
    default: []
  parallel:
    description:
      - How many files are hashed at once. Hashing releases the GIL, so two threads use
        two cores.
    type: int
    default: 2
attributes:
  check_mode:
    support: full
    description: In check mode the manifest is computed and compared, never written.
  diff_mode:
    support: full
    description: Shows the manifest lines that would be added and removed.
notes:
  - The manifest format is the one C(md5sum) prints, so C(cd PATH && md5sum -c MANIFEST)
    verifies a directory without this collection.
seealso:
  - name: md5sum
    description: The GNU coreutils tool whose format the manifest follows.
    link: https://www.gnu.org/software/coreutils/manual/html_node/md5sum-invocation.html
"""

EXAMPLES = r"""
- name: Write a manifest of an exported bucket before carrying it
  mlops.migration.md5_manifest:
    path: /srv/export/clearml-data
    manifest: /srv/export/clearml-data.md5

- name: Verify the zipped bundle on the far side of the air gap against the same manifest
  mlops.migration.md5_manifest:
    path: /incoming/clearml-data.zip
    manifest: /incoming/clearml-data.md5
    archive_contents: true
    state: verified

- name: Verify a model file after copying it
  mlops.migration.md5_manifest:
    path: /models/mnist.pt
    state: verified
"""

RETURN = r"""
manifest:
  description: Path of the manifest written or read.
  returned: always
  type: str
  sample: /srv/export/clearml-data.md5
files:
  description: Number of files hashed.
  returned: always
  type: int
  sample: 1204
bytes:
  description: Total bytes hashed.
  returned: always
  type: int
  sample: 5368709120
seconds:
  description: Wall time spent hashing and comparing.
  returned: always
  type: float
  sample: 7.42
skipped:
  description: Symlinks and special files that were not hashed.
  returned: always
  type: list
  elements: str
  sample: [latest]
verified:
  description: Number of paths whose md5 matched the manifest.
  returned: when state=verified
  type: int
  sample: 1204
mismatched:
  description: Every path whose md5 differs from the manifest.
  returned: when state=verified
  type: list
  elements: str
  sample: [models/mnist.pt]
missing:
  description: Every path the manifest lists that is not there.
  returned: when state=verified
  type: list
  elements: str
  sample: []
extra:
  description: Every path that is there but not in the manifest.
  returned: when state=verified
  type: list
  elements: str
  sample: []
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.atomic import read_text_if_exists, write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError, run_module
from ansible_collections.mlops.migration.plugins.module_utils.files.manifest import (
    compare_manifests,
    hash_archive_members,
    hash_file,
    hash_tree,
    is_archive,
    ManifestError,
    read_manifest,
    render_manifest,
)


def hash_path(params, manifest):
    """Hash what ``path`` names, leaving out a manifest that lives inside the tree."""
    path = params["path"]
    exclude = list(params["exclude"])
    if os.path.isdir(path):
        inside = os.path.relpath(manifest, path)
        if not inside.startswith(".."):
            exclude.append(inside.replace(os.sep, "/"))
        return hash_tree(path, exclude, params["parallel"])
    if params["archive_contents"]:
        if not is_archive(path):
            raise ManifestError(f"{path} is not a zip or tar archive, but archive_contents is true")
        return hash_archive_members(path, exclude)
    return hash_file(path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            manifest=dict(type="path"),
            state=dict(type="str", choices=["present", "verified"], default="present"),
            archive_contents=dict(type="bool", default=False),
            exclude=dict(type="list", elements="str", default=[]),
            parallel=dict(type="int", default=2),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"].rstrip("/") or "/"
    params["path"] = path
    manifest = params["manifest"] or path + ".md5"
    if not os.path.exists(path):
        module.fail_json(msg=f"path {path} does not exist", manifest=manifest)
    if params["parallel"] < 1:
        module.fail_json(msg=f"parallel must be at least 1, got {params['parallel']}")

    run_module(module, lambda: manifest_result(module, params, path, manifest))


def manifest_result(module, params, path, manifest):
    """Hash ``path``; verify it against ``manifest``, or write the manifest when it changes."""
    started = time.monotonic()
    try:
        expected = read_manifest(manifest) if params["state"] == "verified" else None
        found = hash_path(params, manifest)
    except MigrationError as exc:
        raise MigrationError(str(exc), dict(manifest=manifest)) from exc
    result = dict(changed=False, manifest=manifest, files=len(found.entries),
                  bytes=found.bytes, skipped=found.skipped)
    if expected is not None:
        diff = compare_manifests(expected, found.entries)
        result.update(verified=len(diff.verified), mismatched=diff.mismatched,
                      missing=diff.missing, extra=diff.extra,
                      seconds=round(time.monotonic() - started, 3))
        if not diff.ok:
            raise MigrationError(f"{path} does not match {manifest}: {diff.summary()}", result)
        return result
    text = render_manifest(found.entries)
    try:
        before = read_text_if_exists(manifest)
        result["changed"] = before != text
        if result["changed"] and module._diff:
            result["diff"] = dict(before=before or "", after=text,
                                  before_header=manifest, after_header=manifest)
        if result["changed"] and not module.check_mode:
            write_text_atomic(manifest, text)
    except MigrationError as exc:
        raise MigrationError(str(exc), dict(manifest=manifest)) from exc
    return result


if __name__ == "__main__":
    main()
