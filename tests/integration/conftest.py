"""Session fixtures: the real loopback servers of tests/stack, started once and stopped at the end."""

from __future__ import annotations

import pytest

from tests.integration.ansible_run import run_playbook
from tests.stack.stack import Stack


def _start(tmp_path_factory, name, components):
    stack = Stack(str(tmp_path_factory.mktemp(name)), components)
    try:
        stack.start()
    except Exception as exc:  # the message carries the server's log tail
        pytest.fail(f"could not start the {name} stack: {exc}", pytrace=False)
    return stack


@pytest.fixture(scope="session")
def ssh_stack(tmp_path_factory):
    """Two sshd hosts (127.0.0.2 source, 127.0.0.3 target) and an inventory reaching them."""
    stack = _start(tmp_path_factory, "ssh", ["ssh"])
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def s3_pair(tmp_path_factory):
    stack = _start(tmp_path_factory, "s3", ["s3"])
    yield stack["s3"]
    stack.stop()


@pytest.fixture(scope="session")
def mlflow_pair(tmp_path_factory):
    stack = _start(tmp_path_factory, "mlflow", ["mlflow"])
    yield stack["mlflow"]
    stack.stop()


@pytest.fixture(scope="session")
def mongo_pair(tmp_path_factory):
    stack = _start(tmp_path_factory, "mongo", ["mongo"])
    yield stack["mongo"]
    stack.stop()


@pytest.fixture
def playbook(ssh_stack, tmp_path):
    """``playbook(plays, **kwargs)`` runs plays with ansible-playbook against the ssh hosts."""
    workdir = tmp_path / "ansible"
    workdir.mkdir()

    def run(plays, **kwargs):
        return run_playbook(plays, ssh_stack.inventory_file, str(workdir), **kwargs)

    return run
