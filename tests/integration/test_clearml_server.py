"""A ClearML server's stores (FerretDB for its ``backend`` database, OpenSearch for its event indices, SeaweedFS for
its files) as a tracker source, copied into a real MLflow server field by field. The stores hold what the ClearML
SDK wrote in the test (an offline session), loaded as the server keeps an imported task
(tests/clearml_server_stores.py: no ClearML server runs here). The task filter selects as the mongo step does;
check mode writes nothing, a re-run changes nothing; an artifact whose object is gone fails its task naming the task
and the artifact, leaves nothing complete, and the re-run after it is back copies it; a company without event
indices, a database without tasks and an unreachable search server are refused before anything is written."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tests import clearml_events, clearml_server_stores, clearml_sessions, mlflow_records
from tests.integration.test_mlflow_to_wandb import md5s, play
from tests.integration.test_tracker_copy import copies

pytestmark = pytest.mark.integration
TASK = "copy"
PROJECT = "vision/detection"


@pytest.fixture
def server(mongo_pair, search_pair, s3_pair, sdk_session):
    """The session loaded twice into the source stores under a fresh database, company and bucket: the second
    copy of the task failed (status), so a task filter can leave it out."""
    label = uuid.uuid4().hex[:8]
    database, company, bucket = f"backend_{label}", f"co{label}", f"clearml-{label}"
    s3 = s3_pair["source"].client()
    s3.create_bucket(Bucket=bucket)
    search = search_pair["source"]
    clearml_events.install_templates(search.request)
    client = mongo_pair["source"].client()
    db = client[database]
    kept = clearml_server_stores.load_session(sdk_session, db, search.request, s3, bucket, seed="a", company=company)
    failed = clearml_server_stores.load_session(sdk_session, db, search.request, s3, bucket, seed="b",
                                                company=company)
    db["task"].update_one({"_id": failed["_id"]}, {"$set": {"status": "failed", "name": "baseline-failed"}})
    source = {"kind": "clearml_server", "mongo_uri": mongo_pair["source"].uri, "mongo_database": database,
              "search_url": search.url, "company": company,
              "s3": {"endpoint_url": s3_pair["source"].endpoint_url, "access_key": s3_pair["source"].access_key,
                     "secret_key": s3_pair["source"].secret_key}}
    yield {"source": source, "kept": kept, "failed": failed, "s3": s3, "bucket": bucket, "db": db}
    client.drop_database(database)
    client.close()


def test_server_stores_into_mlflow_field_by_field(playbook, mlflow_pair, server, sdk_session, tmp_path):
    source, kept = server["source"], server["kept"]
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    client = MlflowClient(target["tracking_uri"])
    name = "cs-" + uuid.uuid4().hex[:8]
    state = str(tmp_path / "state")
    source = dict(source, task_filter={"status": {"$in": ["completed", "published"]}})
    options = dict(experiments=[PROJECT], name_prefix=f"{name}-")
    checked = playbook(play(source, target, state, **options), check=True).task(TASK)["result"]
    assert checked["runs"]["copied"] == 1 and client.get_experiment_by_name(f"{name}-{PROJECT}") is None

    first = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert (first["runs"]["copied"], first["failed_count"]) == (1, 0), first
    assert first["points_copied"] == 2 * clearml_sessions.LOSS_POINTS
    runs = copies(client, f"{name}-{PROJECT}")
    assert list(runs) == [kept["_id"]]  # the failed task left out by the filter
    run = runs[kept["_id"]]
    experiment = client.get_experiment_by_name(f"{name}-{PROJECT}")
    assert experiment.tags["mlflow.note.content"] == "the detection project"
    assert (run.info.run_name, run.info.status, run.info.user_id) == ("baseline", "FINISHED", "alice")
    assert run.info.start_time == int(kept["started"].replace(tzinfo=__import__("datetime").timezone.utc)
                                      .timestamp() * 1000)
    assert run.data.params == {"General/lr": "0.01", "General/layers": "3", "Optimizer/name": "adam",
                               "Optimizer/beta": "0.9"}
    tags = run.data.tags
    assert (tags["nightly"], tags["gpu"], tags["clearml.status"], tags["clearml.system_tags"]) == (
        "", "", "completed", "development")
    assert tags["mlflow.note.content"] == "the baseline run"
    events = clearml_sessions.session_json(sdk_session, "metrics.jsonl")
    for variant in ("train", "val"):
        history = client.get_metric_history(run.info.run_id, f"loss/{variant}")
        mine = sorted((e["iter"], e["timestamp"], e["value"]) for e in events
                      if e["type"] == "training_stats_scalar" and e["variant"] == variant)
        assert sorted((m.step, m.timestamp, m.value) for m in history) == mine and len(mine) == 1200
    files = md5s(client, run.info.run_id)
    assert files["notes/notes.txt"] == hashlib.md5(clearml_sessions.NOTES.encode()).hexdigest()
    assert files["clearml/models/best/best.pt"] == hashlib.md5(clearml_sessions.WEIGHTS).hexdigest()
    side = mlflow_records.side_lines(client, run.info.run_id, "mlops-migration/media/samples/input.jsonl")
    assert [line["step"] for line in side] == list(range(clearml_sessions.IMAGES))
    s3, bucket = server["s3"], server["bucket"]
    in_s3 = sorted(hashlib.md5(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()).hexdigest()
                   for o in s3.list_objects_v2(Bucket=bucket)["Contents"]
                   if "/metrics/samples/input/" in o["Key"] and kept["_id"] in o["Key"])
    assert sorted(files[line["artifact"]] for line in side) == in_s3 and len(in_s3) == clearml_sessions.IMAGES
    (plot,) = mlflow_records.side_lines(client, run.info.run_id, "mlops-migration/plot/confusion/matrix.jsonl")
    assert plot["data"]["data"][0]["z"] == [[1, 2], [3, 4]]
    console = mlflow_records.side_lines(client, run.info.run_id, "mlops-migration/text/console.jsonl")
    assert all(line in "".join(c["text"] for c in console) for line in clearml_sessions.CONSOLE_LINES)
    with open(client.download_artifacts(run.info.run_id, "clearml/task.json"), encoding="utf-8") as handle:
        assert json.load(handle)["last_iteration"] == kept["last_iteration"]

    again = playbook(play(source, target, state, **options)).task(TASK)["result"]
    assert not again["changed"] and again["runs"]["skipped"] == 1


def test_a_missing_artifact_fails_its_task_and_the_rerun_copies_it(playbook, mlflow_pair, server, tmp_path):
    source, kept, s3, bucket = server["source"], server["kept"], server["s3"], server["bucket"]
    notes = next(a for a in kept["execution"]["artifacts"].values() if a["key"] == "notes")
    key = notes["uri"][len(f"s3://{bucket}/"):]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.delete_object(Bucket=bucket, Key=key)
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    name = "cm-" + uuid.uuid4().hex[:8]
    state = tmp_path / "state"
    source = dict(source, task_filter={"_id": kept["_id"]})
    failed = playbook(play(source, target, str(state), experiments=[PROJECT], name_prefix=f"{name}-"),
                      expect_rc=2).task(TASK)["result"]
    assert failed["failed_count"] == 1
    reason = failed["failures"][0]["reason"]
    assert f"task {kept['_id']}: artifact notes: {notes['uri']} cannot be read" in reason
    with sqlite3.connect(state / "migration-state.sqlite") as ledger:
        assert not ledger.execute("SELECT * FROM objects WHERE kind = 'run' AND state = 'complete'").fetchall()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    again = playbook(play(source, target, str(state), experiments=[PROJECT], name_prefix=f"{name}-")).task(TASK)
    assert (again["result"]["runs"]["copied"], again["result"]["failed_count"]) == (1, 0)
    (run,) = list(copies(MlflowClient(target["tracking_uri"]), f"{name}-{PROJECT}").values())
    assert md5s(MlflowClient(target["tracking_uri"]), run.info.run_id)["notes/notes.txt"] == hashlib.md5(body).hexdigest()


def test_bad_stores_are_refused_before_any_write(playbook, mlflow_pair, server, search_pair, tmp_path):
    target = {"tracking_uri": mlflow_pair["target"].tracking_uri}
    cases = {
        "company": (dict(server["source"], company="nosuchco"), "has no index events-*-nosuchco"),
        "database": (dict(server["source"], mongo_database="nosuchdb"), "the database nosuchdb has no task collection"),
        "search": (dict(server["source"], search_url="http://127.0.0.1:9"), "cannot reach the search server"),
    }
    for label, (source, expected) in cases.items():
        name = f"{label}-{uuid.uuid4().hex[:6]}"
        result = playbook(play(source, target, str(tmp_path / label), experiments=[PROJECT], name_prefix=f"{name}-"),
                          expect_rc=2).task(TASK)["result"]
        assert expected in result["msg"], (label, result["msg"])
        assert MlflowClient(target["tracking_uri"]).get_experiment_by_name(f"{name}-{PROJECT}") is None
