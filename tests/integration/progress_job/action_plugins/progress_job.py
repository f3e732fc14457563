# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test module's action: the collection's own (plugin_utils/progress_action.py), as its modules' actions are."""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.plugin_utils.progress_action import ProgressAction


class ActionModule(ProgressAction):
    pass
