# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preset_plan filter: a migration plan with its preset (``preset: clearml``) expanded."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.migration.plugins.filter.checked_plan import plain
from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.presets import clearml

PRESETS = {"clearml": clearml.expand}


def preset_plan(plan):
    """``plan`` with the parts its preset implies filled in; a plan without a preset as it is."""
    plan = plain(plan)
    if not isinstance(plan, dict) or plan.get("preset") is None:
        return plan
    if plan["preset"] not in PRESETS:
        raise AnsibleFilterError(f"the migration plan is malformed: preset {plan['preset']!r} is not one of "
                                 + ", ".join(sorted(PRESETS)))
    try:
        return PRESETS[plan["preset"]](plan)
    except MigrationError as exc:
        raise AnsibleFilterError(f"the migration plan is malformed: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"preset_plan": preset_plan}
