"""Which attributes and files of a run a copy takes (trackers/copy.py: Selection)."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import Artifact, Run, TrackerError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Selection


def _run():
    return Run("r", "e", "n", 0, 1, "FINISHED", None, params={"parameters/lr": "1", "parameters/opt": "adam"},
               metric_keys=["train/loss", "train/acc", "eval/loss"], system_metric_keys=["sys/cpu"],
               series={"text": ["train/log", "notes"]}, summary={"train/loss": 1.0, "best": 2})


def test_nothing_asked_keeps_the_run_itself():
    run = _run()
    assert Selection().run(run) is run


def test_include_then_exclude_by_glob_across_slashes():
    picked = Selection(include=["train/*", "parameters/lr"], exclude=["train/acc"]).run(_run())
    assert picked.params == {"parameters/lr": "1"}
    assert (picked.metric_keys, picked.system_metric_keys) == (["train/loss"], [])
    assert picked.series == {"text": ["train/log"]} and picked.summary == {"train/loss": 1.0}
    assert _run().metric_keys == ["train/loss", "train/acc", "eval/loss"]  # the source's run is not changed


def test_files_by_pattern_and_size():
    selection = Selection(files_include=["*.png", "model/*"], files_exclude=["model/tmp/*"], max_file_size=100)
    assert selection.file(Artifact("img/a.png", 10)) and selection.file(Artifact("model/w.bin", None))
    assert not selection.file(Artifact("model/big.bin", 101))
    assert not selection.file(Artifact("model/tmp/x.bin", 1)) and not selection.file(Artifact("code/a.py", 1))


def test_a_negative_size_is_refused():
    with pytest.raises(TrackerError, match="files.max_size: -1 is below zero"):
        Selection(max_file_size=-1)
