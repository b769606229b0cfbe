"""Questions on top of the engine: one connection (eval), why (explain), what is exposed, what is
not covered, and what changed between two manifest sets (diff)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubestrata.errors import InputError
from kubestrata.findings import CoverageGap
from kubestrata.netpol import sets
from kubestrata.netpol.endpoints import Endpoint
from kubestrata.netpol.engine import Network
from kubestrata.netpol.explain import PortVerdict
from kubestrata.netpol.model import EGRESS, INGRESS, NP_KIND, TIER_NP
from kubestrata.netpol.sets import ALL, NONE, PortSet

if TYPE_CHECKING:  # connlist imports numpy, which `scan` (through the network checks) must not pay for
    from kubestrata.netpol.connlist import Conn


@dataclass(frozen=True)
class Side:
    """One end of a queried connection: a workload/pod (by name) or an address."""

    label: str
    col: int
    endpoint: Endpoint | None = None


def resolve_side(net: Network, name: str | None, ip: str | None) -> Side:
    if ip:
        try:
            v = sets.ip_value(ip)
        except ValueError:
            raise InputError(f"invalid IP address {ip!r}") from None
        if not sets.contains(net.ip_universe, v):
            raise InputError(f"{ip} is outside the analysed address space (IPv6 is off in np-guard mode)")
        return Side(ip, net.ip_col(v))
    if not name:
        raise InputError("give a workload/pod name or an IP address for each side")
    ep = net.find_endpoint(name)
    return Side(ep.label, net.endpoint_col(ep), ep)


def eval_connection(net: Network, src: Side, dst: Side, proto: str, port: int | None) -> tuple[bool, PortSet]:
    if src.endpoint is None and dst.endpoint is None:
        raise InputError("at least one side must be a workload or pod")
    ports = net.connection(src.col, dst.col)
    if port is None:
        return not ports.get(proto.upper()) == (), ports
    return ports.allows(proto.upper(), port), ports


@dataclass(frozen=True)
class DirectionWhy:
    """One direction of a connection at one end: the verdict there and the policies selecting it
    (``verdict`` is None when that end is outside the cluster, where no policy applies)."""

    direction: str
    who: str  # "source" (egress) or "destination" (ingress)
    subject: Side
    verdict: PortVerdict | None
    selected_by: list[str]


@dataclass(frozen=True)
class ConnectionWhy:
    """Why a connection is allowed or denied: the ports each way, both directions tier by tier, and
    the AWS security groups of each side (rules evaluated only when they were given)."""

    src: Side
    dst: Side
    allowed: PortSet
    denied: PortSet
    directions: list[DirectionWhy]
    security_groups: list[tuple[Side, list[str]]]
    groups_evaluated: bool


def explain(net: Network, src: Side, dst: Side) -> ConnectionWhy:
    """Tier-by-tier reasons for both directions (np-guard's explain, in spirit); report.netpol
    renders it."""
    allowed = net.connection(src.col, dst.col)
    directions = []
    for direction, subject, peer, who in (
        (EGRESS, src, dst, "source"),
        (INGRESS, dst, src, "destination"),
    ):
        if subject.endpoint is None:
            directions.append(DirectionWhy(direction, who, subject, None, []))
            continue
        sel = [
            p.display
            for p in net.selecting[subject.col]
            if (p.affects(direction) if p.tier == TIER_NP else bool(p.rules(direction)))
        ]
        directions.append(
            DirectionWhy(direction, who, subject, net.verdict(subject.col, direction, peer.col), sel)
        )
    groups = [(side, security_groups(net, side.endpoint)) for side in (src, dst)]
    return ConnectionWhy(
        src,
        dst,
        allowed,
        ALL - allowed,
        directions,
        [g for g in groups if g[1]],
        net.security_groups is not None,
    )


def security_groups(net: Network, ep: Endpoint | None) -> list[str]:
    """Security groups a pod gets from SecurityGroupPolicies (see Network.pod_groups)."""
    return [] if ep is None else net.pod_groups(ep)


# ---------------------------------------------------------------------------------------------------
# Exposure and coverage
# ---------------------------------------------------------------------------------------------------


@dataclass
class Exposure:
    endpoint: Endpoint
    ingress_any_namespace: PortSet
    ingress_outside: PortSet  # from some external address
    ingress_internet: PortSet  # from every external address
    egress_any_namespace: PortSet
    egress_outside: PortSet


def exposure(net: Network) -> list[Exposure]:
    probe = net.probe.idx
    ext_cols = [net.nclasses + a for a in range(len(net.addr_atoms))]
    out = []
    for ep in net.endpoints:
        c = net.endpoint_col(ep)
        some = NONE
        every = ALL
        for col in ext_cols:
            p = net.lookup(c, INGRESS, col)
            some = some | p
            every = every & p
        eg_some = NONE
        for col in ext_cols:
            eg_some = eg_some | net.lookup(c, EGRESS, col)
        out.append(
            Exposure(ep, net.lookup(c, INGRESS, probe), some, every, net.lookup(c, EGRESS, probe), eg_some)
        )
    return out


@dataclass
class CoverageReport:
    unrestricted: list[Endpoint] = field(default_factory=list)  # isolated in no direction
    ingress_only: list[Endpoint] = field(default_factory=list)
    egress_only: list[Endpoint] = field(default_factory=list)
    no_default_deny: dict[str, list[str]] = field(default_factory=dict)  # namespace -> missing directions
    gaps: list[CoverageGap] = field(default_factory=list)  # policies left out as invalid
    warnings: list[str] = field(default_factory=list)


def restricted(net: Network, c: int, direction: str) -> bool:
    """True when some peer or port is not allowed in this direction (the pod is isolated)."""
    atoms = net.atoms(c, direction)
    return not (len(atoms) == 1 and atoms[0][1].is_all and atoms[0][0] == net.U)


def default_deny_directions(net: Network, namespace: str) -> set[str]:
    """Directions in which a NetworkPolicy with an empty podSelector isolates every pod of the namespace."""
    return set(default_deny_by_namespace(net).get(namespace, ()))


def default_deny_by_namespace(net: Network) -> dict[str, set[str]]:
    """default_deny_directions of every namespace with such a policy, in one pass over the policies
    (a namespace without one is absent)."""
    out: dict[str, set[str]] = {}
    for p in net.policies:
        if p.kind == NP_KIND and p.subject_pod_sel.is_empty:
            for d in (INGRESS, EGRESS):
                if p.affects(d):
                    out.setdefault(p.namespace, set()).add(d)
    return out


def coverage(net: Network) -> CoverageReport:
    rep = CoverageReport(gaps=list(net.gaps), warnings=list(net.warnings))
    for ep in net.endpoints:
        c = net.endpoint_col(ep)
        i, e = restricted(net, c, INGRESS), restricted(net, c, EGRESS)
        if not i and not e:
            rep.unrestricted.append(ep)
        elif not e:
            rep.ingress_only.append(ep)
        elif not i:
            rep.egress_only.append(ep)
    populated = sorted({ep.namespace for ep in net.endpoints})
    deny = default_deny_by_namespace(net)
    for ns in populated:
        missing = [d for d in (INGRESS, EGRESS) if d not in deny.get(ns, ())]
        if missing:
            rep.no_default_deny[ns] = missing
    return rep


# ---------------------------------------------------------------------------------------------------
# Diff
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffEntry:
    kind: str  # changed / added / removed
    src: str
    dst: str
    before: str
    after: str


def diff(before: list[Conn], after: list[Conn]) -> list[DiffEntry]:
    a = {(c.src, c.dst): c.conn for c in before}
    b = {(c.src, c.dst): c.conn for c in after}
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        kind = "changed" if x and y else "added" if y else "removed"
        out.append(DiffEntry(kind, key[0], key[1], x or "No Connections", y or "No Connections"))
    return out
