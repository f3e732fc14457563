"""Where the test stack finds the servers scripts/build-servers.sh built (no server is started)."""

import pytest

from tests.stack import builds
from tests.stack.process import StackError


def test_every_built_server_has_one_pinned_version():
    versions = builds.versions()
    assert sorted(versions) == ["ferretdb", "minio", "opensearch", "s5cmd"]
    assert versions["ferretdb"].startswith("v1.") and versions["opensearch"].startswith("2.19.")


def test_a_missing_build_names_the_command_that_makes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVERS_DIR", str(tmp_path))
    with pytest.raises(StackError) as error:
        builds.binary("minio")
    assert "make deps" in str(error.value) and "build-servers.sh minio" in str(error.value)
    (tmp_path / f"minio-{builds.versions()['minio']}").mkdir()  # a build that never finished
    with pytest.raises(StackError):
        builds.binary("minio")
    (tmp_path / f"minio-{builds.versions()['minio']}" / ".built").touch()
    assert builds.binary("minio") == str(tmp_path / f"minio-{builds.versions()['minio']}" / "minio")
