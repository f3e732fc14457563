# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scope_collections filter: the collections a user or project subset backs up; the scoped_trackers filter: a
plan's tracker pairs with the subset applied to their ClearML sources."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.mongo import scopes


def scope_collections(scope, db="backend", scope_id=""):
    try:
        return scopes.scope_collections(scope, db, scope_id)
    except MigrationError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def scoped_trackers(trackers, scope=None, scope_id=None):
    try:
        return scopes.scoped_trackers(trackers, scope, scope_id)
    except MigrationError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"scope_collections": scope_collections, "scoped_trackers": scoped_trackers}
