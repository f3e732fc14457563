# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy experiment-tracker records from a source adapter to a target adapter, driven by the ledger.

Per run: create it at the target with its original name, start time, user, description and tags
(nested under the copy of its parent, the source ids added as tags), log params, tags, dataset
inputs, every metric point with its step and timestamp, the text, media, plot and histogram
series, summary values and nested configuration, carry each artifact (md5 taken on the way), set
the original status and end time, then verify and only then mark it complete in the ledger. A
run whose source was still running is completed again later by appending the new points (or, for a
target that cannot append, ``APPENDS = False``, by copying it again whole).

Nothing here knows a tracker's conventions: the records are tracker-neutral (trackers/base.py)
and each adapter maps them to and from its own.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import tempfile
import threading
import time
from dataclasses import replace

from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind, Counts
from ansible_collections.mlops.migration.plugins.module_utils.paths import UnsafePath, confined
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    OUR_TAGS,
    SERIES_KINDS,
    SOURCE_EXPERIMENT_TAG,
    SOURCE_RUN_TAG,
    SOURCE_URI_TAG,
    STEP_SCALE_TAG,
    TrackerError,
    decimal_places,
)

KINDS = ("experiments", "runs", "models", "versions")
KIND_LABELS = {"experiments": "tracker experiments", "runs": "tracker runs", "models": "tracker models",
               "versions": "tracker model versions"}
INCLUDE = ("params", "metrics", "tags", "artifacts", "models", "inputs")
LISTED = 20
DIGEST_MOD = 2 ** 64


class CopyReport:
    """Counts per kind, points and bytes copied, and the first failures."""

    def __init__(self, verify=True, dry_run=False):
        self.verify, self.dry_run = verify, dry_run
        self.lock = threading.Lock()
        self.counts = {kind: dict(found=0, copied=0, skipped=0, updated=0, failed=0) for kind in KINDS}
        self.points = self.bytes = 0
        self.files_filtered_out = 0  # artifact files left out by the selection
        self.failures = []

    def add(self, kind, what, n=1):
        with self.lock:
            self.counts[kind][what] += n

    def fail(self, kind, ident, reason):
        with self.lock:
            self.counts[kind]["failed"] += 1
            if len(self.failures) < LISTED:
                self.failures.append({"kind": kind, "id": ident, "reason": reason})

    def moved(self, points=0, size=0):
        with self.lock:
            self.points += points
            self.bytes += size

    @property
    def changed(self):
        return any(c["copied"] or c["updated"] for c in self.counts.values())

    def result(self):
        out = {kind: dict(counts) for kind, counts in self.counts.items()}
        out.update(points_copied=self.points, bytes=self.bytes, failures=self.failures,
                   files_filtered_out=self.files_filtered_out,
                   failed_count=sum(c["failed"] for c in self.counts.values()))
        out.update(by_kind({KIND_LABELS[kind]: self.kind_counts(kind) for kind in KINDS}))
        # the points of the runs above: a kind of its own for the report, left out of the total of objects
        out["kinds"]["tracker metric points"] = Counts(
            dry_run=self.dry_run, copied=self.points, verified=self.points if self.verify and not self.dry_run else None,
            bytes=None).as_dict()
        out["counts"]["bytes"] = self.bytes
        return out

    def kind_counts(self, kind):
        """One kind's counts in the vocabulary of every module (module_utils/counts.py)."""
        counts = self.counts[kind]
        moved = counts["copied"] + counts["updated"]
        return Counts(dry_run=self.dry_run, found=counts["found"], copied=moved, present=counts["skipped"],
                      verified=moved if self.verify and not self.dry_run else None, failed=counts["failed"],
                      failures=[{"object": f["id"], "reason": f["reason"]} for f in self.failures if f["kind"] == kind])


class RunFilter:
    """Which source runs to copy: statuses, start-time range (ms since the epoch), tag values, run names (regular
    expressions, matched whole)."""

    def __init__(self, statuses=None, started_after=None, started_before=None, tags=None, names=None):
        self.statuses = {s.upper() for s in statuses or []}
        self.after, self.before = started_after, started_before
        self.tags = dict(tags or {})
        try:
            self.names = [re.compile(name) for name in names or []]
        except re.error as exc:
            raise TrackerError(f"run_filter.names: {exc.pattern!r} is not a regular expression: {exc}") from exc

    def wants(self, run):
        if self.statuses and run.status not in self.statuses:
            return False
        if self.names and not any(p.fullmatch(run.name or "") for p in self.names):
            return False
        if self.after is not None and (run.start_time or 0) < self.after:
            return False
        if self.before is not None and (run.start_time or 0) >= self.before:
            return False
        return all(run.tags.get(k) == v for k, v in self.tags.items())


# cometx's resource names, and what each is in the tracker-neutral records (README: "Resources")
RESOURCES = ("assets", "html", "metadata", "metrics", "others", "parameters", "project", "run", "system")
RUN_FILES = "comet/run/"  # the artifacts of the resource "run" (console output aside): code, requirements, git


class Selection:
    """Which records of a run to copy: attributes (params, metrics, series, summary keys) and artifact files by
    glob pattern (``*`` crosses ``/``; include first, then exclude), files also by size, and whole kinds of record
    by cometx's resource names (RESOURCES). Applied to the run as read, so what is copied and what is verified are
    the same."""

    def __init__(self, include=None, exclude=None, files_include=None, files_exclude=None, max_file_size=None,
                 resources_include=None, resources_exclude=None):
        self.include, self.exclude = list(include or []), list(exclude or [])
        self.files_include, self.files_exclude = list(files_include or []), list(files_exclude or [])
        self.max_file_size = max_file_size
        if max_file_size is not None and max_file_size < 0:
            raise TrackerError(f"files.max_size: {max_file_size} is below zero")
        for name in list(resources_include or []) + list(resources_exclude or []):
            if name not in RESOURCES:
                raise TrackerError(f"resources: {name!r} is not one of cometx's resource names ({', '.join(RESOURCES)})")
        wanted = set(resources_include or RESOURCES) - set(resources_exclude or ())
        self.left_out = set(RESOURCES) - wanted  # resource names not copied

    def experiment(self, experiment):
        """The experiment with its description and tags only when the resource ``project`` is wanted."""
        return replace(experiment, description=None, tags={}) if "project" in self.left_out else experiment

    @staticmethod
    def _wanted(name, include, exclude):
        if include and not any(fnmatch.fnmatchcase(name, p) for p in include):
            return False
        return not any(fnmatch.fnmatchcase(name, p) for p in exclude)

    def attribute(self, name):
        return self._wanted(name, self.include, self.exclude)

    def file(self, artifact):
        if self.max_file_size is not None and artifact.size is not None and artifact.size > self.max_file_size:
            return False
        if ("run" if artifact.path.startswith(RUN_FILES) else "assets") in self.left_out:
            return False
        return self._wanted(artifact.path, self.files_include, self.files_exclude)

    @staticmethod
    def _series_resource(kind, key):
        """The resource a series is: console output is ``run``, HTML ``html``, every other series ``assets``."""
        if kind == "text" and key in ("console", "html"):
            return "run" if key == "console" else "html"
        return "assets"

    def run(self, run):
        """The run with only the attributes and resources wanted (the run itself when every one is)."""
        out = self._resources(run) if self.left_out else run
        if not (self.include or self.exclude):
            return out
        keep = self.attribute
        return replace(
            out, params={k: v for k, v in out.params.items() if keep(k)},
            metric_keys=[k for k in out.metric_keys if keep(k)],
            system_metric_keys=[k for k in out.system_metric_keys if keep(k)],
            series={kind: [k for k in keys if keep(k)] for kind, keys in out.series.items()},
            summary={k: v for k, v in out.summary.items() if keep(k)})

    def _resources(self, run):
        out = self.left_out
        tags = {k: v for k, v in run.tags.items()
                if ("others" if v != "" or k in OUR_TAGS else "metadata") not in out}  # labels are metadata, others key-value
        return replace(
            run, tags=tags, description=None if "metadata" in out else run.description,
            params={} if "parameters" in out else run.params, config=None if "parameters" in out else run.config,
            metric_keys=[] if "metrics" in out else run.metric_keys,
            system_metric_keys=[] if "system" in out else run.system_metric_keys,
            series={kind: [k for k in keys if self._series_resource(kind, k) not in out]
                    for kind, keys in run.series.items()})


def shared_scales(runs):
    """The runs with one ``step_scale`` per fork family: a fork continues its parent's step axis, so a parent, its
    forks and their fork steps are scaled alike (the largest scale any of them needs), or the fork step would be in
    other units than the parent's steps. Runs that are not forks keep their own scale."""
    by_id = {r.id: r for r in runs}
    root = {}

    def family(run):
        if run.id not in root:
            parent = by_id.get(run.parent_id) if run.fork_step is not None else None
            root[run.id] = run.id  # a cycle ends here
            root[run.id] = family(parent) if parent is not None else run.id
        return root[run.id]

    needed = {}
    for run in runs:
        top = family(run)
        needed[top] = max(needed.get(top, 1), run.step_scale or 1, 10 ** min(6, decimal_places(run.fork_step)))
    return [r if needed[family(r)] == (r.step_scale or 1) else replace(r, step_scale=needed[family(r)]) for r in runs]


def _depths(runs):
    """Runs grouped by nesting depth, so parents are copied before their children."""
    by_id = {r.id: r for r in runs}
    depth = {}

    def level(run, seen=()):
        if run.id in depth:
            return depth[run.id]
        parent = by_id.get(run.parent_id)
        depth[run.id] = 0 if parent is None or parent.id in seen else level(parent, seen + (run.id,)) + 1
        return depth[run.id]

    waves = {}
    for run in runs:
        waves.setdefault(level(run), []).append(run)
    return [waves[k] for k in sorted(waves)]


class Copier:
    def __init__(self, source, target, ledger, include=INCLUDE, run_filter=None, max_runs=None, parallel=4,
                 verify=True, check_mode=False, name_prefix="", include_deleted=False, progress=None, selection=None):
        self.source, self.target, self.ledger = source, target, ledger
        self.selection = selection or Selection()
        self.include = set(include)
        self.run_filter = run_filter or RunFilter()
        self.max_runs, self.parallel, self.verify = max_runs, max(1, parallel), verify
        self.check_mode, self.name_prefix, self.include_deleted = check_mode, name_prefix, include_deleted
        self.report = CopyReport(verify, check_mode)
        self.progress = progress  # a module_utils.state.progress.Progress, told after every run
        self.runs_done = 0

    # experiments and runs ---------------------------------------------------------------------

    def copy(self, selectors):
        started = time.monotonic()
        taken = 0
        for experiment in self.source.experiments(selectors, self.include_deleted):
            self.report.add("experiments", "found")
            try:
                target_exp = self._experiment(experiment)
            except TrackerError as exc:
                self.report.fail("experiments", experiment.name, str(exc))
                continue
            runs = shared_scales([self.selection.run(r) for r in self.source.runs(experiment, self.include_deleted)
                                  if self.run_filter.wants(r)])
            if self.max_runs is not None:
                runs = runs[:max(0, self.max_runs - taken)]
            taken += len(runs)
            if self.progress is not None:
                self.progress.update(total=(self.progress.total or 0) + len(runs), force=True)
            for wave in _depths(runs):
                for _result in bounded_map(lambda run, e=experiment, t=target_exp: self._run_safely(run, e, t),
                                           wave, self.parallel):
                    pass
            if experiment.lifecycle == "deleted" and target_exp and not self.check_mode:
                self.target.delete_experiment(target_exp)
        if "models" in self.include:
            self._models()
        result = self.report.result()
        result["seconds"] = result["counts"]["seconds"] = round(time.monotonic() - started, 3)
        return result

    def _experiment(self, experiment):
        entry = self.ledger.get("experiment", experiment.id)
        if entry is not None:
            self.report.add("experiments", "skipped")
            return entry.target_id
        name = self.name_prefix + experiment.name
        experiment = self.selection.experiment(experiment)
        if self.check_mode:
            self.report.add("experiments", "copied")
            return None
        tags = dict(experiment.tags, **{SOURCE_EXPERIMENT_TAG: experiment.id, SOURCE_URI_TAG: self.source.uri})
        target_id, created = self.target.ensure_experiment(experiment, name, tags)
        self.ledger.record("experiment", experiment.id, target_id, "complete")
        self.report.add("experiments", "copied" if created else "skipped")
        return target_id

    def _run_safely(self, run, experiment, target_exp):
        self.report.add("runs", "found")
        try:
            self._run(run, experiment, target_exp)
        except TrackerError as exc:  # a permanent error fails this run, not the job
            self.report.fail("runs", run.id, str(exc))
            if self.progress is not None:
                self.progress.event(f"{self.progress.what}: run {run.id} failed: {exc}")
        if self.progress is not None:
            with self.report.lock:
                self.runs_done += 1
                done = self.runs_done
            self.progress.update(done=done, size=self.report.bytes)

    def _run(self, run, experiment, target_exp):
        entry = self.ledger.get("run", run.id)
        again = entry is not None and entry.complete and entry.detail.get("running")
        if entry is not None and entry.complete:
            if not again:
                self.report.add("runs", "skipped")
                return
            if self.target.APPENDS:
                self._update(run, entry)
                return
        if self.check_mode:
            self.report.add("runs", "updated" if again else "copied")
            return
        stale = [entry.target_id] if entry is not None else self.target.find_runs_by_tag(
            target_exp, SOURCE_RUN_TAG, run.id)
        for old in stale:  # a half-written copy from an interrupted run: redo it
            self.target.delete_run(old)
        tags = dict(run.tags) if "tags" in self.include else {}
        tags.update({SOURCE_RUN_TAG: run.id, SOURCE_EXPERIMENT_TAG: experiment.id, SOURCE_URI_TAG: self.source.uri})
        scale = self._scale(run)
        if scale != 1:
            tags[STEP_SCALE_TAG] = str(scale)
        parent = self.ledger.target_id("run", run.parent_id) if run.parent_id else None
        fork_step = run.fork_step if run.fork_step is None or scale == 1 else int(round(run.fork_step * scale))
        new_id = self.target.create_run(target_exp, replace(run, fork_step=fork_step), tags, parent)
        self.ledger.record("run", run.id, new_id, "started")
        if "params" in self.include and run.params:
            self.target.log_batch(new_id, params=sorted(run.params.items()))
        if "inputs" in self.include and run.inputs:
            self.target.log_inputs(new_id, run.inputs)
        point_digests = {}
        points = self._metrics(run, new_id, {}, point_digests) if "metrics" in self.include else {}
        media = {}
        series = self._series(run, new_id, media) if "metrics" in self.include else {}
        if "params" in self.include and (run.summary or run.config):
            self.target.log_summary(new_id, run.summary, run.config)
        digests = self._artifacts(run, new_id) if "artifacts" in self.include else {}
        if run.finished:
            self.target.finish_run(new_id, run.status, run.end_time)
        self.target.done(new_id)
        if self.verify:
            self._verify(run, new_id, points, digests, series, point_digests, media)
        if run.lifecycle == "deleted":  # copied with include_deleted: deleted at the target too
            self.target.delete_run(new_id)
        self.ledger.record("run", run.id, new_id, "complete", {"points": points, "running": not run.finished,
                                                               "experiment": [experiment.id, target_exp],
                                                               "step_scale": scale})
        self.report.add("runs", "updated" if again else "copied")

    def _metric_names(self, run):
        """``{source key: target key}`` of the run's metrics, system metrics under the target's name for them."""
        names = {key: key for key in run.metric_keys}
        names.update({key: self.target.system_metric_key(key) for key in run.system_metric_keys})
        return names

    def _metrics(self, run, new_id, already, digests=None):
        """Copy every metric's points after the first ``already[key]``; returns the point counts (and puts each
        metric's digest of all its points, ``point_digest``, in ``digests``)."""
        counts = {}
        for key, target_key in self._metric_names(run).items():
            skip = already.get(key, 0)
            tally = _Tally()
            points = tally.after(self._scaled(run, self.source.metric_history(run, key)), skip)
            if target_key != key:
                points = (replace(point, key=target_key) for point in points)
            self.target.log_batch(new_id, points=points)
            counts[key] = tally.seen
            if digests is not None:
                digests[key] = tally.digest
            self.report.moved(points=tally.seen - skip)
        return counts

    def _series(self, run, new_id, media=None):
        """Copy the text, media, plot and histogram series; returns ``{"kind/key": items}`` (and puts each media
        series' sorted md5s of the files the target fetched in ``media``)."""
        counts = {}
        for kind in SERIES_KINDS:
            for key in run.series.get(kind) or ():
                md5s = []
                counts[f"{kind}/{key}"] = self.target.log_series(
                    new_id, kind, key, self._scaled(run, self.source.series(run, kind, key)), self._fetcher(run, md5s))
                if kind == "media" and media is not None:
                    media[key] = sorted(md5s)
        return counts

    def _scale(self, run):
        """What the run's steps are multiplied by at the target: its step_scale where the target keeps whole steps."""
        return run.step_scale if self.target.WHOLE_STEPS and run.step_scale and run.step_scale > 1 else 1

    def _scaled(self, run, records):
        """Points or series items with their steps times the run's scale (exact: a fractional step is a Decimal
        or a float that the scale makes whole)."""
        scale = self._scale(run)
        if scale == 1:
            yield from records
            return
        for record in records:
            yield record if record.step is None else replace(record, step=int(round(record.step * scale)))

    def _fetcher(self, run, md5s):
        """The ``fetch`` a target calls for a media file of ``run``: the source's file, its md5 kept in ``md5s``."""
        def fetch(item, path):
            self.source.series_file(run, item, path)
            md5s.append(md5_file(path)[0])

        return fetch

    def _artifacts(self, run, new_id):
        digests = {}
        with tempfile.TemporaryDirectory(prefix="mlops-tracker-") as scratch:
            for artifact in self.source.artifacts(run):
                if not self.selection.file(artifact):
                    with self.report.lock:
                        self.report.files_filtered_out += 1
                    continue
                local = self._scratch_path(os.path.join(scratch, "a"), artifact, run)
                os.makedirs(os.path.dirname(local), exist_ok=True)
                self.source.download(run, artifact, local)
                digests[artifact.path] = md5_file(local)[0]
                self.target.upload(new_id, artifact, local)
                self.report.moved(size=os.path.getsize(local))
                os.unlink(local)
        return digests

    @staticmethod
    def _scratch_path(scratch, artifact, run):
        """Where an artifact lands in the scratch directory; a name that would leave it fails the run."""
        try:
            return confined(scratch, artifact.path, "artifact")
        except UnsafePath as exc:
            raise TrackerError(f"run {run.id}: {exc}") from exc

    def _update(self, run, entry):
        """The source run was still running when copied: append what it logged since."""
        fresh = self.selection.run(self.source.run(run.id))
        fresh = replace(fresh, step_scale=max(fresh.step_scale or 1, entry.detail.get("step_scale") or 1))
        if self.check_mode:  # as the copy would: updated when it has finished since, or logged points since
            before = entry.detail.get("points", {})
            grown = "metrics" in self.include and any(
                sum(1 for _point in self.source.metric_history(fresh, key)) > before.get(key, 0)
                for key in self._metric_names(fresh))
            self.report.add("runs", "updated" if fresh.finished or grown else "skipped")
            return
        new_id = entry.target_id
        before = dict(entry.detail.get("points", {}))
        counts = self._metrics(fresh, new_id, before) if "metrics" in self.include else before
        extra_tags = sorted((k, v) for k, v in fresh.tags.items() if k not in OUR_TAGS)
        if "tags" in self.include:
            self.target.log_batch(new_id, tags=extra_tags)
        if "params" in self.include:
            self.target.log_batch(new_id, params=sorted(fresh.params.items()))
        if fresh.finished:
            self.target.finish_run(new_id, fresh.status, fresh.end_time)
        appended = sum(counts.values()) - sum(before.values())
        self.ledger.record("run", run.id, new_id, "complete", dict(entry.detail, points=counts,
                                                                   running=not fresh.finished))
        self.report.add("runs", "updated" if appended or fresh.finished else "skipped")

    def _verify(self, run, new_id, points, digests, series=None, point_digests=None, media=None):
        copy = self.target.run(new_id)
        problems = []
        if "params" in self.include and copy.params != run.params:
            problems.append("params differ")
        if "tags" in self.include:
            theirs = {k: v for k, v in copy.tags.items() if k not in OUR_TAGS}
            missing = {k for k in run.tags if k not in OUR_TAGS and theirs.get(k) != run.tags[k]}  # ours: this hop's
            if missing:
                problems.append(f"tags differ: {', '.join(sorted(missing)[:5])}")
        if (copy.description or None) != (run.description or None):
            problems.append("description differs")
        if "metrics" in self.include:
            names = self._metric_names(run)
            for key, count in points.items():
                n, digest = point_digest(self.target.metric_history(copy, names.get(key, key)))
                if n != count:
                    problems.append(f"metric {key}: {n} points at the target, {count} at the source")
                elif point_digests and key in point_digests and digest != point_digests[key]:
                    problems.append(f"metric {key}: the (step, timestamp, value) of its points differ")
            for name, count in (series or {}).items():
                kind, _sep, key = name.partition("/")
                n = self.target.series_count(copy, kind, key)
                if n != count:
                    problems.append(f"{kind} series {key}: {n} items at the target, {count} at the source")
            for key, md5s in (media or {}).items():
                if md5s and self._media_md5s(copy, key) != md5s:
                    problems.append(f"media series {key}: the files at the target differ (md5)")
        if digests or series or run.summary or run.config:
            own = self.target.OWN_ARTIFACTS
            listed = [a for a in self.target.artifacts(copy) if not (own and a.path.startswith(own))
                      or a.path in digests]
            paths = {a.path for a in listed}
            if paths != set(digests):
                problems.append(f"artifacts differ: {sorted(set(digests) ^ paths)[:5]}")
            else:
                with tempfile.TemporaryDirectory(prefix="mlops-tracker-verify-") as scratch:
                    for artifact in listed:
                        local = self._scratch_path(scratch, artifact, copy)
                        os.makedirs(os.path.dirname(local), exist_ok=True)
                        self.target.download(copy, artifact, local)
                        if md5_file(local)[0] != digests[artifact.path]:
                            problems.append(f"artifact {artifact.path}: md5 differs")
        if problems:
            raise TrackerError(f"run {run.id} copied to {new_id} but does not verify: {'; '.join(problems)}")

    def _media_md5s(self, copy, key):
        """The sorted md5s of a media series' files, read back from the target."""
        out = []
        with tempfile.TemporaryDirectory(prefix="mlops-tracker-verify-") as scratch:
            for n, item in enumerate(self.target.series(copy, "media", key)):
                if item.file:
                    local = os.path.join(scratch, str(n))
                    self.target.series_file(copy, item, local)
                    out.append(md5_file(local)[0])
                    os.unlink(local)
        return sorted(out)

    # registered models ------------------------------------------------------------------------

    def _models(self):
        for model in self.source.registered_models():
            try:
                self._model(model)
            except TrackerError as exc:
                self.report.fail("models", model.name, str(exc))

    def _model(self, model):
        """Copy a registered model whose versions come from runs this ledger copied; other versions stay out."""
        versions = [v for v in self.source.model_versions(model)
                    if v.run_id and self.ledger.target_id("run", v.run_id) is not None]
        if not versions:
            return  # none of its versions come from a run in this copy
        self.report.add("models", "found")
        todo = [v for v in versions if not (self.ledger.get("version", f"{v.name}/{v.version}") or _Never).complete]
        if self.ledger.get("model", model.name) is not None and not todo:
            self.report.add("models", "skipped")
            self.report.add("versions", "found", len(versions))
            self.report.add("versions", "skipped", len(versions))
            return
        if self.check_mode:
            self.report.add("models", "copied")
            self.report.add("versions", "found", len(versions))
            self.report.add("versions", "copied", len(todo))
            return
        created = self.target.ensure_registered_model(model)
        self.ledger.record("model", model.name, model.name, "complete")
        self.report.add("models", "copied" if created else "updated")
        mapping = {}
        for version in versions:
            self.report.add("versions", "found")
            key = f"{version.name}/{version.version}"
            entry = self.ledger.get("version", key)
            if entry is not None and entry.complete:
                mapping[version.version] = entry.target_id
                self.report.add("versions", "skipped")
                continue
            run_id = self.ledger.target_id("run", version.run_id) if version.run_id else None
            source = self._remap_source(version, run_id)
            new_version = self.target.create_model_version(version, source, run_id)
            mapping[version.version] = new_version
            self.ledger.record("version", key, new_version, "complete",
                               {"renumbered": new_version != version.version})
            self.report.add("versions", "copied")
        for alias, number in model.aliases.items():
            if str(number) in mapping:
                self.target.set_alias(model.name, alias, mapping[str(number)])

    def _remap_source(self, version, new_run):
        """The version's source with the copied run's id (and experiment id, in artifact paths)."""
        source = version.source
        if version.run_id and new_run:
            source = source.replace(version.run_id, new_run)
            entry = self.ledger.get("run", version.run_id)
            old_exp, new_exp = (entry.detail.get("experiment") or [None, None]) if entry else (None, None)
            if old_exp and new_exp:
                source = re.sub(rf"/{re.escape(old_exp)}/{new_run}/", f"/{new_exp}/{new_run}/", source)
        return source


def point_digest(points):
    """(count, digest) of a stream of points: the digest a sum of 64-bit hashes of each (step, timestamp, value),
    so the order a tracker returns them in does not matter, and a point changed, lost or added does."""
    tally = _Tally()
    for _point in tally.after(points, 0):
        pass
    return tally.seen, tally.digest


class _Tally:
    """Counts and digests (``point_digest``) a stream of points while passing on those after the first ``skip``."""

    def __init__(self):
        self.seen = 0
        self.digest = 0

    def after(self, points, skip):
        for point in points:
            self.seen += 1
            text = f"{float(point.step)!r}|{point.timestamp}|{float(point.value)!r}".encode("ascii", "replace")
            self.digest = (self.digest + int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")) % DIGEST_MOD
            if self.seen > skip:
                yield point


class _Never:
    complete = False
