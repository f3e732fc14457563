"""Session fixtures: the real loopback servers of tests/stack, started once and stopped at the end.

A test module that sets ``S3_IMPLEMENTATIONS = ("seaweedfs", "minio")`` runs each of its tests
that use ``s3_pair`` against both S3 servers; elsewhere ``s3_pair`` is SeaweedFS. Likewise
``mongo_pair`` is FerretDB unless a module's ``MONGO_IMPLEMENTATIONS`` or a test's
``@pytest.mark.mongo_implementation("ferretdb", "mongoeco")`` names more.
"""

from __future__ import annotations

import pytest

from tests.integration.ansible_run import run_playbook
from tests.stack.stack import Stack

IMPLEMENTATIONS = {"s3_implementation": ("seaweedfs",), "mongo_implementation": ("ferretdb",)}


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


def pytest_generate_tests(metafunc):
    for argname, default in IMPLEMENTATIONS.items():
        if argname in metafunc.fixturenames:
            marker = metafunc.definition.get_closest_marker(argname)
            values = marker.args if marker else getattr(metafunc.module, argname.upper() + "S", default)
            metafunc.parametrize(argname, values, scope="session")


@pytest.fixture(scope="session")
def ssh_stack(tmp_path_factory):
    """Two sshd hosts (127.0.0.2 source, 127.0.0.3 target) and an inventory reaching them."""
    yield from _serve(tmp_path_factory, "ssh", whole_stack=True)


def _pair(name, component, doc):
    """The session fixture ``name`` serving the stack component ``component`` (a source and a target)."""
    def serve(tmp_path_factory):
        yield from _serve(tmp_path_factory, component)

    serve.__doc__ = doc
    return pytest.fixture(scope="session", name=name)(serve)


seaweedfs_pair = _pair("seaweedfs_pair", "s3", 'Two SeaweedFS S3 endpoints: ``["source"]``, ``["target"]``.')
minio_pair = _pair("minio_pair", "minio", "Two MinIO S3 endpoints.")
mlflow_pair = _pair("mlflow_pair", "mlflow", "Two mlflow servers.")
postgres_pair = _pair("postgres_pair", "postgres", "Two PostgreSQL clusters (Debian's packages) on loopback.")
ferretdb_pair = _pair("ferretdb_pair", "mongo", "Two FerretDB v1 servers (or the MongoDB servers of MONGO_URI_SOURCE / MONGO_URI_TARGET).")
mongoeco_pair = _pair("mongoeco_pair", "mongoeco", "Two mongoeco wire servers: the types FerretDB v1 cannot store (MONGO_URI_WIRE_SOURCE / _TARGET).")
search_pair = _pair("search_pair", "search", "Two single-node OpenSearch clusters.")


@pytest.fixture(scope="session")
def s3_pair(request, s3_implementation):
    """Two S3 endpoints of the implementation this test is parametrized with (SeaweedFS by default)."""
    return request.getfixturevalue(f"{s3_implementation}_pair")


@pytest.fixture(scope="session")
def mongo_pair(request, mongo_implementation):
    """Two MongoDB endpoints of the implementation this test is parametrized with (FerretDB by default)."""
    return request.getfixturevalue(f"{mongo_implementation}_pair")


@pytest.fixture
def playbook(ssh_stack, tmp_path):
    """``playbook(plays, **kwargs)`` runs plays with ansible-playbook against the ssh hosts."""
    workdir = tmp_path / "ansible"
    workdir.mkdir()

    def run(plays, **kwargs):
        return run_playbook(plays, ssh_stack.inventory_file, str(workdir), **kwargs)

    return run


@pytest.fixture(scope="session")
def sdk_session(tmp_path_factory):
    """A ClearML offline session the ClearML SDK wrote with everything tests/clearml_sessions.full_spec names (it takes
    the SDK about 20 seconds, so the ClearML tests share one)."""
    from tests import clearml_sessions  # pylint: disable=import-outside-toplevel

    scratch = tmp_path_factory.mktemp("clearml-sdk")
    return clearml_sessions.write_task(str(scratch / "cache"), clearml_sessions.full_spec(str(scratch / "files")))
