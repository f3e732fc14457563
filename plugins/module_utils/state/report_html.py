# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.html: the report's facts (``report.build_report``) as one self-contained page.

Inline CSS and SVG only: no script, font, image or style sheet is fetched, and every text from the state
file (kinds, object keys, errors, endpoints) is escaped, so the page shows a key holding ``<script>`` as text.
Sections: the verdict banner with the endpoints and times, totals per category, the timeline (a bar per step
and one per host under it, with the step's throughput), per step a bar of what moved, the verification
section (how each kind was checked, and how much of it), what was left out and by which rule, the first
failures with the command that retries them, and earlier runs of the same state file side by side.
"""

from __future__ import annotations

import html

from ansible_collections.mlops.migration.plugins.module_utils.state.report import (
    COLUMNS,
    HEADINGS,
    _cell,
    _coverage,
    _rate,
    size_text,
    _took,
    _when,
)

VERDICT_CLASS = {"complete": "ok", "complete with failures": "warn", "incomplete": "bad", "checked": "info"}
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f5f6f8}
main{max-width:1060px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}
.banner{border-radius:8px;padding:14px 18px;color:#fff;font-size:18px;font-weight:600}
.banner small{display:block;font-size:13px;font-weight:400;opacity:.95}
.ok{background:#1f7a3f}.warn{background:#b26a00}.bad{background:#b3261e}.info{background:#2b5fad}
.meta{display:flex;flex-wrap:wrap;gap:8px 24px;margin:10px 0 0;color:#4a5366}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d5d9e0}
th,td{padding:5px 9px;border-bottom:1px solid #e6e9ee;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px}
.card{background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:10px 12px}
.card b{font-size:15px}.card dl{display:grid;grid-template-columns:auto auto;gap:0 10px;margin:6px 0 0}
.card dt{color:#4a5366}.card dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
.failed-n{color:#b3261e;font-weight:600}
svg{background:#fff;border:1px solid #d5d9e0;border-radius:6px;display:block;max-width:100%}
svg text{font:12px system-ui,sans-serif;fill:#1d2433}
.meter{background:#e6e9ee;border-radius:4px;height:10px;min-width:90px}
.meter span{display:block;height:10px;border-radius:4px;background:#1f7a3f}
code{background:#eef1f5;padding:1px 4px;border-radius:3px;font-size:12px;word-break:break-all}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;border-radius:2px}
.s-done{fill:#1f7a3f}.s-failed{fill:#b3261e}.s-running{fill:#b26a00}.s-earlier{fill:#9aa3b2}.s-host{fill:#6d9ad6}
.m-copied{fill:#2b5fad}.m-present{fill:#9aa3b2}.m-failed{fill:#b3261e}
"""


def esc(value):
    return html.escape("" if value is None else str(value), quote=True)


def _banner(report):
    verdict = report["verdict"]
    out = [f'<div class="banner {VERDICT_CLASS.get(verdict["status"], "info")}" id="verdict" '
           f'data-status="{esc(verdict["status"])}">{esc(verdict["status"])}<small>{esc(verdict["detail"])}</small></div>',
           '<div class="meta">']
    for label, value in (("type", report.get("migration_type") or "-"), ("started", _when(report["started"]) or "-"),
                         ("finished", _when(report["finished"]) or "-"), ("wall time", _took(report["wall_seconds"]) or "-")):
        out.append(f"<span>{esc(label)}: <b>{esc(value)}</b></span>")
    out.append("</div>")
    if report["endpoints"]:
        out += ["<h2>Endpoints</h2>", '<table id="endpoints"><tr><th>part</th><th>source</th><th>target</th></tr>']
        out += [f"<tr><td>{esc(e['part'])}</td><td>{esc(e['source'] or '-')}</td><td>{esc(e['target'] or '-')}</td></tr>"
                for e in report["endpoints"]]
        out.append("</table>")
    return out


def _totals(report):
    out = ["<h2>Totals</h2>", '<div class="cards" id="totals">']
    for name, t in report["totals"].items():
        rows = "".join(f"<dt>{esc(HEADINGS[c])}</dt><dd class=\"{'failed-n' if c == 'failed' and t.get(c) else ''}\" "
                       f"data-column=\"{esc(c)}\">{esc(_cell(t.get(c)))}</dd>" for c in COLUMNS)
        out.append(f'<div class="card" data-category="{esc(name)}"><b>{esc(name)}</b><dl>{rows}'
                   f"<dt>bytes</dt><dd>{esc(size_text(t.get('bytes')))}</dd></dl></div>")
    if not report["totals"]:
        out.append("<p>no objects were recorded</p>")
    out.append("</div>")
    return out


def _timeline(report):
    steps = [r for r in report["steps"] if r["started"] is not None]
    out = ["<h2>Timeline</h2>"]
    if not steps:
        return out + ["<p>no step has run</p>"]
    start = min(r["started"] for r in steps)
    end = max((r["finished"] or r["started"]) for r in steps)
    span = max(end - start, 1e-3)
    label_width, width, row, room = 200, 1000, 22, 190  # room: the text after the longest bar
    rows = sum(1 + len(r["hosts"]) for r in steps)
    height = rows * row + 34
    scale = (width - label_width - room) / span
    out.append(f'<svg id="timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
               f"<title>{esc('steps over time')}</title>")
    y = 8
    for record in steps:
        state = record["state"] if record["this_run"] or record["state"] != "done" else "earlier"
        x = label_width + (record["started"] - start) * scale
        w = max(((record["finished"] or end) - record["started"]) * scale, 2)
        tip = f"{record['name']}: {record['state']}, {_took(record['seconds'])} {_rate(record)}".strip()
        out.append(f'<text x="6" y="{y + 14}">{esc(record["name"])}</text>'
                   f'<rect class="bar step-bar s-{esc(state)}" data-step="{esc(record["name"])}" x="{x:.1f}" y="{y}" '
                   f'width="{w:.1f}" height="{row - 6}" rx="3"><title>{esc(tip)}</title></rect>'
                   f'<text x="{x + w + 6:.1f}" y="{y + 14}">{esc(_took(record["seconds"]))} '
                   f'{esc(_rate(record))}</text>')
        y += row
        for host, totals in sorted(record["hosts"].items()):
            seconds = totals.get("seconds")
            hw = max((seconds if seconds is not None else (record["seconds"] or 0)) * scale, 2)
            tip = f"{host}: {_took(seconds)}, {totals.get('copied') or 0} copied, {size_text(totals.get('bytes'))}"
            out.append(f'<text x="18" y="{y + 13}">{esc(host)}</text>'
                       f'<rect class="bar host-bar s-host" data-step="{esc(record["name"])}" data-host="{esc(host)}" '
                       f'x="{x:.1f}" y="{y + 3}" width="{hw:.1f}" height="{row - 10}" rx="2"><title>{esc(tip)}</title></rect>')
            y += row
    out.append(f'<text x="{label_width}" y="{height - 8}">{esc(_when(start))}</text>'
               f'<text x="{width - room}" y="{height - 8}" text-anchor="end">{esc(_when(end))}</text></svg>')
    out.append('<p class="legend"><span style="background:#1f7a3f"></span>done<span style="background:#b3261e"></span>'
               'failed<span style="background:#b26a00"></span>running<span style="background:#9aa3b2"></span>'
               'done in an earlier run<span style="background:#6d9ad6"></span>a host\'s share</p>')
    return out


def _moved(report):
    steps = [r for r in report["steps"] if r["objects"]]
    out = ["<h2>What each step moved</h2>"]
    if not steps:
        return out + ["<p>nothing was recorded</p>"]
    width, label_width, row, room = 1000, 200, 24, 300
    top = max(sum(r["moved"][c] for c in ("copied", "present", "failed")) for r in steps) or 1
    scale = (width - label_width - room) / top
    out.append(f'<svg id="moved" width="{width}" height="{len(steps) * row + 10}" role="img"><title>objects per step</title>')
    for index, record in enumerate(steps):
        y, x = 6 + index * row, label_width
        out.append(f'<text x="6" y="{y + 14}">{esc(record["name"])}</text>')
        for column in ("copied", "present", "failed"):
            value = record["moved"][column]
            if value:
                out.append(f'<rect class="m-{column}" x="{x:.1f}" y="{y}" width="{max(value * scale, 1):.1f}" height="{row - 8}">'
                           f"<title>{esc(f'{value} {column}')}</title></rect>")
                x += value * scale
        out.append(f'<text x="{x + 6:.1f}" y="{y + 14}">{esc(record["moved"]["copied"])} copied, '
                   f'{esc(record["moved"]["present"])} present, {esc(record["moved"]["failed"])} failed</text>')
    out.append("</svg>")
    out.append('<p class="legend"><span style="background:#2b5fad"></span>copied<span style="background:#9aa3b2">'
               '</span>already present<span style="background:#b3261e"></span>failed</p>')
    return out


def _steps_and_objects(report):
    out = ["<h2>Steps</h2>", '<table id="steps"><tr><th>step</th><th>status</th><th>started</th><th>took</th>'
           "<th>hosts</th><th>rate</th></tr>"]
    for record in report["steps"]:
        state = record["state"] if record["this_run"] or record["state"] != "done" else "done (earlier run)"
        out.append(f"<tr><td>{esc(record['name'])}</td><td class=\"{esc(record['state'])}\">{esc(state)}</td>"
                   f"<td>{esc(_when(record['started']))}</td><td>{esc(_took(record['seconds']))}</td>"
                   f"<td>{esc(', '.join(sorted(record['hosts'])) or '-')}</td><td>{esc(_rate(record))}</td></tr>")
    out += ["</table>", "<h2>Objects</h2>",
            '<table id="objects"><tr><th>step</th><th>kind</th>' + "".join(f"<th>{HEADINGS[c]}</th>" for c in COLUMNS) + "</tr>"]
    for record in report["steps"]:
        for kind, counts in sorted(record["objects"].items()):
            out.append(f"<tr><td>{esc(record['name'])}</td><td>{esc(kind)}</td>"
                       + "".join(f'<td class="n">{esc(_cell(counts.get(c)))}</td>' for c in COLUMNS) + "</tr>")
    out.append("</table>")
    return out


def _verification(report):
    out = ["<h2>Verification</h2>", '<table id="verification"><tr><th>kind</th><th>how it was verified</th>'
           "<th>verified</th><th>of</th><th>coverage</th></tr>"]
    for item in report["verification"]:
        share = item["coverage"] or 0
        out.append(f"<tr><td>{esc(item['kind'])}</td><td>{esc(item['method'])}</td><td class=\"n\">{esc(_cell(item['verified']))}</td>"
                   f"<td class=\"n\">{esc(_cell(item['total']))}</td><td><div class=\"meter\"><span style=\"width:{share * 100:.1f}%\">"
                   f"</span></div>{esc(_coverage(item))}</td></tr>")
    out.append("</table>")
    return out


def _left_out(report):
    out = ["<h2>Left out</h2>", '<ul id="left-out">']
    items = [f"{f['step']} / {f['kind']}: {f['count']} filtered out" + (f" ({'; '.join(f['rules'])})" if f["rules"] else "")
             for f in report["filtered"]]
    items += [f"{step}: {rule}" for step, found in sorted(report["rules"].items()) for rule in found
              if not any(f["step"] == step for f in report["filtered"])]
    out += [f"<li>{esc(text)}</li>" for text in items] or ["<li>nothing was filtered out</li>"]
    out.append("</ul>")
    for key, heading in (("migrated", "Migrated"), ("not_migrated", "Not migrated, by design")):
        if report["scope"][key]:
            out += [f"<h2>{esc(heading)}</h2>", f'<ul id="{esc(key)}">']
            out += [f"<li>{esc(text)}</li>" for text in report["scope"][key]] + ["</ul>"]
    return out


def _failures(report):
    out = ["<h2>First failures</h2>"]
    if not report["failures"]:
        return out + ['<p id="failures">none</p>']
    out.append('<table id="failures"><tr><th>step</th><th>kind</th><th>object</th><th>cause</th><th>retry with</th></tr>')
    for f in report["failures"]:
        out.append(f"<tr><td>{esc(f['step'])}</td><td>{esc(f['kind'] or '-')}</td><td>{esc(f['object'] or '-')}</td>"
                   f"<td>{esc(f['reason'] or 'failed')}</td><td><code>{esc(f['retry'])}</code></td></tr>")
    out.append("</table>")
    if report["missing_references"]:
        out += ["<h2>Missing references</h2>",
                "<table><tr><th>step</th><th>document</th><th>field</th><th>url</th><th>reason</th></tr>"]
        out += ["<tr>" + "".join(f"<td>{esc(i[k])}</td>" for k in ("step", "document", "field", "url", "reason")) + "</tr>"
                for i in report["missing_references"]]
        out.append("</table>")
    return out


def _history(report):
    if not report["history"]:
        return []
    out = ["<h2>Runs of this state file</h2>", '<table id="history"><tr><th>step</th>']
    out += [f"<th>{esc(run['run'])}{' (this run)' if run['current'] else ''}</th>" for run in report["history"]]
    out.append("</tr>")
    for record in report["steps"]:
        cells = []
        for run in report["history"]:
            found = run["steps"].get(record["name"])
            cells.append(f"{found['state']}, {_took(found['seconds'])}, {found['moved']['copied']} copied" if found else "-")
        out.append(f"<tr><td>{esc(record['name'])}</td>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    return out


def render_html(report):
    """The page: every section of the report, self-contained."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{esc(report['title'])}</title>", f"<style>{CSS}</style>", "</head><body><main>",
           f"<h1>{esc(report['title'])}</h1>"]
    for section in (_banner, _totals, _timeline, _moved, _verification, _left_out, _failures, _steps_and_objects,
                    _history):
        out += section(report)
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"
