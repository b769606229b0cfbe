"""The HTML report's one stylesheet and one script. The page's Content-Security-Policy admits exactly
these two by hash, so they are constants: nothing from the input is ever put in them.

The script only filters, regroups and opens elements the page already has; it builds new elements
with createElement and textContent (never innerHTML), and reads data from ``data-*`` attributes."""

from __future__ import annotations

CSS = """
:root{--crit:#7f1d1d;--high:#dc2626;--med:#d97706;--low:#0891b2;--info:#64748b;--bg:#f8fafc;--fg:#0f172a;
--muted:#64748b;--card:#fff;--line:#e2e8f0;--ok:#15803d}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{background:#0f172a;color:#f8fafc;padding:18px 32px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cbd5e1;overflow-wrap:anywhere}
header code{color:#f8fafc}
main{padding:16px 32px;max-width:1400px}
h2{font-size:18px;margin:26px 0 10px}
h3{font-size:15px;margin:14px 0 6px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
code,td,th,.obj,.msg,li{overflow-wrap:anywhere}
pre{background:#0f172a;color:#e2e8f0;padding:10px;border-radius:6px;overflow:auto;white-space:pre-wrap;
overflow-wrap:anywhere;max-width:100%}
table{border-collapse:collapse;background:var(--card);max-width:100%}
th,td{border:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f1f5f9;white-space:nowrap}
.netpol-matrix th{white-space:normal}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.zero{color:#cbd5e1}
.scroll{max-width:100%;overflow-x:auto}
table.gaps td:first-child{white-space:nowrap}
table.gaps td:nth-child(2){min-width:14em}
.netpol-matrix td,.netpol-matrix th{font-size:12px}
.netpol-matrix td{white-space:nowrap}
.muted{color:var(--muted)}
.alert{background:#fff7ed;border:1px solid #fdba74;border-left:6px solid #ea580c;border-radius:8px;
padding:6px 18px 12px;margin-top:10px}
.alert h2{margin-top:8px;color:#9a3412}
.ok{color:var(--ok)}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 18px;min-width:110px;
border-top:4px solid var(--info)}
.card .n{font-size:26px;font-weight:700}
.card.critical{border-top-color:var(--crit)}.card.high{border-top-color:var(--high)}
.card.medium{border-top-color:var(--med)}.card.low{border-top-color:var(--low)}
.card.new{border-top-color:var(--high)}.card.fixed{border-top-color:var(--ok)}
.overview{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
#chart{background:var(--card);border:1px solid var(--line);border-radius:8px;max-width:100%}
#chart text{font-size:12px;fill:var(--fg)}
#chart text.n{fill:var(--muted)}
.s-critical{fill:var(--crit)}.s-high{fill:var(--high)}.s-medium{fill:var(--med)}.s-low{fill:var(--low)}
.s-info{fill:var(--info)}
.filters{display:flex;gap:10px 16px;flex-wrap:wrap;align-items:center;background:var(--card);
border:1px solid var(--line);border-radius:8px;padding:8px 14px;position:sticky;top:0;z-index:1}
.filters input[type=search]{padding:4px 8px;width:240px}
details.group{margin:10px 0}
details.group>summary{cursor:pointer;font-weight:600;font-size:15px;padding:4px 0}
.gcount{color:var(--muted);font-weight:400;margin-left:8px}
.finding{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--info);border-radius:6px;
margin:6px 0}
.finding.critical{border-left-color:var(--crit)}.finding.high{border-left-color:var(--high)}
.finding.medium{border-left-color:var(--med)}.finding.low{border-left-color:var(--low)}
.finding.suppressed{opacity:.6}
.finding summary{cursor:pointer;padding:6px 12px;list-style-position:outside}
.finding .line{display:flex;gap:4px 10px;flex-wrap:wrap;align-items:baseline}
.finding .msg{display:block;color:#334155;margin-top:2px}
.finding .body{padding:0 16px 10px}
.badge{display:inline-block;border-radius:4px;padding:0 6px;color:#fff;font-size:12px;font-weight:600;
text-transform:uppercase;background:var(--info)}
.badge.critical{background:var(--crit)}.badge.high{background:var(--high)}.badge.medium{background:var(--med)}
.badge.low{background:var(--low)}
.rule{font-family:ui-monospace,monospace;font-weight:600}
.obj{font-family:ui-monospace,monospace;color:#334155}
h4{margin:10px 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.note{background:#fef3c7;border-radius:4px;padding:4px 8px;display:inline-block}
.supp{background:#e0e7ff;border-radius:4px;padding:4px 8px;display:inline-block}
button,select{font:inherit;padding:3px 8px;border:1px solid var(--line);border-radius:4px;background:#fff}
button{cursor:pointer}
.empty{color:var(--muted);font-style:italic}
.ruledoc{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:4px 14px;margin:8px 0}
.netgraph{background:var(--card);border:1px solid var(--line);border-radius:8px;max-width:100%}
.netgraph text{font-size:11px;fill:var(--fg)}
.netgraph text.ns{font-weight:700;font-size:12px}
.netgraph rect.ns{fill:#f1f5f9;stroke:#94a3b8}
.netgraph rect.wl{fill:#fff;stroke:#475569}
.netgraph rect.ext{fill:#fff;stroke:#475569;stroke-dasharray:4}
.netgraph path.edge{fill:none;stroke:#c2410c;stroke-opacity:.55;stroke-width:1.3}
.netgraph path.edge:hover{stroke-opacity:1;stroke-width:2.5}
.netgraph path.edge-head{fill:#c2410c}
.netgraph text.col{font-weight:700;fill:var(--muted)}
"""

JS = """
(function () {
  "use strict";
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-sev]"));
  var layer = document.getElementById("f-layer");
  var query = document.getElementById("f-query");
  var supp = document.getElementById("f-suppressed");
  var groupBy = document.getElementById("f-group");
  var groupBox = document.getElementById("groups");
  var count = document.getElementById("f-count");
  var items = Array.prototype.slice.call(document.querySelectorAll("article.finding"));
  var text = items.map(function (el) {
    return (el.querySelector("summary").textContent + " " + (el.getAttribute("data-src") || "")).toLowerCase();
  });
  var LAYERS = ["cluster", "infrastructure", "application"];
  function label(attr, key) {
    if (attr === "layer") { return key.charAt(0).toUpperCase() + key.slice(1) + " layer"; }
    if (key === "") { return attr === "ns" ? "(cluster-scoped)" : "(no object)"; }
    return key;
  }
  function regroup() {
    var attr = groupBy.value;
    var buckets = Object.create(null);
    var keys = [];
    items.forEach(function (el) {
      var k = el.getAttribute("data-" + attr) || "";
      if (!(k in buckets)) { buckets[k] = []; keys.push(k); }
      buckets[k].push(el);
    });
    if (attr === "layer") {
      keys.sort(function (a, b) { return LAYERS.indexOf(a) - LAYERS.indexOf(b); });
    } else {
      keys.sort();
    }
    while (groupBox.firstChild) { groupBox.removeChild(groupBox.firstChild); }
    keys.forEach(function (k) {
      var sec = document.createElement("details");
      sec.className = "group";
      sec.open = true;
      sec.setAttribute("data-key", k);
      var sum = document.createElement("summary");
      var name = document.createElement("span");
      name.className = "gname";
      name.textContent = label(attr, k);
      var n = document.createElement("span");
      n.className = "gcount";
      sum.appendChild(name);
      sum.appendChild(n);
      sec.appendChild(sum);
      buckets[k].forEach(function (el) { sec.appendChild(el); });
      groupBox.appendChild(sec);
    });
    apply();
  }
  function apply() {
    var sev = {};
    boxes.forEach(function (b) { sev[b.getAttribute("data-sev")] = b.checked; });
    var wantLayer = layer.value;
    var q = query.value.trim().toLowerCase();
    var shown = 0;
    var counts = new Map();  // group element -> [findings, shown]
    items.forEach(function (el, i) {
      var ok = sev[el.getAttribute("data-severity")] === true &&
        (!wantLayer || el.getAttribute("data-layer") === wantLayer) &&
        (supp.checked || el.getAttribute("data-suppressed") === "false") &&
        (!q || text[i].indexOf(q) !== -1);
      if (el.hidden !== !ok) { el.hidden = !ok; }
      var c = counts.get(el.parentNode);
      if (!c) { c = [0, 0]; counts.set(el.parentNode, c); }
      c[0] += 1;
      if (ok) { shown += 1; c[1] += 1; }
    });
    counts.forEach(function (c, g) {
      g.hidden = c[1] === 0;
      g.querySelector(".gcount").textContent = c[1] === c[0] ? String(c[0]) : c[1] + " of " + c[0];
      g.setAttribute("data-shown", String(c[1]));
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
  groupBy.addEventListener("change", regroup);
  document.getElementById("f-expand").addEventListener("click", function () { setOpen(true); });
  document.getElementById("f-collapse").addEventListener("click", function () { setOpen(false); });
  apply();
})();
"""
