# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the progress option (module_utils/state/progress.py: PROGRESS_OPTIONS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  progress_file:
    description:
    - JSON file on the host that runs the module, rewritten at most once a second with the
      items done and their total, bytes, rates and an ETA, so C(playbooks/status.yml) can show a
      running transfer. One line per significant event (start, each failure, the end) is appended to
      C(migration.log) in the same directory and written to stderr.
    - Not written in check mode.
    - While the module runs, the play's output (and an AWX job's) shows a line of its progress every
      C(migration_progress_interval) seconds (a variable; default 30, 0 turns it off). For that the module runs as an
      async job on its host, which stops itself when the play stops following it for C(migration_progress_heartbeat)
      seconds (default 60), as a module run over ssh stops with its session.
    type: path
"""
