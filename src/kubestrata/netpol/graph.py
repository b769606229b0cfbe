"""Connectivity graphs a person can read: Graphviz dot, and an HTML fragment for the scan report.

Both group workloads by namespace and label edges with ports. Names come from manifests (attacker
controlled), so every label is escaped for its output language.
"""

from __future__ import annotations

import html
from collections import defaultdict

from kubestrata.netpol.connlist import Conn, connections, summary
from kubestrata.netpol.engine import Network

EXTERNAL = "external"


def _dot_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(conns: list[Conn], net: Network | None = None) -> str:
    """``digraph`` with one ``subgraph cluster_<n>`` per namespace; external ranges in their own box."""
    nodes: dict[str, set[str]] = defaultdict(set)
    for c in conns:
        nodes[c.src_ns or EXTERNAL].add(c.src)
        nodes[c.dst_ns or EXTERNAL].add(c.dst)
    if net is not None:  # workloads without any allowed connection still deserve a node
        for ep in net.endpoints:
            nodes[ep.namespace].add(ep.label)
    ids: dict[str, str] = {}
    lines = ["digraph {", "\tcompound=true", "\tnode [shape=box, fontsize=10]"]
    for gi, ns in enumerate(sorted(nodes)):
        lines.append(f"\tsubgraph cluster_{gi} {{")
        lines.append(f"\t\tlabel={_dot_str(ns if ns != EXTERNAL else 'external addresses')}")
        for n in sorted(nodes[ns]):
            ids[n] = f"n{len(ids)}"
            short = n.split("/", 1)[1] if "/" in n and ns != EXTERNAL else n
            style = ", style=dashed" if ns == EXTERNAL else ""
            lines.append(f"\t\t{ids[n]} [label={_dot_str(short)}{style}]")
        lines.append("\t}")
    for c in conns:
        lines.append(f"\t{ids[c.src]} -> {ids[c.dst]} [label={_dot_str(c.conn)}, fontsize=9]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def connectivity_html(
    net: Network, *, max_edges: int = 400, include_external: bool = True, max_classes: int = 4000
) -> str:
    """An HTML fragment (``<section class="netpol-connectivity">`` with an inline SVG) for the HTML scan
    report: namespaces as labelled groups, workloads as boxes, allowed connections as arrows labelled
    with their ports. Self-contained (no scripts, no external assets); all text is escaped.

    Usage from a report renderer::

        from kubestrata.netpol.engine import Network
        from kubestrata.netpol.graph import connectivity_html
        fragment = connectivity_html(Network(cluster))

    Beyond ``max_edges`` connections the fragment lists the count instead of drawing an unreadable
    hairball: the counts and the most exposed workloads, read from the class map without listing
    pairs (so its cost does not grow with the number of allowed pairs); beyond ``max_classes`` pod
    classes it says how to list them instead of building the class map."""
    esc = html.escape
    if net.nclasses > max_classes:
        # the class map is nclasses^2 ids (plus two verdict matrices): past this size it would cost
        # the report more memory than everything else in it
        namespaces = len({ep.namespace for ep in net.endpoints})
        workloads = len({ep.label for ep in net.endpoints})
        return (
            f'<section class="netpol-connectivity"><h2>Network connectivity</h2>'
            f"<p>{workloads} workloads in {namespaces} namespaces fall into {net.nclasses} equivalence "
            f"classes, more than this report summarises ({max_classes}); use "
            "<code>kubestrata netpol list --max-pairs N</code> or <code>kubestrata netpol list -o dot</code>."
            "</p></section>"
        )
    summ = summary(net, external=include_external)
    total = summ["workload_pairs"] + summ["external_pairs"]
    if total > max_edges:
        rows = "".join(f"<tr><td>{esc(lab)}</td><td>{n}</td></tr>" for lab, n in summ["top_exposed"])
        return (
            f'<section class="netpol-connectivity"><h2>Network connectivity</h2>'
            f"<p>{total} allowed connections between {summ['workloads']} workloads in "
            f"{summ['namespaces']} namespaces: {summ['workload_pairs']} between workloads, "
            f"{summ['external_pairs']} with external address ranges; {summ['reachable_from_outside']} "
            "workloads reachable from outside the cluster.</p>"
            f"<p>Too many connections to draw ({total} &gt; {max_edges}); use "
            "<code>kubestrata netpol list -o dot</code>.</p>"
            + (
                '<table class="netpol-exposed"><tr><th>most exposed workloads</th>'
                f"<th>sources that may connect</th></tr>{rows}</table>"
                if rows
                else ""
            )
            + "</section>"
        )
    conns = connections(net, external=include_external)
    groups: dict[str, list[str]] = defaultdict(list)
    for ep in net.endpoints:
        if ep.label not in groups[ep.namespace]:
            groups[ep.namespace].append(ep.label)
    for c in conns:
        for ns, lab in ((c.src_ns, c.src), (c.dst_ns, c.dst)):
            if not ns and lab not in groups[EXTERNAL]:
                groups[EXTERNAL].append(lab)
    head = (
        f'<section class="netpol-connectivity"><h2>Network connectivity</h2>'
        f"<p>{len(conns)} allowed connections between {len(net.endpoints)} workloads in "
        f"{len([g for g in groups if g != EXTERNAL])} namespaces.</p>"
    )
    box_w, box_h, gap, col_w = 220, 26, 10, 300
    pos: dict[str, tuple[int, int]] = {}
    svg: list[str] = []
    height = 0
    for gi, ns in enumerate(sorted(groups, key=lambda g: (g == EXTERNAL, g))):
        x = 20 + gi * col_w
        members = sorted(groups[ns])
        gh = 30 + len(members) * (box_h + gap)
        height = max(height, gh + 40)
        svg.append(
            f'<rect x="{x - 10}" y="10" width="{box_w + 20}" height="{gh}" rx="8" fill="#f3f6fa" '
            f'stroke="#8aa"/><text x="{x}" y="30" font-weight="bold">{esc(ns)}</text>'
        )
        for i, lab in enumerate(members):
            y = 40 + i * (box_h + gap)
            pos[lab] = (x, y)
            short = lab.split("/", 1)[1] if ns != EXTERNAL else lab
            dash = ' stroke-dasharray="4"' if ns == EXTERNAL else ""
            svg.append(
                f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" fill="#fff" stroke="#456"{dash}/>'
                f'<text x="{x + 6}" y="{y + 17}" font-size="11">{esc(short)}</text>'
            )
    for c in conns:
        (x1, y1), (x2, y2) = pos[c.src], pos[c.dst]
        sy, ey = y1 + box_h // 2, y2 + box_h // 2
        title = f"<title>{esc(c.src)} =&gt; {esc(c.dst)} : {esc(c.conn)}</title>"
        if x1 == x2:  # same namespace: a curve bulging out to the right of the group
            sx = ex = x1 + box_w
            cx, cy = sx + 40 + abs(ey - sy) // 4, (sy + ey) // 2
            svg.append(
                f'<path d="M{sx},{sy} Q{cx},{cy} {ex},{ey}" fill="none" stroke="#c55" '
                f'marker-end="url(#arr)">{title}</path>'
                f'<text x="{cx - 18}" y="{cy}" font-size="9" fill="#a33">{esc(c.conn)}</text>'
            )
            continue
        sx, ex = (x1 + box_w, x2) if x2 > x1 else (x1, x2 + box_w)
        svg.append(
            f'<line x1="{sx}" y1="{sy}" x2="{ex}" y2="{ey}" stroke="#c55" marker-end="url(#arr)">{title}</line>'
            f'<text x="{(sx + ex) // 2}" y="{(sy + ey) // 2 - 3}" font-size="9" fill="#a33">{esc(c.conn)}</text>'
        )
    width = 40 + len(groups) * col_w
    return (
        head + f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif"><defs><marker id="arr" markerWidth="8" markerHeight="8" refX="8" '
        'refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#c55"/></marker></defs>'
        + "".join(svg)
        + "</svg>"
        + _matrix(conns, groups)
        + "</section>"
    )


def _matrix(conns: list[Conn], groups: dict[str, list[str]], max_endpoints: int = 40) -> str:
    """Who may reach whom as a table (source rows, destination columns, allowed ports in the cells):
    where arrows cross, the table stays readable."""
    order = [lab for ns in sorted(groups, key=lambda g: (g == EXTERNAL, g)) for lab in sorted(groups[ns])]
    if not order or len(order) > max_endpoints:
        return ""
    cell = {(c.src, c.dst): c.conn for c in conns}
    esc = html.escape
    rows = ['<table class="netpol-matrix"><tr><th>from \\ to</th>']
    rows.extend(f"<th>{esc(d)}</th>" for d in order)
    rows.append("</tr>")
    for src in order:
        rows.append(f"<tr><th>{esc(src)}</th>")
        rows.extend(f"<td>{esc(cell.get((src, dst), ''))}</td>" for dst in order)
        rows.append("</tr>")
    rows.append("</table>")
    return "".join(rows)
