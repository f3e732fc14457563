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


def _serve(tmp_path_factory, component, whole_stack=False):
    stack = _start(tmp_path_factory, component, [component])
    yield stack if whole_stack else stack[component]
    stack.stop()


@pytest.fixture(scope="session")
def ssh_stack(tmp_path_factory):
    """Two sshd hosts (127.0.0.2 source, 127.0.0.3 target) and an inventory reaching them."""
    yield from _serve(tmp_path_factory, "ssh", whole_stack=True)


@pytest.fixture(scope="session")
def s3_pair(tmp_path_factory):
    """Two SeaweedFS S3 endpoints: ``s3_pair["source"]``, ``s3_pair["target"]``."""
    yield from _serve(tmp_path_factory, "s3")


@pytest.fixture(scope="session")
def mlflow_pair(tmp_path_factory):
    """Two mlflow servers."""
    yield from _serve(tmp_path_factory, "mlflow")


@pytest.fixture(scope="session")
def mongo_pair(tmp_path_factory):
    """Two MongoDB endpoints (wire servers, or MONGO_URI_SOURCE / MONGO_URI_TARGET)."""
    yield from _serve(tmp_path_factory, "mongo")


@pytest.fixture
def playbook(ssh_stack, tmp_path):
    """``playbook(plays, **kwargs)`` runs plays with ansible-playbook against the ssh hosts."""
    workdir = tmp_path / "ansible"
    workdir.mkdir()

    def run(plays, **kwargs):
        return run_playbook(plays, ssh_stack.inventory_file, str(workdir), **kwargs)

    return run
