#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_sync
short_description: Move a file tree or a file list between hosts with rsync or tar over ssh, verified by md5
version_added: 0.1.0
description:
  - Runs on one host and pushes O(src) to O(dest_path) on O(dest_host), or pulls O(src) from
    O(src_host) into O(dest_path) on the host it runs on.
  - V(rsync) copies in archive mode (hierarchy, permissions, times, symlinks, owners when run as
    root) and only what differs, so a bulk pass while the source is live can be followed by a
    short delta pass (O(delete) and O(checksum)) during the downtime window.
  - V(tar) streams an explicit file list (O(files_from)) through C(tar | ssh tar) with no archive
    on either side, for single files such as models; files already present with the same size
    and mtime (or md5 with O(checksum)) are not sent again.
  - With O(verify), the md5 of every file of the transferred set is computed on both hosts
    after the transfer and compared; any difference fails the task, naming the paths.
  - With O(state=verified) nothing is transferred; the two sides are only compared.
  - Keys are passed by file path; host keys are checked unless O(host_key_checking=false).
author:
  - mlops.migration developers (@mlops-migration)
options:
  src:
    description:
      - Directory to copy the contents of (on O(src_host) when pulling). With O(files_from),
        the directory the listed paths are relative to.
    type: path
    required: true
  dest_path:
    description:
      - Directory that receives the contents of O(src) (on O(dest_host) when pushing).
      - Created with its parents when missing.
    type: path
    required: true
  dest_host:
    description:
      - Host to push to over ssh. Mutually exclusive with O(src_host).
      - With neither, both directories are on the host the module runs on.
    type: str
  dest_port:
    description: ssh port of O(dest_host).
    type: int
    default: 22
  dest_user:
    description: User to log in as on O(dest_host); the ssh default when omitted.
    type: str
  src_host:
    description: Host to pull from over ssh. Mutually exclusive with O(dest_host).
    type: str
  src_port:
    description: ssh port of O(src_host).
    type: int
    default: 22
  src_user:
    description: User to log in as on O(src_host); the ssh default when omitted.
    type: str
  ssh_private_key_file:
    description:
      - Private key (a path on the host the module runs on) to log in to the remote host with.
    type: path
  known_hosts:
    description:
      - known_hosts file to check the remote host key against; ssh's default when omitted.
    type: path
  host_key_checking:
    description:
      - Refuse hosts whose key is unknown or changed. Turn off only on networks you trust.
    type: bool
    default: true
  method:
    description:
      - V(rsync) for trees (and file lists); V(tar) for explicit file lists where rsync cannot
        be used on the remote side.
    type: str
    choices: [rsync, tar]
    default: rsync
  files_from:
    description:
      - Paths relative to O(src) to move instead of the whole tree; a list, or the path of a
        file holding one path a line (for example written from a database query).
      - Required with O(method=tar).
    type: raw
  delete:
    description:
      - Delete files at the destination that are not at the source (rsync only). Use it for
        the final delta pass, not the bulk copy.
    type: bool
    default: false
  checksum:
    description:
      - Compare file contents instead of size and mtime to decide what to send. Slower, exact.
    type: bool
    default: false
  hard_links:
    description: Preserve hard links (rsync C(-H)).
    type: bool
    default: false
  acls:
    description: Preserve ACLs (rsync C(-A)).
    type: bool
    default: false
  xattrs:
    description: Preserve extended attributes (rsync C(-X)).
    type: bool
    default: false
  partial:
    description:
      - Keep partially transferred files so an interrupted large file resumes where it stopped.
    type: bool
    default: true
  include:
    description: rsync include patterns, applied before O(exclude).
    type: list
    elements: str
    default: []
  exclude:
    description: rsync exclude patterns.
    type: list
    elements: str
    default: []
  bwlimit:
    description: Bandwidth limit in KiB/s (rsync only); 0 for none.
    type: int
    default: 0
  timeout:
    description: rsync I/O timeout in seconds; 0 for none.
    type: int
    default: 0
  verify:
    description:
      - After the transfer, compare the md5 of every file of the transferred set on both hosts.
    type: bool
    default: false
  state:
    description:
      - V(present) transfers. V(verified) transfers nothing and fails unless every file of the
        set is at the destination with the same md5.
    type: str
    choices: [present, verified]
    default: present
attributes:
  check_mode:
    support: full
    description: rsync runs with C(--dry-run); tar compares and sends nothing. Both list what would change.
  diff_mode:
    support: none
    description: Changes are listed in RV(items) instead.
requirements:
  - rsync (both hosts, for O(method=rsync)), tar, ssh client, GNU coreutils (md5sum, stat)
notes:
  - O(src) is always taken as a directory whose contents are copied, like rsync's C(src/).
seealso:
  - module: ansible.posix.synchronize
    description: General-purpose rsync wrapper run from the controller.
"""

EXAMPLES = r"""
- name: Bulk copy while the source is live (no deletes)
  mlops.migration.file_sync:
    src: /var/lib/mvi/data
    dest_path: /data/mvi
    dest_host: target.example.com
    dest_user: migrate
    ssh_private_key_file: /home/migrate/.ssh/id_ed25519

- name: Final delta in the downtime window, then verify every file by md5
  mlops.migration.file_sync:
    src: /var/lib/mvi/data
    dest_path: /data/mvi
    dest_host: target.example.com
    delete: true
    checksum: true
    verify: true

- name: Move single model files listed by a database query with tar
  mlops.migration.file_sync:
    src: /var/lib/mvi/models
    dest_path: /data/mvi/models
    dest_host: target.example.com
    method: tar
    files_from: "{{ model_files.stdout_lines }}"
    verify: true
"""

RETURN = r"""
kinds:
  description: Counts per kind of object (C(files)), each with the fields of RV(counts).
  returned: always
  type: dict
transferred:
  description: Number of files sent (or that would be sent in check mode).
  returned: always
  type: int
  sample: 120
bytes:
  description: Size of the files sent.
  returned: always
  type: int
  sample: 7340032
deleted:
  description: Number of files deleted at the destination.
  returned: always
  type: int
  sample: 0
items:
  description: The first 100 changes, as rsync itemizes them (C(>f+++++++++ path)), or C(send path) for tar.
  returned: always
  type: list
  elements: str
  sample: [">f+++++++++ models/mnist.pt"]
verified:
  description: Number of files whose md5 matched on both hosts.
  returned: when verify or state=verified
  type: int
  sample: 120
mismatched:
  description: Files whose md5 differs between the hosts.
  returned: when verify or state=verified
  type: list
  elements: str
  sample: []
missing:
  description: Files of the set absent at the destination.
  returned: when verify or state=verified
  type: list
  elements: str
  sample: []
seconds:
  description: Wall time.
  returned: always
  type: float
  sample: 3.2
counts:
  description:
    - This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
    - C(found), C(filtered_out), C(copied), C(present), C(verified), C(failed), C(bytes), C(seconds), C(failures) (each with
      C(object) and C(reason)), C(pending) (check mode), C(dry_run); V(null) where the module does not measure it.
  returned: always
  type: dict
"""

import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.common import run_module
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind
from ansible_collections.mlops.migration.plugins.module_utils.files.sync import (
    check_relative,
    file_counts,
    read_file_list,
    rsync,
    RsyncOptions,
    shared_connection,
    Side,
    SshTarget,
    SyncError,
    tar_copy,
    tar_plan,
    transfer_set,
    verify,
)

ITEM_LIMIT = 100


def sides(params):
    """The two ends from the options: at most one of them is reached over ssh."""
    def target(prefix):
        return SshTarget(host=params[f"{prefix}_host"], port=params[f"{prefix}_port"],
                         user=params[f"{prefix}_user"],
                         private_key_file=params["ssh_private_key_file"],
                         known_hosts=params["known_hosts"],
                         host_key_checking=params["host_key_checking"])

    src = Side(params["src"], target("src") if params["src_host"] else None)
    dest = Side(params["dest_path"], target("dest") if params["dest_host"] else None)
    return src, dest


def file_list(params):
    value = params["files_from"]
    if value is None:
        return None
    names = read_file_list(value) if isinstance(value, str) else [str(v) for v in value]
    return check_relative(names)


def run_rsync(module, src, dest, opts, result):
    outcome = rsync(src, dest, opts, dry_run=module.check_mode)
    result.update(changed=outcome.changed, transferred=outcome.stats["files_transferred"],
                  bytes=outcome.stats["bytes"], deleted=outcome.stats["deleted"],
                  items=[item.as_text() for item in outcome.items[:ITEM_LIMIT]],
                  bytes_sent=outcome.stats["bytes_sent"])


def run_tar(module, src, dest, names, result):
    to_send = tar_plan(src, dest, names, module.params["checksum"])
    if not module.check_mode:
        tar_copy(src, dest, to_send)
    sizes = [os.path.getsize(os.path.join(src.path, n)) for n in to_send] if not src.remote else []
    result.update(changed=bool(to_send), transferred=len(to_send), bytes=sum(sizes), deleted=0,
                  items=[f"send {name}" for name in to_send[:ITEM_LIMIT]])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest_path=dict(type="path", required=True),
            dest_host=dict(type="str"),
            dest_port=dict(type="int", default=22),
            dest_user=dict(type="str"),
            src_host=dict(type="str"),
            src_port=dict(type="int", default=22),
            src_user=dict(type="str"),
            ssh_private_key_file=dict(type="path"),
            known_hosts=dict(type="path"),
            host_key_checking=dict(type="bool", default=True),
            method=dict(type="str", choices=["rsync", "tar"], default="rsync"),
            files_from=dict(type="raw"),
            delete=dict(type="bool", default=False),
            checksum=dict(type="bool", default=False),
            hard_links=dict(type="bool", default=False),
            acls=dict(type="bool", default=False),
            xattrs=dict(type="bool", default=False),
            partial=dict(type="bool", default=True),
            include=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            bwlimit=dict(type="int", default=0),
            timeout=dict(type="int", default=0),
            verify=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "verified"], default="present"),
        ),
        mutually_exclusive=[("src_host", "dest_host")],
        required_if=[("method", "tar", ("files_from",))],
        supports_check_mode=True,
    )
    params = module.params
    started = time.monotonic()
    src, dest = sides(params)
    result = dict(changed=False, transferred=0, bytes=0, deleted=0, items=[])
    if params["method"] == "tar" and (params["delete"] or params["include"] or params["exclude"]):
        module.fail_json(msg="delete, include and exclude apply to method=rsync only")
    if params["ssh_private_key_file"] and not os.access(params["ssh_private_key_file"], os.R_OK):
        module.fail_json(msg=f"ssh_private_key_file {params['ssh_private_key_file']} cannot be read")
    if not src.remote and not os.path.isdir(src.path):
        module.fail_json(msg=f"src {src.path} is not a directory on this host")

    run_module(module, lambda: move(module, src, dest, result, started))


def move(module, src, dest, result, started):
    """Transfer and/or verify; the result with its counts."""
    try:
        with shared_connection(src.remote, dest.remote), \
                tempfile.TemporaryDirectory(prefix="mlops-file-sync-") as scratch:
            transfer(module, src, dest, scratch, result, started)
    except SyncError as exc:
        raise SyncError(str(exc), exc.rc, exc.stderr, exc.cmd, dict(result, rc=exc.rc, stderr=exc.stderr)) from exc
    result["seconds"] = round(time.monotonic() - started, 3)
    return with_counts(module, result)


def with_counts(module, result):
    """``result`` with its ``kinds``/``counts`` (module_utils/counts.py)."""
    result.update(by_kind({"files": file_counts(result, module.params["state"] == "verified", module.check_mode)},
                          result.get("seconds")))
    return result


def transfer(module, src, dest, scratch, result, started):
    """Transfer and/or verify as the options say, filling ``result``."""
    params = module.params
    names = file_list(params)
    list_path = None
    if names is not None and params["method"] == "rsync":
        list_path = os.path.join(scratch, "files-from")
        with open(list_path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write("".join(f"{name}\n" for name in names))
    opts = RsyncOptions(
        delete=params["delete"], checksum=params["checksum"], hard_links=params["hard_links"],
        acls=params["acls"], xattrs=params["xattrs"], partial=params["partial"],
        bwlimit=params["bwlimit"] or None, include=params["include"], exclude=params["exclude"],
        files_from=list_path, timeout=params["timeout"])

    if params["state"] == "present":
        if params["method"] == "rsync":
            run_rsync(module, src, dest, opts, result)
        else:
            run_tar(module, src, dest, names, result)

    if params["state"] == "verified" or (params["verify"] and not module.check_mode):
        checked = names if params["method"] == "tar" else transfer_set(src, opts)
        diff = verify(src, dest, checked)
        result.update(verified=len(diff.verified), mismatched=diff.mismatched, missing=diff.missing)
        if not diff.ok:
            result["seconds"] = round(time.monotonic() - started, 3)
            raise SyncError(f"{dest.label} does not match {src.label}: {diff.summary()}",
                            result=with_counts(module, result))


if __name__ == "__main__":
    main()
