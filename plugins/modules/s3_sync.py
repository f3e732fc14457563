#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_sync
short_description: Copy a bucket (or a prefix of it) to another S3 endpoint, every object verified by md5
version_added: 0.1.0
description:
  - Streams objects from O(source) to O(target) without staging them on disk, mapping keys
    under O(source.prefix) to the same keys under O(target.prefix).
  - Every copied object is verified end to end. The bytes read are checked against the
    source ETag; for a multipart source that is the md5 of its part md5s, computed with the
    part sizes the source reports for the object, so multipart objects whose md5 is unknown
    are verified too. Every PUT and uploaded part carries Content-MD5, and the target's
    resulting ETag is checked. The whole-object md5, when known, is stored as C(md5chksum)
    metadata (as rclone does) and the source ETag as C(mlops-source-etag).
  - Objects already at the target with the same content are skipped without reading them,
    so a re-run, or a run after a killed one, copies only what is missing or different.
  - Both listings are streamed in key order and merged; memory does not grow with the bucket.
  - With O(key_after) and O(key_upto) only the keys of that range are listed and handled, at both ends; N hosts
    given the N ranges of M(mlops.migration.s3_key_ranges) list the bucket once between them.
  - With O(shard_count) greater than 1, only keys whose hash falls in O(shard_index) are
    handled (each host still lists the whole bucket; key ranges do not).
  - With O(processes) greater than 1 the run's keys are split again into key ranges between that many worker
    processes, each copying O(parallel) objects at once, so a copy of many small objects uses every core; their
    counts make one progress file and one result.
  - A multipart upload that a killed run left for a key is carried on; the parts it holds whose size and md5 are
    those of the source's bytes for that part are kept, the others sent (see RV(bytes_resumed)).
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.s3
  - mlops.migration.s3.source
  - mlops.migration.s3.target
  - mlops.migration.progress
options:
  create_bucket:
    description: Create the target bucket when it does not exist.
    type: bool
    default: false
  delete_extra:
    description:
      - Delete target objects under O(target.prefix) that the source does not have.
      - Not with O(keys).
    type: bool
    default: false
  keys:
    description:
      - Copy only these keys (relative to O(source.prefix) and O(target.prefix)), for example the objects the
        documents of a user or project subset name (M(mlops.migration.subset_files)).
      - Up to 1,000 keys, each is looked up with one HEAD request at both ends and the bucket is not listed;
        more are found by listing under their common prefix. A key the source does not have fails.
    type: list
    elements: str
  parallel:
    description: Objects copied at once.
    type: int
    default: 8
  key_after:
    description:
      - Handle only keys (relative to O(source.prefix) and O(target.prefix)) after this one, in S3's key order.
      - A range of M(mlops.migration.s3_key_ranges) (its C(after)).
    type: str
  key_upto:
    description: Handle only keys up to and including this one (a range's C(upto)).
    type: str
  processes:
    description:
      - Worker processes that share this run's keys, split by key range (fewer when the keys have too few
        prefixes to split between); 1 copies in this process.
      - Not with O(keys).
    type: int
    default: 1
  shard_index:
    description: Which shard of the keyspace this run handles, from 0.
    type: int
    default: 0
  shard_count:
    description: In how many shards the keyspace is split.
    type: int
    default: 1
  part_size_mb:
    description:
      - Part size of multipart uploads to the target, in MiB. Memory use is about
        O(parallel) times the larger of this and O(multipart_threshold_mb).
    type: int
    default: 8
  multipart_threshold_mb:
    description: Objects up to this size (MiB) are uploaded in one PUT.
    type: int
    default: 16
attributes:
  check_mode:
    support: full
    description: Lists what would be copied and deleted (RV(to_copy), RV(to_delete)); writes nothing.
  diff_mode:
    support: none
    description: The keys that would change are returned in check mode instead.
"""

EXAMPLES = r"""
- name: Copy the ClearML bucket to the new cluster's object store
  mlops.migration.s3_sync:
    source:
      endpoint_url: https://minio.old.example.com
      access_key: "{{ old_s3_access_key }}"
      secret_key: "{{ old_s3_secret_key }}"
      bucket: clearml
      prefix: clearml-data/ProjectA/
    target:
      endpoint_url: https://s3.new.example.com
      access_key: "{{ new_s3_access_key }}"
      secret_key: "{{ new_s3_secret_key }}"
      bucket: clearml-migrated
      prefix: clearml-data/ProjectA/

- name: Split a large bucket into key ranges, one per transfer host, recorded on the first
  mlops.migration.s3_key_ranges:
    source: "{{ s3_source }}"
    count: "{{ ansible_play_hosts_all | length }}"
    path: /var/lib/mlops-migration/s3-ranges.json
  delegate_to: "{{ ansible_play_hosts_all[0] }}"
  run_once: true
  register: ranges

- name: Each host copies its range, in two worker processes
  mlops.migration.s3_sync:
    source: "{{ s3_source }}"
    target: "{{ s3_target }}"
    key_after: "{{ ranges.ranges[ansible_play_hosts_all.index(inventory_hostname)].after | default(omit, true) }}"
    key_upto: "{{ ranges.ranges[ansible_play_hosts_all.index(inventory_hostname)].upto | default(omit, true) }}"
    processes: 2
"""

RETURN = r"""
kinds:
  description: Counts per kind of object (C(s3 objects)), each with the fields of RV(counts).
  returned: always
  type: dict
found:
  description: Objects found at the source (in this shard).
  returned: always
  type: int
  sample: 2004
copied:
  description: Objects copied (in check mode, that would be copied).
  returned: always
  type: int
  sample: 4
already_present:
  description: Objects already at the target with the same content, not copied again.
  returned: always
  type: int
  sample: 2000
verified:
  description: Objects copied and verified at both ends.
  returned: always
  type: int
  sample: 4
verified_by:
  description: How the copies were verified at the target, with counts (C(md5), C(multipart-etag)).
  returned: always
  type: dict
  sample: {md5: 2, multipart-etag: 2}
failed_count:
  description: Objects that could not be copied or verified (C(failed) is Ansible's own task status).
  returned: always
  type: int
  sample: 0
failures:
  description: The first 20 failures, each with the source key and the reason.
  returned: always
  type: list
  elements: dict
  sample: [{key: models/big.pt, reason: "content gives ETag ..., the source says ..."}]
deleted:
  description: Target objects deleted (or that would be) with O(delete_extra).
  returned: always
  type: int
  sample: 0
bytes:
  description: Bytes copied.
  returned: always
  type: int
  sample: 268435456
bytes_resumed:
  description: Of RV(bytes), those in parts a killed run had uploaded, checked by md5 and kept, not sent again.
  returned: always
  type: int
  sample: 0
listing:
  description:
    - What this run listed at the source, for M(mlops.migration.s3_key_ranges) to cut the next ranges by
      (O(mlops.migration.s3_key_ranges#module:listings)).
    - C(listed) (keys), C(samples) (up to 256 of C([rank, key]) evenly spaced).
  returned: always
  type: dict
requests:
  description: The requests this run made, by side (C(source), C(target)) and S3 operation (C(ListObjectsV2), ...).
  returned: always
  type: dict
  sample: {source: {ListObjectsV2: 3, GetObject: 2}, target: {ListObjectsV2: 3, PutObject: 2}}
processes:
  description: Worker processes the run was split between (with O(processes) over 1).
  returned: when processes is over 1
  type: int
  sample: 2
to_copy:
  description: The first 100 keys (relative to the prefixes) that would be copied, in check mode.
  returned: always
  type: list
  elements: str
  sample: [models/big.pt]
to_delete:
  description: The first 100 target keys deleted or that would be deleted.
  returned: always
  type: list
  elements: str
  sample: []
seconds:
  description: Wall time.
  returned: always
  type: float
  sample: 12.5
counts:
  description:
    - This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
    - C(found), C(filtered_out), C(copied), C(present), C(verified), C(failed), C(bytes), C(seconds), C(failures) (each with
      C(object) and C(reason)), C(pending) (check mode), C(dry_run); V(null) where the module does not measure it.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.common import run_module
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import location_options, open_bucket
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import TransferReport
from ansible_collections.mlops.migration.plugins.module_utils.s3.sync import sync
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file

MIB = 1024 * 1024


def main():
    location = dict(type="dict", required=True, options=location_options())
    module = AnsibleModule(
        argument_spec=dict(
            source=location,
            target=location,
            delete_extra=dict(type="bool", default=False),
            keys=dict(type="list", elements="str", no_log=False),
            create_bucket=dict(type="bool", default=False),
            parallel=dict(type="int", default=8),
            shard_index=dict(type="int", default=0),
            shard_count=dict(type="int", default=1),
            key_after=dict(type="str", no_log=False),
            key_upto=dict(type="str", no_log=False),
            processes=dict(type="int", default=1),
            part_size_mb=dict(type="int", default=8),
            multipart_threshold_mb=dict(type="int", default=16),
            **progress_file.PROGRESS_OPTIONS,
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 0 <= params["shard_index"] < params["shard_count"]:
        module.fail_json(msg=f"shard_index must be in 0..{params['shard_count'] - 1}, got {params['shard_index']}")
    if params["keys"] is not None and params["delete_extra"]:
        module.fail_json(msg="delete_extra cannot be used with keys: only the listed keys are compared")
    if params["keys"] is not None and params["processes"] > 1:
        module.fail_json(msg="processes cannot be used with keys: a list of keys is looked up, not listed in ranges")
    if params["key_after"] is not None and params["key_upto"] is not None and params["key_upto"] <= params["key_after"]:
        module.fail_json(msg=f"key_upto ({params['key_upto']!r}) must come after key_after ({params['key_after']!r})")
    if params["part_size_mb"] < 5 or params["parallel"] < 1 or params["processes"] < 1:
        module.fail_json(msg="part_size_mb must be at least 5 (the S3 minimum), parallel and processes at least 1")
    run_module(module, lambda: copy(module, params), "object(s) failed")


def copy(module, params):
    source, _created = open_bucket(params["source"], params["parallel"] + 2)
    target, created = open_bucket(params["target"], params["parallel"] + 2, params["create_bucket"], module.check_mode)
    if created and module.check_mode:
        return dict(TransferReport(dry_run=True).as_dict(), changed=True,
                    msg=f"bucket {target.bucket} would be created; everything would be copied")
    progress = progress_file.start(module, f"s3_sync {source.bucket}/{source.prefix} -> {target.bucket}/{target.prefix}")
    report = sync(source, target, parallel=params["parallel"], shard_index=params["shard_index"],
                  shard_count=params["shard_count"], delete_extra=params["delete_extra"], check_mode=module.check_mode,
                  part_size=params["part_size_mb"] * MIB, threshold=params["multipart_threshold_mb"] * MIB,
                  progress=progress, keys=params["keys"], key_after=params["key_after"], key_upto=params["key_upto"],
                  processes=params["processes"])
    progress_file.finish(progress, report)
    report["changed"] = bool(report["copied"] or report["deleted"] or created)
    return report


if __name__ == "__main__":
    main()
