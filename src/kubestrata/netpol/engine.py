"""The reachability engine: equivalence classes of pods, per-protocol port interval sets, tiers.

Pods fall into classes by (namespace, labels, named ports, address block, hostNetwork): every policy
treats all pods of a class alike, so the engine evaluates classes, never pairs of pods. Peer sets are
bitmasks over "columns" (pod classes, then disjoint external address blocks); a class's policy
verdict in one direction is a short list of (column mask, allowed PortSet) atoms, built by splitting
masks rule by rule. A connection needs the source's egress verdict AND the destination's ingress
verdict.

Tiers, per direction and per port (network-policy-api v1alpha1 / v1alpha2 precedence):
  1. admin tier (AdminNetworkPolicy, ClusterNetworkPolicy tier Admin) by priority, lower first; rules
     in order, first match decides Allow / Deny / Pass;
  2. NetworkPolicy: if any policy isolates the pod in this direction, the union of its rules decides;
  3. baseline tier (BaselineAdminNetworkPolicy, ClusterNetworkPolicy tier Baseline), first match;
  4. default: allow (or deny under AWS strict mode).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubestrata.errors import InputError
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.selectors import LabelSelector
from kubestrata.netpol import sets
from kubestrata.netpol.endpoints import Endpoint, collect_endpoints
from kubestrata.netpol.model import (
    ALLOW,
    BANP_KIND,
    DENY,
    EGRESS,
    INGRESS,
    PASS,
    POLICY_KINDS,
    TIER_ADMIN,
    TIER_BASELINE,
    TIER_NP,
    Peer,
    Policy,
    PortSpec,
    Rule,
    SecurityGroupPolicy,
    parse_policy,
)
from kubestrata.netpol.securitygroups import SecurityGroup
from kubestrata.netpol.securitygroups import blocks as sg_blocks
from kubestrata.netpol.sets import ALL, NONE, Intervals, PortSet

PROBE_NAMESPACE = "<any-namespace>"
LUT_MAX = 256  # up to this many distinct port sets, intersect all pairs up front
SMALL_ID_MAX = 32767  # port-set ids fit int16 up to here
_KIND_ORDER = {"AdminNetworkPolicy": 0, "ClusterNetworkPolicy": 1, "NetworkPolicy": 2, BANP_KIND: 3}


@dataclass(frozen=True)
class Options:
    """Behaviours implementations differ on (reference §0.3); defaults follow upstream e2e."""

    ipblock_matches_pods: bool = True  # e2e and Cyclonus: yes; np-guard: no
    hostnetwork: str = "node"  # "node": hostNetwork pods are node traffic, never selected; "pod": like pods
    aws_strict: bool = False  # VPC CNI NETWORK_POLICY_ENFORCING_MODE=strict: unselected pods deny all
    include_init_ports: bool = False  # named ports from init containers too (np-guard: no)
    ipv6: bool = True  # np-guard's universe is IPv4 only
    same_priority: str = "warn"  # two admin policies at one priority: "warn" (order by name) or "error"
    resolve_owners: bool = True  # name pods by Deployment/CronJob, skip finished pods (np-guard: no)

    @staticmethod
    def np_guard() -> Options:
        return Options(
            ipblock_matches_pods=False,
            hostnetwork="pod",
            ipv6=False,
            same_priority="warn",
            resolve_owners=False,
        )


@dataclass
class Gap:
    subject: str
    detail: str


@dataclass
class PodClass:
    idx: int
    namespace: str
    labels: dict[str, str]
    ports: tuple[tuple[str, str, int], ...]
    ip_atoms: tuple[int, ...]
    host_network: bool
    groups: tuple[str, ...] = ()
    members: list[Endpoint] = field(default_factory=list)


@dataclass(frozen=True)
class Reason:
    """One step of a verdict: which tier and policy decided which ports, and how."""

    direction: str
    tier: str
    policy: str
    rule: str
    verdict: str  # allow / deny / pass / isolate / default
    ports: PortSet
    text: str


@dataclass
class Matrix:
    """The full map: ``pods[s, d]``, ``to_ext[s, a]`` and ``from_ext[d, a]`` are ids into ``table``."""

    pods: Any
    to_ext: Any
    from_ext: Any
    table: list[PortSet]

    def pod(self, s: int, d: int) -> PortSet:
        return self.table[int(self.pods[s, d])]


@dataclass
class Verdict:
    allowed: PortSet
    reasons: list[Reason]


class Network:
    """A snapshot's policies, endpoints and classes, ready for queries."""

    def __init__(
        self,
        cluster: Cluster,
        options: Options | None = None,
        *,
        security_groups: dict[str, SecurityGroup] | None = None,
    ) -> None:
        self.options = opts = options or Options()
        self.cluster = cluster
        # AWS security group rules (describe-security-groups); None: membership is reported only
        self.security_groups = security_groups
        self.gaps: list[Gap] = []
        self.warnings: list[str] = []
        self.policies: list[Policy] = []
        self.sgps: list[SecurityGroupPolicy] = []
        for obj in cluster.real_objects():
            if obj.kind not in POLICY_KINDS:
                continue
            try:
                p = parse_policy(obj)
            except InputError as e:
                self.gaps.append(
                    Gap(f"{obj.kind}/{obj.namespace + '/' if obj.namespace else ''}{obj.name}", str(e))
                )
                continue
            if isinstance(p, SecurityGroupPolicy):
                self.sgps.append(p)
            else:
                if not opts.ipv6:
                    self._drop_ipv6(p)
                self.policies.append(p)
                self.warnings.extend(f"{p.display}: {w}" for w in p.warnings)
        self._order_policies()
        eps, errs = collect_endpoints(
            cluster, include_init_ports=opts.include_init_ports, resolve_owners=opts.resolve_owners
        )
        for e in errs:
            self.gaps.append(Gap(e.file or "input", str(e)))
        self.endpoints = eps
        self._build_ip_partition()
        self._build_classes()
        self.U = (1 << self.ncols) - 1
        self.pod_mask = (1 << self.nclasses) - 1
        self.ip_mask = self.U & ~self.pod_mask
        self._peer_cache: dict[object, int] = {}
        self._subject_cache: dict[object, int] = {}
        self._rule_ports: dict[int, PortSet] = {}
        self._atoms: dict[tuple[int, str], list[tuple[int, PortSet]]] = {}
        self._matrix: Matrix | None = None
        self._index_subjects()
        # resolve every rule's peers now, so single queries only pay for their two classes
        for p in self.policies:
            for r in (*p.ingress, *p.egress):
                self.rule_mask(r)

    # --- building ------------------------------------------------------------------------------
    def _drop_ipv6(self, p: Policy) -> None:
        for r in [*p.ingress, *p.egress]:
            if not r.peers:
                continue
            new = []
            for peer in r.peers:
                if peer.is_ip and not sets.is_v4(peer.ips or ()):
                    v4 = sets.intersect(peer.ips or (), sets.V4_ALL)
                    p.warnings.append(
                        f"{r.direction} rule #{r.index}: IPv6 addresses ignored (IPv4-only mode)"
                    )
                    if not v4:
                        continue
                    peer = Peer(ips=v4, text=peer.text)
                new.append(peer)
            r.peers = tuple(new)

    def _order_policies(self) -> None:
        def key(p: Policy) -> tuple[int, int, int, str]:
            tier = {TIER_ADMIN: 0, TIER_NP: 1, TIER_BASELINE: 2}[p.tier]
            return (tier, p.priority, _KIND_ORDER.get(p.kind, 9), p.name)

        self.policies.sort(key=key)
        seen: dict[tuple[str, str, int], Policy] = {}
        for p in self.policies:
            if p.tier == TIER_NP:
                continue
            k = (p.tier, p.kind, p.priority)
            if k in seen and p.kind != BANP_KIND:
                msg = f"{seen[k].display} and {p.display} share priority {p.priority}; the order between them is undefined"
                if self.options.same_priority == "error":
                    raise InputError(msg)
                self.warnings.append(msg + " (evaluated by name)")
            seen[k] = p

    def _referenced_blocks(self, direction: str) -> list[Intervals]:
        out = []
        for p in self.policies:
            for r in p.rules(direction):
                for peer in r.peers or ():
                    if peer.is_ip:
                        out.append(peer.ips or ())
        return out

    def _build_ip_partition(self) -> None:
        universe = sets.normalize([*sets.V4_ALL, *(sets.V6_ALL if self.options.ipv6 else ())])
        self.ip_universe = universe
        # display blocks per direction: sources of ingress lines, destinations of egress lines
        self.src_blocks = sets.disjoint_blocks(self._referenced_blocks(INGRESS), universe)
        self.dst_blocks = sets.disjoint_blocks(self._referenced_blocks(EGRESS), universe)
        # pod addresses are not boundaries: whether an ipBlock holds a pod depends only on which
        # policy-derived block the address falls in, so pods of one block stay one class
        blocks = [*self.src_blocks, *self.dst_blocks]
        if self.security_groups:
            blocks += sg_blocks(self.security_groups)
        self.addr_atoms: list[tuple[int, int]] = sets.elementary(blocks, universe)
        self._atom_starts = [lo for lo, _ in self.addr_atoms]

    def atom_of(self, ip: int) -> int:
        import bisect

        return bisect.bisect_right(self._atom_starts, ip) - 1

    def _referenced_keys_and_port_names(self) -> tuple[set[str], set[str]]:
        keys: set[str] = set()
        names: set[str] = set()

        def sel(ls: LabelSelector | None) -> None:
            if ls is not None and ls.requirements:
                keys.update(r.key for r in ls.requirements)

        for p in self.policies:
            sel(p.subject_pod_sel)
            for r in (*p.ingress, *p.egress):
                for peer in r.peers or ():
                    sel(peer.pod_sel)
                names.update(ps.name for ps in r.ports or () if ps.name)
        for g in self.sgps:
            sel(g.pod_sel)
        return keys, names

    def _build_classes(self) -> None:
        keyed: dict[tuple, PodClass] = {}
        self.classes: list[PodClass] = []
        self.class_of: dict[int, int] = {}  # id(endpoint) -> class
        self._need_pod_ips = self.options.ipblock_matches_pods or bool(self.security_groups)
        keys, names = self._referenced_keys_and_port_names()
        for ep in self.endpoints:
            atoms = tuple(sorted({self.atom_of(ip) for ip in ep.ips})) if self._need_pod_ips else ()
            groups = tuple(self.pod_groups(ep))
            # Only label keys some selector reads and port names some rule names can tell pods apart;
            # projecting on them keeps per-pod labels (pod-template-hash, statefulset pod-name) from
            # splitting classes, and is exact (absent keys stay absent for NotIn/DoesNotExist).
            labels = {k: v for k, v in ep.labels.items() if k in keys}
            ports = tuple(p for p in ep.ports if p[0] in names)
            key = (ep.namespace, tuple(sorted(labels.items())), ports, atoms, ep.host_network, groups)
            pc = keyed.get(key)
            if pc is None:
                pc = keyed[key] = PodClass(
                    len(self.classes), ep.namespace, labels, ports, atoms, ep.host_network, groups
                )
                self.classes.append(pc)
            pc.members.append(ep)
            self.class_of[id(ep)] = pc.idx
        # A probe: an unlabelled pod in a namespace no selector names. What it may reach, or be
        # reached from, is what every namespace gets (exposure analysis).
        self.probe = PodClass(len(self.classes), PROBE_NAMESPACE, {}, (), (), False)
        self.classes.append(self.probe)
        self.nclasses = len(self.classes)
        self.ncols = self.nclasses + len(self.addr_atoms)
        self.ns_mask: dict[str, int] = defaultdict(int)
        self._ports_groups: dict[tuple, int] = defaultdict(int)
        self._atom_pods: dict[int, int] = defaultdict(int)  # atom -> classes with an address in it
        self._group_mask: dict[str, int] = defaultdict(int)
        for pc in self.classes:
            for g in pc.groups:
                self._group_mask[g] |= 1 << pc.idx
            if self._selectable(pc):
                self.ns_mask[pc.namespace] |= 1 << pc.idx
            self._ports_groups[pc.ports] |= 1 << pc.idx
            for a in pc.ip_atoms:
                self._atom_pods[a] |= 1 << pc.idx
        ip_cols = ((1 << len(self.addr_atoms)) - 1) << self.nclasses
        self._ports_groups[()] |= ip_cols
        self.namespaces = sorted(set(self.cluster.namespaces) | {pc.namespace for pc in self.classes})
        self.real_namespaces = [n for n in self.namespaces if n != PROBE_NAMESPACE]

    def _selectable(self, pc: PodClass) -> bool:
        return not (pc.host_network and self.options.hostnetwork == "node")

    # --- selection -------------------------------------------------------------------------------
    def ns_labels(self, ns: str) -> dict[str, str]:
        return self.cluster.namespace_labels(ns)

    def _sel_mask(self, ns_sel: LabelSelector | None, namespace: str | None, pod_sel: LabelSelector) -> int:
        key = (ns_sel, namespace, pod_sel)
        got = self._peer_cache.get(key)
        if got is not None:
            return got
        nss = (
            [namespace]
            if ns_sel is None
            else [n for n in self.namespaces if ns_sel.matches(self.ns_labels(n))]
        )
        m = 0
        for n in nss:
            nm = self.ns_mask.get(n, 0)
            if not nm:
                continue
            if pod_sel.is_empty:
                m |= nm
                continue
            for i in _bits(nm):
                if pod_sel.matches(self.classes[i].labels):
                    m |= 1 << i
        self._peer_cache[key] = m
        return m

    def _ip_mask(self, ips: Intervals, pods: bool | None = None) -> int:
        pods = self.options.ipblock_matches_pods if pods is None else pods
        key = (ips, pods)
        got = self._peer_cache.get(key)
        if got is not None:
            return got
        m = 0
        for a, (lo, _hi) in enumerate(self.addr_atoms):
            if sets.contains(ips, lo):
                m |= 1 << (self.nclasses + a)
                if pods:
                    m |= self._atom_pods.get(a, 0)
        self._peer_cache[key] = m
        return m

    # --- AWS security groups ---------------------------------------------------------------------
    def pod_groups(self, ep: Endpoint) -> list[str]:
        """Security groups SecurityGroupPolicies give the endpoint's pods (union, de-duplicated, in
        SGP order; both selectors must match when both are set; hostNetwork pods get none)."""
        if ep.host_network or not self.sgps:
            return []
        out: list[str] = []
        for sgp in self.sgps:
            if sgp.namespace != ep.namespace:
                continue
            if sgp.pod_sel is not None and not sgp.pod_sel.matches(ep.labels):
                continue
            if sgp.sa_sel is not None:
                sa = self.cluster.get("ServiceAccount", ep.namespace, ep.service_account)
                if sa is None or not sgp.sa_sel.matches(sa.labels):
                    continue
            out.extend(g for g in sgp.group_ids if g not in out)
        return out

    def _sg_rules(self, c: int, direction: str) -> list[tuple[str, int, PortSet]]:
        """(group, peer mask, ports) of every rule of the class's groups in one direction."""
        out = []
        for gid in self.classes[c].groups:
            g = (self.security_groups or {}).get(gid)
            if g is None:
                msg = f"security group {gid} is not in the security groups file: treated as allowing nothing"
                if msg not in self.warnings:
                    self.warnings.append(msg)
                continue
            for r in g.ingress if direction == INGRESS else g.egress:
                m = self._ip_mask(r.ips, pods=True) if r.ips else 0
                if (
                    sets.intersect(r.ips, sets.V4_ALL) == sets.V4_ALL
                    or sets.intersect(r.ips, sets.V6_ALL) == sets.V6_ALL
                ):
                    # a whole address family holds every pod, addresses known (Pods) or not (templates)
                    m |= self.pod_mask
                for ref in r.groups:
                    m |= self._group_mask.get(ref, 0)
                if m:
                    out.append((gid, m, r.ports))
        return out

    def _sg_active(self, c: int) -> bool:
        return self.security_groups is not None and bool(self.classes[c].groups)

    def peer_mask(self, peer: Peer) -> int:
        if peer.is_ip:
            return self._ip_mask(peer.ips or ())
        return self._sel_mask(peer.ns_sel, peer.namespace, peer.pod_sel)

    def rule_mask(self, rule: Rule) -> int:
        if rule.peers is None:
            return self.U
        key = id(rule)
        got = self._subject_cache.get(key)
        if got is None:
            got = 0
            for p in rule.peers:
                got |= self.peer_mask(p)
            self._subject_cache[key] = got
        return got

    def subject_mask(self, p: Policy) -> int:
        return self._sel_mask(
            p.subject_ns_sel, p.namespace if p.subject_ns_sel is None else None, p.subject_pod_sel
        )

    def _index_subjects(self) -> None:
        self.selecting: list[list[Policy]] = [[] for _ in range(self.nclasses)]
        for p in self.policies:
            for i in _bits(self.subject_mask(p)):
                self.selecting[i].append(p)

    # --- ports -----------------------------------------------------------------------------------
    def _numeric_ports(self, rule: Rule) -> PortSet:
        got = self._rule_ports.get(id(rule))
        if got is None:
            got = resolve_ports(rule.ports, ())
            self._rule_ports[id(rule)] = got
        return got

    def rule_parts(self, rule: Rule, subject: int, direction: str) -> list[tuple[int, PortSet]]:
        """(peer mask, ports) pieces of a rule for a subject class; named ports resolve against the
        destination pod: the subject itself for ingress, each peer class for egress."""
        m = self.rule_mask(rule)
        if not m:
            return []
        if rule.ports is None:
            return [(m, ALL)]
        if not rule.has_named_ports:
            return [(m, self._numeric_ports(rule))]
        if direction == INGRESS:
            return [(m, resolve_ports(rule.ports, self.classes[subject].ports))]
        out = []
        for ports, gm in self._ports_groups.items():
            sub = m & gm
            if sub:
                out.append((sub, resolve_ports(rule.ports, ports)))
        return out

    # --- verdicts --------------------------------------------------------------------------------
    def atoms(self, c: int, direction: str) -> list[tuple[int, PortSet]]:
        """The class's verdict in one direction: (column mask, allowed ports) covering every column."""
        key = (c, direction)
        got = self._atoms.get(key)
        if got is None:
            got = self._atoms[key] = self._compute_atoms(c, direction)
        return got

    def _first_match(self, pols: Iterable[Policy], c: int, direction: str) -> list[list]:
        atoms: list[list] = [[self.U, NONE, NONE, NONE]]  # mask, allow, deny, pass
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
        top = self._first_match(admin, c, direction) if admin else [[self.U, NONE, NONE, NONE]]
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
            bottom = self._first_match(base, c, direction) if base else [[self.U, NONE, NONE, NONE]]
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
            for p, m in out.items():
                for sm, sp in sg_atoms:
                    inter = m & sm
                    if inter:
                        layered[p & sp] |= inter
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

    # --- explanation -----------------------------------------------------------------------------
    def verdict(self, c: int, direction: str, col: int) -> Verdict:
        """One direction for one peer column, step by step (the explain path; independent of atoms)."""
        bit = 1 << col
        sel = self.selecting[c]
        reasons: list[Reason] = []
        decided, allow, deny = self._explain_tier(TIER_ADMIN, sel, c, direction, col, bit, reasons)
        nps = [p for p in sel if p.tier == TIER_NP and p.affects(direction)]
        if nps:
            np_allowed = NONE
            for p in nps:
                hit = False
                for rule in p.rules(direction):
                    ports = self._ports_for(rule, c, direction, col, bit)
                    if ports is None:
                        continue
                    hit = True
                    if ports.empty:
                        reasons.append(
                            Reason(
                                direction,
                                TIER_NP,
                                p.display,
                                _rule_label(rule),
                                "none",
                                ports,
                                f"{p.display} {_rule_label(rule)} selects the peer, but its named "
                                "ports have no match on the destination pod",
                            )
                        )
                        continue
                    np_allowed = np_allowed | ports
                    reasons.append(
                        Reason(
                            direction,
                            TIER_NP,
                            p.display,
                            _rule_label(rule),
                            ALLOW,
                            ports,
                            f"{p.display} allows {ports} by {_rule_label(rule)}",
                        )
                    )
                if not hit:
                    why = " (no rules defined)" if not p.rules(direction) else ""
                    reasons.append(
                        Reason(
                            direction,
                            TIER_NP,
                            p.display,
                            "",
                            "isolate",
                            NONE,
                            f"{p.display} selects the pod, but the peer is not allowed by any "
                            f"{direction.capitalize()} rule{why}",
                        )
                    )
            final = allow | (np_allowed - deny)
        else:
            strict = self.options.aws_strict and self._selectable(self.classes[c])
            bdecided, ballow, bdeny = self._explain_tier(TIER_BASELINE, sel, c, direction, col, bit, reasons)
            rest = ballow if strict else ALL - bdeny
            final = allow | (rest - deny)
            undecided = ALL - decided - bdecided
            if not undecided.empty:
                if strict:
                    txt = "no NetworkPolicy selects the pod: AWS strict mode default (deny all)"
                else:
                    txt = "no NetworkPolicy selects the pod: system default (allow all)"
                reasons.append(
                    Reason(direction, "default", "", "", "deny" if strict else ALLOW, undecided, txt)
                )
        if self._sg_active(c):
            sg_allowed = NONE
            for gid, m, ports in self._sg_rules(c, direction):
                if m & bit:
                    sg_allowed = sg_allowed | ports
                    reasons.append(
                        Reason(
                            direction, "aws-sg", gid, "", ALLOW, ports, f"security group {gid} allows {ports}"
                        )
                    )
            if sg_allowed.empty:
                groups = ", ".join(self.classes[c].groups)
                reasons.append(
                    Reason(
                        direction,
                        "aws-sg",
                        groups,
                        "",
                        "deny",
                        NONE,
                        f"no {direction} rule of security groups {groups} matches the peer",
                    )
                )
            final = final & sg_allowed
        return Verdict(final, reasons)

    def _explain_tier(
        self, tier: str, sel: list[Policy], c: int, direction: str, col: int, bit: int, reasons: list[Reason]
    ) -> tuple[PortSet, PortSet, PortSet]:
        """The (admin or baseline) tier's first-match walk for one peer column: the ports it decides,
        allows and denies, with a Reason per rule that decides something."""
        decided = allow = deny = NONE
        for p in (p for p in sel if p.tier == tier):
            for rule in p.rules(direction):
                ports = self._ports_for(rule, c, direction, col, bit)
                if ports is None:
                    continue
                newly = ports - decided
                if newly.empty:
                    continue
                decided = decided | newly
                if rule.action == ALLOW:
                    allow = allow | newly
                elif rule.action == DENY:
                    deny = deny | newly
                reasons.append(
                    Reason(
                        direction,
                        tier,
                        p.display,
                        _rule_label(rule),
                        rule.action,
                        newly,
                        f"{p.display} {_verb(rule.action)} {newly} by {_rule_label(rule)}",
                    )
                )
        return decided, allow, deny

    def _ports_for(self, rule: Rule, c: int, direction: str, col: int, bit: int) -> PortSet | None:
        if not (self.rule_mask(rule) & bit):
            return None
        if rule.ports is None:
            return ALL
        dst_ports = (
            self.classes[c].ports
            if direction == INGRESS
            else (self.classes[col].ports if col < self.nclasses else ())
        )
        return resolve_ports(rule.ports, dst_ports)

    # --- columns and names ----------------------------------------------------------------------
    def endpoint_col(self, ep: Endpoint) -> int:
        return self.class_of[id(ep)]

    def ip_col(self, ip: int) -> int:
        return self.nclasses + self.atom_of(ip)

    def find_endpoint(self, text: str) -> Endpoint:
        """``ns/name``, ``name`` (namespace default) or ``ns/name[Kind]``."""
        name = text.strip()
        kind = None
        if name.endswith("]") and "[" in name:
            name, kind = name[:-1].split("[", 1)
        ns, _, nm = name.rpartition("/")
        ns = ns or "default"
        hits = [
            e
            for e in self.endpoints
            if e.namespace == ns and e.name == nm and (kind is None or e.kind == kind)
        ]
        if not hits:
            raise InputError(f"no workload or pod named {text!r} in the input")
        return hits[0]


def _bits(m: int) -> Iterator[int]:
    while m:
        low = m & -m
        yield low.bit_length() - 1
        m ^= low


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


def _verb(action: str) -> str:
    return {ALLOW: "allows", DENY: "denies", PASS: "passes"}.get(action, action)


def _rule_label(rule: Rule) -> str:
    nm = f" '{rule.name}'" if rule.name else ""
    return f"{rule.direction.capitalize()} rule #{rule.index}{nm}"


def resolve_ports(specs: tuple[PortSpec, ...] | None, pod_ports: tuple[tuple[str, str, int], ...]) -> PortSet:
    """A rule's ports for one destination pod: named ports map through the pod's container ports
    (protocol must agree; an ANP namedPort takes the pod's protocol); an unmatched name adds nothing."""
    if specs is None:
        return ALL
    m: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for s in specs:
        if s.name is None:
            m[s.proto or "TCP"].append((s.lo, s.hi))
            continue
        for name, proto, num in pod_ports:
            if name == s.name:
                if s.proto is None or s.proto == proto:
                    m[proto].append((num, num))
                break
    return PortSet.from_map({k: tuple(v) for k, v in m.items()})
