"""The HTML report's network connectivity view: bounded and readable.

Counts come from the netpol class map without listing pairs (``connlist.summary``), so the view
costs the same at any number of allowed pairs; the most exposed workloads are listed at every size.
Only up to ``max_edges`` connections are drawn: sources in a left column, destinations in a right
one, each grouped by namespace, and every edge a curve in the gutter between the columns, so no
edge ever crosses a label (ports are in each edge's tooltip and in the table below it). Past
``max_classes`` pod classes the class map itself is not built. Every name is escaped.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape

from kubestrata.netpol.connlist import Conn, connections, summary
from kubestrata.netpol.engine import Network

EXTERNAL = "external addresses"
BOX_W, BOX_H, ROW, NS_ROW = 250, 20, 24, 26
LEFT_X, GUTTER = 16, 330
MAX_LABEL = 38  # characters that fit in a box at the stylesheet's 11px


def _e(s: object) -> str:
    return escape(str(s), quote=True)


def _short(label: str, ns: str) -> str:
    name = label.split("/", 1)[1] if ns != EXTERNAL and "/" in label else label
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


def _column(entries: dict[str, str], x: int, out: list[str]) -> dict[str, int]:
    """Boxes for one column (label -> namespace), grouped by namespace; each label's centre y."""
    groups: dict[str, list[str]] = defaultdict(list)
    for lab, ns in entries.items():
        groups[ns].append(lab)
    y = 40
    centre: dict[str, int] = {}
    for ns in sorted(groups, key=lambda g: (g == EXTERNAL, g)):
        members = sorted(groups[ns])
        h = NS_ROW + len(members) * ROW + 4
        out.append(
            f'<rect class="ns" x="{x - 6}" y="{y}" width="{BOX_W + 12}" height="{h}" rx="6"/>'
            f'<text class="ns" x="{x}" y="{y + 17}">{_e(_short(ns, EXTERNAL))}</text>'
        )
        yy = y + NS_ROW
        for lab in members:
            cls = "ext" if ns == EXTERNAL else "wl"
            out.append(
                f'<g class="node" data-label="{_e(lab)}"><title>{_e(lab)}</title>'
                f'<rect class="{cls}" x="{x}" y="{yy}" width="{BOX_W}" height="{BOX_H}"/>'
                f'<text x="{x + 6}" y="{yy + 14}">{_e(_short(lab, ns))}</text></g>'
            )
            centre[lab] = yy + BOX_H // 2
            yy += ROW
        y += h + 10
    return centre


def _graph(conns: list[Conn]) -> str:
    left = {c.src: c.src_ns or EXTERNAL for c in conns}
    right = {c.dst: c.dst_ns or EXTERNAL for c in conns}
    out: list[str] = []
    x_right = LEFT_X + BOX_W + GUTTER
    ys = _column(left, LEFT_X, out)
    yd = _column(right, x_right, out)
    x1, x2 = LEFT_X + BOX_W, x_right
    bend = GUTTER // 2
    for c in conns:
        a, b = ys[c.src], yd[c.dst]
        out.append(
            f'<path class="edge" d="M{x1},{a} C{x1 + bend},{a} {x2 - bend},{b} {x2 - 7},{b}">'
            f"<title>{_e(c.src)} → {_e(c.dst)}: {_e(c.conn)}</title></path>"
            f'<path class="edge-head" d="M{x2},{b} l-7,-4 v8 z"/>'
        )
    height = max([*ys.values(), *yd.values(), 0]) + 30
    width = x_right + BOX_W + LEFT_X
    return (
        f'<svg class="netgraph" role="img" aria-label="Allowed connections" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text class="col" x="{LEFT_X}" y="24">from</text><text class="col" x="{x_right}" y="24">to</text>'
        + "".join(out)
        + "</svg>"
    )


def _matrix(conns: list[Conn], labels: list[str]) -> str:
    """Who may reach whom (source rows, destination columns, allowed ports in the cells)."""
    cell = {(c.src, c.dst): c.conn for c in conns}
    rows = ['<div class="scroll"><table class="netpol-matrix"><tr><th>from \\ to</th>']
    rows.extend(f"<th>{_e(d)}</th>" for d in labels)
    rows.append("</tr>")
    for src in labels:
        rows.append(f"<tr><th>{_e(src)}</th>")
        rows.extend(f"<td>{_e(cell.get((src, dst), ''))}</td>" for dst in labels)
        rows.append("</tr>")
    rows.append("</table></div>")
    return "".join(rows)


def _table(conns: list[Conn]) -> str:
    rows = ['<div class="scroll"><table class="netpol-conns"><tr><th>from</th><th>to</th><th>ports</th></tr>']
    rows.extend(f"<tr><td>{_e(c.src)}</td><td>{_e(c.dst)}</td><td>{_e(c.conn)}</td></tr>" for c in conns)
    rows.append("</table></div>")
    return "".join(rows)


def network_section(
    net: Network,
    *,
    max_edges: int = 120,
    max_classes: int = 4000,
    max_matrix: int = 40,
    include_external: bool = True,
) -> str:
    """``<section class="netpol-connectivity">`` for the HTML scan report."""
    head = '<section class="netpol-connectivity" id="network"><h2>Network connectivity</h2>'
    if net.nclasses > max_classes:
        # the class map is nclasses^2 ids (plus two verdict matrices): past this size it would cost
        # the report more memory than everything else in it
        namespaces = len({ep.namespace for ep in net.endpoints})
        workloads = len({ep.label for ep in net.endpoints})
        return (
            head + f'<p id="net-summary">{workloads} workloads in {namespaces} namespaces fall into '
            f"{net.nclasses} equivalence classes, more than this report summarises ({max_classes}); use "
            "<code>kubestrata netpol list --max-pairs N</code> or <code>kubestrata netpol list -o dot</code>."
            "</p></section>"
        )
    s = summary(net, external=include_external)
    total = s["workload_pairs"] + s["external_pairs"]
    out = [
        head,
        f'<p id="net-summary" data-connections="{total}">{total} allowed connections between '
        f"{s['workloads']} workloads in {s['namespaces']} namespaces: {s['workload_pairs']} between "
        f"workloads, {s['external_pairs']} with external address ranges; "
        f"{s['reachable_from_outside']} workloads reachable from outside the cluster.</p>",
    ]
    if s["top_exposed"]:
        out.append(
            '<h3>Most exposed workloads</h3><table class="netpol-exposed"><tr><th>workload</th>'
            "<th>sources that may connect</th></tr>"
            + "".join(f'<tr><td>{_e(lab)}</td><td class="num">{n}</td></tr>' for lab, n in s["top_exposed"])
            + "</table>"
        )
    if total > max_edges:
        out.append(
            f'<p id="net-not-drawn">Too many connections to draw readably ({total} &gt; {max_edges}); '
            "list them with <code>kubestrata netpol list</code> (<code>-o dot</code> for Graphviz).</p>"
        )
    elif total:
        conns = connections(net, external=include_external)
        out.append("<h3>Allowed connections</h3>")
        out.append(_graph(conns))
        labels = sorted({c.src for c in conns} | {c.dst for c in conns} | {ep.label for ep in net.endpoints})
        out.append(_matrix(conns, labels) if len(labels) <= max_matrix else _table(conns))
    out.append("</section>")
    return "".join(out)
