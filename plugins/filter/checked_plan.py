# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checked_plan filter: a migration plan validated against an argument spec, defaults filled in."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator


def checked_plan(values, argument_spec):
    """``values`` (the plan and switches) validated by ``argument_spec`` (a role entry point's
    options), with every default filled in; fails naming each unknown key or bad value."""
    if not isinstance(values, dict):
        raise AnsibleFilterError(f"checked_plan expects a mapping of variables, got {type(values).__name__}")
    if not isinstance(argument_spec, dict):
        raise AnsibleFilterError("checked_plan expects an argument spec (a mapping of options)")
    given = {key: value for key, value in plain(values).items() if value is not None}  # None: not given
    result = ArgumentSpecValidator(plain(argument_spec)).validate(given, validate_role_argument_spec=True)
    if result.error_messages:
        raise AnsibleFilterError("the migration plan is malformed: " + "; ".join(result.error_messages))
    return result.validated_parameters


def plain(value):
    """A plain copy (dicts, lists, scalars), every lazily templated value resolved first."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


class FilterModule:
    def filters(self):
        return {"checked_plan": checked_plan}
