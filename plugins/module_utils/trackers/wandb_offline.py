# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A W&B offline run folder read into the neutral records of trackers/base.py.

``read_run(folder)`` decodes every record of ``run-<id>.wandb`` (trackers/wandb_log.py frames them; the
``wandb`` package's protobuf classes decode them) into an ``OfflineRun``:

- the ``run`` record: id, name, project (the experiment), entity, group, job type, notes (the run's
  description), tags (kept as ``{tag: ""}``), start time;
- ``config`` (the run record's and later updates, nested keys joined into a mapping; ``_wandb`` left out):
  ``Run.config``, and ``Run.params`` its flattening with dotted keys and JSON values;
- every ``history`` row: numbers become ``Point``s with the row's ``_step`` and ``_timestamp`` (ms);
  values W&B logs as typed objects (``_type``: ``image-file``, ``histogram`` ...) become ``SeriesItem``s
  of kind media or histogram (a media item's ``file`` is its path among the run's files);
- ``summary`` updates and removals applied in order (``_runtime``, ``_step``, ``_timestamp`` and
  ``_wandb`` left out): ``Run.summary``;
- ``output_raw``: console lines (``stdout``/``stderr``), a text series ``console``;
- ``files``: the run's file paths; ``artifact``: logged artifacts (name, type, digest, aliases, metadata, and
  each file's path, md5, size and the SDK's staging copy ``local_path``) in ``OfflineRun.logged``;
- ``exit``: the status (FINISHED, or FAILED on a non-zero exit code) and the end time (the start plus the
  exit's runtime, or the last row's ``_timestamp``).

A run whose log has no ``exit`` record was still running or was cut off: its status is RUNNING, so
nothing built on it is marked complete. A log cut off or corrupt raises WandbLogError (with the
records read before it in the error's ``partial``). Importable without Ansible; ``read_run`` needs
``wandb``.
"""

from __future__ import annotations

import base64
import binascii
import glob
import json
import os
from dataclasses import dataclass, field

from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import Point, Run, SeriesItem
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_log import read_records, WandbLogError

ROW_KEYS = ("_step", "_timestamp", "_runtime")
SUMMARY_LEFT_OUT = ("_wandb", "_runtime", "_step", "_timestamp")
LOGGED_DIR = "wandb-artifacts"  # logged artifacts appear as artifacts <LOGGED_DIR>/<name>/<path>, and <name>.json
MEDIA_TYPES = ("image-file", "video-file", "audio-file", "html-file", "object3D-file", "molecule-file")


@dataclass
class OfflineRun:
    run: Run
    entity: str | None = None
    points: dict = field(default_factory=dict)  # metric key -> [Point]
    series: list = field(default_factory=list)  # SeriesItem, in log order
    files: list = field(default_factory=list)
    logged: list = field(default_factory=list)  # logged artifacts: name, type, digest, ..., files [{path, md5, ...}]
    records: int = 0


def run_log(folder):
    """The ``run-<id>.wandb`` of an offline run folder (WandbLogError when there is none, or several)."""
    found = glob.glob(os.path.join(folder, "run-*.wandb"))
    if len(found) != 1:
        raise WandbLogError(f"{folder} holds {len(found)} run-<id>.wandb files; an offline run folder holds one")
    return found[0]


def _key(item):
    return ".".join(item.nested_key) if item.nested_key else item.key


def _ms(timestamp):
    return int(timestamp.seconds * 1000 + timestamp.nanos // 1_000_000)


def _set(tree, path, value):
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def flatten(tree, prefix=""):
    """``{dotted key: JSON text}`` of a nested mapping (a leaf's value as JSON)."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def _config_updates(config, updates):
    for item in updates:
        path = list(item.nested_key) or [item.key]
        if path[0] != "_wandb":
            _set(config, path, json.loads(item.value_json))


def _row(out, history):
    """Add one history row's points and series items to ``out``; returns its timestamp (ms) or None.

    W&B writes a logged object (an image, a histogram) as one item per field (``nested_key`` its path), so
    the row is rebuilt as a tree first: a mapping with ``_type`` is one object, any other mapping a
    namespace whose leaves are keys joined with dots."""
    tree = {}
    for item in history.item:
        _set(tree, list(item.nested_key) or [item.key], json.loads(item.value_json))
    step = tree.get("_step", history.step.num if history.HasField("step") else None)
    timestamp = ms_of(tree.get("_timestamp"))
    for key, value in _leaves(tree):
        if key in ROW_KEYS:
            continue
        item = history_item(key, value, step, timestamp)
        if isinstance(item, Point):
            out.points.setdefault(key, []).append(item)
        else:
            out.series.append(item)
    return timestamp


def ms_of(stamp):
    """A history row's ``_timestamp`` (seconds) in ms, or None when it is not a number."""
    return round(stamp * 1000) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else None


def history_item(key, value, step, timestamp):
    """One value of a history row as a neutral record: a number is a ``Point``; a media object (``_type``
    ``image-file`` ...) a media ``SeriesItem`` whose ``file`` is its path among the run's files; a histogram
    one with ``{"edges", "values"}``; another typed object a plot item; anything else a text item (as JSON)."""
    if isinstance(value, dict):
        kind = value.get("_type")
        if kind in MEDIA_TYPES:
            return SeriesItem(key, step, timestamp, file=value.get("path"), caption=value.get("caption"),
                              data={k: v for k, v in value.items() if k != "path"})
        if kind == "histogram":
            return SeriesItem(key, step, timestamp, data={"edges": value.get("bins"), "values": value.get("values")})
        return SeriesItem(key, step, timestamp, data=value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Point(key, float(value), timestamp, step)
    return SeriesItem(key, step, timestamp, text=json.dumps(value))


def _leaves(tree, prefix=""):
    """``(dotted key, value)`` of a row tree, a typed object (``_type``) being one leaf."""
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and "_type" not in value:
            yield from _leaves(value, name + ".")
        else:
            yield name, value


def md5_hex(digest):
    """A manifest entry's base64 md5 in hex; None when it is none (a reference keeps another digest)."""
    try:
        raw = base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def _logged_artifact(artifact):
    """A logged artifact record as data; each file's md5 in hex (the manifest holds it in base64)."""
    try:
        metadata = json.loads(artifact.metadata) if artifact.metadata else {}
    except ValueError:
        metadata = artifact.metadata
    files = [{"path": entry.path, "md5": md5_hex(entry.digest),
              "size": entry.size, "local_path": entry.local_path or None, "ref": entry.ref or None}
             for entry in artifact.manifest.contents]
    return {"name": artifact.name, "type": artifact.type, "digest": artifact.digest,
            "description": artifact.description or None, "metadata": metadata, "aliases": list(artifact.aliases),
            "files": files}


def by_name(logged):
    """``{name: logged artifact}`` of a run's logged artifacts (a name logged again gets ``-2``, ``-3`` ...)."""
    out = {}
    for artifact in logged:
        name, n = artifact["name"] or "artifact", 1
        while name in out:
            n += 1
            name = f"{artifact['name']}-{n}"
        out[name] = artifact
    return out


def series_kind(item):
    """The neutral series kind (text, media, histogram or plot) of a SeriesItem read from a W&B run."""
    if item.text is not None:
        return "text"
    if item.file:
        return "media"
    if isinstance(item.data, dict) and "edges" in item.data:
        return "histogram"
    return "plot"


def read_run(folder, pb=None):
    """The OfflineRun of an offline run folder (``pb``: wandb's ``wandb_internal_pb2``, imported when None)."""
    if pb is None:
        from wandb.proto import wandb_internal_pb2 as pb  # pylint: disable=import-outside-toplevel
    path = run_log(folder)
    run = Run(id="", experiment_id="", name="", start_time=None, end_time=None, status="RUNNING", user=None)
    out, config, summary, last_stamp, exit_record = OfflineRun(run), {}, {}, None, None
    try:
        for _offset, data in read_records(path):
            record = pb.Record()
            record.ParseFromString(data)
            out.records += 1
            kind = record.WhichOneof("record_type")
            if kind == "run":
                info = record.run
                run.id, run.name, run.experiment_id = info.run_id, info.display_name or info.run_id, info.project
                run.group, run.job_type = info.run_group or None, info.job_type or None
                run.description = info.notes or None
                run.tags = {tag: "" for tag in info.tags}
                run.start_time = _ms(info.start_time) if info.HasField("start_time") else None
                if info.HasField("branch_point") and info.branch_point.run:  # a fork (wandb.init(fork_from=...))
                    run.parent_id, run.fork_step = info.branch_point.run, float(info.branch_point.value)
                out.entity = info.entity or None
                _config_updates(config, info.config.update)
            elif kind == "config":
                _config_updates(config, record.config.update)
            elif kind == "history":
                last_stamp = _row(out, record.history) or last_stamp
            elif kind == "summary":
                for item in record.summary.update:
                    path_ = list(item.nested_key) or [item.key]
                    if path_[0] not in SUMMARY_LEFT_OUT:
                        _set(summary, path_, json.loads(item.value_json))
                for item in record.summary.remove:
                    path_ = list(item.nested_key) or [item.key]
                    summary.pop(path_[0], None) if len(path_) == 1 else None
            elif kind == "output_raw":
                stream = "stderr" if record.output_raw.output_type == pb.OutputRawRecord.OutputType.STDERR else "stdout"
                out.series.append(SeriesItem("console", None, _ms(record.output_raw.timestamp),
                                             text=record.output_raw.line, data={"stream": stream}))
            elif kind == "files":
                out.files.extend(f.path for f in record.files.files if f.path not in out.files)
            elif kind == "artifact":
                out.logged.append(_logged_artifact(record.artifact))
            elif kind == "exit":
                exit_record = record.exit
    except WandbLogError as exc:
        exc.partial = out
        raise
    run.config = config
    run.params = flatten(config)
    run.summary = summary
    run.metric_keys = sorted(out.points)
    run.series = {}
    for item in out.series:
        keys = run.series.setdefault(series_kind(item), [])
        if item.key not in keys:
            keys.append(item.key)
    if exit_record is not None:
        run.status = "FAILED" if exit_record.exit_code else "FINISHED"
        if run.start_time is not None and exit_record.runtime:
            run.end_time = run.start_time + int(exit_record.runtime * 1000)
        else:
            run.end_time = last_stamp
    return out
