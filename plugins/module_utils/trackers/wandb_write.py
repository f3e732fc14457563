# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run held back until it is whole (``PendingRun``), then written through the W&B SDK as one offline run folder
(``write_offline``), ready for ``wandb sync`` on the far side of an air gap.

The SDK writes a run from ``init`` to ``finish`` and drops a ``log`` whose step is below the run's current
step, so a run's records are spooled first (points and row items in a SQLite file ordered by step, files
in a directory) and written in step order at the end, one SDK run at a time (two live runs in one process
share settings). The folder is written in the spool and moved into ``<wandb_dir>/wandb/`` when finished, so
a folder there is always whole. What the SDK cannot hold goes where the reader (trackers/wandb.py) finds it:

    config key ``mlops_migration``     MIGRATION_KEY: original start and end time, status, user, lifecycle,
                                       parent, fork step, key-value tags, the source's ids and URI, which
                                       summary keys are the source's, params when they are not the config
    mlops-migration/points.jsonl        points a history row cannot hold: a step that is negative or not
                                       whole, a second value of a key at one step ({key, step, timestamp,
                                       value})
    mlops-migration/timestamps.jsonl    points whose time differs from their row's ``_timestamp`` ({key,
                                       step, timestamp})
    mlops-migration/<kind>/<key>.jsonl  text and plot series, and media and histograms without a whole step
                                       (trackers/side_files.py)
    mlops-migration/artifacts.json      the run's artifacts: path -> where it is among the run's files (a
                                       path W&B uses itself goes under mlops-migration/artifacts/)
    mlops-migration/inputs.json         dataset inputs
Importable without Ansible; writing needs ``wandb``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sqlite3
import threading

from ansible_collections.mlops.migration.plugins.module_utils.paths import confined
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import SeriesItem
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_files import SERIES_DIR, SeriesFile
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_offline import flatten

MIGRATION_KEY = "mlops_migration"
POINTS_FILE = SERIES_DIR + "/points.jsonl"
TIMESTAMPS_FILE = SERIES_DIR + "/timestamps.jsonl"
ARTIFACTS_FILE = SERIES_DIR + "/artifacts.json"
INPUTS_FILE = SERIES_DIR + "/inputs.json"
MOVED_ARTIFACTS = SERIES_DIR + "/artifacts/"
# paths among a run's files that the SDK writes itself, or that are ours
RESERVED = ("config.yaml", "wandb-summary.json", "wandb-metadata.json", "output.log", "requirements.txt",
            "diff.patch", "conda-environment.yaml", "media/", "code/", "artifact/", SERIES_DIR + "/")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
LABEL_MAX = 64
HISTOGRAM_BINS = 512  # the most bins wandb.Histogram takes
SDK_LOCK = threading.Lock()  # one SDK run at a time in this process
ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PROJECT_BAD = re.compile(r"[/\\#?%:]")


def run_id_for(source_id):
    """The W&B run id of a copy: the source's id when W&B accepts it, otherwise one derived from it."""
    text = str(source_id)
    if ID_RE.fullmatch(text):
        return text
    return "m" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def project_for(name):
    """The W&B project name for an experiment name (``/ \\ # ? % :`` are not allowed in one: each becomes ``-``)."""
    return PROJECT_BAD.sub("-", str(name)).strip()[:128] or "uncategorized"


def _decodable(path):
    """Whether the image file at ``path`` is one the W&B SDK (through Pillow) can load."""
    try:
        from PIL import Image  # pylint: disable=import-outside-toplevel

        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # pylint: disable=broad-except  # Pillow raises many kinds for a file it cannot read
        return False


def whole_step(step):
    """``step`` as an int when a history row can hold it (a whole number, not negative), else None."""
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        return None
    if not math.isfinite(step) or step < 0 or not float(step).is_integer():
        return None
    return int(step)


class PendingRun:
    """Everything of one run until it is written; the spool is the directory ``spool``."""

    def __init__(self, spool, run_id, project, entity, run, tags, parent_id):
        shutil.rmtree(spool, ignore_errors=True)
        self.spool, self.files = spool, os.path.join(spool, "files")
        os.makedirs(self.files)
        os.makedirs(os.path.join(spool, "items"))
        self.id, self.project, self.entity, self.run, self.parent_id = run_id, project, entity, run, parent_id
        self.tags = dict(tags)
        self.params, self.summary, self.config, self.inputs = {}, {}, None, []
        self.status, self.end_time = "RUNNING", None
        self.artifacts = {}  # source path -> path among the run's files
        self.side = {}  # (kind, key) -> SeriesFile
        self.series_keys = {}  # kind -> keys, in order
        self.db = sqlite3.connect(os.path.join(spool, "rows.sqlite"), check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE rows (seq INTEGER PRIMARY KEY, step INTEGER, ts INTEGER, key TEXT, "
                        "value REAL, item TEXT)")
        self.extra = open(os.path.join(spool, "points.jsonl"), "w", encoding="utf-8")
        self.extras = self.images = 0

    # what the copy hands over -----------------------------------------------------------------

    def add_points(self, points):
        rows = []
        for point in points:
            step = whole_step(point.step)
            if step is None:
                self._extra(point.key, point.step, point.timestamp, point.value)
            else:
                rows.append((step, point.timestamp, point.key, point.value, None))
            if len(rows) >= 5000:
                self._rows(rows)
                rows = []
        self._rows(rows)

    def _rows(self, rows):
        if rows:
            self.db.executemany("INSERT INTO rows (step, ts, key, value, item) VALUES (?, ?, ?, ?, ?)", rows)

    def _extra(self, key, step, timestamp, value):
        self.extra.write(json.dumps({"key": key, "step": step, "timestamp": timestamp, "value": value}) + "\n")
        self.extras += 1

    def add_series(self, kind, key, items, fetch):
        """Media images and histograms with a whole step go into the history rows, the rest into side files."""
        keys = self.series_keys.setdefault(kind, [])
        if key not in keys:
            keys.append(key)
        count, rows = 0, []
        for item in items:
            step = whole_step(item.step)
            payload = None
            if step is not None and kind == "histogram" and _histogram(item.data):
                payload = {"histogram": _histogram(item.data)}
            elif step is not None and kind == "media" and item.file and item.file.lower().endswith(IMAGE_SUFFIXES):
                self.images += 1
                local = os.path.join(self.spool, "items", f"{self.images:08d}{os.path.splitext(item.file)[1].lower()}")
                fetch(item, local)
                if _decodable(local):
                    payload = {"image": local, "caption": item.caption}
                else:  # named like an image, but not one W&B can load: a side-file item, fetched once
                    self.side_file(kind, key).add(item, lambda _item, path, local=local: shutil.move(local, path))
                    count += 1
                    continue
            if payload is None:
                self.side_file(kind, key).add(item, fetch)
            else:
                rows.append((step, item.timestamp, key, None, json.dumps(dict(payload, kind=kind))))
            count += 1
        self._rows(rows)
        return count

    def side_file(self, kind, key):
        if (kind, key) not in self.side:
            self.side[kind, key] = SeriesFile(kind, key, os.path.join(self.spool, "items"), self.put)
        return self.side[kind, key]

    def put(self, local, path):
        """Move the local file ``local`` to ``path`` among the run's files."""
        dest = confined(self.files, path, "file")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.move(local, dest)

    def add_artifact(self, path, local):
        stored = MOVED_ARTIFACTS + path if path.startswith(RESERVED) else path
        dest = confined(self.files, stored, "artifact")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(local, dest)
        self.artifacts[path] = stored

    # what the SDK writes ----------------------------------------------------------------------

    def migration_record(self):
        """The config key MIGRATION_KEY: every run field W&B has no place for."""
        run = self.run
        tags = {k: v for k, v in self.tags.items() if not _label(k, v)}
        record = {"start_time": run.start_time, "end_time": self.end_time, "status": self.status, "user": run.user,
                  "lifecycle": run.lifecycle, "parent_id": self.parent_id, "fork_step": run.fork_step, "tags": tags,
                  "summary_keys": sorted(self.summary), "nested_config": self.config is not None, "series": self.series_keys}
        if self.config is not None and flatten(self.config) != self.params:
            record["params"] = self.params
        return record

    def rows(self):
        """``(step, row, timestamps)`` in step order: a row of key -> value for ``log``, and the points whose
        time is not the row's (``{key: ms}``); a second value of a key at one step goes to the extra points."""
        current, row, stamps = None, {}, {}
        for step, stamp, key, value, item in self.db.execute(
                "SELECT step, ts, key, value, item FROM rows ORDER BY step, seq"):
            if step != current:
                if current is not None:
                    yield current, row, stamps
                current, row, stamps = step, {}, {}
            if key in row:
                if item is None:
                    self._extra(key, step, stamp, value)
                else:
                    self._late_item(key, step, stamp, json.loads(item))
                continue
            row[key] = value if item is None else json.loads(item)
            stamps[key] = stamp
        if current is not None:
            yield current, row, stamps

    def _late_item(self, key, step, stamp, payload):
        if "histogram" in payload:
            self.side_file("histogram", key).add(SeriesItem(key, step, stamp, data=payload["histogram"]))
        else:
            self.side_file("media", key).add(SeriesItem(key, step, stamp, file=os.path.basename(payload["image"]),
                                                        caption=payload.get("caption")), local=payload["image"])

    def close(self):
        self.extra.close()
        self.db.close()

    def discard(self):
        self.close()
        shutil.rmtree(self.spool, ignore_errors=True)


def _label(key, value):
    """Whether a neutral tag is a W&B tag (a label): an empty value and a name W&B takes."""
    return value == "" and 0 < len(key) <= LABEL_MAX


def _histogram(data):
    """``(values, edges)`` of a histogram item's data when W&B can hold it, else None."""
    if not isinstance(data, dict):
        return None
    values, edges = data.get("values"), data.get("edges")
    if isinstance(values, list) and isinstance(edges, list) and 0 < len(values) <= HISTOGRAM_BINS \
            and len(edges) == len(values) + 1:
        return [values, edges]
    return None


def write_offline(pending, wandb_dir, wandb):
    """Write ``pending`` through the SDK (the ``wandb`` module) and move the finished folder into
    ``<wandb_dir>/wandb/``; returns the folder. Raises what the SDK raises."""
    sdk_dir = os.path.join(pending.spool, "sdk")
    os.makedirs(sdk_dir, exist_ok=True)
    run = pending.run
    config = dict(pending.config if pending.config is not None else pending.params)
    config[MIGRATION_KEY] = pending.migration_record()
    labels = sorted(k for k, v in pending.tags.items() if _label(k, v))
    settings = wandb.Settings(console="off", save_code=False, disable_git=True, x_disable_stats=True,
                              disable_job_creation=True, x_disable_meta=True)
    fork = fork_from(pending.parent_id, run.fork_step, pending.id)
    with SDK_LOCK:
        os.environ["WANDB_SILENT"] = "true"
        sdk_run = wandb.init(dir=sdk_dir, mode="offline", id=pending.id, project=pending.project,
                             entity=pending.entity, name=run.name or pending.id, group=run.group,
                             job_type=run.job_type, tags=labels, notes=run.description, config=config,
                             settings=settings, reinit="create_new", **({"fork_from": fork} if fork else {}))
        try:
            with open(os.path.join(pending.spool, "timestamps.jsonl"), "w", encoding="utf-8") as times:
                for step, row, stamps in pending.rows():
                    known = [s for s in stamps.values() if s is not None]
                    first = min(known) if known else None
                    values = {key: _sdk_value(wandb, value) for key, value in row.items()}
                    if first is not None:
                        values["_timestamp"] = first / 1000.0
                    sdk_run.log(values, step=step)
                    for key, stamp in stamps.items():
                        if stamp != first:
                            times.write(json.dumps({"key": key, "step": step, "timestamp": stamp}) + "\n")
            for series in pending.side.values():
                series.close()
            pending.extra.close()
            for local, path in (("timestamps.jsonl", TIMESTAMPS_FILE), ("points.jsonl", POINTS_FILE)):
                if os.path.getsize(os.path.join(pending.spool, local)):
                    pending.put(os.path.join(pending.spool, local), path)
            _json_file(pending, ARTIFACTS_FILE, pending.artifacts)
            if pending.inputs:
                _json_file(pending, INPUTS_FILE, pending.inputs)
            for name, value in pending.summary.items():
                sdk_run.summary[name] = value
            for directory, _dirs, names in os.walk(pending.files):
                for name in names:
                    rel = os.path.relpath(os.path.join(directory, name), pending.files)
                    dest = os.path.join(sdk_run.dir, rel)
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    shutil.move(os.path.join(directory, name), dest)
                    sdk_run.save(dest, base_path=sdk_run.dir, policy="now")
        except BaseException:
            sdk_run.finish(exit_code=1)
            raise
        sdk_run.finish(exit_code=0 if pending.status in ("FINISHED", "RUNNING") else 1)
    folder = os.path.dirname(os.path.abspath(sdk_run.dir))
    final = os.path.join(wandb_dir, "wandb", os.path.basename(folder))
    os.makedirs(os.path.dirname(final), exist_ok=True)
    os.replace(folder, final)
    pending.discard()
    return final


def fork_from(parent_id, fork_step, run_id):
    """W&B's ``fork_from`` (``<parent run id>?_step=<step>``) of a fork whose step is whole and whose parent is
    another run; None otherwise (the parent and fork step are then kept in the migration record only)."""
    step = whole_step(fork_step)
    if not parent_id or step is None or parent_id == run_id:
        return None
    return f"{parent_id}?_step={step}"


def _sdk_value(wandb, value):
    if not isinstance(value, dict):
        return value
    if "histogram" in value:
        values, edges = value["histogram"]
        return wandb.Histogram(np_histogram=(values, edges))
    return wandb.Image(value["image"], caption=value.get("caption"))


def _json_file(pending, path, value):
    local = os.path.join(pending.spool, "items", os.path.basename(path))
    with open(local, "w", encoding="utf-8") as out:
        json.dump(value, out, sort_keys=True, indent=1, default=str)
    pending.put(local, path)
