# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report_context filter: what the migration report says about a plan, its credentials left out."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.migration.plugins.filter.checked_plan import plain
from ansible_collections.mlops.migration.plugins.module_utils.state.report import plan_context


def report_context(plan, migration_type=None, retry=None):
    """``{endpoints, rules, migration_type, retry}`` of a checked plan (module_utils/state/report.py)."""
    if not isinstance(plan, dict):
        raise AnsibleFilterError(f"report_context expects the checked plan (a mapping), got {type(plan).__name__}")
    return plan_context(plain(plan), migration_type, retry)


class FilterModule:
    def filters(self):
        return {"report_context": report_context}
