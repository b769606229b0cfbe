"""Workload-level connectivity lists and their formats (txt, json, csv, md, dot).

The txt grammar is np-guard's (``SRC => DST : CONN``, sorted), so ``--compat np-guard`` output can be
compared with its goldens line for line: a peer is ``ns/name[Kind]`` or an address range
``a.b.c.d-e.f.g.h[External]``; CONN is ``All Connections`` or sorted ``PROTO ranges`` items.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from kubestrata.netpol import sets
from kubestrata.netpol.engine import Network
from kubestrata.netpol.sets import Intervals, PortSet


@dataclass(frozen=True, slots=True)
class Conn:
    src: str
    dst: str
    ports: PortSet
    src_ns: str = ""  # "" for external address ranges
    dst_ns: str = ""

    @property
    def conn(self) -> str:
        return str(self.ports)


def external_label(block: Intervals) -> str:
    return f"{sets.ip_ranges_str(block)}[External]"


def connections(net: Network, *, external: bool = True) -> list[Conn]:
    """Every allowed workload-to-workload and workload-to-address connection, sorted."""
    import numpy as np  # here, not at the top: `scan` imports this module and must not pay for numpy

    out: dict[tuple[str, str], Conn] = {}
    eps = net.endpoints
    cols = [net.endpoint_col(e) for e in eps]
    mx = net.full_matrix()
    table = mx.table
    col_arr = np.asarray(cols, dtype=np.intp)
    for i, a in enumerate(eps):
        ids = mx.pods[cols[i]][col_arr]
        for j in np.flatnonzero(ids):  # id 0 is "no connection"
            b = eps[j]
            if a.label == b.label:
                continue  # traffic of a workload to itself is never blocked
            p = table[ids[j]]
            key = (a.label, b.label)
            prev = out.get(key)
            # pods of one owner with different labels: the owner may connect with what any of them may
            out[key] = Conn(a.label, b.label, p if prev is None else prev.ports | p, a.namespace, b.namespace)
    if external and eps:
        for block in net.src_blocks:
            col = net.ip_col(block[0][0])
            lab = external_label(block)
            for j, b in enumerate(eps):
                p = net.connection(col, cols[j])
                if not p.empty:
                    out.setdefault((lab, b.label), Conn(lab, b.label, p, "", b.namespace))
        for block in net.dst_blocks:
            col = net.ip_col(block[0][0])
            lab = external_label(block)
            for i, a in enumerate(eps):
                p = net.connection(cols[i], col)
                if not p.empty:
                    out.setdefault((a.label, lab), Conn(a.label, lab, p, a.namespace, ""))
    return [out[k] for k in sorted(out)]


def render(conns: list[Conn], fmt: str, net: Network | None = None) -> str:
    if fmt == "txt":
        return "\n".join(f"{c.src} => {c.dst} : {c.conn}" for c in conns) + ("\n" if conns else "")
    if fmt == "json":
        return json.dumps([{"src": c.src, "dst": c.dst, "conn": c.conn} for c in conns], indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["src", "dst", "conn"])
        for c in conns:
            w.writerow([c.src, c.dst, c.conn])
        return buf.getvalue()
    if fmt == "md":
        lines = ["| src | dst | conn |", "|-----|-----|------|"]
        lines += [f"| {_md(c.src)} | {_md(c.dst)} | {_md(c.conn)} |" for c in conns]
        return "\n".join(lines) + "\n"
    if fmt == "dot":
        from kubestrata.netpol.graph import to_dot

        return to_dot(conns, net)
    raise ValueError(f"unknown format {fmt!r}")


def _md(s: str) -> str:
    return s.replace("|", "\\|")
