"""Paths from outside stay inside their root (module_utils/paths.py), and the tracker copy uses that."""

import os

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.paths import UnsafePath, confined
from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Copier
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import Artifact, Run, TrackerError


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "a\0b", "", "..", "a/..", "\\\\host\\x",
                                 "a\\..\\..\\x"])
def test_paths_that_leave_the_root_are_refused(tmp_path, bad):
    with pytest.raises(UnsafePath):
        confined(str(tmp_path), bad)


def test_plain_paths_and_links_out(tmp_path):
    assert confined(str(tmp_path), "a/b c/ü.txt") == os.path.join(str(tmp_path), "a/b c/ü.txt")
    (tmp_path / "out").symlink_to("/")
    with pytest.raises(UnsafePath):
        confined(str(tmp_path), "out/etc/passwd")


class OneArtifactSource:
    def __init__(self, path):
        self.path = path

    def artifacts(self, _run):
        yield Artifact(self.path, 5)

    def download(self, _run, _artifact, local):
        with open(local, "w", encoding="utf-8") as handle:
            handle.write("owned")


def test_an_artifact_named_to_climb_out_fails_its_run_and_touches_nothing(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    copier = Copier(OneArtifactSource(f"../../../../../../../..{victim}"), None, None)
    with pytest.raises(TrackerError, match="climbs out"):
        copier._artifacts(Run("r1", "1", "r1", 0, None, "FINISHED", "u"), "new")  # pylint: disable=protected-access
    assert victim.read_text() == "keep"
