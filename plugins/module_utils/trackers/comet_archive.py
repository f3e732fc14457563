# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A reader of the archives Comet's ``OfflineExperiment`` writes (``<experiment key>.zip``, for ``comet upload``).

An archive holds ``experiment.json`` (``offline_id``, ``workspace``, ``project_name``, ``start_time`` and
``stop_time`` in ms, ``tags``) and ``messages.json``: one JSON message a line, ``{"type", "payload"}``, in the
order the SDK logged them, the files of ``file_upload`` messages beside them under the names their
``file_path`` gives. ``read_archive`` makes one pass over the messages and keeps everything but the metric
points (their keys and counts only); ``metric_points`` streams one metric's points again, so memory stays
bounded by the run's fields, not its series. Every fault names the archive, and a bad message its line: an
archive that is not a zip or fails its CRC, a missing ``experiment.json``, a line that is not a message, a
file the messages name that is not in the archive. Importable without Ansible; needs nothing outside Python.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field

EXPERIMENT_FILE = "experiment.json"
MESSAGES_FILE = "messages.json"
AUTO_PARAMS = ("curr_step", "curr_epoch")  # the SDK's own bookkeeping, logged as parameters
NESTED_SEPARATOR = "|"  # Comet's separator in the names of nested parameters
SDK_OTHERS = ("offline_experiment", "hasNestedParams", "Name")  # others the SDK sets itself (Name: the run name)


class CometArchiveError(ValueError):
    """An archive that cannot be read as Comet wrote it; the message names the archive (and line)."""


@dataclass
class Upload:
    """A ``file_upload`` message: what kind (``upload_type``), under which name, at which step."""

    upload_type: str
    file_name: str
    member: str
    step: int | None
    epoch: int | None
    timestamp: int | None
    metadata: dict
    line: int


@dataclass
class CometRun:
    path: str
    key: str
    workspace: str | None
    project: str | None
    start_time: int | None
    stop_time: int | None
    tags: list
    error: str | None = None  # the SDK's own error report (customer_error_message)
    name: str | None = None
    params: dict = field(default_factory=dict)  # name -> value, as logged (nested names joined by "|")
    nested: bool = False
    others: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # name -> number of points
    epochs: dict = field(default_factory=dict)  # step -> (epoch, timestamp), from the points that carry one
    uploads: list = field(default_factory=list)
    html: list = field(default_factory=list)  # (timestamp, html) in order
    output: list = field(default_factory=list)  # (timestamp, text, stderr) in order
    unmapped: list = field(default_factory=list)  # (line, message) of the types this reader has no place for


def _open(path):
    try:
        archive = zipfile.ZipFile(path)  # pylint: disable=consider-using-with
    except (OSError, zipfile.BadZipFile) as exc:
        raise CometArchiveError(f"{path}: not a Comet offline archive (not a readable zip: {exc})") from exc
    names = set(archive.namelist())
    for needed in (EXPERIMENT_FILE, MESSAGES_FILE):
        if needed not in names:
            archive.close()
            raise CometArchiveError(f"{path}: not a Comet offline archive (no {needed})")
    return archive


def _lines(path, archive):
    """``(line number, message)`` of the archive's messages; a line that is not a message fails naming it."""
    try:
        with archive.open(MESSAGES_FILE) as raw:
            for number, text in enumerate(io.TextIOWrapper(raw, encoding="utf-8"), 1):
                if not text.strip():
                    continue
                try:
                    message = json.loads(text)
                except ValueError as exc:
                    raise CometArchiveError(f"{path}: {MESSAGES_FILE} line {number} is not JSON ({exc}); the "
                                            "archive is cut short or damaged") from exc
                if not isinstance(message, dict) or not isinstance(message.get("payload"), dict) \
                        or not isinstance(message.get("type"), str):
                    raise CometArchiveError(f"{path}: {MESSAGES_FILE} line {number} is not a Comet message "
                                            "(a JSON object with type and payload)")
                yield number, message
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, UnicodeDecodeError) as exc:
        raise CometArchiveError(f"{path}: {MESSAGES_FILE} cannot be read ({exc}); the archive is damaged") from exc


def _metric(path, number, payload):
    metric = payload.get("metric")
    if not isinstance(metric, dict) or not isinstance(metric.get("metricName"), str):
        raise CometArchiveError(f"{path}: {MESSAGES_FILE} line {number}: a metric message without metricName")
    return metric


def read_archive(path):
    """The run an archive holds, in one pass over its messages (metric points counted, not kept)."""
    with _open(path) as archive:
        try:
            meta = json.loads(archive.read(EXPERIMENT_FILE).decode("utf-8"))
        except (ValueError, zipfile.BadZipFile) as exc:
            raise CometArchiveError(f"{path}: {EXPERIMENT_FILE} cannot be read ({exc})") from exc
        if not isinstance(meta, dict) or not meta.get("offline_id"):
            raise CometArchiveError(f"{path}: {EXPERIMENT_FILE} names no offline_id")
        run = CometRun(path, str(meta["offline_id"]), meta.get("workspace"), meta.get("project_name"),
                       meta.get("start_time"), meta.get("stop_time"), list(meta.get("tags") or []),
                       meta.get("customer_error_message") if meta.get("customer_error_reported") else None)
        members = set(archive.namelist())
        for number, message in _lines(path, archive):
            _take(run, path, number, message, members)
    return run


def _take(run, path, number, message, members):  # pylint: disable=too-many-branches
    kind, payload = message["type"], message["payload"]
    stamp = payload.get("local_timestamp")
    if kind == "metric_msg":
        metric = _metric(path, number, payload)
        name = metric["metricName"]
        run.metrics[name] = run.metrics.get(name, 0) + 1
        if metric.get("epoch") is not None and metric.get("step") is not None:
            run.epochs.setdefault(metric["step"], (metric["epoch"], stamp))
    elif kind == "parameter_msg":
        param = payload.get("param") or payload.get("params")  # "params" when the value is a list
        if not isinstance(param, dict) or "paramName" not in param:
            raise CometArchiveError(f"{path}: {MESSAGES_FILE} line {number}: a parameter message without paramName")
        if not (param.get("source") == "auto-logged" and param["paramName"] in AUTO_PARAMS):
            run.params[param["paramName"]] = param.get("paramValue")
    elif kind == "log_other":
        key = payload.get("key")
        if key == "Name":
            run.name = payload.get("value")
        elif key == "hasNestedParams":
            run.nested = bool(payload.get("value"))
        elif key not in SDK_OTHERS:
            run.others[key] = payload.get("value")
    elif kind == "file_upload":
        extra = payload.get("additional_params") or {}
        member = payload.get("file_path")
        if member not in members:
            raise CometArchiveError(f"{path}: {MESSAGES_FILE} line {number} uploads {member!r} "
                                    f"({extra.get('fileName')}), which is not in the archive")
        run.uploads.append(Upload(payload.get("upload_type") or "asset", str(extra.get("fileName") or extra.get("figName") or member), member,
                                  extra.get("step"), extra.get("epoch"), stamp, payload.get("metadata") or {}, number))
    elif kind == "html":
        run.html.append((stamp, payload.get("html") or ""))
    elif kind == "standard_output":
        run.output.append((stamp, payload.get("output") or "", bool(payload.get("stderr"))))
    else:
        run.unmapped.append((number, message))


def metric_points(path, name):
    """``(step, timestamp ms, value, epoch)`` of one metric's points, in the order they were logged."""
    with _open(path) as archive:
        for number, message in _lines(path, archive):
            if message["type"] == "metric_msg":
                metric = _metric(path, number, message["payload"])
                if metric["metricName"] == name:
                    yield (metric.get("step"), message["payload"].get("local_timestamp"),
                           metric.get("metricValue"), metric.get("epoch"))


def copy_member(path, member, dest):
    """Write a file the archive holds to the local file ``dest`` (streamed; a CRC fault fails it)."""
    with _open(path) as archive:
        try:
            with archive.open(member) as src, open(dest, "wb") as out:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise CometArchiveError(f"{path}: {member} cannot be read ({exc})") from exc
