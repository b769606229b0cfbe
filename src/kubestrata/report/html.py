"""A self-contained HTML report: summary by layer and severity, filters, every finding explained.

No external assets: CSS and JavaScript are inline, and a Content-Security-Policy pins them by hash,
so the page makes no request and runs no script but its own. Every value that comes from the input
(object names, messages, paths, evidence, suppression reasons) is HTML-escaped; the script reads
only ``data-*`` attributes, never markup built from data, so an attacker-controlled name cannot
become markup or code. No timestamps: the same scan renders the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Sequence
from html import escape
from typing import Any

import orjson

from kubestrata import __version__
from kubestrata.findings import Finding, Layer, Severity
from kubestrata.scan import ScanResult

_CSS = """
:root{--crit:#7f1d1d;--high:#dc2626;--med:#d97706;--low:#0891b2;--info:#64748b;--bg:#f8fafc;--fg:#0f172a;
--muted:#64748b;--card:#fff;--line:#e2e8f0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{background:#0f172a;color:#f8fafc;padding:20px 32px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cbd5e1}
main{padding:20px 32px;max-width:1400px}
h2{font-size:18px;margin:28px 0 10px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 18px;min-width:120px;
border-top:4px solid var(--info)}
.card .n{font-size:28px;font-weight:700}
.card.critical{border-top-color:var(--crit)}.card.high{border-top-color:var(--high)}
.card.medium{border-top-color:var(--med)}.card.low{border-top-color:var(--low)}
table{border-collapse:collapse;background:var(--card)}
th,td{border:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f1f5f9}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.zero{color:#cbd5e1}
.filters{display:flex;gap:16px;flex-wrap:wrap;align-items:center;background:var(--card);border:1px solid var(--line);
border-radius:8px;padding:10px 14px;position:sticky;top:0;z-index:1}
.filters input[type=search]{padding:4px 8px;min-width:260px}
.finding{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--info);border-radius:6px;
margin:8px 0}
.finding.critical{border-left-color:var(--crit)}.finding.high{border-left-color:var(--high)}
.finding.medium{border-left-color:var(--med)}.finding.low{border-left-color:var(--low)}
.finding.suppressed{opacity:.6}
.finding summary{cursor:pointer;padding:8px 12px;display:flex;gap:10px;flex-wrap:wrap;align-items:baseline}
.finding .body{padding:0 16px 12px}
.badge{display:inline-block;border-radius:4px;padding:0 6px;color:#fff;font-size:12px;font-weight:600;
text-transform:uppercase;background:var(--info)}
.badge.critical{background:var(--crit)}.badge.high{background:var(--high)}.badge.medium{background:var(--med)}
.badge.low{background:var(--low)}
.rule{font-family:ui-monospace,monospace;font-weight:600}
.obj{font-family:ui-monospace,monospace;color:#334155}
.muted{color:var(--muted)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
pre{background:#0f172a;color:#e2e8f0;padding:10px;border-radius:6px;overflow:auto;white-space:pre-wrap}
h4{margin:12px 0 4px;font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.note{background:#fef3c7;border-radius:4px;padding:4px 8px;display:inline-block}
.supp{background:#e0e7ff;border-radius:4px;padding:4px 8px;display:inline-block}
button{font:inherit;padding:3px 10px;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
.empty{color:var(--muted);font-style:italic}
"""

_JS = """
(function () {
  "use strict";
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-sev]"));
  var layer = document.getElementById("f-layer");
  var query = document.getElementById("f-query");
  var supp = document.getElementById("f-suppressed");
  var items = Array.prototype.slice.call(document.querySelectorAll("article.finding"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("section.layer"));
  var count = document.getElementById("f-count");
  function apply() {
    var sev = {};
    boxes.forEach(function (b) { sev[b.getAttribute("data-sev")] = b.checked; });
    var wantLayer = layer.value;
    var text = query.value.trim().toLowerCase();
    var shown = 0;
    items.forEach(function (el) {
      var ok = sev[el.getAttribute("data-severity")] === true &&
        (!wantLayer || el.getAttribute("data-layer") === wantLayer) &&
        (supp.checked || el.getAttribute("data-suppressed") === "false") &&
        (!text || el.getAttribute("data-text").indexOf(text) !== -1);
      el.hidden = !ok;
      if (ok) { shown += 1; }
    });
    groups.forEach(function (g) {
      g.hidden = g.querySelector("article.finding:not([hidden])") === null;
    });
    count.textContent = "Showing " + shown + " of " + items.length + " findings";
    count.setAttribute("data-shown", String(shown));
  }
  function setOpen(open) {
    items.forEach(function (el) {
      if (!el.hidden) { el.querySelector("details").open = open; }
    });
  }
  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  layer.addEventListener("change", apply);
  query.addEventListener("input", apply);
  supp.addEventListener("change", apply);
  document.getElementById("f-expand").addEventListener("click", function () { setOpen(true); });
  document.getElementById("f-collapse").addEventListener("click", function () { setOpen(false); });
  apply();
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _j(value: Any) -> str:
    return escape(orjson.dumps(value, default=str).decode(), quote=True)


def _finding(f: Finding) -> str:
    sev = f.severity.value
    obj = str(f.object) if f.object else "(cluster)"
    text = " ".join(
        [f.rule_id, f.title, f.message, obj, f.container or "", f.source.file if f.source else ""]
    ).lower()
    cls = f"finding {sev}" + (" suppressed" if f.suppressed else "")
    out = [
        f'<article class="{cls}" data-severity="{sev}" data-layer="{f.layer.value}" '
        f'data-suppressed="{"true" if f.suppressed else "false"}" data-rule="{_e(f.rule_id)}" '
        f'data-text="{_e(text)}">',
        "<details><summary>",
        f'<span class="badge {sev}">{sev}</span>',
        f'<span class="rule">{_e(f.rule_id)}</span>',
        f"<span>{_e(f.title)}</span>",
        f'<span class="obj">{_e(obj)}</span>',
    ]
    if f.container:
        out.append(f'<span class="muted">container <code>{_e(f.container)}</code></span>')
    if f.suppressed:
        out.append('<span class="muted">(suppressed)</span>')
    out.append('</summary><div class="body">')
    out.append(f'<p class="msg">{_e(f.message)}</p>')
    if f.suppressed:
        out.append(f'<p class="supp">Suppressed: {_e(f.suppressed)}</p>')
    meta = []
    if f.source is not None:
        meta.append(f"Source: <code>{_e(f.source)}</code>")
    meta.append(f"Fingerprint: <code>{_e(f.fingerprint)}</code>")
    out.append('<p class="muted">' + " · ".join(meta) + "</p>")
    if f.evidence:
        out.append("<h4>Evidence</h4><table><tr><th>Field</th><th>Observed</th><th>Expected</th></tr>")
        for ev in f.evidence:
            out.append(
                f"<tr><td><code>{_e(ev.path)}</code></td><td><code>{_j(ev.observed)}</code></td>"
                f"<td><code>{_j(ev.expected)}</code></td></tr>"
            )
        out.append("</table>")
    if f.fix:
        out.append("<h4>Fix (JSON patch, RFC 6902)</h4>")
        out.append(f'<pre class="fix">{_e(orjson.dumps(f.fix, option=orjson.OPT_INDENT_2).decode())}</pre>')
    if f.fix_note:
        out.append(f'<p class="note">Note: {_e(f.fix_note)}</p>')
    if f.remediation:
        out.append(f"<h4>Remediation</h4><p>{_e(f.remediation)}</p>")
    if f.references:
        out.append("<h4>References</h4><ul>")
        for k, v in sorted(f.references.items()):
            out.append(f"<li><b>{_e(k)}</b>: {_e(', '.join(v))}</li>")
        out.append("</ul>")
    out.append("</div></details></article>")
    return "".join(out)


def render(result: ScanResult, target: str = "", sections: Sequence[str] = ()) -> str:
    """The report page. ``sections`` are trusted HTML fragments from other engines (already escaped,
    no scripts or styles: the page's CSP allows only its own), shown after the findings."""
    active = result.active()
    by_sev = Counter(f.severity for f in active)
    by_cell = Counter((f.layer, f.severity) for f in active)
    sevs = list(reversed(Severity))  # critical first
    objects = sum(result.coverage.evaluated.values())
    suppressed = len(result.findings) - len(active)

    parts: list[str] = []
    parts.append(
        '<header><h1>kubestrata scan report</h1><p id="meta">'
        f"Target: <code>{_e(target or '-')}</code> · kubestrata {_e(__version__)} · "
        f'<span id="objects">{objects}</span> objects evaluated · '
        f"{len(result.coverage.checks_run)} checks run</p></header><main>"
    )
    parts.append('<section id="summary"><h2>Summary</h2><div class="cards">')
    parts.append(
        f'<div class="card" id="total"><div class="n">{len(active)}</div>findings'
        f'<div class="muted">{suppressed} suppressed</div></div>'
    )
    for s in sevs:
        parts.append(
            f'<div class="card {s.value}" data-card="{s.value}"><div class="n">{by_sev.get(s, 0)}</div>'
            f"{s.value}</div>"
        )
    parts.append('</div><h2>By layer and severity</h2><table id="matrix"><tr><th>Layer</th>')
    parts.extend(f"<th>{s.value}</th>" for s in sevs)
    parts.append("<th>total</th></tr>")
    for lay in Layer:
        row_total = sum(by_cell.get((lay, s), 0) for s in sevs)
        parts.append(f'<tr data-layer="{lay.value}"><th>{lay.value}</th>')
        for s in sevs:
            n = by_cell.get((lay, s), 0)
            parts.append(f'<td class="num{" zero" if n == 0 else ""}" data-sev="{s.value}">{n}</td>')
        parts.append(f'<td class="num">{row_total}</td></tr>')
    parts.append("</table></section>")

    parts.append('<section id="findings"><h2>Findings</h2><div class="filters">')
    for s in sevs:
        parts.append(
            f'<label><input type="checkbox" data-sev="{s.value}" checked> '
            f'<span class="badge {s.value}">{s.value}</span></label>'
        )
    parts.append('<label>Layer <select id="f-layer"><option value="">all</option>')
    parts.extend(f'<option value="{lay.value}">{lay.value}</option>' for lay in Layer)
    parts.append("</select></label>")
    parts.append(
        '<input type="search" id="f-query" placeholder="Search rule, object, message, file">'
        '<label><input type="checkbox" id="f-suppressed"> show suppressed</label>'
        '<button type="button" id="f-expand">Expand all</button>'
        '<button type="button" id="f-collapse">Collapse all</button>'
        f'<span id="f-count" class="muted" data-shown="{len(active)}">'
        f"Showing {len(active)} of {len(result.findings)} findings</span></div>"
    )
    if not result.findings:
        parts.append('<p class="empty" id="no-findings">No findings.</p>')
    for lay in Layer:
        rows = [f for f in result.findings if f.layer is lay]
        if not rows:
            continue
        parts.append(
            f'<section class="layer" data-layer="{lay.value}"><h2>{lay.value.capitalize()} layer</h2>'
        )
        parts.extend(_finding(f) for f in rows)
        parts.append("</section>")
    parts.append("</section>")

    parts.extend(sections)
    parts.append('<section id="coverage"><h2>Coverage</h2>')
    gaps = result.coverage.gaps
    if gaps:
        parts.append(
            f'<p><b id="gap-count">{len(gaps)}</b> inputs were <b>not evaluated</b> '
            "(never counted as a pass):</p>"
            "<table><tr><th>Reason</th><th>Subject</th><th>Detail</th></tr>"
        )
        for g in gaps:
            parts.append(
                f'<tr class="gap"><td>{_e(g.reason.value)}</td><td><code>{_e(g.subject)}</code></td>'
                f"<td>{_e(g.detail)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append('<p id="gap-count" data-n="0">Every input was evaluated.</p>')
    if result.coverage.evaluated:
        parts.append("<h4>Objects evaluated by kind</h4><table><tr><th>Kind</th><th>Objects</th></tr>")
        for kind, n in sorted(result.coverage.evaluated.items()):
            parts.append(f'<tr><td>{_e(kind)}</td><td class="num">{n}</td></tr>')
        parts.append("</table>")
    if result.coverage.checks_run:
        parts.append(
            "<h4>Checks run</h4><p>"
            + ", ".join(f"<code>{_e(c)}</code>" for c in sorted(result.coverage.checks_run))
            + "</p>"
        )
    parts.append("</section>")
    if result.notices:
        parts.append('<section id="notices"><h2>Notices</h2><ul>')
        parts.extend(f"<li>{_e(n)}</li>" for n in result.notices)
        parts.append("</ul></section>")
    parts.append("</main>")

    csp = f"default-src 'none'; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>kubestrata scan: {_e(target or '-')}</title>"
        f"<style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + f"\n<script>{_JS}</script>\n</body></html>\n"
    )
