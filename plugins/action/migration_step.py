# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action of migration_step: the module, told who runs the step (for its lease).

The runner is the controller's ``ansible-playbook`` process - the parent of the worker this action runs in -
with the controller's host name and the process's start time, and the playbook run's id as its name. The
module runs where the state file is; when that is the controller, a runner that died is recognised at once.
"""

from __future__ import annotations

import os
import socket

from ansible.plugins.action import ActionBase

from ansible_collections.mlops.migration.plugins.module_utils.state.leases import process_started


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if args.get("state", "query") != "query" and not args.get("owner"):
            pid = os.getppid()  # ansible-playbook itself: the worker that runs this action is its child
            args["owner"] = {"id": f"run {args['run']}" if args.get("run") else f"ansible-playbook pid {pid}", "host": socket.gethostname(),
                             "pid": pid, "pid_started": process_started(pid)}
        result.update(self._execute_module(module_args=args, task_vars=task_vars))
        return result
