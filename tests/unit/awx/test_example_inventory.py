"""inventories/example: its plan, with the vault decrypted, passes the playbook's plan check."""

import json
import os
import subprocess
import sys

import yaml

from ansible_collections.mlops.migration.plugins.filter.checked_plan import checked_plan

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)


def test_the_example_plan_is_valid_and_its_secrets_come_from_the_vault(tmp_path):
    password = tmp_path / "vault-password"
    password.write_text("example-only\n", encoding="utf-8")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(BIN, "ansible"), "-i", "inventories/example", "localhost", "-m",
                           "ansible.builtin.debug", "-a", "var=migration", "--vault-password-file", str(password)],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = json.loads(proc.stdout.split("=>", 1)[1])["migration"]
    with open(os.path.join(REPO, "roles", "migration", "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)["argument_specs"]["plan"]["options"]
    checked = checked_plan({"migration": plan}, spec)["migration"]
    assert checked["mongo"]["source"]["password"] == "change-me"
    assert checked["s3"]["buckets"][0]["target"]["secret_key"] == "change-me"
    assert checked["files"]["trees"][0]["to_s3"]["bucket"] == "clearml"
    with open(os.path.join(REPO, "inventories", "example", "group_vars", "all", "vault.yml"), encoding="utf-8") as handle:
        assert handle.readline().startswith("$ANSIBLE_VAULT;1.1;AES256")
