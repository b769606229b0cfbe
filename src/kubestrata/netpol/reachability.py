"""Reachability over the compiled classes (the layer of engine.Network between compilation and explanation): each class's verdict per
direction as (column mask, allowed PortSet) atoms, tier by tier, one connection, and the full map.

Tiers, per direction and per port (network-policy-api v1alpha1 / v1alpha2 precedence): the admin
tier by priority, first match decides Allow / Deny / Pass; then NetworkPolicy (if any policy
isolates the pod in this direction, the union of its rules decides); then the baseline tier, first
match; then the default (allow, or deny under AWS strict mode). Security groups for pods are a
second, independent gate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubestrata.netpol.compile import CompiledNetwork
from kubestrata.netpol.model import (
    ALLOW,
    DENY,
    EGRESS,
    INGRESS,
    PASS,
    TIER_ADMIN,
    TIER_BASELINE,
    TIER_NP,
    ParsedPolicy,
)
from kubestrata.netpol.sets import ALL, NONE, PortSet

LUT_MAX = 256  # up to this many distinct port sets, intersect all pairs up front
SMALL_ID_MAX = 32767  # port-set ids fit int16 up to here


@dataclass
class Matrix:
    """The full map: ``pods[s, d]``, ``to_ext[s, a]`` and ``from_ext[d, a]`` are ids into ``table``."""

    pods: Any
    to_ext: Any
    from_ext: Any
    table: list[PortSet]

    def pod(self, s: int, d: int) -> PortSet:
        return self.table[int(self.pods[s, d])]


class Reachability(CompiledNetwork):
    """The compiled network's verdicts and connections."""

    # --- verdicts --------------------------------------------------------------------------------
    def atoms(self, c: int, direction: str) -> list[tuple[int, PortSet]]:
        """The class's verdict in one direction: (column mask, allowed ports) covering every column."""
        key = (c, direction)
        got = self._atoms.get(key)
        if got is None:
            got = self._atoms[key] = self._compute_atoms(c, direction)
        return got

    def _first_match(self, pols: Iterable[ParsedPolicy], c: int, direction: str) -> list[list[Any]]:
        atoms: list[list[Any]] = [[self.U, NONE, NONE, NONE]]  # mask, allow, deny, pass
        slot = {ALLOW: 1, DENY: 2, PASS: 3}
        for p in pols:
            for rule in p.rules(direction):
                s = slot[rule.action]
                for m, ports in self.rule_parts(rule, c, direction):
                    nxt = []
                    for a in atoms:
                        inter = a[0] & m
                        if not inter:
                            nxt.append(a)
                            continue
                        newly = ports - (a[1] | a[2] | a[3])
                        if newly.empty:
                            nxt.append(a)
                            continue
                        rest = a[0] & ~m
                        if rest:
                            nxt.append([rest, a[1], a[2], a[3]])
                        b = [inter, a[1], a[2], a[3]]
                        b[s] = b[s] | newly
                        nxt.append(b)
                    atoms = nxt
        return atoms

    def _compute_atoms(self, c: int, direction: str) -> list[tuple[int, PortSet]]:
        sel = self.selecting[c]
        admin = [p for p in sel if p.tier == TIER_ADMIN]
        nps = [p for p in sel if p.tier == TIER_NP and p.affects(direction)]
        base = [p for p in sel if p.tier == TIER_BASELINE]
        top: list[list[Any]] = (
            self._first_match(admin, c, direction) if admin else [[self.U, NONE, NONE, NONE]]
        )
        out: dict[PortSet, int] = defaultdict(int)
        if nps:
            np_atoms: list[tuple[int, PortSet]] = [(self.U, NONE)]
            for p in nps:
                for rule in p.rules(direction):
                    for m, ports in self.rule_parts(rule, c, direction):
                        np_atoms = _union_atoms(np_atoms, m, ports)
            for tm, allow, deny, _ in top:
                for nm, nport in np_atoms:
                    inter = tm & nm
                    if inter:
                        out[allow | (nport - deny)] |= inter
        else:
            strict = self.options.aws_strict and self._selectable(self.classes[c])
            bottom: list[list[Any]] = (
                self._first_match(base, c, direction) if base else [[self.U, NONE, NONE, NONE]]
            )
            for tm, allow, deny, _ in top:
                for bm, ballow, bdeny, _ in bottom:
                    inter = tm & bm
                    if inter:
                        rest = ballow if strict else ALL - bdeny
                        out[allow | (rest - deny)] |= inter
        if self._sg_active(c):
            # security groups are a second, independent gate at the pod's own ENI
            sg_atoms: list[tuple[int, PortSet]] = [(self.U, NONE)]
            for _g, m, ports in self._sg_rules(c, direction):
                sg_atoms = _union_atoms(sg_atoms, m, ports)
            layered: dict[PortSet, int] = defaultdict(int)
            for ps, m in out.items():
                for sm, sp in sg_atoms:
                    inter = m & sm
                    if inter:
                        layered[ps & sp] |= inter
            out = layered
        return [(m, p) for p, m in out.items()]

    def lookup(self, c: int, direction: str, col: int) -> PortSet:
        bit = 1 << col
        for m, p in self.atoms(c, direction):
            if m & bit:
                return p
        return NONE

    def connection(self, src_col: int, dst_col: int) -> PortSet:
        """Allowed ports from one column to another (at least one side a pod class)."""
        eg = self.lookup(src_col, EGRESS, dst_col) if src_col < self.nclasses else ALL
        if eg.empty:
            return NONE
        ing = self.lookup(dst_col, INGRESS, src_col) if dst_col < self.nclasses else ALL
        return eg & ing

    # --- the full map ----------------------------------------------------------------------------
    def full_matrix(self) -> Matrix:
        """Connectivity between every pair of classes, and between classes and address blocks.

        Each class's two verdicts are painted into integer matrices of PortSet ids (numpy), and the
        source-egress x destination-ingress intersection is computed once per distinct id pair."""
        import numpy as np

        if self._matrix is not None:
            return self._matrix
        p, n = self.nclasses, self.ncols
        table: list[PortSet] = [NONE]
        ids: dict[PortSet, int] = {NONE: 0}

        def pid(ps: PortSet) -> int:
            got = ids.get(ps)
            if got is None:
                got = ids[ps] = len(table)
                table.append(ps)
            return got

        nbytes = (n + 7) // 8
        # int16 ids while they fit: the two verdict matrices dominate memory at scale
        mats = {EGRESS: np.zeros((p, n), dtype=np.int16), INGRESS: np.zeros((p, n), dtype=np.int16)}
        for c in range(p):
            for d in (EGRESS, INGRESS):
                for m, ps in self.atoms(c, d):
                    bits = np.unpackbits(
                        np.frombuffer(m.to_bytes(nbytes, "little"), dtype=np.uint8), bitorder="little"
                    )[:n].astype(bool)
                    i = pid(ps)
                    if mats[d].dtype == np.int16 and i > SMALL_ID_MAX:
                        mats = {key: v.astype(np.int32) for key, v in mats.items()}
                    mats[d][c, bits] = i
        eg, ing = mats[EGRESS], mats[INGRESS]
        k = len(table)
        pods = np.zeros((p, p), dtype=np.int32)
        chunk = 1024  # rows at a time: bounds the temporaries for very many classes
        if k <= LUT_MAX:
            # few distinct port sets (the usual case): intersect every pair once, then one gather
            lut = np.array([pid(a & b) for a in list(table) for b in list(table[:k])], dtype=np.int32)
            for r0 in range(0, p, chunk):
                r1 = min(p, r0 + chunk)
                pods[r0:r1] = lut[eg[r0:r1, :p].astype(np.int32) * k + ing[:p, r0:r1].T]
        else:
            for r0 in range(0, p, chunk):
                r1 = min(p, r0 + chunk)
                key = eg[r0:r1, :p].astype(np.int64) * k + ing[:p, r0:r1].T
                uniq, inv = np.unique(key, return_inverse=True)
                merged = np.fromiter(
                    (pid(table[int(u) // k] & table[int(u) % k]) for u in uniq),
                    dtype=np.int32,
                    count=len(uniq),
                )
                pods[r0:r1] = merged[inv].reshape(r1 - r0, p)
        self._matrix = Matrix(pods, eg[:, p:], ing[:, p:], table)
        return self._matrix


def _union_atoms(atoms: list[tuple[int, PortSet]], m: int, ports: PortSet) -> list[tuple[int, PortSet]]:
    """Allow-union atoms (peer-column mask, ports) refined by one rule: the columns of m gain ports,
    splitting an atom that m covers only in part."""
    nxt = []
    for am, ap in atoms:
        inter = am & m
        if not inter or (ap | ports) is ap:
            nxt.append((am, ap))
            continue
        rest = am & ~m
        if rest:
            nxt.append((rest, ap))
        nxt.append((inter, ap | ports))
    return nxt
