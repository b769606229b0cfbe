"""A self-contained HTML report: what was not evaluated first, a chart and counts by severity and
layer, the comparison with a baseline, then the findings (message visible without opening them),
grouped by layer, namespace, owner or rule, and filterable.

No external assets: CSS and JavaScript are inline, and a Content-Security-Policy pins them by hash,
so the page makes no request and runs no script but its own. Every value that comes from the input
(object names, messages, paths, evidence, suppression reasons) is HTML-escaped; the script reads
only ``data-*`` attributes and text, never markup built from data, so an attacker-controlled name
cannot become markup or code. The run's time appears only when the caller passes it (``RunInfo``),
so the same scan without it renders the same bytes.

Bounded: past ``max_findings`` the page lists the most severe findings in full and counts the rest
by rule (every format but this one and the table carries them all), so a 50,000-object scan stays a
page a browser opens.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from typing import Any

import orjson

from kubestrata import __version__
from kubestrata.findings import Finding, Layer, Severity
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import ObjectRef
from kubestrata.report.html_assets import CSS, JS
from kubestrata.scan import ScanResult

MAX_FINDINGS = 5000  # findings shown in full; the rest are counted by rule
MAX_ROWS = 200  # rows of the not-evaluated and fixed tables
SEVERITIES = list(reversed(Severity))  # critical first
GROUPS = (("layer", "layer"), ("ns", "namespace"), ("owner", "owner"), ("rule", "rule"))


@dataclass
class RunInfo:
    """What the report says about the run, and views that need the snapshot; all optional."""

    started: dt.datetime | None = None
    seconds: float | None = None
    inputs: list[str] = field(default_factory=list)
    # trusted HTML fragments from other engines (already escaped, no scripts or styles: the
    # page's CSP allows only its own), shown after the findings
    sections: list[str] = field(default_factory=list)
    owners: dict[ObjectRef, str] = field(default_factory=dict)  # object -> its controller, if any
    max_findings: int = MAX_FINDINGS


def owners(cluster: Cluster, findings: Iterable[Finding]) -> dict[ObjectRef, str]:
    """Each finding object's controller (ownerReferences with controller: true), as Kind/ns/name,
    for objects that have one: grouping by owner puts a ReplicaSet's findings under its Deployment
    even when the Deployment is not in the input."""
    out: dict[ObjectRef, str] = {}
    for f in findings:
        ref = f.object
        if ref is None or ref in out:
            continue
        obj = cluster.get_ref(ref)
        for o in (obj.metadata.get("ownerReferences") or []) if obj is not None else []:
            if isinstance(o, dict) and o.get("controller") and o.get("kind") and o.get("name"):
                ns = f"{ref.namespace}/" if ref.namespace else ""
                out[ref] = f"{o['kind']}/{ns}{o['name']}"
                break
    return out


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _j(value: Any) -> str:
    return escape(orjson.dumps(value, default=str).decode(), quote=True)


class _Rules:
    """Each rule's remediation and references, written once in the Rules section; a finding whose
    text is the rule's links there instead of repeating it."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[str, str, dict[str, list[str]]]] = {}

    def note(self, f: Finding) -> bool:
        """True when the finding's remediation and references are its rule's (recorded here)."""
        doc = self.docs.setdefault(f.rule_id, (f.title, f.remediation, f.references))
        return doc[1] == f.remediation and doc[2] == f.references

    def render(self) -> str:
        if not self.docs:
            return ""
        out = ['<section id="rules"><h2>Rules</h2>']
        for rid, (title, remediation, refs) in sorted(self.docs.items()):
            out.append(
                f'<div class="ruledoc" id="rule-{_e(rid)}"><h3><span class="rule">{_e(rid)}</span> {_e(title)}</h3>'
            )
            if remediation:
                out.append(f"<p><b>Remediation.</b> {_e(remediation)}</p>")
            if refs:
                out.append(
                    "<ul>"
                    + "".join(f"<li><b>{_e(k)}</b>: {_e(', '.join(v))}</li>" for k, v in sorted(refs.items()))
                    + "</ul>"
                )
            out.append("</div>")
        out.append("</section>")
        return "".join(out)


def _finding(f: Finding, owner: str, rules: _Rules) -> str:
    sev = f.severity.value
    ref = f.object
    obj = str(ref) if ref else "(cluster)"
    cls = f"finding {sev}" + (" suppressed" if f.suppressed else "")
    out = [
        f'<article class="{cls}" data-severity="{sev}" data-layer="{f.layer.value}" '
        f'data-suppressed="{"true" if f.suppressed else "false"}" data-rule="{_e(f.rule_id)}" '
        f'data-ns="{_e(ref.namespace if ref else "")}" data-owner="{_e(owner)}" '
        f'data-src="{_e(f.source.file if f.source else "")}">',
        '<details><summary><span class="line">',
        f'<span class="badge {sev}">{sev}</span>',
        f'<span class="rule">{_e(f.rule_id)}</span>',
        f"<span>{_e(f.title)}</span>",
        f'<span class="obj">{_e(obj)}</span>',
    ]
    if f.container:
        out.append(f'<span class="muted">container <code>{_e(f.container)}</code></span>')
    if f.suppressed:
        out.append('<span class="muted">(suppressed)</span>')
    out.append(f'</span><span class="msg">{_e(f.message)}</span></summary><div class="body">')
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
    if rules.note(f):
        out.append(
            f'<p class="remedy">Remediation and references: <a href="#rule-{_e(f.rule_id)}">'
            f"{_e(f.rule_id)}</a> under Rules.</p>"
        )
    else:
        if f.remediation:
            out.append(f"<h4>Remediation</h4><p>{_e(f.remediation)}</p>")
        if f.references:
            out.append("<h4>References</h4><ul>")
            for k, v in sorted(f.references.items()):
                out.append(f"<li><b>{_e(k)}</b>: {_e(', '.join(v))}</li>")
            out.append("</ul>")
    out.append("</div></details></article>")
    return "".join(out)


def _header(result: ScanResult, target: str, run: RunInfo) -> str:
    objects = sum(result.coverage.evaluated.values())
    when = []
    if run.started is not None:
        when.append(
            f'Scanned <span id="scanned-at">{_e(run.started.strftime("%Y-%m-%d %H:%M:%S %Z"))}</span>'
        )
    if run.seconds is not None:
        when.append(f'in <span id="duration">{run.seconds:.1f} s</span>')
    inputs = run.inputs or ([target] if target else [])
    return (
        '<header><h1>kubestrata scan report</h1><p id="meta">'
        f"Target: <code>{_e(target or '-')}</code> · kubestrata {_e(__version__)} · "
        f'<span id="objects">{objects}</span> objects evaluated · '
        f"{len(result.coverage.checks_run)} checks run"
        + (" · " + " ".join(when) if when else "")
        + "</p>"
        + (
            '<p id="inputs">Inputs: ' + ", ".join(f"<code>{_e(i)}</code>" for i in inputs) + "</p>"
            if inputs
            else ""
        )
        + "</header>"
    )


def _not_evaluated(result: ScanResult) -> str:
    gaps = result.coverage.gaps
    if not gaps:
        return ""
    out = [
        '<section id="not-evaluated" class="alert">'
        f'<h2><span id="gap-count">{len(gaps)}</span> input{"s" if len(gaps) != 1 else ""} not evaluated</h2>'
        "<p>These were not checked: a finding there is unknown, never a pass.</p>"
        '<div class="scroll"><table class="gaps"><tr><th>Reason</th><th>Subject</th><th>Detail</th></tr>'
    ]
    for g in gaps[:MAX_ROWS]:
        out.append(
            f'<tr class="gap"><td>{_e(g.reason.value)}</td><td><code>{_e(g.subject)}</code></td>'
            f"<td>{_e(g.detail)}</td></tr>"
        )
    out.append("</table></div>")
    if len(gaps) > MAX_ROWS:
        out.append(f"<p>… and {len(gaps) - MAX_ROWS} more (all are in <code>-o json</code>).</p>")
    out.append("</section>")
    return "".join(out)


def _chart(by_cell: Counter[tuple[Layer, Severity]]) -> str:
    """Stacked bars, one per layer, a segment per severity; sizes are SVG attributes and colours
    come from the stylesheet (the CSP admits no style attribute)."""
    rows = [(lay, [by_cell.get((lay, s), 0) for s in SEVERITIES]) for lay in Layer]
    biggest = max((sum(c) for _, c in rows), default=0) or 1
    left, width, bar, gap = 120, 480, 22, 12
    out = []
    y = 16
    for lay, counts in rows:
        total = sum(counts)
        out.append(f'<text x="10" y="{y + 16}">{lay.value}</text>')
        x = float(left)
        for s, n in zip(SEVERITIES, counts, strict=True):
            if n:
                w = max(width * n / biggest, 1.5)
                out.append(
                    f'<rect class="s-{s.value}" data-layer="{lay.value}" data-sev="{s.value}" data-n="{n}" '
                    f'x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}"><title>{lay.value}, {s.value}: {n}</title></rect>'
                )
                x += w
        out.append(f'<text class="n" x="{x + 6:.1f}" y="{y + 16}">{total}</text>')
        y += bar + gap
    x = 10
    for s in SEVERITIES:
        out.append(f'<rect class="s-{s.value}" x="{x}" y="{y + 2}" width="12" height="12"/>')
        out.append(f'<text x="{x + 16}" y="{y + 13}">{s.value}</text>')
        x += 100
    height = y + 24
    return (
        f'<svg id="chart" role="img" aria-label="Findings by layer and severity" width="{left + width + 60}" '
        f'height="{height}" viewBox="0 0 {left + width + 60} {height}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(out)
        + "</svg>"
    )


def _summary(result: ScanResult, active: list[Finding]) -> str:
    by_sev = Counter(f.severity for f in active)
    by_cell = Counter((f.layer, f.severity) for f in active)
    suppressed = len(result.findings) - len(active)
    out = ['<section id="summary"><h2>Summary</h2><div class="cards">']
    out.append(
        f'<div class="card" id="total"><div class="n">{len(active)}</div>findings'
        f'<div class="muted">{suppressed} suppressed</div></div>'
    )
    for s in SEVERITIES:
        out.append(
            f'<div class="card {s.value}" data-card="{s.value}"><div class="n">{by_sev.get(s, 0)}</div>'
            f"{s.value}</div>"
        )
    out.append('</div><h2>By layer and severity</h2><div class="overview">')
    out.append(_chart(by_cell))
    out.append('<table id="matrix"><tr><th>Layer</th>')
    out.extend(f"<th>{s.value}</th>" for s in SEVERITIES)
    out.append("<th>total</th></tr>")
    for lay in Layer:
        row_total = sum(by_cell.get((lay, s), 0) for s in SEVERITIES)
        out.append(f'<tr data-layer="{lay.value}"><th>{lay.value}</th>')
        for s in SEVERITIES:
            n = by_cell.get((lay, s), 0)
            out.append(f'<td class="num{" zero" if n == 0 else ""}" data-sev="{s.value}">{n}</td>')
        out.append(f'<td class="num">{row_total}</td></tr>')
    out.append("</table></div>")
    if not result.coverage.gaps:
        out.append('<p id="all-evaluated" class="ok">Every input was evaluated.</p>')
    out.append("</section>")
    return "".join(out)


def _baseline(result: ScanResult) -> str:
    cmp = result.baseline
    if cmp is None:
        return ""
    out = [
        f'<section id="baseline"><h2>Compared with the baseline</h2><p>Baseline: <code>{_e(cmp.path)}</code>; '
        "findings are matched by fingerprint. Only new findings are listed under Findings.</p>"
        '<div class="cards">'
        f'<div class="card new" data-card="new"><div class="n">{cmp.new}</div>new</div>'
        f'<div class="card fixed" data-card="fixed"><div class="n">{len(cmp.fixed)}</div>fixed</div>'
        f'<div class="card" data-card="unchanged"><div class="n">{len(cmp.unchanged)}</div>unchanged</div></div>'
    ]
    if cmp.fixed:
        out.append(
            '<h3>Fixed (in the baseline, not found now)</h3><div class="scroll"><table id="fixed">'
            "<tr><th>Severity</th><th>Rule</th><th>Object</th><th>Message</th></tr>"
        )
        for e in cmp.fixed[:MAX_ROWS]:
            out.append(
                f"<tr><td>{_e(e.severity)}</td><td><code>{_e(e.rule_id)}</code></td>"
                f"<td><code>{_e(e.object)}</code></td><td>{_e(e.message)}</td></tr>"
            )
        out.append("</table></div>")
        if len(cmp.fixed) > MAX_ROWS:
            out.append(f"<p>… and {len(cmp.fixed) - MAX_ROWS} more.</p>")
    if cmp.unchanged:
        by_rule = Counter((f.rule_id, f.title) for f in cmp.unchanged)
        out.append(
            '<h3>Unchanged, by rule</h3><table id="unchanged"><tr><th>Rule</th><th>Title</th><th>Findings</th></tr>'
        )
        for (rid, title), n in sorted(by_rule.items()):
            out.append(
                f'<tr><td><code>{_e(rid)}</code></td><td>{_e(title)}</td><td class="num">{n}</td></tr>'
            )
        out.append("</table>")
    out.append("</section>")
    return "".join(out)


def _findings(result: ScanResult, run: RunInfo, rules: _Rules) -> str:
    shown = result.findings[: run.max_findings]
    rest = result.findings[run.max_findings :]
    out = ['<section id="findings"><h2>Findings</h2><div class="filters">']
    for s in SEVERITIES:
        out.append(
            f'<label><input type="checkbox" data-sev="{s.value}" checked> '
            f'<span class="badge {s.value}">{s.value}</span></label>'
        )
    out.append('<label>Layer <select id="f-layer"><option value="">all</option>')
    out.extend(f'<option value="{lay.value}">{lay.value}</option>' for lay in Layer)
    out.append('</select></label><label>Group by <select id="f-group">')
    out.extend(f'<option value="{v}">{label}</option>' for v, label in GROUPS)
    out.append(
        "</select></label>"
        '<input type="search" id="f-query" placeholder="Search rule, object, message, file">'
        '<label><input type="checkbox" id="f-suppressed"> show suppressed</label>'
        '<button type="button" id="f-expand">Expand all</button>'
        '<button type="button" id="f-collapse">Collapse all</button>'
        f'<span id="f-count" class="muted" data-shown="{sum(1 for f in shown if not f.suppressed)}">'
        f"Showing {sum(1 for f in shown if not f.suppressed)} of {len(shown)} findings</span></div>"
    )
    if not result.findings:
        out.append('<p class="empty" id="no-findings">No findings.</p>')
    out.append('<div id="groups">')
    for lay in Layer:
        rows = [f for f in shown if f.layer is lay]
        if not rows:
            continue
        out.append(
            f'<details class="group" open data-key="{lay.value}"><summary><span class="gname">'
            f'{lay.value.capitalize()} layer</span><span class="gcount">{len(rows)}</span></summary>'
        )
        for f in rows:
            owner = run.owners.get(f.object, str(f.object)) if f.object else ""
            out.append(_finding(f, owner, rules))
        out.append("</details>")
    out.append("</div>")
    if rest:
        by_rule = Counter((f.severity, f.rule_id, f.title) for f in rest)
        out.append(
            f'<p id="truncated" data-n="{len(rest)}">The {len(shown)} most severe of {len(result.findings)} '
            f"findings are shown in full; the other {len(rest)} are counted here by rule. Every finding is in "
            "<code>-o json</code>, <code>-o sarif</code> and the other machine-readable formats.</p>"
            '<table id="not-shown"><tr><th>Severity</th><th>Rule</th><th>Title</th><th>Findings</th></tr>'
        )
        for (sev, rid, title), n in sorted(by_rule.items(), key=lambda kv: (-kv[0][0].rank, kv[0][1])):
            out.append(
                f"<tr><td>{sev.value}</td><td><code>{_e(rid)}</code></td><td>{_e(title)}</td>"
                f'<td class="num">{n}</td></tr>'
            )
        out.append("</table>")
    out.append("</section>")
    return "".join(out)


def _coverage(result: ScanResult) -> str:
    out = ['<section id="coverage"><h2>Inputs and coverage</h2>']
    if result.coverage.gaps:
        out.append(f"<p>{len(result.coverage.gaps)} inputs were not evaluated (listed at the top).</p>")
    if result.coverage.evaluated:
        out.append("<h4>Objects evaluated by kind</h4><table><tr><th>Kind</th><th>Objects</th></tr>")
        for kind, n in sorted(result.coverage.evaluated.items()):
            out.append(f'<tr><td>{_e(kind)}</td><td class="num">{n}</td></tr>')
        out.append("</table>")
    if result.coverage.checks_run:
        out.append(
            "<h4>Checks run</h4><p>"
            + ", ".join(f"<code>{_e(c)}</code>" for c in sorted(result.coverage.checks_run))
            + "</p>"
        )
    out.append("</section>")
    return "".join(out)


def render(result: ScanResult, target: str = "", run: RunInfo | None = None) -> str:
    """The report page."""
    run = run or RunInfo()
    active = result.active()
    rules = _Rules()
    parts = [
        _header(result, target, run),
        "<main>",
        _not_evaluated(result),
        _summary(result, active),
        _baseline(result),
        _findings(result, run, rules),
        *run.sections,
        rules.render(),
        _coverage(result),
    ]
    if result.notices:
        parts.append('<section id="notices"><h2>Notices</h2><ul>')
        parts.extend(f"<li>{_e(n)}</li>" for n in result.notices)
        parts.append("</ul></section>")
    parts.append("</main>")

    csp = (
        f"default-src 'none'; style-src {_csp_hash(CSS)}; script-src {_csp_hash(JS)}; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>kubestrata scan: {_e(target or '-')}</title>"
        f"<style>{CSS}</style></head><body>\n"
        + "\n".join(p for p in parts if p)
        + f"\n<script>{JS}</script>\n</body></html>\n"
    )
