#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_report
short_description: Write the migration report, or show the status of a running migration, from the state file
version_added: 0.1.0
description:
  - Reads the steps recorded by M(mlops.migration.migration_step) in C(<state_dir>/migration-state.sqlite).
  - 'With O(state=present) writes C(report.html) (one self-contained page, inline CSS and SVG, nothing fetched),
    C(report.md) (the same facts as text) and C(report.json) (the same facts as data) into O(dest), and returns
    a compact table. The report holds a verdict (complete, complete with failures, incomplete, checked), the
    endpoints (credentials left out), start, end and wall time; totals per category of object (objects, files,
    documents, events, runs, metric points, rows) found, filtered out, copied, present, verified and failed,
    with bytes; a timeline of the steps (a bar per step and per host, with throughput) and what each moved;
    per kind how it was verified and the share verified; what was left out and by which rule; the first
    failures with the command that retries them; and earlier runs of the same state file side by side.
    A file is rewritten only when its content changes.'
  - With O(state=status) writes nothing and returns the status table, with the progress of running
    steps given in O(progress), and where each running step keeps its progress file (RV(running)).
author:
  - mlops.migration developers (@mlops-migration)
options:
  state_dir:
    description: Directory of the state file on the host that runs the module.
    type: path
    required: true
  steps:
    description: The planned steps, in order. Steps the state file does not know show as C(not run).
    type: list
    elements: str
    required: true
  state:
    description: V(present) writes the report; V(status) only returns the status table.
    type: str
    choices: [present, status]
    default: present
  title:
    description: Heading of the report.
    type: str
    default: Migration report
  dest:
    description: Directory the report files go to; O(state_dir) when omitted.
    type: path
  progress:
    description:
      - Progress files of running steps as M(ansible.builtin.slurp) returns them (C(source), C(content)
        in base64), for O(state=status). A file C(<step>.progress.json) belongs to that step; of several, the
        most recently updated counts.
    type: list
    elements: dict
    default: []
  run:
    description: This run's id (as given to M(mlops.migration.migration_step)); its steps are told from those done by earlier runs.
    type: str
  context:
    description:
      - What the report says about the plan, as the filter P(mlops.migration.report_context#filter) derives it from a
        checked plan, credentials left out.
    type: dict
    suboptions:
      endpoints:
        description: Each part's C(part), C(source) and C(target), as text.
        type: list
        elements: dict
        default: []
      rules:
        description: Per step, the rules of the plan that leave objects out.
        type: dict
        default: {}
      retry:
        description: The command that runs the migration again (the report adds the step's tag to it).
        type: str
      migration_type:
        description: C(full), C(files) or C(db).
        type: str
  scope:
    description:
      - What was migrated and what deliberately was not (a preset's scope, for example ClearML's), stated
        in the report as two lists after the counts.
    type: dict
    suboptions:
      migrated:
        description: What the migration moves.
        type: list
        elements: str
        default: []
      not_migrated:
        description: What it leaves out by design, each with the rule that leaves it out.
        type: list
        elements: str
        default: []
attributes:
  check_mode:
    support: full
    description: Returns the table and whether the files would change; writes nothing.
  diff_mode:
    support: none
    description: The report's content is returned as RV(table) instead.
"""

EXAMPLES = r"""
- name: Write the report
  mlops.migration.migration_report:
    state_dir: /var/lib/mlops-migration
    steps: [files_bulk, s3, mongo, trackers, files_delta, verify]
  register: report

- name: Show it
  ansible.builtin.debug:
    msg: "{{ report.table }}"
"""

RETURN = r"""
table:
  description: The compact table, one line per step and one per object kind (or the status table).
  returned: always
  type: list
  elements: str
steps:
  description: The recorded steps by name (C(state), C(summary), C(progress), C(started), C(finished)).
  returned: always
  type: dict
running:
  description: The running steps, each with the C(host) and C(file) of its progress file when recorded.
  returned: always
  type: list
  elements: dict
report_md:
  description: Path of the Markdown report.
  returned: when state=present
  type: str
report_html:
  description: Path of the HTML report.
  returned: when state=present
  type: str
report_json:
  description: Path of the report as data.
  returned: when state=present
  type: str
verdict:
  description: The report's verdict (C(status), C(detail)).
  returned: when state=present
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.atomic import read_text_if_exists, write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.state.steps import StepLog
from ansible_collections.mlops.migration.plugins.module_utils.state.store import STATE_FILE
from ansible_collections.mlops.migration.plugins.module_utils.state.report import (
    build_report,
    progress_by_step,
    render_markdown,
    render_table,
    status_lines,
)
from ansible_collections.mlops.migration.plugins.module_utils.state.report_html import render_html


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state_dir=dict(type="path", required=True),
            steps=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "status"], default="present"),
            title=dict(type="str", default="Migration report"),
            dest=dict(type="path"),
            progress=dict(type="list", elements="dict", default=[]),
            run=dict(type="str"),
            context=dict(type="dict", options=dict(
                endpoints=dict(type="list", elements="dict", default=[]),
                rules=dict(type="dict", default={}),
                retry=dict(type="str"),
                migration_type=dict(type="str"),
            )),
            scope=dict(type="dict", options=dict(migrated=dict(type="list", elements="str", default=[]),
                                                 not_migrated=dict(type="list", elements="str", default=[]))),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        log = StepLog(os.path.join(params["state_dir"], STATE_FILE), readonly=True)
        try:
            steps = log.all()
            history = log.history()
        finally:
            log.close()
    except MigrationError as exc:
        module.fail_json(msg=str(exc))
    running = [dict(step=name, **(step.get("progress") or {})) for name, step in steps.items()
               if step["state"] == "running"]
    if params["state"] == "status":
        module.exit_json(changed=False, steps=steps, running=running,
                         table=status_lines(params["steps"], steps, progress_by_step(params["progress"])))
    dest = params["dest"] or params["state_dir"]
    report = build_report(params["title"], params["steps"], steps, history, params["scope"], params["context"],
                          params["run"], module.check_mode)
    paths = {"report_md": os.path.join(dest, "report.md"), "report_html": os.path.join(dest, "report.html"),
             "report_json": os.path.join(dest, "report.json")}
    contents = {"report_md": render_markdown(report), "report_html": render_html(report),
                "report_json": json.dumps(report, indent=2, sort_keys=True) + "\n"}
    changed = False
    try:
        for key, path in paths.items():
            if read_text_if_exists(path) != contents[key]:
                changed = True
                if not module.check_mode:
                    os.makedirs(dest, exist_ok=True)
                    write_text_atomic(path, contents[key])
    except OSError as exc:
        module.fail_json(msg=f"cannot write the report into {dest}: {exc}")
    module.exit_json(changed=changed, steps=steps, running=running, verdict=report["verdict"],
                     table=render_table(params["steps"], steps), **paths)


if __name__ == "__main__":
    main()
