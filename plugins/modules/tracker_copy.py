#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tracker_copy
short_description: Copy experiments, runs and registered models between experiment trackers, resumably and verified
version_added: 0.1.0
description:
  - Copies experiments, their runs (name, original start and end time, status, user, params,
    every tag with the parent run remapped, dataset inputs, complete metric histories with
    steps and timestamps, artifacts) and registered models with their versions, aliases,
    tags, descriptions and stages (version sources pointed at the copied runs).
  - Each copied run carries its source ids as tags C(mlops.migration.source_run_id),
    C(mlops.migration.source_experiment_id) and C(mlops.migration.source_uri).
  - For a target that is a directory (V(wandb_offline), V(comet_offline), V(clearml_offline)) carried across an
    air gap, O(sign) seals it after the copy (C(SHA256SUMS) at its top and its signature), as
    M(mlops.migration.s3_export) seals its bundles; without O(sign) such a directory is not sealed.
  - A ledger (SQLite, under O(state_dir)) maps every source id to its target id. A run is
    marked complete only after it verifies. A re-run skips complete runs, deletes and redoes
    half-written ones, adds new runs, and appends the new metric points of runs that were
    still running at the source when copied.
  - Transient HTTP errors (429, 5xx, connection resets) are retried with backoff; a
    permanent error fails that run, which the result lists, and the others go on.
  - Adapters map each tracker's records to and from tracker-neutral ones (experiments with
    descriptions, runs with users, descriptions, parent and fork links, params, tags, metric
    and system-metric series, text, media, plot and histogram series, summary values, nested
    configuration, artifacts, dataset inputs, registered models). This version has MLflow (any
    tracking server, through the official client).
  - Into MLflow, the record kinds MLflow has no place for become artifacts of the run under
    C(mlops-migration/) (text, plot and histogram series as C(<kind>/<key>.jsonl), media as
    C(media/<key>.jsonl) with their files under C(media/<key>/), C(summary.json),
    C(config.json)); a fork point becomes the tag C(mlops.migration.fork_step) and system
    metrics are named C(system/<key>).
author:
  - mlops.migration developers (@mlops-migration)
extends_documentation_fragment:
  - mlops.migration.tracker
  - mlops.migration.progress
  - mlops.migration.seal.sign
options:
  experiments:
    description: Experiment names or regular expressions (full match). All experiments when empty.
    type: list
    elements: str
    default: []
  name_prefix:
    description: Prefix for the experiment names at the target.
    type: str
    default: ""
  include_deleted:
    description: Also copy deleted experiments and runs.
    type: bool
    default: false
  run_filter:
    description: Copy only the runs that match.
    type: dict
    default: {}
    suboptions:
      status:
        description: Run statuses to copy (for example C(FINISHED)).
        type: list
        elements: str
      started_after:
        description: Only runs started at or after this time (milliseconds since the epoch).
        type: int
      started_before:
        description: Only runs started before this time (milliseconds since the epoch).
        type: int
      tags:
        description: Tag values the run must have.
        type: dict
      names:
        description: Run names to copy, as regular expressions each matching a whole name.
        type: list
        elements: str
  max_runs:
    description: Copy at most this many runs (in start-time order), for trials.
    type: int
  attributes:
    description:
      - Copy only the attributes whose names match - params, metrics, system metrics, text/media/plot/histogram series
        and summary keys (for Neptune, attribute paths such as C(train/*)). Glob patterns (C(*) crosses C(/)); a name
        must match one of O(attributes.include) (when given) and none of O(attributes.exclude). What is left out is
        neither copied nor verified.
    type: dict
    default: {}
    suboptions:
      include:
        description: Patterns of the attributes to copy (all when omitted).
        type: list
        elements: str
      exclude:
        description: Patterns of the attributes to leave out.
        type: list
        elements: str
  files:
    description:
      - Copy only the artifact files that match, by path pattern and size (a type is a pattern such as C(*.png)).
        Files left out are counted in RV(files_filtered_out).
    type: dict
    default: {}
    suboptions:
      include:
        description: Glob patterns of the artifact paths to copy (all when omitted).
        type: list
        elements: str
      exclude:
        description: Glob patterns of the artifact paths to leave out.
        type: list
        elements: str
      max_size:
        description: Leave out files larger than this many bytes (files whose size the source does not tell are copied).
        type: int
  resources:
    description:
      - Copy only these kinds of record, named as C(cometx download) names them - C(metadata) (tags without a value,
        the description), C(others) (key-value tags), C(parameters) (params and the nested config), C(metrics),
        C(system) (system metrics), C(assets) (artifacts, and media, plot, histogram and text-sample series),
        C(html) (the text series C(html)), C(run) (the text series C(console) and the artifacts under C(comet/run/)),
        C(project) (the experiment's description and tags). For any source and target, not only Comet's. What is
        left out is neither copied nor verified.
    type: dict
    default: {}
    suboptions:
      include:
        description: The resources to copy (all when omitted).
        type: list
        elements: str
        choices: [assets, html, metadata, metrics, others, parameters, project, run, system]
      exclude:
        description: The resources to leave out.
        type: list
        elements: str
        choices: [assets, html, metadata, metrics, others, parameters, project, run, system]
  include:
    description: What to copy.
    type: list
    elements: str
    choices: [params, metrics, tags, artifacts, models, inputs]
    default: [params, metrics, tags, artifacts, models, inputs]
  parallel:
    description: Runs copied at once.
    type: int
    default: 4
  state_dir:
    description: Directory of the ledger. Keep it between runs; it is what makes a re-run resume.
    type: path
    required: true
  verify:
    description:
      - Check each run after copying - params, tags, every metric's point count and a digest of its points (step, timestamp,
        value), series item counts, the artifact list and md5s.
    type: bool
    default: true
  verify_signature:
    description:
      - For a source that is a directory (an offline or export kind) - require its seal to be signed with this key
        and refuse, before anything is read, a directory whose signature is missing or does not match or whose files
        differ from the seal. A sealed source directory is checked against its seal even without a key.
    type: dict
    suboptions:
      algorithm:
        description: C(hmac-sha256) or C(ed25519).
        type: str
        choices: [hmac-sha256, ed25519]
        default: hmac-sha256
      key:
        description: The HMAC secret.
        type: str
      key_file:
        description: A file holding the HMAC secret, or the ed25519 public key (PEM).
        type: path
attributes:
  check_mode:
    support: full
    description: Counts what would be copied from the ledger and the source; writes nothing.
  diff_mode:
    support: none
    description: Counts are returned instead.
"""

EXAMPLES = r"""
- name: Copy every experiment, with models
  mlops.migration.tracker_copy:
    source: {tracking_uri: "https://mlflow.old.example.com", token: "{{ old_token }}"}
    target: {tracking_uri: "https://mlflow.new.example.com", token: "{{ new_token }}"}
    state_dir: /var/lib/mlops-migration/tracker
    parallel: 8

- name: Only finished runs of the vision experiments
  mlops.migration.tracker_copy:
    source: {tracking_uri: "{{ old_uri }}"}
    target: {tracking_uri: "{{ new_uri }}"}
    experiments: ["vision-.*"]
    run_filter: {status: [FINISHED]}
    state_dir: /var/lib/mlops-migration/tracker
"""

RETURN = r"""
kinds:
  description:
    - Counts per kind of object (C(tracker experiments), C(tracker runs), C(tracker models), C(tracker model versions)),
      each with the fields of RV(counts).
  returned: always
  type: dict
experiments:
  description: Counts for experiments (C(found), C(copied), C(skipped), C(updated), C(failed)).
  returned: always
  type: dict
  sample: {"found": 3, "copied": 3, "skipped": 0, "updated": 0, "failed": 0}
runs:
  description: Counts for runs; C(updated) are runs that were running at the source and got new points.
  returned: always
  type: dict
models:
  description: Counts for registered models.
  returned: always
  type: dict
versions:
  description: Counts for model versions.
  returned: always
  type: dict
points_copied:
  description: Metric points written.
  returned: always
  type: int
files_filtered_out:
  description: Artifact files left out by O(files).
  returned: always
  type: int
bytes:
  description: Artifact bytes carried.
  returned: always
  type: int
failed_count:
  description: Objects that failed, all kinds together.
  returned: always
  type: int
failures:
  description: The first 20 failures, each with C(kind), C(id) and C(reason).
  returned: always
  type: list
  elements: dict
ledger:
  description: Path of the ledger file.
  returned: always
  type: str
seconds:
  description: Time the copy took.
  returned: always
  type: float
counts:
  description:
    - This run's counts, all kinds added up, in the one result vocabulary of the collection's data-moving modules.
    - C(found), C(filtered_out), C(copied), C(present), C(verified), C(failed), C(bytes), C(seconds), C(failures) (each with
      C(object) and C(reason)), C(pending) (check mode), C(dry_run); V(null) where the module does not measure it.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError, protect_uri_secrets, run_module
from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file
from ansible_collections.mlops.migration.plugins.module_utils.bundle_seal import check_seal, seal
from ansible_collections.mlops.migration.plugins.module_utils.signing import signing_options
from ansible_collections.mlops.migration.plugins.module_utils.state.leases import describe, HeldLease
from ansible_collections.mlops.migration.plugins.module_utils.state.ledger import Ledger
from ansible_collections.mlops.migration.plugins.module_utils.state.store import STATE_FILE
from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier, INCLUDE, RESOURCES, RunFilter, Selection
from ansible_collections.mlops.migration.plugins.module_utils.trackers.registry import (
    adapter,
    missing_library,
    offline_dir,
    tracker_spec,
    uris,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="dict", required=True, options=tracker_spec()),
            target=dict(type="dict", required=True, options=tracker_spec()),
            experiments=dict(type="list", elements="str", default=[]),
            name_prefix=dict(type="str", default=""),
            include_deleted=dict(type="bool", default=False),
            run_filter=dict(type="dict", default={}, options=dict(
                status=dict(type="list", elements="str"),
                started_after=dict(type="int"),
                started_before=dict(type="int"),
                tags=dict(type="dict"),
                names=dict(type="list", elements="str"),
            )),
            max_runs=dict(type="int"),
            attributes=dict(type="dict", default={}, options=dict(
                include=dict(type="list", elements="str"),
                exclude=dict(type="list", elements="str"),
            )),
            files=dict(type="dict", default={}, options=dict(
                include=dict(type="list", elements="str"),
                exclude=dict(type="list", elements="str"),
                max_size=dict(type="int"),
            )),
            resources=dict(type="dict", default={}, options=dict(
                include=dict(type="list", elements="str", choices=list(RESOURCES)),
                exclude=dict(type="list", elements="str", choices=list(RESOURCES)),
            )),
            include=dict(type="list", elements="str", choices=list(INCLUDE), default=list(INCLUDE)),
            parallel=dict(type="int", default=4),
            state_dir=dict(type="path", required=True),
            verify=dict(type="bool", default=True),
            sign=signing_options(),
            verify_signature=signing_options(),
            **progress_file.PROGRESS_OPTIONS,
        ),
        supports_check_mode=True,
    )
    protect_uri_secrets(module, *uris(module.params["source"]), *uris(module.params["target"]))
    for side in ("source", "target"):
        requirement = missing_library(module.params[side])
        if requirement:
            module.fail_json(msg=missing_required_lib(requirement))
    run_module(module, lambda: copy(module, module.params), "object(s) not copied")


def copy(module, params):
    path = os.path.join(params["state_dir"], STATE_FILE)
    wanted = params["run_filter"] or {}
    run_filter = RunFilter(wanted.get("status"), wanted.get("started_after"), wanted.get("started_before"),
                           wanted.get("tags"), wanted.get("names"))  # a bad pattern fails before anything is opened
    attributes, files, resources = params["attributes"] or {}, params["files"] or {}, params["resources"] or {}
    selection = Selection(attributes.get("include"), attributes.get("exclude"), files.get("include"),
                          files.get("exclude"), files.get("max_size"), resources.get("include"), resources.get("exclude"))
    source_dir, target_dir = offline_dir(params["source"]), offline_dir(params["target"])
    if params["verify_signature"] and not source_dir:
        raise MigrationError("verify_signature checks the seal of a source that is a directory (an offline or export "
                             f"kind), not of a {params['source'].get('kind') or 'mlflow'} tracker")
    if params["sign"] and not target_dir:
        raise MigrationError("sign seals a target that is a directory (an offline kind), not a "
                             f"{params['target'].get('kind') or 'mlflow'} tracker")
    if source_dir and os.path.isdir(source_dir):  # a sealed directory is checked before anything is read from it
        check_seal(source_dir, params["verify_signature"], what=f"the {params['source']['kind']} directory")
    source = adapter(params["source"], "source")
    target = adapter(params["target"], "target")
    ledger = Ledger(path, source.uri, target.uri, readonly=module.check_mode)
    copier = Copier(source, target, ledger, params["include"], run_filter,
                    params["max_runs"], params["parallel"], params["verify"], module.check_mode,
                    params["name_prefix"], params["include_deleted"],
                    progress_file.start(module, f"tracker_copy {source.uri} -> {target.uri}", unit="runs"), selection)
    try:
        if module.check_mode:
            result = copier.copy(params["experiments"])
        else:  # one copier per ledger and pair at a time: a second would redo, and delete, the first's runs in progress
            with HeldLease(path, f"tracker_copy {source.uri} -> {target.uri}",
                           what=f"the copy {source.uri} -> {target.uri} with the ledger {path}") as lease:
                result = copier.copy(params["experiments"])
            if lease.taken_over:
                module.warn(f"took the ledger's lease over from {describe(lease.taken_over)}, which is no longer running")
    finally:
        ledger.close()
        source.close()
        target.close()
    progress_file.finish(copier.progress, result["runs"], ("copied", "updated", "skipped", "failed"))
    result.update(changed=copier.report.changed, ledger=path)
    if params["sign"] and not module.check_mode and not result["runs"].get("failed"):
        result["changed"] = seal(target_dir, params["sign"], params["parallel"]) or result["changed"]
    return result


if __name__ == "__main__":
    main()
