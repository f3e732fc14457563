# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration report: module results added up per object kind, the report's facts, and its text forms.

``summarize`` reads the results a step's modules returned (as the playbook registered them):
each carries counts per object kind in the one vocabulary of module_utils/counts.py, and the
report adds them up: found at the source, filtered out, copied, already present, verified at the
target and failed, with the first failures.

``build_report`` gathers what the report says from the state file's steps and their history - the verdict,
the endpoints, totals per category of object, the timeline, how each kind was verified and how much of it,
what was left out and by which rule, the first failures with the command that retries them, earlier runs -
as plain data (``report.json``); ``render_markdown`` and (in report_html.py) ``render_html`` show it.
``plan_context`` derives the endpoints (credentials masked) and the rules from a checked plan.
``render_table`` and ``status_lines`` are the compact tables of the play's output and of status.yml.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re

from ansible_collections.mlops.migration.plugins.module_utils.common import masked_uri

COLUMNS = ("found", "filtered_out", "copied", "present", "verified", "failed")
HEADINGS = {"found": "found", "filtered_out": "filtered out", "copied": "copied", "present": "present",
            "verified": "verified", "failed": "failed"}
MEASURES = ("bytes", "seconds")  # kept with the counts, not columns of the tables
FAILURES_KEPT = 5


class ReportError(ValueError):
    pass


def _counts(**values):
    counts = {column: values.get(column) for column in COLUMNS + MEASURES}
    counts["failures"] = list(values.get("failures") or [])[:FAILURES_KEPT]
    return counts


def _shown(record, verification):
    """The report's columns of one counts record (module_utils/counts.py), failures as text.

    A check-mode pass run after the copy (``verification``) proves what is present: present
    objects count as verified, and what it would still copy, or failed, as failed.
    """
    failures = [f"{f.get('object')}: {f.get('reason')}" for f in record.get("failures") or []]
    if verification and record.get("dry_run"):
        return _counts(found=record.get("found"), filtered_out=record.get("filtered_out"),
                       verified=record.get("present"),
                       failed=(record.get("copied") or 0) + (record.get("failed") or 0),
                       failures=failures + [f"{key}: not at the target" for key in record.get("pending") or []])
    return _counts(failures=failures, **{column: record.get(column) for column in COLUMNS + MEASURES})


def _add(into, counts, fields=COLUMNS + MEASURES):
    for column in fields:
        if counts.get(column) is not None:
            into[column] = round((into.get(column) or 0) + counts[column], 3)
    if "failures" in into:
        room = FAILURES_KEPT - len(into["failures"])
        into["failures"].extend(counts["failures"][:max(room, 0)])


def summarize(results):
    """``{kind: counts}`` from ``[{result, kind?, verification?, fields?}]``; counts of one kind add up.

    Each result is what a data-moving module returned (or, for a task with a loop, its items under
    ``results``); its ``kinds`` hold a counts record per kind of object. ``kind`` prefixes the
    kinds' labels; ``fields`` limits the columns an entry adds to (a check after a copy adds only
    verified and failed).
    """
    objects = {}
    for index, entry in enumerate(results or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("result"), dict):
            raise ReportError(f"results[{index}] must be a dict with a result")
        result = entry["result"]
        # a task with a loop registers its items' results under "results"
        for one in result["results"] if isinstance(result.get("results"), list) else [result]:
            if not isinstance(one, dict) or one.get("skipped"):
                continue
            if not isinstance(one.get("kinds"), dict):
                raise ReportError(f"results[{index}]: the result has no counts by kind (kinds); "
                                  "only the collection's data-moving modules return them")
            for kind, record in one["kinds"].items():
                label = f"{entry['kind']} {kind}" if entry.get("kind") else kind
                _add(objects.setdefault(label, _counts()), _shown(record, bool(entry.get("verification"))),
                     entry.get("fields") or COLUMNS + MEASURES)
    return objects


MISSING_KEPT = 50


def missing_references(results):
    """The references that name nothing (``missing``, subset_files' results), the first MISSING_KEPT, each once."""
    found, seen = [], set()
    for entry in results or []:
        result = entry.get("result") if isinstance(entry, dict) else None
        for one in (result.get("results") if isinstance((result or {}).get("results"), list) else [result]):
            if not isinstance(one, dict) or "missing_count" not in one:
                continue
            for item in one.get("missing") or []:
                key = (item.get("document"), item.get("field"), item.get("url"))
                if key not in seen and len(found) < MISSING_KEPT:
                    seen.add(key)
                    found.append({k: str(item.get(k)) for k in ("document", "field", "url", "reason")})
    return found


def missing_rows(plan, steps):
    """``(step, reference)`` for every missing reference a planned step recorded, each reference once."""
    rows, seen = [], set()
    for name in plan:
        for item in ((steps.get(name) or {}).get("summary") or {}).get("missing") or []:
            key = (item.get("document"), item.get("field"), item.get("url"))
            if key not in seen:
                seen.add(key)
                rows.append((name, item))
    return rows


# what the report says ----------------------------------------------------------------------------

# (category, pattern of the kind labels in it): a kind's label may carry a prefix (``models files``)
CATEGORIES = (
    ("events", r"search documents"),
    ("documents", r"(^| )documents "),
    ("objects", r"s3 objects$"),
    ("files", r"files$"),
    ("runs", r"tracker runs$"),
    ("metric points", r"tracker metric points$"),
    ("rows", r"(^| )rows "),
    ("tracker records", r"tracker "),
)
CATEGORY_ORDER = tuple(name for name, _pattern in CATEGORIES) + ("other",)
# how the modules verify each category (README "Modules" says the same)
METHODS = {
    "objects": "md5 of every object as it streams, compared with the source's ETag; a multipart ETag recomputed "
               "from the real part sizes; a HEAD at the target after each write",
    "files": "md5 of every transferred file on both hosts (rsync checksum pass, then md5 compare)",
    "documents": "every restored document read back and compared with the backup after the rewrites; counts per "
                 "collection; the backup's md5 manifest checked before any write",
    "events": "every document written read back and compared; per index an order-free digest after the rewrites "
              "against the target's; documents per task counted at both servers",
    "runs": "params, tags, each metric's point count and a digest of its (step, timestamp, value) points, series "
            "item counts, md5 of media files and artifacts",
    "metric points": "a digest of every metric's (step, timestamp, value) points at the target against the source's",
    "rows": "every key-map row present at the target, a content digest of the inserted rows against the bundle's, "
            "every referenced key present, deferred constraints checked; the bundle's SHA-256 manifest first",
    "tracker records": "read back at the target (names, tags, versions, aliases)",
    "other": "as the module that moved them reports",
}


def category(kind):
    for name, pattern in CATEGORIES:
        if re.search(pattern, kind):
            return name
    return "other"


def host_totals(host_results):
    """``{host: {"seconds", "bytes", "copied"}}`` of the results each host's modules returned (``results`` by host)."""
    out = {}
    for host, entries in (host_results or {}).items():
        total = {"seconds": None, "bytes": None, "copied": None}
        for counts in summarize(entries or []).values():
            _add(total, counts, ("seconds", "bytes", "copied"))
        out[str(host)] = total
    return out


def _merged_kind(records):
    """One kind's counts over the steps that moved it (a bulk and a delta pass, a copy and its check): found and
    filtered out as the largest, copied and bytes added, present as the smallest (what was there before any
    pass), verified as the largest, failed as the last step's."""
    out = _counts()
    records = [{k: v for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)} for r in records]
    for index, record in enumerate(records):
        for column in ("found", "filtered_out", "verified"):
            if record.get(column) is not None:
                out[column] = max(out[column] or 0, record[column])
        for column in ("copied", "bytes"):
            if record.get(column) is not None:
                out[column] = (out[column] or 0) + record[column]
        if record.get("present") is not None:
            out["present"] = record["present"] if out["present"] is None else min(out["present"], record["present"])
        if record.get("failed") is not None or index == len(records) - 1:
            out["failed"] = record.get("failed")
    return out


def _step_record(name, step):
    summary = (step or {}).get("summary") or {}
    started, finished = (step or {}).get("started"), (step or {}).get("finished")
    objects = summary.get("objects") or {}
    moved = {"copied": 0, "present": 0, "failed": 0, "bytes": 0}
    for counts in objects.values():
        for column in moved:
            value = counts.get(column)
            moved[column] += value if isinstance(value, (int, float)) else 0
    seconds = round(finished - started, 3) if started is not None and finished is not None else None
    return {"name": name, "state": (step or {}).get("state") or "not run", "started": started, "finished": finished,
            "seconds": seconds, "error": summary.get("error"), "hosts": summary.get("hosts") or {},
            "objects": objects, "moved": moved,
            "rate": {"objects_per_second": round(moved["copied"] / seconds, 1) if seconds else None,
                     "bytes_per_second": round(moved["bytes"] / seconds) if seconds and moved["bytes"] else None}}


def _history_entry(record):
    return {key: record[key] for key in ("state", "seconds", "moved")}


def _verdict(records, totals, check_mode):
    if check_mode:
        return {"status": "checked", "detail": "check mode: nothing was written"}
    for record in records:
        if record["state"] == "failed":
            return {"status": "incomplete", "detail": f"step {record['name']} failed: {record['error'] or 'see the log'}"}
    for record in records:
        if record["state"] != "done":
            return {"status": "incomplete", "detail": f"step {record['name']} is {record['state']}"}
    failed = sum(t["failed"] or 0 for t in totals.values())
    if failed:
        return {"status": "complete with failures", "detail": f"every step done; {failed} object(s) failed"}
    unverified = [name for name, t in totals.items() if t["verified"] is None and (t["copied"] or t["present"])]
    detail = "every step done, nothing failed"
    if unverified:
        detail += f"; not verified by a check: {', '.join(unverified)}"
    return {"status": "complete", "detail": detail}


def build_report(title, plan, steps, history=None, scope=None, context=None, run=None, check_mode=False):
    """What the report says, as plain data (``report.json``).

    ``plan`` the planned steps in order; ``steps`` the state file's step records; ``history`` its earlier runs
    (``StepLog.history``); ``scope`` the migrated / not-migrated lists; ``context`` what ``plan_context`` derives
    from the plan (``endpoints``, ``rules``, ``retry``, ``migration_type``); ``run`` this run's id.
    """
    context = context or {}
    if history and run not in history:  # a run that did nothing reports as the last run that did something
        run = max(history)
    records = [_step_record(name, steps.get(name)) for name in plan]
    by_kind = {}
    for record in records:
        for kind, counts in record["objects"].items():
            by_kind.setdefault(kind, []).append(counts)
    kinds = {kind: _merged_kind(found) for kind, found in by_kind.items()}
    totals = {}
    for kind, counts in sorted(kinds.items()):
        into = totals.setdefault(category(kind), _counts())
        _add(into, dict(counts, failures=[]), COLUMNS + ("bytes",))
    totals = {name: {k: v for k, v in totals[name].items() if k not in ("failures", "seconds")}
              for name in CATEGORY_ORDER if name in totals}
    verification = []
    for kind, counts in sorted(kinds.items()):
        total = None if counts["found"] is None else counts["found"] - (counts["filtered_out"] or 0)
        verification.append({"kind": kind, "category": category(kind), "method": METHODS[category(kind)],
                             "verified": counts["verified"], "total": total,
                             "coverage": None if not total or counts["verified"] is None
                             else round(min(counts["verified"] / total, 1.0), 4)})
    retry = context.get("retry") or "ansible-playbook playbooks/migrate.yml -i <inventory>"
    failures = []
    for record in records:
        if record["state"] == "failed":
            failures.append({"step": record["name"], "kind": None, "object": None, "reason": record["error"],
                             "retry": retry})
        for kind, counts in sorted(record["objects"].items()):
            for text in counts.get("failures") or []:
                obj, _sep, reason = str(text).partition(": ")
                failures.append({"step": record["name"], "kind": kind, "object": obj, "reason": reason,
                                 "retry": f"{retry} --tags {record['name']} -e migration_force=true"})
    rules = context.get("rules") or {}
    filtered = [{"step": record["name"], "kind": kind, "count": counts["filtered_out"],
                 "rules": rules.get(record["name"]) or []}
                for record in records for kind, counts in sorted(record["objects"].items()) if counts.get("filtered_out")]
    times = [r[at] for r in records for at in ("started", "finished") if r[at] is not None]
    runs = []
    for name, found in sorted((history or {}).items()):
        runs.append({"run": name, "current": name == run, "steps": {
            step: _history_entry(_step_record(step, rec)) for step, rec in found.items()}})
    current = (history or {}).get(run) or {}
    return {
        "format": "mlops.migration/report", "version": 1, "title": title,
        "migration_type": context.get("migration_type"), "run": run,
        "verdict": _verdict(records, totals, check_mode),
        "endpoints": context.get("endpoints") or [],
        "started": min(times) if times else None, "finished": max(times) if times else None,
        "wall_seconds": round(max(times) - min(times), 3) if times else None,
        "steps": [dict(r, this_run=(r["name"] in current) if run else True) for r in records],
        "totals": totals, "kinds": kinds, "verification": verification,
        "filtered": filtered, "rules": rules,
        "scope": {"migrated": list((scope or {}).get("migrated") or []),
                  "not_migrated": list((scope or {}).get("not_migrated") or [])},
        "failures": failures, "missing_references": [dict(item, step=step) for step, item in missing_rows(plan, steps)],
        "history": runs,
    }


# the plan's endpoints and rules ------------------------------------------------------------------

def _place(value):
    """An endpoint of the plan as text without its secrets: a URI masked, a connection dict by host and name."""
    if value is None:
        return None
    if isinstance(value, str):
        return masked_uri(value)
    if not isinstance(value, dict):
        return str(value)
    for key in ("uri", "url", "tracking_uri"):
        if value.get(key):
            return masked_uri(str(value[key]))
    if value.get("endpoint_url") or value.get("bucket"):
        where = value.get("endpoint_url") or "AWS S3"
        return f"{where} s3://{value.get('bucket') or ''}/{value.get('prefix') or ''}"
    if value.get("host") and value.get("database"):
        return f"postgresql://{value.get('user') or ''}@{value['host']}:{value.get('port') or 5432}/{value['database']}"
    for key in ("wandb_dir", "clearml_dir", "comet_dir", "export_dir", "neptune_dir", "download_dir"):
        if value.get(key):
            return f"{value.get('kind') or key}: {value[key]}"
    if value.get("kind"):
        return f"{value['kind']}" + (f" {value['project']}" if value.get("project") else "")
    return ", ".join(f"{k}={v}" for k, v in sorted(value.items()) if isinstance(v, (str, int)) and
                     not re.search(r"key|password|secret|token", k))


def _endpoint(part, section):
    return {"part": part, "source": _place(section.get("source")), "target": _place(section.get("target"))}


def plan_context(plan, migration_type=None, retry=None):
    """``{"endpoints", "rules", "migration_type", "retry"}`` of a checked plan: every source and target as text
    with its credentials left out, and per step the rules that leave objects out."""
    plan = plan or {}
    endpoints, rules = [], {}
    for index, bucket in enumerate((plan.get("s3") or {}).get("buckets") or []):
        endpoints.append(_endpoint(f"s3 bucket {index + 1}", bucket))
    files = plan.get("files") or {}
    for tree in files.get("trees") or []:
        endpoints.append({"part": "files", "source": f"source hosts: {tree.get('src')}",
                          "target": f"target host: {tree.get('dest')}"})
        if tree.get("exclude"):
            rules.setdefault("files_bulk", []).append(f"{tree.get('src')}: excluded {', '.join(tree['exclude'])}")
    mongo = plan.get("mongo") or {}
    if mongo.get("source"):
        endpoints.append(_endpoint("mongo", mongo))
        if mongo.get("scope") not in (None, "full"):
            rules.setdefault("mongo", []).append(f"scope {mongo['scope']} {mongo.get('scope_id') or ''}".strip())
        for name, settings in sorted((mongo.get("collections") or {}).items()):
            settings = settings or {}
            if settings.get("filter"):
                rules.setdefault("mongo", []).append(f"{name}: only documents matching {json.dumps(settings['filter'], sort_keys=True)}")
            if settings.get("unset_fields"):
                rules.setdefault("mongo", []).append(f"{name}: fields removed {', '.join(settings['unset_fields'])}")
    postgres = plan.get("postgres") or {}
    if postgres.get("source"):
        endpoints.append(_endpoint("postgres", postgres))
        if postgres.get("exclude_tables"):
            rules.setdefault("postgres", []).append(f"tables left out: {', '.join(postgres['exclude_tables'])}")
        if postgres.get("root"):
            rules.setdefault("postgres", []).append(f"subset from {postgres['root'].get('table')}.{postgres['root'].get('column')}")
    events = plan.get("events") or {}
    if events.get("source"):
        endpoints.append(_endpoint("events", events))
        rules.setdefault("events", []).append("only the events of the tasks the mongo step moves")
    for index, pair in enumerate(plan.get("trackers") or []):
        endpoints.append(_endpoint(f"tracker pair {index + 1}", pair))
        wanted = pair.get("run_filter") or {}
        shown = {k: v for k, v in wanted.items() if v}
        if shown:
            rules.setdefault("trackers", []).append(f"runs: {json.dumps(shown, sort_keys=True)}")
    return {"endpoints": endpoints, "rules": rules, "migration_type": migration_type, "retry": retry}


# rendering -------------------------------------------------------------------------------------

def _when(stamp):
    if not stamp:
        return ""
    return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(step):
    if not step.get("started") or not step.get("finished"):
        return ""
    seconds = step["finished"] - step["started"]
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _cell(value):
    return "-" if value is None else str(value)


def md_text(value):
    """Text that stays inside one Markdown table cell or list item: line breaks folded into spaces
    (so it never starts a line of its own), and ``|``, HTML and emphasis characters escaped."""
    text = " ".join(str(value).split())
    for char in "\\|<>`*[]":
        text = text.replace(char, "\\" + char)
    return text


def step_rows(plan, steps):
    """``(name, state, started, duration)`` for the planned steps, in order (``not run`` when unknown)."""
    rows = []
    for name in plan:
        step = steps.get(name)
        if step is None:
            rows.append((name, "not run", "", ""))
        else:
            rows.append((name, step["state"], _when(step.get("started")), _duration(step)))
    return rows


def object_rows(plan, steps):
    """``(step, kind, counts)`` for every object kind a planned step recorded."""
    rows = []
    for name in plan:
        objects = ((steps.get(name) or {}).get("summary") or {}).get("objects") or {}
        for kind in sorted(objects):
            rows.append((name, kind, objects[kind]))
    return rows


def _took(seconds):
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _rate(record):
    rate = record["rate"]
    if rate["bytes_per_second"]:
        return f"{size_text(rate['bytes_per_second'])}/s"
    if rate["objects_per_second"]:
        return f"{rate['objects_per_second']} objects/s"
    return ""


def _coverage(item):
    if item["coverage"] is None:
        return "-"
    return f"{item['coverage'] * 100:.1f}%"


def render_markdown(report):
    """The report as Markdown: the same facts as report.html, as text."""
    m = md_text
    verdict = report["verdict"]
    lines = [f"# {m(report['title'])}", "", f"**{m(verdict['status'])}** - {m(verdict['detail'])}", "",
             f"- migration type: {m(report.get('migration_type') or '-')}",
             f"- started: {_when(report['started'])}", f"- finished: {_when(report['finished'])}",
             f"- wall time: {_took(report['wall_seconds']) or '-'}"]
    if report["endpoints"]:
        lines += ["", "## Endpoints", "", "| part | source | target |", "|---|---|---|"]
        lines += [f"| {m(e['part'])} | {m(e['source'] or '-')} | {m(e['target'] or '-')} |" for e in report["endpoints"]]
    lines += ["", "## Totals", "", "| category | " + " | ".join(HEADINGS[c] for c in COLUMNS) + " | bytes |",
              "|---|" + "---:|" * (len(COLUMNS) + 1)]
    lines += [f"| {m(name)} | " + " | ".join(_cell(t.get(c)) for c in COLUMNS) + f" | {size_text(t.get('bytes'))} |"
              for name, t in report["totals"].items()]
    lines += ["", "## Steps", "", "| step | status | started | took | hosts | copied | rate |", "|---|---|---|---|---|---:|---|"]
    for record in report["steps"]:
        state = record["state"] if record["this_run"] or record["state"] != "done" else "done (earlier run)"
        lines.append(f"| {m(record['name'])} | {m(state)} | {_when(record['started'])} | {_took(record['seconds'])} | "
                     f"{m(', '.join(sorted(record['hosts'])) or '-')} | {record['moved']['copied']} | {_rate(record)} |")
    lines += ["", "## Objects", "",
              "| step | kind | " + " | ".join(HEADINGS[c] for c in COLUMNS) + " |",
              "|---|---|" + "---:|" * len(COLUMNS)]
    for record in report["steps"]:
        for kind, counts in sorted(record["objects"].items()):
            lines.append(f"| {m(record['name'])} | {m(kind)} | " + " | ".join(m(_cell(counts.get(c))) for c in COLUMNS) + " |")
    lines += ["", "## Verification", "", "| kind | how | verified | of | coverage |", "|---|---|---:|---:|---:|"]
    lines += [f"| {m(v['kind'])} | {m(v['method'])} | {_cell(v['verified'])} | {_cell(v['total'])} | {_coverage(v)} |"
              for v in report["verification"]]
    lines += ["", "## Left out", ""]
    left = [f"- {m(f['step'])} / {m(f['kind'])}: {f['count']} filtered out"
            + (f" ({m('; '.join(f['rules']))})" if f["rules"] else "") for f in report["filtered"]]
    left += [f"- {m(step)}: {m(rule)}" for step, found in sorted(report["rules"].items()) for rule in found
             if not any(f["step"] == step for f in report["filtered"])]
    lines += left or ["nothing was filtered out"]
    for key, heading in (("migrated", "Migrated"), ("not_migrated", "Not migrated, by design")):
        if report["scope"][key]:
            lines += ["", f"## {heading}", ""] + [f"- {m(text)}" for text in report["scope"][key]]
    lines += ["", "## First failures", ""]
    failures = []
    for f in report["failures"]:
        where = f"{m(f['step'])} / {m(f['kind'])}: {m(f['object'])}" if f["kind"] else m(f["step"])
        failures.append(f"- {where}: {m(f['reason'] or 'failed')} - retry: `{f['retry'].replace('`', '')}`")
    lines += failures or ["none"]
    if report["missing_references"]:
        lines += ["", "## Missing references", "", "| step | document | field | url | reason |", "|---|---|---|---|---|"]
        lines += [f"| {m(i['step'])} | {m(i['document'])} | {m(i['field'])} | {m(i['url'])} | {m(i['reason'])} |"
                  for i in report["missing_references"]]
    if report["history"]:
        heads = [m(run["run"]) + (" (this run)" if run["current"] else "") for run in report["history"]]
        lines += ["", "## Runs", "", "| step | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
        for record in report["steps"]:
            cells = []
            for run in report["history"]:
                found = run["steps"].get(record["name"])
                cells.append(f"{found['state']}, {_took(found['seconds'])}, {found['moved']['copied']} copied" if found else "-")
            lines.append(f"| {m(record['name'])} | " + " | ".join(m(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def render_table(plan, steps):
    """The compact table printed at the end of a play: one line per step, then one per object kind."""
    lines = [f"{'step':<12} {'status':<8} {'took':>9}"]
    lines += [f"{name:<12} {state:<8} {took:>9}" for name, state, _started, took in step_rows(plan, steps)]
    lines.append("")
    rows = list(object_rows(plan, steps))
    width = max([30] + [len(kind) for _step, kind, _counts in rows])  # kinds are never cut: two could look alike
    lines.append(f"{'step':<12} {'kind':<{width}} " + " ".join(f"{HEADINGS[c]:>12}" for c in COLUMNS))
    for step, kind, counts in rows:
        lines.append(f"{step:<12} {kind:<{width}} " + " ".join(f"{_cell(counts.get(c)):>12}" for c in COLUMNS))
    return lines


def size_text(value):
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"


def progress_by_step(files):
    """``{step: record}`` from slurped progress files (``source`` path, base64 ``content``); newest wins."""
    latest = {}
    for item in files or []:
        try:
            record = json.loads(base64.b64decode(item.get("content") or ""))
        except (ValueError, TypeError):
            continue
        step = re.sub(r"(\.progress)?\.json$", "", os.path.basename(item.get("source") or ""))
        if isinstance(record, dict) and record.get("updated", 0) >= latest.get(step, {}).get("updated", 0):
            latest[step] = record
    return latest


def status_lines(plan, steps, progress):
    """The status table: every planned step with its state and, for running ones, the progress
    ``progress[step]`` holds (a module_utils.state.progress record): done/total, bytes, rate, ETA."""
    lines = [f"{'step':<12} {'status':<8} {'done/total':>15} {'bytes':>11} {'rate':>12} {'eta':>8}  started or updated"]
    for name, state, started, took in step_rows(plan, steps):
        record = (progress or {}).get(name) or {}
        if state == "running" and record:
            total = "?" if record.get("total") is None else record["total"]
            eta = "-" if record.get("eta_seconds") is None else f"{record['eta_seconds']:.0f} s"
            lines.append(f"{name:<12} {state:<8} {str(record.get('done')) + '/' + str(total):>15} "
                         f"{size_text(record.get('bytes')):>11} {str(record.get('rate')) + '/s':>12} {eta:>8}  "
                         f"{_when(record.get('updated'))} ({record.get('what', '')})")
        else:
            lines.append(f"{name:<12} {state:<8} {'':>15} {'':>11} {'':>12} {took:>8}  {started}")
    return lines
