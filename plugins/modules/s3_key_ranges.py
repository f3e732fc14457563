#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_key_ranges
short_description: Split a bucket's keys into key ranges for several transfer hosts, recorded so every host and re-run agrees
version_added: 0.2.0
description:
  - Returns O(count) contiguous key ranges that together hold every key under O(source.prefix), each to be given
    to one M(mlops.migration.s3_sync) run (its O(mlops.migration.s3_sync#module:key_after) and
    O(mlops.migration.s3_sync#module:key_upto)), which then lists only its range. N hosts list the bucket once
    between them, where hash shards make each list all of it.
  - The ranges are recorded in the JSON file O(path) (on the host this runs on; run it once, on one host, for
    every transfer host, AWX slice and C(serial) batch) and used again while the source and O(count) stay the same.
  - New ranges are cut at the quantiles of what an earlier run listed, when the file holds it
    (O(state=recorded) keeps it there), else by a sampled listing; the prefix tree opened level by level with
    C(/) as delimiter until it has 16 prefixes a range, at most 200 listing requests (RV(requests)). A flat
    namespace (too few prefixes) is listed whole once; every later plan of the same count reuses the ranges.
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.s3
  - mlops.migration.s3.source
options:
  count:
    description: How many ranges (transfer hosts).
    type: int
    required: true
  path:
    description: The ranges file. Without it the ranges are sampled each time and not kept.
    type: path
  state:
    description:
      - V(planned) returns the ranges (recorded ones, or new ones, then recorded).
      - V(recorded) keeps what each range's M(mlops.migration.s3_sync) run listed (O(listings)) in O(path), for the
        next plan of another count to cut by.
    type: str
    choices: [planned, recorded]
    default: planned
  hosts:
    description:
      - With O(state=recorded), the transfer hosts in the order they were given the ranges (the first host had the
        first range).
    type: list
    elements: str
    default: []
  listings:
    description:
      - With O(state=recorded), what the M(mlops.migration.s3_sync) run of each host of O(hosts) returned (the
        registered result, or only its RV(mlops.migration.s3_sync#module:listing)), by host name. Hosts not in it
        (another batch or slice) keep what they recorded.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Samples (or reads) the ranges and returns them; the file is not written.
  diff_mode:
    support: none
    description: Not supported.
"""

EXAMPLES = r"""
- name: Cut the bucket into one key range per transfer host
  mlops.migration.s3_key_ranges:
    source: "{{ s3_source }}"
    count: "{{ groups['transfer'] | length }}"
    path: /var/lib/mlops-migration/s3-ranges.json
  delegate_to: "{{ groups['transfer'][0] }}"
  run_once: true
  register: s3_ranges

- name: Keep what each host listed, for the next cut
  mlops.migration.s3_key_ranges:
    source: "{{ s3_source }}"
    count: "{{ groups['transfer'] | length }}"
    path: /var/lib/mlops-migration/s3-ranges.json
    state: recorded
    hosts: "{{ groups['transfer'] }}"
    listings: "{{ dict(ansible_play_batch | zip(ansible_play_batch | map('extract', hostvars, 's3_copy'))) }}"
  delegate_to: "{{ groups['transfer'][0] }}"
  run_once: true
"""

RETURN = r"""
ranges:
  description: The ranges in key order, each C(after) and C(upto) (keys relative to the prefix; V(null) at an open end).
  returned: when state is planned
  type: list
  elements: dict
  sample: [{after: null, upto: runs/25/}, {after: runs/25/, upto: null}]
basis:
  description: Where the ranges came from; V(recorded), V(previous) (an earlier listing), V(sampled), V(listing).
  returned: when state is planned
  type: str
  sample: sampled
requests:
  description: Listing requests the sampling made (0 when the ranges were recorded).
  returned: when state is planned
  type: int
  sample: 3
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.common import run_module
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import location_options, open_bucket
from ansible_collections.mlops.migration.plugins.module_utils.s3.key_ranges import plan_ranges, record_listing


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="dict", required=True, options=location_options()),
            count=dict(type="int", required=True),
            path=dict(type="path"),
            state=dict(type="str", choices=["planned", "recorded"], default="planned"),
            hosts=dict(type="list", elements="str", default=[]),
            listings=dict(type="dict", default={}),
        ),
        required_if=[("state", "recorded", ("path",))],
        supports_check_mode=True,
    )
    params = module.params
    if params["count"] < 1:
        module.fail_json(msg=f"count must be at least 1, got {params['count']}")
    params["by_index"] = {}
    for host, result in params["listings"].items():
        listing = result.get("listing", result) if isinstance(result, dict) else None
        if host not in params["hosts"]:
            module.fail_json(msg=f"listings names the host {host}, which is not one of hosts {params['hosts']}")
        if not isinstance(listing, dict) or not isinstance(listing.get("listed"), int) or \
                not isinstance(listing.get("samples"), list):
            module.fail_json(msg=f"the listing of {host} is not an s3_sync result's listing (listed and samples): "
                                 f"{str(result)[:200]}")
        params["by_index"][params["hosts"].index(host)] = listing
    run_module(module, lambda: work(module, params))


def work(module, params):
    source, _created = open_bucket(params["source"])
    if params["state"] == "recorded":
        changed = record_listing(source, params["path"], params["by_index"], module.check_mode)
        return {"changed": changed}
    return plan_ranges(source, params["count"], params["path"], module.check_mode)


if __name__ == "__main__":
    main()
