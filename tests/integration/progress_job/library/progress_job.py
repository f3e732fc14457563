# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A test module: works for ``seconds`` seconds, counting in its progress file as the collection's modules do."""

from __future__ import annotations

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.migration.plugins.module_utils.state import progress as progress_file


def main():
    module = AnsibleModule(argument_spec=dict(seconds=dict(type="float", required=True),
                                              **progress_file.PROGRESS_OPTIONS), supports_check_mode=True)
    progress = progress_file.start(module, "progress_job", unit="steps")
    steps = int(module.params["seconds"] * 10)
    for step in range(steps):
        time.sleep(0.1)
        if progress:
            progress.update(done=step + 1, total=steps, size=(step + 1) * 1024)
    result = {"steps": steps, "changed": True}
    progress_file.finish(progress, result, ("steps",))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
