# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""W&B offline runs as a tracker source and target (kind ``wandb_offline``): the ``offline-run-<time>-<id>``
folders under ``wandb_dir`` (a ``wandb/`` directory, or the directory holding it), each read with
trackers/wandb_offline.py and written with trackers/wandb_write.py through the W&B SDK. The W&B project is
the experiment; a run's files under ``files/`` are its artifacts (media files are also its media series'
files). A run this collection wrote carries the config key ``mlops_migration`` and side files under
``files/mlops-migration/`` (trackers/wandb_write.py lists them); reading such a run puts back what they
hold, so a copy reads back as the records it was written from. Experiments' descriptions and tags, and
registered models (W&B offline runs have neither), are kept in side files in ``wandb_dir``
(trackers/side_registry.py). Every W&B convention lives here, in wandb_offline.py and
in wandb_write.py. Importable without Ansible; reading and writing need the ``wandb`` package.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import shutil
import subprocess
import sys
import threading

from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    Artifact,
    Point,
    SOURCE_RUN_TAG,
    SourceAdapter,
    TargetAdapter,
    TrackerError,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.held_run import HeldRunTarget
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_files import input_record, read_series, series_path
from ansible_collections.mlops.migration.plugins.module_utils.trackers.side_registry import SideRegistry
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_log import WandbLogError
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_offline import (
    LOGGED_DIR,
    by_name,
    flatten,
    read_run,
    series_kind,
)
from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_write import (
    ARTIFACTS_FILE,
    MIGRATION_KEY,
    POINTS_FILE,
    TIMESTAMPS_FILE,
    PendingRun,
    project_for,
    run_id_for,
    write_offline,
)

OPTIONS = dict(wandb_dir=dict(type="path"), entity=dict(type="str"), staging_dir=dict(type="path"))
FOLDER = "offline-run-*-*"
SPOOL_DIR = ".mlops-migration-spool"
FULL_RUNS = 8  # runs held with every point at once (more than the copy's parallel runs)
SYNC_SECONDS = 3600  # one run's wandb sync
RESTORED = ("start_time", "end_time", "status", "user", "lifecycle", "parent_id", "fork_step")


def _json_lines(path):
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def restore(folder, found):
    """Put back what a run this collection wrote keeps outside W&B's own records (trackers/wandb_write.py);
    a run without the config key MIGRATION_KEY is left as W&B holds it."""
    found.side, found.manifest = {}, None
    meta = (found.run.config or {}).pop(MIGRATION_KEY, None)
    if not isinstance(meta, dict):
        return found
    run, files = found.run, os.path.join(folder, "files")
    run.params = meta["params"] if "params" in meta else flatten(run.config)
    if not meta.get("nested_config"):
        run.config = None
    for name in RESTORED:
        if name in meta:
            setattr(run, name, meta[name])
    run.tags = dict(run.tags, **(meta.get("tags") or {}))
    keys = set(meta.get("summary_keys") or ())
    run.summary = {key: value for key, value in run.summary.items() if key in keys}
    stamps = {(line["key"], line["step"]): line["timestamp"] for line in _json_lines(os.path.join(files, TIMESTAMPS_FILE))}
    if stamps:
        for key, points in found.points.items():
            for point in points:
                point.timestamp = stamps.get((key, point.step), point.timestamp)
    for line in _json_lines(os.path.join(files, POINTS_FILE)):
        found.points.setdefault(line["key"], []).append(Point(line["key"], line["value"], line["timestamp"],
                                                              line["step"]))
    run.metric_keys = sorted(found.points)
    for kind, keys_ in (meta.get("series") or {}).items():
        for key in keys_:
            path = os.path.join(files, series_path(kind, key))
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as lines:
                    found.side[kind, key] = list(read_series(key, lines))
            if key not in run.series.setdefault(kind, []):
                run.series[kind].append(key)
    manifest = os.path.join(files, ARTIFACTS_FILE)
    if os.path.isfile(manifest):
        with open(manifest, encoding="utf-8") as handle:
            found.manifest = json.load(handle)
    return found


def _read(folder):
    try:
        return restore(folder, read_run(folder))
    except WandbLogError as exc:
        raise TrackerError(f"wandb_offline: {exc}") from exc


class WandbOfflineSource(SideRegistry, SourceAdapter):
    KIND = "wandb_offline"
    LIBRARY = ("wandb", "wandb")
    OPTIONS = OPTIONS
    REQUIRED = ("wandb_dir",)

    def __init__(self, wandb_dir, staging_dir=None):
        self.root = os.path.abspath(os.path.expanduser(wandb_dir))
        self.staging = os.path.abspath(os.path.expanduser(staging_dir)) if staging_dir else None
        self.uri = f"wandb-offline://{self.root}"
        self._runs = None  # run id -> (folder, OfflineRun without its points), read once
        self._full = collections.OrderedDict()  # run id -> OfflineRun with its points, the latest FULL_RUNS
        self.lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["wandb_dir"], settings.get("staging_dir"))

    def folders(self, run_id="*"):
        """The offline run folders (of one run id), in name order (their names start with the time they were made)."""
        pattern = FOLDER if run_id == "*" else f"offline-run-*-{glob.escape(run_id)}"
        found = glob.glob(os.path.join(self.root, pattern)) + glob.glob(os.path.join(self.root, "wandb", pattern))
        return sorted((f for f in found if os.path.isdir(f)), key=os.path.basename)

    def check(self):
        if not os.path.isdir(self.root):
            raise TrackerError(f"wandb_offline: {self.root} is not a directory")
        if not self.folders():
            raise TrackerError(f"wandb_offline: {self.root} holds no offline-run-<time>-<id> folder")

    def _loaded(self):
        with self.lock:
            if self._runs is None:
                runs = {}
                for folder in self.folders():
                    found = _read(folder)
                    if found.run.id in runs:
                        raise TrackerError(f"wandb_offline: run {found.run.id} is in two folders, "
                                           f"{runs[found.run.id][0]} and {folder}; keep one")
                    found.points, found.series, found.side = {}, [], {}  # read again when copied: memory stays bounded
                    runs[found.run.id] = (folder, found)
                self._runs = runs
            return self._runs

    def _entry(self, run_id):
        """(folder, OfflineRun) of a run."""
        entry = self._loaded().get(run_id)
        if entry is None:
            raise TrackerError(f"wandb_offline: no run {run_id} under {self.root}")
        return entry

    def project_ids(self):
        return {found.run.experiment_id for _folder, found in self._loaded().values()}

    def runs(self, experiment, include_deleted=False):
        runs = [found.run for _folder, found in self._loaded().values() if found.run.experiment_id == experiment.id
                and (include_deleted or found.run.lifecycle != "deleted")]
        return sorted(runs, key=lambda run: (run.start_time or 0, run.id))

    def run(self, run_id):
        folder = self._entry(run_id)[0]
        found = _read(folder)  # fresh: an offline run may still be written to
        with self.lock:
            self._runs[run_id] = (folder, found)
            self._keep(run_id, found)
        return found.run

    def _found(self, run):
        """The run's records with every point, read again; the last FULL_RUNS kept, so memory stays bounded."""
        with self.lock:
            if run.id in self._full:
                self._full.move_to_end(run.id)
                return self._full[run.id]
        folder = self._entry(run.id)[0]
        found = _read(folder)
        with self.lock:
            self._keep(run.id, found)
        return found

    def _keep(self, run_id, found):
        self._full[run_id] = found
        self._full.move_to_end(run_id)
        while len(self._full) > FULL_RUNS:
            self._full.popitem(last=False)

    def metric_history(self, run, key):
        return iter(self._found(run).points.get(key, ()))

    def series(self, run, kind, key):
        found = self._found(run)
        yield from (item for item in found.series if item.key == key and series_kind(item) == kind)
        yield from found.side.get((kind, key), ())

    def series_file(self, run, item, path):
        shutil.copyfile(self._file(run, item.file), path)

    def artifacts(self, run):
        folder, found = self._entry(run.id)
        base = os.path.join(folder, "files")
        if found.manifest is not None:  # a run this collection wrote: the artifacts it was given
            return [Artifact(path, os.path.getsize(os.path.join(base, stored)) if os.path.isfile(
                os.path.join(base, stored)) else None) for path, stored in sorted(found.manifest.items())]
        out = []
        for directory, dirs, names in os.walk(base):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(directory, name)
                out.append(Artifact(os.path.relpath(full, base).replace(os.sep, "/"), os.path.getsize(full)))
        for name, logged in by_name(found.logged).items():
            out.append(Artifact(f"{LOGGED_DIR}/{name}.json", None))
            out.extend(Artifact(f"{LOGGED_DIR}/{name}/{entry['path']}", entry["size"]) for entry in logged["files"]
                       if not entry["ref"])
        return out

    def download(self, run, artifact, path):
        found = self._entry(run.id)[1]  # its manifest and logged artifacts, not its points
        if found.manifest is None and artifact.path.startswith(LOGGED_DIR + "/"):
            self._download_logged(run, found, artifact.path[len(LOGGED_DIR) + 1:], path)
            return
        manifest = found.manifest
        shutil.copyfile(self._file(run, manifest.get(artifact.path) if manifest is not None else artifact.path), path)

    def _download_logged(self, run, found, rel, path):
        """A logged artifact's description (``<name>.json``), or one of its files: the SDK's staging copy at its
        ``local_path``, or of that name in ``staging_dir``, checked against the manifest's md5."""
        logged = by_name(found.logged)
        if rel.endswith(".json") and rel[:-5] in logged:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(logged[rel[:-5]], out, sort_keys=True, indent=1)
            return
        name, _sep, inner = rel.partition("/")
        entry = next((e for e in (logged.get(name) or {}).get("files", ()) if e["path"] == inner), None)
        if entry is None:
            raise TrackerError(f"wandb_offline: run {run.id} logged no artifact file {rel}")
        places = [entry["local_path"]] if entry["local_path"] else []
        if self.staging and entry["local_path"]:
            places.append(os.path.join(self.staging, os.path.basename(entry["local_path"])))
        source = next((p for p in places if os.path.isfile(p)), None)
        if source is None:
            raise TrackerError(f"wandb_offline: run {run.id}: file {inner} of logged artifact {name} is missing: "
                               f"not at {' nor '.join(places) or 'any local path'} (the SDK's staging directory, "
                               "<WANDB_DATA_DIR>/artifacts/staging; give staging_dir where it is now)")
        shutil.copyfile(source, path)
        if entry["md5"] and md5_file(path)[0] != entry["md5"]:
            raise TrackerError(f"wandb_offline: run {run.id}: file {inner} of logged artifact {name} at {source} "
                               "does not match the artifact's manifest (md5)")

    def _file(self, run, rel):
        base = os.path.realpath(os.path.join(self._entry(run.id)[0], "files"))
        full = os.path.realpath(os.path.join(base, rel or ""))
        if not full.startswith(base + os.sep) or not os.path.isfile(full):
            raise TrackerError(f"wandb_offline: run {run.id} has no file {rel}")
        return full


class WandbOfflineTarget(HeldRunTarget, WandbOfflineSource, TargetAdapter):
    """Writes offline run folders through the W&B SDK, one per run with the source run's id kept (where
    W&B takes it), for ``wandb sync`` on the far side of an air gap. A run is held back until the copy
    has handed over all of it (trackers/wandb_write.py: the SDK writes a run once, in step order), so a
    run copied while its source was running is written again whole later (APPENDS is False)."""

    APPENDS = False
    SYSTEM_PREFIX = "system/"

    def __init__(self, wandb_dir, entity=None, base_url=None, api_key=None):
        super().__init__(wandb_dir)
        self.entity = entity
        self.sync_url, self.api_key = base_url, api_key or os.environ.get("WANDB_API_KEY")
        self.pending = {}
        self.written = {}  # run id -> (folder, OfflineRun) of the runs read back
        self.mirrored = set()  # runs written as deleted, kept when the copy deletes them

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["wandb_dir"], settings.get("entity"), settings.get("base_url"), settings.get("api_key"))

    def check(self):
        existing = self.root
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise TrackerError(f"wandb_offline: {existing} is not a directory, so {self.root} cannot hold runs")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise TrackerError(f"wandb_offline: {existing} is not writable, so {self.root} cannot hold runs")
        if self.sync_url and not (self.entity and self.api_key):
            raise TrackerError(f"wandb_offline: syncing the runs to {self.sync_url} needs entity and api_key "
                               "(or WANDB_API_KEY)")

    def _entry(self, run_id):
        with self.lock:
            if run_id in self.pending:
                self._write(run_id)
            if run_id not in self.written:
                folders = self.folders(run_id)
                if not folders:
                    raise TrackerError(f"wandb_offline: no run {run_id} under {self.root}")
                self._written(run_id, folders[-1], _read(folders[-1]))
            return self.written[run_id]

    def _written(self, run_id, folder, found):
        """Hold a run read back (the latest FULL_RUNS: memory stays bounded)."""
        self.written.pop(run_id, None)
        self.written[run_id] = (folder, found)
        while len(self.written) > FULL_RUNS:
            self.written.pop(next(iter(self.written)))

    def run(self, run_id):
        with self.lock:
            self.written.pop(run_id, None)
        return self._entry(run_id)[1].run

    def _found(self, run):
        return self._entry(run.id)[1]

    def ensure_experiment(self, experiment, name, tags):
        return self.remember_experiment(project_for(name), experiment, name, tags)

    def find_runs_by_tag(self, experiment_id, key, value):
        if key == SOURCE_RUN_TAG:  # a copy's id follows from its source's
            return [run_id_for(value)] if self.folders(run_id_for(value)) else []
        return [found.run.id for _folder, found in self._loaded().values()
                if found.run.experiment_id == experiment_id and found.run.tags.get(key) == value]

    def create_run(self, experiment_id, run, tags, parent_id=None):
        run_id = run_id_for(run.id)
        spool = os.path.join(self.root, SPOOL_DIR, run_id)
        with self.lock:
            self.written.pop(run_id, None)
            self.pending[run_id] = PendingRun(spool, run_id, experiment_id, self.entity, run, tags, parent_id)
            if run.lifecycle == "deleted":
                self.mirrored.add(run_id)
        return run_id

    def log_inputs(self, run_id, inputs):
        self._pending(run_id).inputs = [input_record(i) for i in inputs]

    def _write(self, run_id):
        pending = self.pending.pop(run_id)
        import wandb  # pylint: disable=import-outside-toplevel
        for old in self.folders(run_id):
            shutil.rmtree(old)
        try:
            folder = write_offline(pending, self.root, wandb)
        except Exception as exc:  # pylint: disable=broad-except  # the SDK's errors are many; the run fails
            pending.discard()
            raise TrackerError(f"wandb_offline: writing run {run_id} with the W&B SDK failed: {exc}") from exc
        try:
            os.rmdir(os.path.join(self.root, SPOOL_DIR))  # when no other run is spooled
        except OSError:
            pass
        self._written(run_id, folder, _read(folder))
        if self.sync_url:
            self._sync(pending, folder)

    def _sync(self, pending, folder):
        """``wandb sync`` of a run folder just written, to ``base_url`` under the run's own id (so a re-sync
        updates that run instead of adding one). Thin by design, and not tested against a W&B server (none
        runs here): a failed sync fails the run, which is written and synced again on the next run, and the
        folder stays for ``wandb sync`` by hand."""
        command = [sys.executable, "-m", "wandb", "sync", "--id", pending.id, "-p", pending.project,
                   "-e", self.entity, folder]
        env = dict(os.environ, WANDB_BASE_URL=self.sync_url, WANDB_API_KEY=self.api_key, WANDB_SILENT="true")
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=SYNC_SECONDS,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise TrackerError(f"wandb_offline: wandb sync of {folder} to {self.sync_url} took over "
                               f"{SYNC_SECONDS} s; the folder stays for wandb sync by hand") from exc
        if done.returncode != 0:
            said = (done.stderr or done.stdout or "").strip().splitlines()
            cause = said[-1][:300].replace(self.api_key, "********") if said else "no output"
            raise TrackerError(f"wandb_offline: wandb sync of {folder} to {self.sync_url} failed (exit "
                               f"{done.returncode}): {cause}; the folder stays for wandb sync by hand")

    def delete_run(self, run_id):
        """Remove a run's folders; a run written as deleted (its source run was) is kept, marked deleted."""
        with self.lock:
            if run_id in self.mirrored:
                self.mirrored.discard(run_id)
                return
            if run_id in self.pending:
                self.pending.pop(run_id).discard()
            self.written.pop(run_id, None)
            for folder in self.folders(run_id):
                shutil.rmtree(folder)
