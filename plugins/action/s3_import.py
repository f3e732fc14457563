# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action of s3_import: the module, with its progress in the play's output while it runs (plugin_utils/progress_action.py)."""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.plugin_utils.progress_action import ProgressAction


class ActionModule(ProgressAction):
    pass
