"""Which attributes, files and resources of a run a copy takes (trackers/copy.py: Selection), and the step scale a
fork family shares (shared_scales)."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import Artifact, Experiment, Run, TrackerError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.copy import Selection, shared_scales


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


def _comet_run():
    return Run("r", "e", "n", 0, 1, "FINISHED", None, params={"lr": "1"}, tags={"label": "", "team": "ml"},
               metric_keys=["loss"], system_metric_keys=["sys.cpu"], description="notes", config={"lr": 1},
               series={"text": ["console", "html", "text"], "media": ["images"], "histogram": ["w"]})


def test_cometx_resource_names_select_kinds_of_record():
    kept = Selection(resources_exclude=["metrics", "run", "others"]).run(_comet_run())
    assert (kept.metric_keys, kept.system_metric_keys, kept.params) == ([], ["sys.cpu"], {"lr": "1"})
    assert kept.tags == {"label": ""} and kept.description == "notes"
    assert kept.series == {"text": ["html", "text"], "media": ["images"], "histogram": ["w"]}
    only = Selection(resources_include=["parameters", "html"]).run(_comet_run())
    assert (only.params, only.config, only.metric_keys, only.system_metric_keys) == ({"lr": "1"}, {"lr": 1}, [], [])
    assert only.tags == {} and only.description is None
    assert only.series == {"text": ["html"], "media": [], "histogram": []}


def test_cometx_resources_select_files_and_the_project():
    selection = Selection(resources_exclude=["run", "project"])
    assert selection.file(Artifact("model.pkl", 1)) and not selection.file(Artifact("comet/run/requirements.txt", 1))
    assert not Selection(resources_exclude=["assets"]).file(Artifact("model.pkl", 1))
    project = Experiment("p", "p", tags={"k": "v"}, description="d")
    assert selection.experiment(project) == Experiment("p", "p") and Selection().experiment(project) is project


def test_an_unknown_resource_name_is_refused():
    with pytest.raises(TrackerError, match="'asset' is not one of cometx's resource names"):
        Selection(resources_include=["asset"])


def _fork(run_id, parent=None, step=None, scale=1):
    return Run(run_id, "e", run_id, 0, 1, "FINISHED", None, parent_id=parent, fork_step=step, step_scale=scale)


def test_a_fork_family_shares_one_step_scale_and_other_runs_keep_theirs():
    runs = shared_scales([_fork("root", scale=10), _fork("fork", "root", 2.25), _fork("grandchild", "fork", 7.0),
                          _fork("nested", "root", None, 1), _fork("alone", scale=1000)])
    assert {r.id: r.step_scale for r in runs} == {"root": 100, "fork": 100, "grandchild": 100, "nested": 1, "alone": 1000}
    assert [r.id for r in shared_scales([_fork("a", "b", 1.0), _fork("b", "a", 1.0)])] == ["a", "b"]  # a cycle ends
