"""Comet offline archives, written inside the test by Comet's own SDK (``comet_ml.OfflineExperiment``; no Comet
server runs here, and ``comet upload`` needs one), copied by tracker_copy into a real MLflow server field by
field; MLflow runs written as Comet archives through the SDK and read back equal; check mode writes nothing, a
re-run changes nothing; a damaged archive, a line that is not a message and an upload missing from its archive
are refused naming the archive (and the line) before anything is written. Folders in the layout ``cometx download``
writes (tests/cometx_downloads.py: cometx writes only what a Comet server answers) copied the same way."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sqlite3
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tests import comet_archives, cometx_downloads, mlflow_records
from tests.integration.test_mlflow_to_wandb import assert_back_equal, md5s, play
from tests.integration.test_tracker_copy import copies

pytestmark = pytest.mark.integration
TASK = "copy"
EXPERIMENT = "ws/proj"


def test_comet_archives_into_mlflow_field_by_field(playbook, mlflow_pair, tmp_path):
    root = tmp_path / "comet"
    full = comet_archives.write_full(root, tmp_path)
    comet_archives.write_small(root)
    with open(full, "rb") as handle:
        archive_md5 = hashlib.md5(handle.read()).hexdigest()
    source = {"kind": "comet_offline", "comet_dir": str(root)}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "cm-" + uuid.uuid4().hex[:8]
    state = str(tmp_path / "state")
    options = dict(experiments=[EXPERIMENT], name_prefix=f"{name}-")
    checked = playbook(play(source, target, state, **options), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 2 and client.get_experiment_by_name(f"{name}-{EXPERIMENT}") is None

    first = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0), first
    runs = copies(client, f"{name}-{EXPERIMENT}")
    run, small = runs["a" * 32], runs["b" * 32]
    with open(full, "rb") as handle:
        assert hashlib.md5(handle.read()).hexdigest() == archive_md5  # the source is only read
    meta = json.loads(comet_archives.zipfile.ZipFile(full).read("experiment.json"))
    assert (run.info.run_name, run.info.status) == ("baseline", "FINISHED")
    assert (run.info.start_time, run.info.end_time) == (meta["start_time"], meta["stop_time"])
    assert run.data.params == {"lr": "0.01", "layers": "3", "opt.name": "adam", "opt.beta": "0.9"}
    tags = run.data.tags
    assert (tags["a"], tags["b"], tags["owner"], tags["seed"]) == ("", "", "alice", "7")
    loss = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert sorted(loss) == [(n, pytest.approx(1 / (n + 1))) for n in range(comet_archives.LOSS_POINTS)]
    assert sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "epoch")) == [
        (n, float(n // 400)) for n in range(comet_archives.LOSS_POINTS)]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "system/sys.cpu.percent")] == [12.5]
    files = md5s(client, run.info.run_id)
    assert files["model/weights.bin"] == hashlib.md5(bytes(range(256)) * 10).hexdigest()
    assert {"mlops-migration/text/text.jsonl", "mlops-migration/text/html.jsonl", "mlops-migration/plot/roc.jsonl",
            "mlops-migration/histogram/weights.jsonl", "mlops-migration/media/images.jsonl"} <= set(files)
    with open(client.download_artifacts(run.info.run_id, "mlops-migration/text/text.jsonl"), encoding="utf-8") as lines:
        assert [(json.loads(line)["step"], json.loads(line)["text"]) for line in lines] == [
            (0, "epoch zero"), (1, "epoch one")]
    with open(client.download_artifacts(run.info.run_id, "mlops-migration/histogram/weights.jsonl"),
              encoding="utf-8") as lines:
        (histogram,) = [json.loads(line) for line in lines]
    assert histogram["step"] == 1 and sum(count for _index, count in histogram["data"]["index_values"]) == 3
    images = [p for p in files if p.startswith("mlops-migration/media/images/")]
    assert [files[p] for p in images] == [hashlib.md5(comet_archives.PNG).hexdigest()]
    assert [m.step for m in client.get_metric_history(small.info.run_id, "train/loss")] == list(range(5))

    again = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 2


def test_mlflow_runs_to_comet_archives_and_back_field_by_field(playbook, mlflow_pair, tmp_path):
    name = f"toc-{uuid.uuid4().hex[:8]}"
    _exp_id, ids = mlflow_records.seed(mlflow_pair["source"].tracking_uri, name, runs=3, metrics=2, steps=1200)
    source_uri, back_uri = mlflow_pair["source"].tracking_uri, mlflow_pair["target"].tracking_uri
    root = tmp_path / "comet"
    comet_target = {"kind": "comet_offline", "comet_dir": str(root), "workspace": "team"}
    checked = playbook(play({"tracking_uri": source_uri}, comet_target, str(tmp_path / "s1"), experiments=[name]),
                       check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 3 and not root.exists()

    first = playbook(play({"tracking_uri": source_uri}, comet_target, str(tmp_path / "s1"),
                          experiments=[name])).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (3, 0), first["failures"]
    assert first["points_copied"] == 3 * 2 * 1200
    written = comet_archives.archives(root)
    assert len(written) == 3 and not (root / ".mlops-migration-spool").exists()
    for path in written:  # what comet upload reads: the SDK's own metadata, the workspace and project named
        meta = json.loads(comet_archives.zipfile.ZipFile(path).read("experiment.json"))
        assert (meta["workspace"], meta["project_name"], meta["offline_id"]) == ("team", name, os.path.basename(path)[:-4])
    again = playbook(play({"tracking_uri": source_uri}, comet_target, str(tmp_path / "s1"),
                          experiments=[name])).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 3 and comet_archives.archives(root) == written

    back = playbook(play(comet_target, {"tracking_uri": back_uri}, str(tmp_path / "s2"),
                         experiments=[f"team/{name}"], name_prefix="back-")).task(TASK)["result"]
    assert (back["runs"]["copied"], back["failed_count"]) == (3, 0), back["failures"]
    # the experiment keeps its name (its id is team/<project>)
    assert_back_equal(MlflowClient(source_uri), MlflowClient(back_uri), f"back-{name}", ids)


def _refused(playbook, root, tmp_path, mlflow_pair, label):
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    result = playbook(play({"kind": "comet_offline", "comet_dir": str(root)}, target, str(tmp_path / f"s-{label}"),
                           experiments=[EXPERIMENT], name_prefix=f"{label}-"), expect_rc=2).task(TASK)["result"]
    assert MlflowClient(target["tracking_uri"]).get_experiment_by_name(f"{label}-{EXPERIMENT}") is None
    return result["msg"]


def test_damaged_archives_are_refused_naming_the_archive_and_line(playbook, mlflow_pair, tmp_path):
    label = uuid.uuid4().hex[:6]
    cut = tmp_path / "cut"
    path = comet_archives.write_small(cut)
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    msg = _refused(playbook, cut, tmp_path, mlflow_pair, f"cut{label}")
    assert f"{path}: not a Comet offline archive (not a readable zip" in msg

    garbled = tmp_path / "garbled"
    path = comet_archives.write_small(garbled)

    def garble(members):
        lines = members["messages.json"].decode().splitlines()
        lines.insert(3, '{"payload": {"metric"')
        members["messages.json"] = "\n".join(lines).encode()
    comet_archives.rewrite(path, garble)
    msg = _refused(playbook, garbled, tmp_path, mlflow_pair, f"garbled{label}")
    assert f"{path}: messages.json line 4 is not JSON" in msg

    missing = tmp_path / "missing"
    path = comet_archives.write_full(missing, tmp_path)

    def drop_asset(members):
        for line in members["messages.json"].decode().splitlines():
            message = json.loads(line)
            if message["type"] == "file_upload" and message["payload"]["additional_params"].get("fileName") == \
                    "model/weights.bin":
                del members[message["payload"]["file_path"]]
    comet_archives.rewrite(path, drop_asset)
    msg = _refused(playbook, missing, tmp_path, mlflow_pair, f"missing{label}")
    assert f"{path}: messages.json line " in msg and "(model/weights.bin), which is not in the archive" in msg


def test_a_cometx_download_into_mlflow_field_by_field(playbook, mlflow_pair, tmp_path):
    root = tmp_path / "download"
    cometx_downloads.write(root)
    source = {"kind": "cometx_download", "download_dir": str(root)}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "cx-" + uuid.uuid4().hex[:8]
    state = str(tmp_path / "state")
    options = dict(experiments=[EXPERIMENT], name_prefix=f"{name}-")
    checked = playbook(play(source, target, state, **options), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 1 and client.get_experiment_by_name(f"{name}-{EXPERIMENT}") is None
    first = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (1, 0), first
    copied = list(copies(client, f"{name}-{EXPERIMENT}").values())
    assert len(copied) == 1
    run = copied[0]
    t0 = cometx_downloads.T0
    assert (run.info.run_name, run.info.status, run.info.start_time, run.info.end_time, run.info.user_id) == (
        "downloaded", "FINISHED", t0, t0 + 60_000, "alice")
    assert run.data.params == {"lr": "0.01", "opt.name": "adam"}
    assert (run.data.tags["a"], run.data.tags["b"], run.data.tags["owner"]) == ("", "", "alice")
    loss = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss"))
    assert loss == [(n, t0 + n, pytest.approx(1 / (n + 1))) for n in range(cometx_downloads.LOSS_POINTS)]
    assert len(client.get_metric_history(run.info.run_id, "epoch")) == cometx_downloads.LOSS_POINTS
    assert [m.value for m in client.get_metric_history(run.info.run_id, "system/sys.cpu.percent")] == [12.5]
    files = md5s(client, run.info.run_id)
    assert files["model/weights.bin"] == hashlib.md5(cometx_downloads.MODEL).hexdigest()
    assert files["comet/run/requirements.txt"] == hashlib.md5(b"torch==2.5\n").hexdigest()
    with open(client.download_artifacts(run.info.run_id, "comet/remote-assets.jsonl"), encoding="utf-8") as lines:
        assert [json.loads(line)["link"] for line in lines] == ["s3://bucket/data.csv"]
    with open(client.download_artifacts(run.info.run_id, "mlops-migration/text/console.jsonl"),
              encoding="utf-8") as lines:
        assert [json.loads(line)["text"] for line in lines] == ["epoch 0", "epoch 1"]
    assert {"mlops-migration/text/html.jsonl", "mlops-migration/histogram/weights.jsonl",
            "mlops-migration/media/images.jsonl"} <= set(files)
    again = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 1


def test_a_damaged_cometx_download_is_refused_naming_the_file(playbook, mlflow_pair, tmp_path):
    label = uuid.uuid4().hex[:6]
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    broken = cometx_downloads.write(tmp_path / "broken")
    with open(os.path.join(broken, "metrics.jsonl"), "a", encoding="utf-8") as handle:
        handle.write('{"metricName": "train/loss", "metricV\n')
    gone = cometx_downloads.write(tmp_path / "gone")
    os.unlink(os.path.join(gone, "assets", "image", "sample.png"))
    for root, complaint in ((tmp_path / "broken", f"{broken}/metrics.jsonl line 1202 is not JSON"),
                            (tmp_path / "gone", "the asset sample.png (image) is listed in assets/assets_metadata.jsonl "
                                                "but assets/image/sample.png is missing")):
        prefix = f"{root.name}{label}-"
        result = playbook(play({"kind": "cometx_download", "download_dir": str(root)}, target,
                               str(tmp_path / f"s-{root.name}"), experiments=[EXPERIMENT], name_prefix=prefix),
                          expect_rc=2).task(TASK)["result"]
        assert complaint in result["msg"], result["msg"]
        assert client.get_experiment_by_name(prefix + EXPERIMENT) is None


def test_a_neptune_export_into_comet_archives(playbook, tmp_path):
    """Neptune → Comet: the fractional steps scaled per run (Comet's are whole), every point, the fork's parent."""
    import sys  # pylint: disable=import-outside-toplevel

    from tests.integration.test_neptune_to_mlflow import PROJECT, export  # pylint: disable=import-outside-toplevel

    root = tmp_path / "comet"
    target = {"kind": "comet_offline", "comet_dir": str(root)}
    result = playbook(play(export(tmp_path / "export"), target, str(tmp_path / "s"),
                           experiments=[PROJECT])).task(TASK)["result"]
    assert (result["runs"]["copied"], result["failed_count"]) == (2, 0), result["failures"]
    sys.path.insert(0, os.path.join(os.getcwd(), ".build", "collections"))
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.comet import CometOfflineSource  # noqa
    reader = CometOfflineSource(str(root))
    runs = {run.tags["mlops.migration.source_run_id"]: run
            for experiment in reader.experiments([]) for run in reader.runs(experiment)}
    parent, fork = runs["RUN-1"], runs["RUN-2"]
    assert parent.tags["mlops.migration.step_scale"] == "100" and parent.name == "baseline"
    assert [p.step for p in reader.metric_history(parent, "train/loss")] == [25 * n for n in range(1200)]
    assert fork.parent_id == parent.id and fork.fork_step == 250  # in the parent's scaled units
    assert [p.step for p in reader.metric_history(fork, "train/loss")] == list(range(300, 1000, 100))
    assert len(comet_archives.archives(root)) == 2


# a file-based target a W&B run is read back from: (kind, reader module, reader class, its options)
READ_BACK_TARGETS = {
    "comet_offline": ("comet", "CometOfflineSource", lambda root: {"comet_dir": root, "workspace": "team"}),
    "clearml_offline": ("clearml_offline", "ClearmlOfflineSource", lambda root: {"clearml_dir": root}),
}


@pytest.mark.parametrize("kind", sorted(READ_BACK_TARGETS))
def test_wandb_offline_runs_into_file_targets_read_back_equal(playbook, tmp_path, kind):
    """W&B → Comet and W&B → ClearML: runs the W&B SDK wrote offline, copied into Comet archives (through comet_ml)
    or ClearML sessions, read back with the collection's reader of the target equal to what its W&B reader reads:
    fields, params, tags, every point, summary, media."""
    import sys  # pylint: disable=import-outside-toplevel

    from tests.integration.test_wandb_to_mlflow import write_runs  # pylint: disable=import-outside-toplevel

    module, reader_class, options = READ_BACK_TARGETS[kind]
    wandb_root = tmp_path / "wandb"
    wandb_root.mkdir()
    project = write_runs(wandb_root, "wbc")
    source = {"kind": "wandb_offline", "wandb_dir": str(wandb_root)}
    root = tmp_path / "written"
    target = dict(options(str(root)), kind=kind)
    first = playbook(play(source, target, str(tmp_path / "s"), experiments=[project])).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0), first["failures"]
    sys.path.insert(0, os.path.join(os.getcwd(), ".build", "collections"))
    from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb import WandbOfflineSource  # noqa

    wandb_reader = WandbOfflineSource(str(wandb_root))
    reader = getattr(importlib.import_module(f"ansible_collections.mlops.migration.plugins.module_utils.trackers."
                                             f"{module}"), reader_class)(str(root))
    copied = {run.tags["mlops.migration.source_run_id"]: run
              for experiment in reader.experiments([]) for run in reader.runs(experiment)}
    (experiment,) = wandb_reader.experiments([project])
    originals = list(wandb_reader.runs(experiment))
    assert len(originals) == 2 and set(copied) == {run.id for run in originals}
    for original in originals:
        copy = copied[original.id]
        assert (copy.name, copy.start_time, copy.end_time, copy.status, copy.group, copy.job_type, copy.description) == (
            original.name, original.start_time, original.end_time, original.status, original.group,
            original.job_type, original.description)
        assert copy.params == original.params and copy.config == original.config and copy.summary == original.summary
        assert {k: v for k, v in copy.tags.items() if not k.startswith("mlops.migration.")} == original.tags
        assert sorted(copy.metric_keys) == sorted(original.metric_keys)
        for key in original.metric_keys:
            theirs = sorted((p.step, p.timestamp, p.value) for p in reader.metric_history(copy, key))
            assert theirs == sorted((p.step, p.timestamp, p.value) for p in wandb_reader.metric_history(original, key))
        (image,) = reader.series(copy, "media", "sample")
        (source_image,) = wandb_reader.series(original, "media", "sample")
        reader.series_file(copy, image, str(tmp_path / "a"))
        wandb_reader.series_file(original, source_image, str(tmp_path / "b"))
        assert (image.step, (tmp_path / "a").read_bytes()) == (5, (tmp_path / "b").read_bytes())


def test_cometx_resource_names_leave_kinds_of_record_out(playbook, mlflow_pair, tmp_path):
    """resources: {exclude: [metrics, others, html, run]}: no metric, no key-value tag, no HTML at the target; the
    rest copied and verified; a name that is not cometx's is refused."""
    root = tmp_path / "comet"
    comet_archives.write_full(root, tmp_path)
    source = {"kind": "comet_offline", "comet_dir": str(root)}
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    name = "res-" + uuid.uuid4().hex[:8]
    result = playbook(play(source, target, str(tmp_path / "s"), experiments=[EXPERIMENT], name_prefix=f"{name}-",
                           resources={"exclude": ["metrics", "others", "html", "run"]})).task(TASK)["result"]
    assert (result["runs"]["copied"], result["failed_count"]) == (1, 0), result["failures"]
    client = MlflowClient(target["tracking_uri"])
    run = copies(client, f"{name}-{EXPERIMENT}")["a" * 32]
    assert run.data.metrics == {} or set(run.data.metrics) == {"system/sys.cpu.percent"}  # system is its own resource
    assert (run.data.tags["a"], run.data.tags["b"]) == ("", "") and "owner" not in run.data.tags
    assert run.data.params == {"lr": "0.01", "layers": "3", "opt.name": "adam", "opt.beta": "0.9"}
    files = md5s(client, run.info.run_id)
    assert "mlops-migration/text/html.jsonl" not in files and "mlops-migration/text/text.jsonl" in files
    assert "model/weights.bin" in files
    refused = playbook(play(source, target, str(tmp_path / "s2"), resources={"include": ["metric"]}), expect_rc=2)
    assert "metric" in refused.stdout and "value of include must be one or more of" in refused.stdout


def test_comet_archives_into_another_workspace_keep_their_keys_and_a_re_copy_updates(playbook, tmp_path):
    """Comet → Comet (workspace ws → team): each copy keeps its experiment key, which the ledger records; a re-copy
    whose ledger was lost finds the copies by key and rewrites them (one archive a key, never two); with the ledger
    a re-copy changes nothing."""
    source_root, target_root = tmp_path / "source", tmp_path / "target"
    comet_archives.write_full(source_root, tmp_path)
    comet_archives.write_small(source_root)
    source = {"kind": "comet_offline", "comet_dir": str(source_root)}
    target = {"kind": "comet_offline", "comet_dir": str(target_root), "workspace": "team"}
    state = str(tmp_path / "s")
    first = playbook(play(source, target, state, experiments=[EXPERIMENT])).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (2, 0), first["failures"]
    written = comet_archives.archives(target_root)
    assert [os.path.basename(p) for p in written] == [f"{'a' * 32}.zip", f"{'b' * 32}.zip"]  # the keys kept
    for path in written:
        meta = json.loads(comet_archives.zipfile.ZipFile(path).read("experiment.json"))
        assert (meta["workspace"], meta["project_name"]) == ("team", "proj")
    ledger = sqlite3.connect(os.path.join(state, "migration-state.sqlite"))
    try:
        assert dict(ledger.execute("SELECT source_id, target_id FROM objects WHERE kind = 'run'")) == {
            "a" * 32: "a" * 32, "b" * 32: "b" * 32}
    finally:
        ledger.close()
    lost = playbook(play(source, target, str(tmp_path / "s2"), experiments=[EXPERIMENT])).task(TASK)["result"]
    assert (lost["runs"]["copied"], lost["failed_count"]) == (2, 0), lost["failures"]
    assert comet_archives.archives(target_root) == written  # rewritten in place, not duplicated
    again = playbook(play(source, target, state, experiments=[EXPERIMENT])).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 2
