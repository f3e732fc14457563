"""ClearML offline sessions, written inside the test by the ClearML SDK itself (``Task.set_offline(True)``; no ClearML
server runs here, and importing a session needs one), copied by tracker_copy into a real MLflow server field by
field; MLflow runs written as sessions and read back equal; a session we wrote compared key by key with the one the
SDK wrote for the same records; check mode writes nothing, a re-run changes nothing; a damaged session, a debug
sample missing from its session and a session whose events file is gone are refused naming the session, the task
and the object, before anything is written."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile

import pytest
from mlflow.tracking import MlflowClient

from tests import clearml_sessions, mlflow_records
from tests.integration.test_mlflow_to_wandb import md5s, play
from tests.integration.test_tracker_copy import assert_same_run, copies

pytestmark = pytest.mark.integration
TASK = "copy"
PROJECT = "vision/detection"


def _only(tmp_path, session, name="sessions"):
    """A clearml_dir holding a copy of ``session`` alone."""
    root = tmp_path / name
    root.mkdir()
    dest = root / os.path.basename(session)
    with open(session, "rb") as src, open(dest, "wb") as out:
        out.write(src.read())
    return root, str(dest)


def test_sdk_session_into_mlflow_field_by_field(playbook, mlflow_pair, sdk_session, tmp_path):
    root, session = _only(tmp_path, sdk_session)
    with open(session, "rb") as handle:
        before = hashlib.md5(handle.read()).hexdigest()
    task = clearml_sessions.session_json(session, "task.json")
    events = clearml_sessions.session_json(session, "metrics.jsonl")
    source = {"kind": "clearml_offline", "clearml_dir": str(root)}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "co-" + uuid.uuid4().hex[:8]
    state = str(tmp_path / "state")
    options = dict(experiments=[PROJECT], name_prefix=f"{name}-")
    checked = playbook(play(source, target, state, **options), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 1 and client.get_experiment_by_name(f"{name}-{PROJECT}") is None

    first = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (1, 0), first
    assert first["points_copied"] == 2 * clearml_sessions.LOSS_POINTS
    (run,) = list(copies(client, f"{name}-{PROJECT}").values())
    with open(session, "rb") as handle:
        assert hashlib.md5(handle.read()).hexdigest() == before  # the source is only read
    stamps = [e["timestamp"] for e in events] + [e["timestamp"] for e in clearml_sessions.session_json(
        session, "log.jsonl")]
    assert (run.info.run_name, run.info.status) == ("baseline", "FINISHED")
    assert (run.info.start_time, run.info.end_time) == (min(stamps), max(stamps))
    assert run.data.params == {"General/lr": "0.01", "General/layers": "3", "Optimizer/name": "adam",
                               "Optimizer/beta": "0.9"}
    tags = run.data.tags
    assert (tags["nightly"], tags["gpu"], tags["clearml.status"]) == ("", "", "completed")
    assert (tags["mlflow.note.content"], tags["mlflow.runName"]) == ("the baseline run", "baseline")
    for variant, scale in (("train", 1.0), ("val", 2.0)):
        history = client.get_metric_history(run.info.run_id, f"loss/{variant}")
        mine = sorted((e["iter"], e["timestamp"], e["value"]) for e in events
                      if e["type"] == "training_stats_scalar" and e["variant"] == variant)
        assert sorted((m.step, m.timestamp, m.value) for m in history) == mine
        assert [v for _s, _t, v in mine] == [scale / (n + 1) for n in range(clearml_sessions.LOSS_POINTS)]
    assert run.data.metrics.get("accuracy") is None
    files = md5s(client, run.info.run_id)
    assert files["notes/notes.txt"] == hashlib.md5(clearml_sessions.NOTES.encode()).hexdigest()
    assert files["clearml/models/best/best.pt"] == hashlib.md5(clearml_sessions.WEIGHTS).hexdigest()
    with open(client.download_artifacts(run.info.run_id, "summary/summary.json"), encoding="utf-8") as handle:
        assert json.load(handle) == {"best_epoch": 7}
    with open(client.download_artifacts(run.info.run_id, "clearml/configuration/model_cfg.txt"), encoding="utf-8") as f:
        assert f.read() == task["configuration"]["model_cfg"]["value"]
    with open(client.download_artifacts(run.info.run_id, "clearml/task.json"), encoding="utf-8") as handle:
        kept = json.load(handle)  # the task document, with what MLflow has no field for
    assert (kept["hyperparams"], kept["execution"], kept["id"]) == (task["hyperparams"], task["execution"], task["id"])
    side = mlflow_records.side_lines(client, run.info.run_id, "mlops-migration/media/samples/input.jsonl")
    assert [line["step"] for line in side] == list(range(clearml_sessions.IMAGES))
    with zipfile.ZipFile(session) as archive:
        sdk_images = sorted(hashlib.md5(archive.read(n)).hexdigest() for n in archive.namelist()
                            if "/metrics/samples/input/" in n)
    assert sorted(files[line["artifact"]] for line in side) == sdk_images
    (plot,) = mlflow_records.side_lines(client, run.info.run_id, "mlops-migration/plot/confusion/matrix.jsonl")
    assert plot["data"]["layout"]["images"][0]["source"] == "https://example.com/plot-image.png"
    console = mlflow_records.side_lines(client, run.info.run_id, "mlops-migration/text/console.jsonl")
    assert all(line in "".join(c["text"] for c in console) for line in clearml_sessions.CONSOLE_LINES)
    with open(client.download_artifacts(run.info.run_id, "mlops-migration/summary.json"), encoding="utf-8") as f:
        assert json.load(f) == {"accuracy": 0.93}
    with open(client.download_artifacts(run.info.run_id, "mlops-migration/config.json"), encoding="utf-8") as f:
        assert json.load(f) == {"General": {"layers": "3", "lr": "0.01"}, "Optimizer": {"beta": "0.9", "name": "adam"}}

    again = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 1


def _events_by_type(path, name):
    out = {}
    for event in clearml_sessions.session_json(path, name):
        out.setdefault(event["type"], []).append(event)
    return out


def test_a_session_we_write_matches_the_sdks_key_by_key(playbook, sdk_session, tmp_path):
    root, session = _only(tmp_path, sdk_session)
    out = tmp_path / "written"
    result = playbook(play({"kind": "clearml_offline", "clearml_dir": str(root)},
                           {"kind": "clearml_offline", "clearml_dir": str(out)}, str(tmp_path / "state"),
                           experiments=[PROJECT])).task(TASK)["result"]
    assert (result["runs"]["copied"], result["failed_count"]) == (1, 0), result
    (ours,) = [str(p) for p in out.glob("offline-*.zip")]
    theirs_task, our_task = (clearml_sessions.session_json(p, "task.json") for p in (session, ours))
    assert set(theirs_task) <= set(our_task)
    for key in ("name", "project_name", "type", "comment", "tags", "output", "offline_output_models"):
        assert our_task[key] == (theirs_task[key] if key != "offline_output_models" else []), key
    assert set(our_task["execution"]) == set(theirs_task["execution"])
    assert {s: {n: p["value"] for n, p in v.items()} for s, v in our_task["hyperparams"].items()} == {
        s: {n: p["value"] for n, p in v.items()} for s, v in theirs_task["hyperparams"].items()}
    for section in our_task["hyperparams"].values():
        for name, param in section.items():
            assert set(param) == {"section", "name", "value", "type", "description"} and param["name"] == name
    theirs_artifacts = {a["key"]: a for a in theirs_task["execution"]["artifacts"]}
    our_artifacts = {a["key"]: a for a in our_task["execution"]["artifacts"]}
    for key, artifact in theirs_artifacts.items():
        mine = our_artifacts[key]
        assert set(mine) == set(artifact), key
        assert (mine["content_size"], mine["hash"], mine["mode"]) == (
            artifact["content_size"], artifact["hash"], artifact["mode"])
        assert mine["uri"].startswith(our_task["offline_folder"] + "/data/")
        assert mine["uri"].split("/artifacts/")[1] == artifact["uri"].split("/artifacts/")[1]  # <key>/<file>
    theirs_events, our_events = _events_by_type(session, "metrics.jsonl"), _events_by_type(ours, "metrics.jsonl")
    for kind in ("training_stats_scalar", "training_debug_image", "plot"):
        for event_ours, event_theirs in zip(sorted(our_events[kind], key=lambda e: (e["metric"], e["variant"],
                                                                                    e["iter"])),
                                            sorted(theirs_events[kind], key=lambda e: (e["metric"], e["variant"],
                                                                                       e["iter"]))):
            assert set(event_ours) == set(event_theirs), kind
            same = {k for k in event_theirs if k not in ("task", "key", "url", "plot_str")}
            assert {k: event_ours[k] for k in same} == {k: event_theirs[k] for k in same}
            assert event_ours["task"] == our_task["id"]
        assert len(our_events[kind]) == len(theirs_events[kind])
    for event in our_events["training_debug_image"]:
        member = event["url"][len(our_task["offline_folder"]) + 1:]
        assert member == "data/" + event["key"] and member in zipfile.ZipFile(ours).namelist()
    (our_logs,), (their_logs,) = (_events_by_type(p, "log.jsonl").values() for p in (ours, session))
    assert [set(e) for e in our_logs] == [set(e) for e in their_logs]
    assert [(e["timestamp"], e["msg"], e["level"]) for e in our_logs] == [
        (e["timestamp"], e["msg"], e["level"]) for e in their_logs]
    # what ClearML's import cannot set (times, status) is in the configuration object mlops.migration
    record = json.loads(our_task["configuration"]["mlops.migration"]["value"])
    assert record["status"] == "FINISHED" and record["start_time"] and record["summary"] == {"accuracy": 0.93}


def test_mlflow_runs_to_sessions_and_back_field_by_field(playbook, mlflow_pair, tmp_path):
    name = f"tocl-{uuid.uuid4().hex[:8]}"
    _exp_id, ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=3, metrics=2, steps=1200)
    source_uri, back_uri = mlflow_pair["source"].tracking_uri, mlflow_pair["target"].tracking_uri
    root = tmp_path / "clearml"
    clearml_target = {"kind": "clearml_offline", "clearml_dir": str(root)}
    checked = playbook(play({"tracking_uri": source_uri}, clearml_target, str(tmp_path / "s1"), experiments=[name]),
                       check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 3 and not root.exists()

    first = playbook(play({"tracking_uri": source_uri}, clearml_target, str(tmp_path / "s1"),
                          experiments=[name])).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (3, 0), first["failures"]
    assert first["points_copied"] == 3 * 2 * 1200
    written = sorted(str(p) for p in root.glob("offline-*.zip"))
    assert len(written) == 3 and not (root / ".mlops-migration-spool").exists()
    for path in written:  # what the import reads: the task, its project, its files under offline_folder/data/
        task = clearml_sessions.session_json(path, "task.json")
        assert task["project_name"] == name and task["id"] == os.path.basename(path)[:-4]
        names = zipfile.ZipFile(path).namelist()
        assert all(a["uri"][len(task["offline_folder"]) + 1:] in names for a in task["execution"]["artifacts"])
    again = playbook(play({"tracking_uri": source_uri}, clearml_target, str(tmp_path / "s1"),
                          experiments=[name])).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 3
    assert sorted(str(p) for p in root.glob("offline-*.zip")) == written

    back = playbook(play(clearml_target, {"tracking_uri": back_uri}, str(tmp_path / "s2"), experiments=[name],
                         name_prefix="back-")).task(TASK)["result"]
    assert (back["runs"]["copied"], back["failed_count"]) == (3, 0), back["failures"]
    source, returned = MlflowClient(source_uri), MlflowClient(back_uri)
    back_runs = copies(returned, f"back-{name}")
    assert sorted(back_runs) == sorted(f"offline-{i}" for i in ids)  # the task ids name the MLflow run ids
    by_source = {i: back_runs[f"offline-{i}"] for i in ids}
    for source_id, run in by_source.items():
        assert_same_run(source, returned, source_id, run, by_source)
        mine = md5s(source, source_id)
        assert {k: v for k, v in md5s(returned, run.info.run_id).items() if not k.startswith("mlops-migration/")} == mine
    assert returned.get_experiment_by_name(f"back-{name}").tags["mlflow.note.content"] == "the déscription"


def _refused(playbook, root, tmp_path, mlflow_pair, label):
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    result = playbook(play({"kind": "clearml_offline", "clearml_dir": str(root)}, target, str(tmp_path / f"s-{label}"),
                           experiments=[PROJECT], name_prefix=f"{label}-"), expect_rc=2).task(TASK)["result"]
    assert MlflowClient(target["tracking_uri"]).get_experiment_by_name(f"{label}-{PROJECT}") is None
    return result["msg"]


def _rewrite(path, change):
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_damaged_sessions_are_refused_naming_the_session_task_and_object(playbook, mlflow_pair, sdk_session,
                                                                         tmp_path):
    label = uuid.uuid4().hex[:6]
    task_id = clearml_sessions.session_json(sdk_session, "task.json")["id"]
    cut, path = _only(tmp_path, sdk_session, "cut")
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    assert f"{path} is not a zip archive" in _refused(playbook, cut, tmp_path, mlflow_pair, f"cut{label}")

    garbled, path = _only(tmp_path, sdk_session, "garbled")
    _rewrite(path, lambda m: m.__setitem__("metrics.jsonl", m["metrics.jsonl"] + b'[{"type": "plot"\n'))
    msg = _refused(playbook, garbled, tmp_path, mlflow_pair, f"garbled{label}")
    assert f"{path}: metrics.jsonl line " in msg and "is not a JSON list of events" in msg

    missing, path = _only(tmp_path, sdk_session, "missing")

    def drop_sample(members):
        del members[next(n for n in members if n.endswith("samples_input_00000001.jpeg"))]
    _rewrite(path, drop_sample)
    msg = _refused(playbook, missing, tmp_path, mlflow_pair, f"missing{label}")
    assert f"{path}: task {task_id}: debug sample samples/input at iteration 1: the file " in msg
    assert msg.endswith("samples_input_00000001.jpeg is not in the session")

    no_events, path = _only(tmp_path, sdk_session, "noevents")
    _rewrite(path, lambda m: m.pop("metrics.jsonl"))
    msg = _refused(playbook, no_events, tmp_path, mlflow_pair, f"noevents{label}")
    assert f"{path}: task {task_id}: its events file metrics.jsonl is missing, though the session holds debug " in msg

    no_task, path = _only(tmp_path, sdk_session, "notask")
    _rewrite(path, lambda m: m.pop("task.json"))
    msg = _refused(playbook, no_task, tmp_path, mlflow_pair, f"notask{label}")
    assert f"{path} holds no task.json: not a ClearML offline session" in msg


def test_sdk_session_into_wandb_offline_read_back_equal(playbook, sdk_session, tmp_path):
    """ClearML → W&B: the session copied into W&B offline runs through the W&B SDK, read back with the collection's
    W&B reader equal to what its ClearML reader reads: fields, params, config, tags, every point, summary, media."""
    import importlib  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel

    root, _session = _only(tmp_path, sdk_session)
    wandb_root = tmp_path / "wandb"
    result = playbook(play({"kind": "clearml_offline", "clearml_dir": str(root)},
                           {"kind": "wandb_offline", "wandb_dir": str(wandb_root)}, str(tmp_path / "s"),
                           experiments=[PROJECT])).task(TASK)["result"]
    assert (result["runs"]["copied"], result["failed_count"]) == (1, 0), result["failures"]
    sys.path.insert(0, os.path.join(os.getcwd(), ".build", "collections"))
    trackers = "ansible_collections.mlops.migration.plugins.module_utils.trackers."
    clearml = importlib.import_module(trackers + "clearml_offline").ClearmlOfflineSource(str(root))
    wandb = importlib.import_module(trackers + "wandb").WandbOfflineSource(str(wandb_root))
    try:
        (original,) = clearml.runs(clearml.experiments([PROJECT])[0])
        (copy,) = [run for experiment in wandb.experiments([]) for run in wandb.runs(experiment)]
        assert (copy.name, copy.start_time, copy.end_time, copy.status, copy.job_type, copy.description) == (
            original.name, original.start_time, original.end_time, original.status, original.job_type,
            original.description)
        assert copy.params == original.params and copy.config == original.config and copy.summary == original.summary
        assert {k: v for k, v in copy.tags.items() if not k.startswith("mlops.migration.")} == original.tags
        assert sorted(copy.metric_keys) == sorted(original.metric_keys) == ["loss/train", "loss/val"]
        for key in original.metric_keys:
            theirs = sorted((p.step, p.timestamp, p.value) for p in wandb.metric_history(copy, key))
            assert theirs == sorted((p.step, p.timestamp, p.value) for p in clearml.metric_history(original, key))
        images = list(wandb.series(copy, "media", "samples/input"))
        assert [i.step for i in images] == list(range(clearml_sessions.IMAGES))
        for n, (mine, theirs) in enumerate(zip(clearml.series(original, "media", "samples/input"), images)):
            clearml.series_file(original, mine, str(tmp_path / f"a{n}"))
            wandb.series_file(copy, theirs, str(tmp_path / f"b{n}"))
            assert (tmp_path / f"a{n}").read_bytes() == (tmp_path / f"b{n}").read_bytes()
    finally:
        clearml.close()  # its spooled scalars
        wandb.close()
