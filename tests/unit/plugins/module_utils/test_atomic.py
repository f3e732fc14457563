"""Unit tests of module_utils/atomic.py: whole-file replacement."""

import os


from ansible_collections.mlops.migration.plugins.module_utils import atomic as c


def test_write_text_atomic_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out"
    c.write_text_atomic(str(path), "one\n")
    c.write_text_atomic(str(path), "two\n")
    assert path.read_text() == "two\n"
    assert os.listdir(tmp_path) == ["out"]
    assert c.read_text_if_exists(str(tmp_path / "missing")) is None
