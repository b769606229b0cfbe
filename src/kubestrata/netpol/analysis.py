"""Questions on top of the engine: one connection (eval), why (explain), what is exposed, what is
not covered, and what changed between two manifest sets (diff)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubestrata.errors import InputError
from kubestrata.netpol import sets
from kubestrata.netpol.endpoints import Endpoint
from kubestrata.netpol.engine import Network
from kubestrata.netpol.model import EGRESS, INGRESS, NP_KIND, TIER_NP
from kubestrata.netpol.sets import ALL, NONE, PortSet

if TYPE_CHECKING:  # connlist imports numpy, which `scan` (through the network checks) must not pay for
    from kubestrata.netpol.connlist import Conn

_TIER_NAMES = {
    "admin": "admin tier",
    "np": "NetworkPolicy",
    "baseline": "baseline tier",
    "aws-sg": "security group",
}


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


def explain(net: Network, src: Side, dst: Side) -> str:
    """Tier-by-tier reasons for both directions, np-guard's explain layout in spirit."""
    allowed = net.connection(src.col, dst.col)
    lines = [f"Connections between {src.label} => {dst.label}:", ""]
    if not allowed.empty:
        lines.append(f"Allowed: {allowed}")
    denied = ALL - allowed
    if not denied.empty:
        lines.append(f"Denied: {denied}")
    for direction, subject, peer, who in (
        (EGRESS, src, dst, "source"),
        (INGRESS, dst, src, "destination"),
    ):
        lines.append("")
        if subject.endpoint is None:
            lines.append(
                f"{direction.capitalize()}: {subject.label} is outside the cluster; no policy applies"
            )
            continue
        v = net.verdict(subject.col, direction, peer.col)
        lines.append(f"{direction.capitalize()} (at the {who} {subject.label}): allowed {v.allowed}")
        sel = [
            p.display
            for p in net.selecting[subject.col]
            if (p.affects(direction) if p.tier == TIER_NP else bool(p.rules(direction)))
        ]
        if sel:
            lines.append(f"  selected by: {', '.join(sel)}")
        for r in v.reasons:
            tier = _TIER_NAMES.get(r.tier, r.tier)
            lines.append(f"  [{tier}] {r.text}")
    sgs = security_groups(net, src.endpoint), security_groups(net, dst.endpoint)
    if any(sgs):
        lines.append("")
        for side, groups in ((src, sgs[0]), (dst, sgs[1])):
            if groups and net.security_groups is None:
                lines.append(
                    f"AWS security groups of {side.label}: {', '.join(groups)} (their rules are not "
                    "evaluated: pass --security-groups with `aws ec2 describe-security-groups` output)"
                )
            elif groups:
                lines.append(f"AWS security groups of {side.label}: {', '.join(groups)} (evaluated above)")
    return "\n".join(lines) + "\n"


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
    gaps: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def restricted(net: Network, c: int, direction: str) -> bool:
    """True when some peer or port is not allowed in this direction (the pod is isolated)."""
    atoms = net.atoms(c, direction)
    return not (len(atoms) == 1 and atoms[0][1].is_all and atoms[0][0] == net.U)


def default_deny_directions(net: Network, namespace: str) -> set[str]:
    """Directions in which a NetworkPolicy with an empty podSelector isolates every pod of the namespace."""
    out: set[str] = set()
    for p in net.policies:
        if p.kind == NP_KIND and p.namespace == namespace and p.subject_pod_sel.is_empty:
            for d in (INGRESS, EGRESS):
                if p.affects(d):
                    out.add(d)
    return out


def coverage(net: Network) -> CoverageReport:
    rep = CoverageReport(gaps=[(g.subject, g.detail) for g in net.gaps], warnings=list(net.warnings))
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
    for ns in populated:
        missing = [d for d in (INGRESS, EGRESS) if d not in default_deny_directions(net, ns)]
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


def render_diff(entries: list[DiffEntry], fmt: str) -> str:
    if fmt == "txt":
        lines = ["Connectivity diff:"]
        lines += [
            f"diff-type: {e.kind}, source: {e.src}, destination: {e.dst}, dir1:  {e.before}, dir2: {e.after}"
            for e in entries
        ]
        return "\n".join(lines) + "\n"
    if fmt == "json":
        import json

        return json.dumps([e.__dict__ for e in entries], indent=2) + "\n"
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["diff-type", "source", "destination", "dir1", "dir2"])
        for e in entries:
            w.writerow([e.kind, e.src, e.dst, e.before, e.after])
        return buf.getvalue()
    if fmt == "md":
        rows = ["| diff-type | source | destination | dir1 | dir2 |", "|---|---|---|---|---|"]
        rows += [f"| {e.kind} | {e.src} | {e.dst} | {e.before} | {e.after} |" for e in entries]
        return "\n".join(rows) + "\n"
    raise InputError(f"unknown diff format {fmt!r} (txt, json, csv, md)")
