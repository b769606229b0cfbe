"""Model compilation: a snapshot's policies and endpoints parsed, pods grouped into equivalence
classes, and every selector and rule resolved to a bitmask over columns (pod classes, then disjoint
external address blocks). Reachability (reachability.py) and explanation (explain.py) build on it;
engine.Network is all three.

Pods fall into classes by (namespace, labels, named ports, address block, hostNetwork): every policy
treats all pods of a class alike, so the engine evaluates classes, never pairs of pods.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubestrata.errors import InputError
from kubestrata.findings import CoverageGap, GapReason
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.selectors import LabelSelector
from kubestrata.netpol import sets
from kubestrata.netpol.endpoints import Endpoint, collect_endpoints
from kubestrata.netpol.model import (
    BANP_KIND,
    EGRESS,
    INGRESS,
    POLICY_KINDS,
    TIER_ADMIN,
    TIER_BASELINE,
    TIER_NP,
    ParsedPolicy,
    ParsedRule,
    Peer,
    SecurityGroupPolicy,
    parse_policy,
    resolve_ports,
)
from kubestrata.netpol.securitygroups import SecurityGroup
from kubestrata.netpol.securitygroups import blocks as sg_blocks
from kubestrata.netpol.sets import ALL, Intervals, PortSet

if TYPE_CHECKING:
    from kubestrata.netpol.reachability import Matrix

PROBE_NAMESPACE = "<any-namespace>"
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
class PodClass:
    idx: int
    namespace: str
    labels: dict[str, str]
    ports: tuple[tuple[str, str, int], ...]
    ip_atoms: tuple[int, ...]
    host_network: bool
    groups: tuple[str, ...] = ()
    members: list[Endpoint] = field(default_factory=list)


class CompiledNetwork:
    """A snapshot's policies, endpoints and classes, with selectors and rules as column masks."""

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
        self.gaps: list[CoverageGap] = []
        self.warnings: list[str] = []
        self.policies: list[ParsedPolicy] = []
        self.sgps: list[SecurityGroupPolicy] = []
        # id(policy object) -> why parse_policy rejected it (None: it did not), for callers that
        # report invalid policies without parsing them again (the scan's KS-NET-003)
        self.parse_errors: dict[int, InputError | None] = {}
        for obj in cluster.real_objects():
            if obj.kind not in POLICY_KINDS:
                continue
            try:
                p = parse_policy(obj)
            except InputError as e:
                self.parse_errors[id(obj)] = e
                subject = f"{obj.kind}/{obj.namespace + '/' if obj.namespace else ''}{obj.name}"
                self.gaps.append(CoverageGap(subject, GapReason.INVALID, str(e)))
                continue
            self.parse_errors[id(obj)] = None
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
        for err in errs:
            self.gaps.append(CoverageGap(err.file or "input", GapReason.INVALID, str(err)))
        self.endpoints = eps
        self._build_ip_partition()
        self._build_classes()
        self.U = (1 << self.ncols) - 1
        self.pod_mask = (1 << self.nclasses) - 1
        self.ip_mask = self.U & ~self.pod_mask
        self._peer_cache: dict[object, int] = {}
        self._label_indexes: dict[str, tuple[dict[tuple[str, str], int], dict[str, int]]] = {}
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
    def _drop_ipv6(self, p: ParsedPolicy) -> None:
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
        def key(p: ParsedPolicy) -> tuple[int, int, int, str]:
            tier = {TIER_ADMIN: 0, TIER_NP: 1, TIER_BASELINE: 2}[p.tier]
            return (tier, p.priority, _KIND_ORDER.get(p.kind, 9), p.name)

        self.policies.sort(key=key)
        seen: dict[tuple[str, str, int], ParsedPolicy] = {}
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
        nss: list[str] = (
            ([namespace] if namespace is not None else [])
            if ns_sel is None
            else [n for n in self.namespaces if ns_sel.matches(self.ns_labels(n))]
        )
        m = 0
        reqs = pod_sel.requirements
        if reqs is None:  # a nil selector matches nothing
            nss = []
        for n in nss:
            nm = self.ns_mask.get(n, 0)
            if not nm:
                continue
            if not reqs:
                m |= nm
                continue
            # the selector's requirements ANDed, each a mask from the namespace's label index
            values, keys = self._label_index(n, nm)
            sel = nm
            for r in reqs:
                op = r.operator
                if op == "In" or op == "NotIn":
                    hit = 0
                    for v in r.values:
                        hit |= values.get((r.key, v), 0)
                else:
                    hit = keys.get(r.key, 0)
                sel &= hit if op == "In" or op == "Exists" else ~hit
                if not sel:
                    break
            m |= sel
        self._peer_cache[key] = m
        return m

    def _label_index(self, ns: str, nm: int) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """The selectable classes of a namespace by (label key, value) and by label key, as masks: a
        selector is then a few mask operations, not a match per class (LabelSelector.matches
        semantics: In hits only a string value equal to one of its values, NotIn and DoesNotExist
        take the classes the key or value is missing from)."""
        got = self._label_indexes.get(ns)
        if got is None:
            values: dict[tuple[str, str], int] = defaultdict(int)
            keys: dict[str, int] = defaultdict(int)
            for i in bit_indices(nm):
                bit = 1 << i
                for k, v in self.classes[i].labels.items():
                    keys[k] |= bit
                    if isinstance(v, str):
                        values[(k, v)] |= bit
            got = self._label_indexes[ns] = (dict(values), dict(keys))
        return got

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

    def rule_mask(self, rule: ParsedRule) -> int:
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

    def subject_mask(self, p: ParsedPolicy) -> int:
        return self._sel_mask(
            p.subject_ns_sel, p.namespace if p.subject_ns_sel is None else None, p.subject_pod_sel
        )

    def _index_subjects(self) -> None:
        self.selecting: list[list[ParsedPolicy]] = [[] for _ in range(self.nclasses)]
        for p in self.policies:
            for i in bit_indices(self.subject_mask(p)):
                self.selecting[i].append(p)

    # --- ports -----------------------------------------------------------------------------------
    def _numeric_ports(self, rule: ParsedRule) -> PortSet:
        got = self._rule_ports.get(id(rule))
        if got is None:
            got = resolve_ports(rule.ports, ())
            self._rule_ports[id(rule)] = got
        return got

    def rule_parts(self, rule: ParsedRule, subject: int, direction: str) -> list[tuple[int, PortSet]]:
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


def bit_indices(m: int) -> Iterator[int]:
    """The set bits of a mask, lowest first."""
    while m:
        low = m & -m
        yield low.bit_length() - 1
        m ^= low
