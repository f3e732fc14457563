# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration report: module results added up per object kind, and rendered.

``summarize`` reads the results a step's modules returned (as the playbook registered them):
each carries counts per object kind in the one vocabulary of module_utils/counts.py, and the
report adds them up: found at the source, filtered out, copied, already present, verified at the
target and failed, with the first failures. ``render_markdown``,
``render_html`` and ``render_table`` show the steps of the state file with those counts.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import re

COLUMNS = ("found", "filtered_out", "copied", "present", "verified", "failed")
HEADINGS = {"found": "found", "filtered_out": "filtered out", "copied": "copied", "present": "present",
            "verified": "verified", "failed": "failed"}
FAILURES_KEPT = 5


class ReportError(ValueError):
    pass


def _counts(**values):
    counts = {column: values.get(column) for column in COLUMNS}
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
    return _counts(failures=failures, **{column: record.get(column) for column in COLUMNS})


def _add(into, counts, fields=COLUMNS):
    for column in fields:
        if counts[column] is not None:
            into[column] = (into[column] or 0) + counts[column]
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
                     entry.get("fields") or COLUMNS)
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


SCOPE_HEADINGS = (("migrated", "Migrated"), ("not_migrated", "Not migrated, by design"))


def render_markdown(title, plan, steps, scope=None):
    m = md_text
    lines = [f"# {m(title)}", "", "## Steps", "", "| step | status | started | took |", "|---|---|---|---|"]
    lines += [f"| {m(name)} | {m(state)} | {started} | {took} |"
              for name, state, started, took in step_rows(plan, steps)]
    lines += ["", "## Objects", "",
              "| step | kind | " + " | ".join(HEADINGS[c] for c in COLUMNS) + " |",
              "|---|---|" + "---:|" * len(COLUMNS)]
    failures = []
    for step, kind, counts in object_rows(plan, steps):
        lines.append(f"| {m(step)} | {m(kind)} | " + " | ".join(m(_cell(counts.get(c))) for c in COLUMNS) + " |")
        failures += [f"- {m(step)} / {m(kind)}: {m(text)}" for text in counts.get("failures") or []]
    errors = [f"- {m(name)}: {m((steps[name].get('summary') or {}).get('error'))}" for name in plan
              if name in steps and (steps[name].get("summary") or {}).get("error")]
    lines += ["", "## First failures", ""] + (failures + errors or ["none"])
    missing = missing_rows(plan, steps)
    if missing:
        lines += ["", "## Missing references", "", "| step | document | field | url | reason |", "|---|---|---|---|---|"]
        lines += [f"| {m(step)} | {m(i['document'])} | {m(i['field'])} | {m(i['url'])} | {m(i['reason'])} |"
                  for step, i in missing]
    for key, heading in SCOPE_HEADINGS if scope else ():
        lines += ["", f"## {heading}", ""] + [f"- {m(text)}" for text in scope.get(key) or []]
    return "\n".join(lines) + "\n"


def render_html(title, plan, steps, scope=None):
    esc = html.escape
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>{esc(title)}</title>",
           "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:2px 8px}td.n{text-align:right}"
           ".failed{color:#b00}.done{color:#070}</style>",
           "</head><body>", f"<h1>{esc(title)}</h1>", "<h2>Steps</h2>",
           "<table><tr><th>step</th><th>status</th><th>started</th><th>took</th></tr>"]
    for name, state, started, took in step_rows(plan, steps):
        out.append(f"<tr><td>{esc(name)}</td><td class=\"{esc(state, quote=True)}\">{esc(state)}</td>"
                   f"<td>{esc(started)}</td><td>{esc(took)}</td></tr>")
    out += ["</table>", "<h2>Objects</h2>",
            "<table><tr><th>step</th><th>kind</th>" + "".join(f"<th>{HEADINGS[c]}</th>" for c in COLUMNS) + "</tr>"]
    failures = []
    for step, kind, counts in object_rows(plan, steps):
        out.append(f"<tr><td>{esc(step)}</td><td>{esc(kind)}</td>"
                   + "".join(f"<td class=\"n\">{esc(_cell(counts.get(c)))}</td>" for c in COLUMNS) + "</tr>")
        failures += [f"{step} / {kind}: {text}" for text in counts.get("failures") or []]
    failures += [f"{name}: {(steps[name].get('summary') or {}).get('error')}" for name in plan
                 if name in steps and (steps[name].get("summary") or {}).get("error")]
    out += ["</table>", "<h2>First failures</h2>", "<ul>"]
    out += [f"<li>{esc(text)}</li>" for text in failures] or ["<li>none</li>"]
    out.append("</ul>")
    missing = missing_rows(plan, steps)
    if missing:
        out += ["<h2>Missing references</h2>",
                "<table><tr><th>step</th><th>document</th><th>field</th><th>url</th><th>reason</th></tr>"]
        out += ["<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (step, i["document"], i["field"], i["url"], i["reason"]))
                + "</tr>" for step, i in missing]
        out.append("</table>")
    for key, heading in SCOPE_HEADINGS if scope else ():
        out += [f"<h2>{esc(heading)}</h2>", "<ul>"] + [f"<li>{esc(text)}</li>" for text in scope.get(key) or []] + ["</ul>"]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


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


def _size(value):
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
                         f"{_size(record.get('bytes')):>11} {str(record.get('rate')) + '/s':>12} {eta:>8}  "
                         f"{_when(record.get('updated'))} ({record.get('what', '')})")
        else:
            lines.append(f"{name:<12} {state:<8} {'':>15} {'':>11} {'':>12} {took:>8}  {started}")
    return lines
