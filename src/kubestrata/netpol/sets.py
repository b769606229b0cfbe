"""Interval sets: ports per protocol and IP address ranges, as sorted disjoint closed intervals.

One representation (a tuple of ``(lo, hi)`` pairs) serves both, so port and address arithmetic share
the same few, well-tested functions. Values are interned so the engine can compare and index
connection sets by identity.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

Intervals = tuple[tuple[int, int], ...]

PROTOCOLS = ("TCP", "UDP", "SCTP")
PORT_MIN, PORT_MAX = 1, 65535
FULL_PORTS: Intervals = ((PORT_MIN, PORT_MAX),)

# IPv4 addresses are the integers [0, 2**32); IPv6 addresses are shifted above them so one line of
# integers holds both families and interval arithmetic never needs to know which is which. The
# one-value gap keeps the two families from ever merging into one range.
V4_SIZE = 1 << 32
V6_OFFSET = V4_SIZE + 1
V6_SIZE = 1 << 128
V4_ALL: Intervals = ((0, V4_SIZE - 1),)
V6_ALL: Intervals = ((V6_OFFSET, V6_OFFSET + V6_SIZE - 1),)


def normalize(items: Iterable[tuple[int, int]]) -> Intervals:
    out: list[list[int]] = []
    for lo, hi in sorted(items):
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def union(a: Intervals, b: Intervals) -> Intervals:
    if not a:
        return b
    if not b or a == b:
        return a
    return normalize((*a, *b))


def intersect(a: Intervals, b: Intervals) -> Intervals:
    if not a or not b:
        return ()
    if a == b:
        return a
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def subtract(a: Intervals, b: Intervals) -> Intervals:
    if not a or not b:
        return a
    out = []
    j = 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j][1] < cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > cur:
                out.append((cur, b[k][0] - 1))
            cur = max(cur, b[k][1] + 1)
            if cur > hi:
                break
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def contains(a: Intervals, v: int) -> bool:
    return any(lo <= v <= hi for lo, hi in a)


def size(a: Intervals) -> int:
    return sum(hi - lo + 1 for lo, hi in a)


# ---------------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortSet:
    """Allowed ports per protocol (TCP, UDP, SCTP); immutable and interned."""

    tcp: Intervals = ()
    udp: Intervals = ()
    sctp: Intervals = ()

    @staticmethod
    def of(proto: str, lo: int, hi: int) -> PortSet:
        return PortSet.from_map({proto: ((lo, hi),)})

    @staticmethod
    def from_map(m: dict[str, Intervals]) -> PortSet:
        return intern(
            PortSet(normalize(m.get("TCP", ())), normalize(m.get("UDP", ())), normalize(m.get("SCTP", ())))
        )

    def get(self, proto: str) -> Intervals:
        return self.tcp if proto == "TCP" else self.udp if proto == "UDP" else self.sctp

    def items(self) -> Iterator[tuple[str, Intervals]]:
        yield "TCP", self.tcp
        yield "UDP", self.udp
        yield "SCTP", self.sctp

    def __or__(self, o: PortSet) -> PortSet:
        if self is o or o is NONE:
            return self
        if self is NONE:
            return o
        return intern(PortSet(union(self.tcp, o.tcp), union(self.udp, o.udp), union(self.sctp, o.sctp)))

    def __and__(self, o: PortSet) -> PortSet:
        if self is o or o is ALL:
            return self
        if self is ALL:
            return o
        return intern(
            PortSet(intersect(self.tcp, o.tcp), intersect(self.udp, o.udp), intersect(self.sctp, o.sctp))
        )

    def __sub__(self, o: PortSet) -> PortSet:
        if o is NONE:
            return self
        if o is ALL or self is o:
            return NONE
        return intern(
            PortSet(subtract(self.tcp, o.tcp), subtract(self.udp, o.udp), subtract(self.sctp, o.sctp))
        )

    @property
    def empty(self) -> bool:
        return self is NONE

    @property
    def is_all(self) -> bool:
        return self is ALL

    def allows(self, proto: str, port: int) -> bool:
        return contains(self.get(proto), port)

    def __str__(self) -> str:
        """np-guard grammar: ``All Connections`` or ``SCTP 1-9002,TCP 80`` (protocols sorted)."""
        if self.is_all:
            return "All Connections"
        if self.empty:
            return "No Connections"
        parts = []
        for proto in sorted(PROTOCOLS):
            iv = self.get(proto)
            if iv:
                parts.append(f"{proto} {ranges_str(iv)}")
        return ",".join(parts)

    def to_json(self) -> dict[str, list[str]] | str:
        if self.is_all:
            return "all"
        return {p: [r for r in ranges_str(iv).split(",")] for p, iv in self.items() if iv}


def ranges_str(iv: Intervals) -> str:
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in iv)


_INTERN: dict[PortSet, PortSet] = {}


def intern(p: PortSet) -> PortSet:
    got = _INTERN.get(p)
    if got is None:
        _INTERN[p] = got = p
    return got


NONE = intern(PortSet())
ALL = intern(PortSet(FULL_PORTS, FULL_PORTS, FULL_PORTS))


# ---------------------------------------------------------------------------------------------------
# IP addresses
# ---------------------------------------------------------------------------------------------------


def cidr_interval(text: str) -> tuple[int, int]:
    """A CIDR as an interval on the combined v4/v6 line. Raises ValueError on a malformed CIDR.

    Host bits set (``10.0.0.1/8``) are accepted as the API server does (it validates with
    net.ParseCIDR, which masks them)."""
    net = ipaddress.ip_network(text.strip(), strict=False)
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if net.version == 6:
        return lo + V6_OFFSET, hi + V6_OFFSET
    return lo, hi


def ip_value(text: str) -> int:
    addr = ipaddress.ip_address(text.strip())
    return int(addr) + (V6_OFFSET if addr.version == 6 else 0)


def ip_str(v: int) -> str:
    if v < V4_SIZE:
        return str(ipaddress.IPv4Address(v))
    return str(ipaddress.IPv6Address(v - V6_OFFSET))


def ip_ranges_str(iv: Intervals) -> str:
    """``a.b.c.d-e.f.g.h`` ranges joined by commas; a range crossing families is split."""
    parts = []
    for lo, hi in iv:
        if lo < V4_SIZE <= hi:
            parts.append(f"{ip_str(lo)}-{ip_str(V4_SIZE - 1)}")
            parts.append(f"{ip_str(V6_OFFSET)}-{ip_str(hi)}")
        elif lo == V4_SIZE:  # the gap value between the families holds no address
            continue
        else:
            parts.append(f"{ip_str(lo)}-{ip_str(hi)}")
    return ",".join(parts)


def is_v4(iv: Intervals) -> bool:
    return all(hi < V4_SIZE for _, hi in iv)


def disjoint_blocks(blocks: list[Intervals], universe: Intervals) -> list[Intervals]:
    """Split the address space into disjoint blocks so every input block is a union of result blocks.

    Mirrors np-guard's DisjointIPBlocks (smallest blocks first; each new block is split into its
    ranges, overlaps carved out), so range boundaries in the output match the goldens exactly."""
    items: list[Intervals] = []
    for b in blocks:
        items.extend(((lo, hi),) for lo, hi in b)  # inputs are split into single ranges first
    items.append(universe)
    items.sort(key=size)
    res: list[Intervals] = []
    for new in items:
        to_add: list[Intervals] = []
        for idx, old in enumerate(res):
            inter = intersect(old, new)
            if not inter:
                continue
            new = subtract(new, inter)
            if inter != old:
                to_add.append(inter)
                res[idx] = subtract(old, inter)
            if not new:
                break
        res.extend(((lo, hi),) for lo, hi in new)
        res.extend(to_add)
    return res or [universe]


def elementary(blocks: Iterable[Intervals], universe: Intervals) -> list[tuple[int, int]]:
    """The coarsest partition of ``universe`` into single ranges that refines every block."""
    cuts = {lo for lo, _ in universe} | {hi + 1 for _, hi in universe}
    for b in blocks:
        for lo, hi in b:
            cuts.add(lo)
            cuts.add(hi + 1)
    out: list[tuple[int, int]] = []
    for ulo, uhi in universe:
        pts = sorted(c for c in cuts if ulo <= c <= uhi + 1)
        out.extend((a, b - 1) for a, b in zip(pts, pts[1:], strict=False))
    return out
