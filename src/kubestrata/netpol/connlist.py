"""Workload-level connectivity lists (their formats are in report.netpol).

The txt grammar is np-guard's (``SRC => DST : CONN``, sorted), so ``--compat np-guard`` output can be
compared with its goldens line for line: a peer is ``ns/name[Kind]`` or an address range
``a.b.c.d-e.f.g.h[External]``; CONN is ``All Connections`` or sorted ``PROTO ranges`` items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

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


class _Workloads:
    """Workloads (endpoint labels) over the class map: each label's class columns in first-seen
    endpoint order. The pairwise output is read from the class matrices row by row, so memory stays
    flat in the number of pairs (a label's row is at most one vector over all labels)."""

    def __init__(self, net: Network) -> None:
        eps = net.endpoints
        self.net = net
        self.mx = net.full_matrix()
        self.table = self.mx.table
        p = net.nclasses
        by_label: dict[str, list[int]] = {}
        self.ns: dict[str, str] = {}
        for e in eps:
            c = net.endpoint_col(e)
            cols = by_label.setdefault(e.label, [])
            if c not in cols:
                cols.append(c)
            self.ns.setdefault(e.label, e.namespace)
        self.labels = sorted(by_label)
        self.cols = [by_label[lab] for lab in self.labels]
        self.first = np.asarray([c[0] for c in self.cols], dtype=np.intp)
        self.multi = [i for i, c in enumerate(self.cols) if len(c) > 1]

        def ext(blocks: list[Intervals]) -> list[tuple[str, int]]:
            seen: dict[str, int] = {}
            for block in blocks:
                seen.setdefault(external_label(block), net.ip_col(block[0][0]) - p)
            return sorted(seen.items())

        self.src_ext = ext(net.src_blocks) if eps else []
        self.dst_ext = ext(net.dst_blocks) if eps else []
        self.dst_ext_cols = np.asarray([k for _, k in self.dst_ext], dtype=np.intp)

    def row(self, a: int) -> dict[int, PortSet]:
        """Destination label index -> allowed ports, for source label index a (itself excluded)."""
        pods, table, cols = self.mx.pods, self.table, self.cols
        ca = cols[a]
        ids = pods[ca[0]][self.first]
        out: dict[int, PortSet] = {int(b): table[ids[b]] for b in np.flatnonzero(ids)}
        for c in ca[1:]:  # pods of one owner in several classes: the owner may what any of them may
            more = pods[c][self.first]
            for nz in np.flatnonzero(more):
                b = int(nz)
                prev = out.get(b)
                out[b] = table[more[b]] if prev is None else prev | table[more[b]]
        for b in self.multi:
            for c in ca:
                for d in cols[b][1:]:
                    i = int(pods[c, d])
                    if i:
                        prev = out.get(b)
                        out[b] = table[i] if prev is None else prev | table[i]
        out.pop(a, None)  # traffic of a workload to itself is never blocked
        return out

    def row_to_ext(self, a: int) -> list[tuple[str, PortSet]]:
        """Source label a to each destination address block: the first of its classes that may."""
        out = []
        to_ext = self.mx.to_ext
        for lab, k in self.dst_ext:
            for c in self.cols[a]:
                i = to_ext[c, k]
                if i:
                    out.append((lab, self.table[i]))
                    break
        return out

    def ext_row(self, k: int) -> dict[int, PortSet]:
        """Address block column k to each destination label: the first of its classes that admits it."""
        from_ext, table = self.mx.from_ext, self.table
        ids = from_ext[self.first, k]
        out = {int(b): table[ids[b]] for b in np.flatnonzero(ids)}
        for b in self.multi:
            if b not in out:
                for d in self.cols[b][1:]:
                    if from_ext[d, k]:
                        out[b] = table[from_ext[d, k]]
                        break
        return out


def iter_connections(net: Network, *, external: bool = True) -> Iterator[Conn]:
    """Every allowed workload-to-workload and workload-to-address connection, sorted by (source,
    destination), produced one source row at a time from the class map (never all pairs at once)."""
    w = _Workloads(net)
    labels = w.labels
    sources: list[tuple[str, int, bool]] = [(lab, i, False) for i, lab in enumerate(labels)]
    if external:
        sources += [(lab, k, True) for lab, k in w.src_ext]
    sources.sort()
    for src, i, is_ext in sources:
        if is_ext:
            row = [(labels[b], p) for b, p in w.ext_row(i).items()]
            src_ns = ""
        else:
            row = [(labels[b], p) for b, p in w.row(i).items()]
            if external:
                row += w.row_to_ext(i)
            src_ns = w.ns[src]
        row.sort(key=lambda r: r[0])
        for dst, p in row:
            yield Conn(src, dst, p, src_ns, w.ns.get(dst, ""))


def connections(net: Network, *, external: bool = True) -> list[Conn]:
    """Every allowed workload-to-workload and workload-to-address connection, sorted."""
    return list(iter_connections(net, external=external))


def summary(net: Network, *, top: int = 10, external: bool = True) -> dict[str, Any]:
    """Counts from the class map without listing pairs: allowed workload pairs, workloads reachable
    from outside, and the most exposed workloads (most sources that may reach them, address blocks
    counted as sources)."""
    w = _Workloads(net)
    n = len(w.labels)
    inbound = np.zeros(n, dtype=np.int64)
    pairs = ext_pairs = 0
    bs = np.arange(n)
    for a in range(n):
        if w.multi or len(w.cols[a]) > 1:
            hit = np.zeros(n, dtype=bool)
            hit[list(w.row(a))] = True
        else:
            hit = w.mx.pods[w.cols[a][0]][w.first] != 0
            hit &= bs != a
        inbound += hit
        pairs += int(hit.sum())
        if external:
            ext_pairs += len(w.row_to_ext(a))
    reachable_from_outside = np.zeros(n, dtype=bool)
    if external:
        for _lab, k in w.src_ext:
            got = list(w.ext_row(k))
            inbound[got] += 1
            reachable_from_outside[got] = True
            ext_pairs += len(got)
    order = sorted(range(n), key=lambda b: (-int(inbound[b]), w.labels[b]))[:top]
    return {
        "workloads": n,
        "namespaces": len(set(w.ns.values())),
        "workload_pairs": pairs,
        "external_pairs": ext_pairs,
        "reachable_from_outside": int(reachable_from_outside.sum()),
        "top_exposed": [(w.labels[b], int(inbound[b])) for b in order if inbound[b]],
    }
