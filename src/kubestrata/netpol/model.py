"""Policies as the engine sees them: NetworkPolicy v1, AdminNetworkPolicy / BaselineAdminNetworkPolicy
(policy.networking.k8s.io/v1alpha1), ClusterNetworkPolicy (v1alpha2 tiers) and AWS
SecurityGroupPolicy, parsed and validated into one normalized shape.

NetworkPolicy semantics (kubernetes.io NetworkPolicy concept page; ../shared/reference/network-policy.md §4):
- no ``policyTypes``: Ingress always, Egress only when ``spec.egress`` is non-empty;
- ``ingress``/``egress`` missing or ``[]``: nothing allowed in an isolated direction; ``[{}]`` allows all;
- ``from``/``to`` missing or ``[]``: every peer (pods and addresses); ``ports`` missing or ``[]``: every port;
- one peer with namespaceSelector + podSelector is AND; two peers are OR; a bare podSelector means
  the policy's namespace;
- a port without protocol is TCP; a port entry with only a protocol is every port of it.
Invalid policies raise InputError naming the policy and the field; the caller leaves them out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from kubestrata.errors import InputError
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.selectors import LabelSelector
from kubestrata.netpol import sets
from kubestrata.netpol.sets import ALL, Intervals, PortSet

ALLOW, DENY, PASS = "allow", "deny", "pass"
INGRESS, EGRESS = "ingress", "egress"
TIER_ADMIN, TIER_NP, TIER_BASELINE = "admin", "np", "baseline"

NP_KIND = "NetworkPolicy"
ANP_KIND = "AdminNetworkPolicy"
BANP_KIND = "BaselineAdminNetworkPolicy"
CNP_KIND = "ClusterNetworkPolicy"
SGP_KIND = "SecurityGroupPolicy"
POLICY_KINDS = frozenset({NP_KIND, ANP_KIND, BANP_KIND, CNP_KIND, SGP_KIND})

_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_ALL_SEL = LabelSelector(())


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One port entry of a rule before named ports are resolved against a destination pod.

    ``proto`` None means "the protocol the destination pod declares" (ANP namedPort)."""

    proto: str | None
    lo: int = sets.PORT_MIN
    hi: int = sets.PORT_MAX
    name: str | None = None

    def __str__(self) -> str:
        if self.name:
            return f"{self.proto + ' ' if self.proto else ''}{self.name}"
        rng = str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"
        return f"{self.proto} {rng}"


@dataclass(frozen=True, slots=True)
class Peer:
    """A rule peer: pods (namespace selector x pod selector) or addresses.

    ``namespace`` is set (and ``ns_sel`` None) for a NetworkPolicy peer without namespaceSelector,
    which means the policy's own namespace."""

    ns_sel: LabelSelector | None = None
    namespace: str | None = None
    pod_sel: LabelSelector = _ALL_SEL
    ips: Intervals | None = None
    text: str = ""

    @property
    def is_ip(self) -> bool:
        return self.ips is not None


@dataclass(slots=True)
class ParsedRule:
    """One ingress or egress rule of a ParsedPolicy: its action, peers and ports."""

    direction: str
    index: int  # 1-based, as np-guard and users count
    action: str
    peers: tuple[Peer, ...] | None  # None: every peer, pods and addresses
    ports: tuple[PortSpec, ...] | None  # None: every port and protocol
    name: str = ""

    @property
    def has_named_ports(self) -> bool:
        return bool(self.ports) and any(p.name for p in self.ports or ())


@dataclass(slots=True)
class ParsedPolicy:
    """A NetworkPolicy, (Baseline)AdminNetworkPolicy or ClusterNetworkPolicy in the normalized shape:
    whom it selects and its rules in order. (pss.api.Policy is a namespace's PSS levels.)"""

    kind: str
    name: str
    namespace: str  # "" for cluster-scoped kinds
    tier: str
    priority: int = 0
    subject_ns_sel: LabelSelector | None = None  # None: the policy's namespace (NetworkPolicy)
    subject_pod_sel: LabelSelector = _ALL_SEL
    ingress: list[ParsedRule] = field(default_factory=list)
    egress: list[ParsedRule] = field(default_factory=list)
    affects_ingress: bool = True
    affects_egress: bool = True
    obj: KubeObject | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def display(self) -> str:
        return (
            f"{self.kind} '{self.namespace}/{self.name}'" if self.namespace else f"{self.kind} '{self.name}'"
        )

    def rules(self, direction: str) -> list[ParsedRule]:
        return self.ingress if direction == INGRESS else self.egress

    def affects(self, direction: str) -> bool:
        return self.affects_ingress if direction == INGRESS else self.affects_egress


@dataclass(slots=True)
class SecurityGroupPolicy:
    name: str
    namespace: str
    pod_sel: LabelSelector | None
    sa_sel: LabelSelector | None
    group_ids: tuple[str, ...]
    obj: KubeObject | None = None


class _Ctx:
    """Error context: which object and which field."""

    def __init__(self, obj: KubeObject) -> None:
        self.obj = obj

    def err(self, msg: str, fld: str) -> InputError:
        o = self.obj
        who = f"{o.kind} {o.namespace + '/' if o.namespace else ''}{o.name}"
        return InputError(f"{who}: {msg}", file=o.source.file, document=o.source.document, field=fld)


def _sel(ctx: _Ctx, v: Any, fld: str, *, nil_is_all: bool = False) -> LabelSelector | None:
    if v is None:
        return _ALL_SEL if nil_is_all else None
    try:
        return LabelSelector.parse(v, field=fld)
    except InputError as e:
        raise ctx.err(e.detail, e.field or fld) from None


def _list(ctx: _Ctx, v: Any, fld: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise ctx.err(f"expected a list, got {type(v).__name__}", fld)
    return v


def _map(ctx: _Ctx, v: Any, fld: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ctx.err(f"expected a mapping, got {type(v).__name__}", fld)
    return v


def _cidr(ctx: _Ctx, text: Any, fld: str) -> tuple[int, int]:
    if not isinstance(text, str) or "/" not in text:
        raise ctx.err(f"invalid CIDR {text!r}", fld)
    try:
        return sets.cidr_interval(text)
    except ValueError as e:
        raise ctx.err(f"invalid CIDR {text!r}: {e}", fld) from None


def _proto(ctx: _Ctx, v: Any, fld: str) -> str:
    if v is None:
        return "TCP"
    if v not in sets.PROTOCOLS:
        raise ctx.err(f"unsupported protocol {v!r} (TCP, UDP or SCTP)", fld)
    return str(v)


def _port_number(ctx: _Ctx, v: Any, fld: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not sets.PORT_MIN <= v <= sets.PORT_MAX:
        raise ctx.err(f"port must be a number in 1-65535, got {v!r}", fld)
    return v


def _port_name(ctx: _Ctx, v: Any, fld: str) -> str:
    if not isinstance(v, str) or not _PORT_NAME.match(v) or len(v) > 15:
        raise ctx.err(f"invalid named port {v!r}", fld)
    return v


# ---------------------------------------------------------------------------------------------------
# NetworkPolicy v1
# ---------------------------------------------------------------------------------------------------


def parse_network_policy(obj: KubeObject) -> ParsedPolicy:
    ctx = _Ctx(obj)
    spec = _map(ctx, obj.raw.get("spec"), "spec")
    ns = obj.namespace
    # podSelector is a struct in the Go type: absent reads as {} (all pods of the namespace)
    pod_sel = _sel(ctx, spec.get("podSelector"), "spec.podSelector", nil_is_all=True)
    assert pod_sel is not None
    ingress_raw = _list(ctx, spec.get("ingress"), "spec.ingress")
    egress_raw = _list(ctx, spec.get("egress"), "spec.egress")
    types_raw = spec.get("policyTypes")
    if types_raw:
        types = _list(ctx, types_raw, "spec.policyTypes")
        for i, t in enumerate(types):
            if t not in ("Ingress", "Egress"):
                raise ctx.err(f"unknown policy type {t!r}", f"spec.policyTypes[{i}]")
        aff_in, aff_eg = "Ingress" in types, "Egress" in types
    else:
        aff_in, aff_eg = True, bool(egress_raw)
    pol = ParsedPolicy(
        NP_KIND,
        obj.name,
        ns,
        TIER_NP,
        subject_ns_sel=None,
        subject_pod_sel=pod_sel,
        affects_ingress=aff_in,
        affects_egress=aff_eg,
        obj=obj,
    )
    for direction, raw, key in ((INGRESS, ingress_raw, "from"), (EGRESS, egress_raw, "to")):
        for i, r in enumerate(raw):
            base = f"spec.{direction}[{i}]"
            r = _map(ctx, r, base)
            peers_raw = _list(ctx, r.get(key), f"{base}.{key}")
            peers = tuple(_np_peer(ctx, p, ns, f"{base}.{key}[{j}]") for j, p in enumerate(peers_raw))
            ports_raw = _list(ctx, r.get("ports"), f"{base}.ports")
            ports = tuple(_np_port(ctx, p, f"{base}.ports[{j}]") for j, p in enumerate(ports_raw))
            pol.rules(direction).append(ParsedRule(direction, i + 1, ALLOW, peers or None, ports or None))
    return pol


def _np_peer(ctx: _Ctx, p: Any, ns: str, fld: str) -> Peer:
    p = _map(ctx, p, fld)
    has_pod, has_ns, ipb = "podSelector" in p, "namespaceSelector" in p, p.get("ipBlock")
    if ipb is not None:
        if (has_pod and p["podSelector"] is not None) or (has_ns and p["namespaceSelector"] is not None):
            raise ctx.err("a peer may not combine ipBlock with podSelector or namespaceSelector", fld)
        ipb = _map(ctx, ipb, f"{fld}.ipBlock")
        cidr = ipb.get("cidr")
        lo, hi = _cidr(ctx, cidr, f"{fld}.ipBlock.cidr")
        block: Intervals = ((lo, hi),)
        excepts = _list(ctx, ipb.get("except"), f"{fld}.ipBlock.except")
        holes = []
        for k, ex in enumerate(excepts):
            elo, ehi = _cidr(ctx, ex, f"{fld}.ipBlock.except[{k}]")
            if not (lo <= elo and ehi <= hi) or (elo, ehi) == (lo, hi):
                raise ctx.err(
                    f"except {ex!r} must be strictly within cidr {cidr!r}", f"{fld}.ipBlock.except[{k}]"
                )
            holes.append((elo, ehi))
        block = sets.subtract(block, sets.normalize(holes))
        text = f"ipBlock {cidr}" + (f" except {', '.join(map(str, excepts))}" if excepts else "")
        return Peer(ips=block, text=text)
    pod_sel = _sel(ctx, p.get("podSelector"), f"{fld}.podSelector")
    ns_sel = _sel(ctx, p.get("namespaceSelector"), f"{fld}.namespaceSelector")
    if pod_sel is None and ns_sel is None:
        raise ctx.err("a peer needs podSelector, namespaceSelector or ipBlock", fld)
    if ns_sel is None:
        return Peer(namespace=ns, pod_sel=pod_sel or _ALL_SEL, text=f"pods [{pod_sel}] in namespace {ns}")
    return Peer(
        ns_sel=ns_sel,
        pod_sel=pod_sel or _ALL_SEL,
        text=f"pods [{pod_sel or '<all>'}] in namespaces [{ns_sel}]",
    )


def _np_port(ctx: _Ctx, p: Any, fld: str) -> PortSpec:
    p = _map(ctx, p, fld)
    proto = _proto(ctx, p.get("protocol"), f"{fld}.protocol")
    port, end = p.get("port"), p.get("endPort")
    if port is None:
        if end is not None:
            raise ctx.err("endPort needs a numeric port", f"{fld}.endPort")
        return PortSpec(proto)
    if isinstance(port, str) and not port.isdigit():
        if end is not None:
            raise ctx.err("endPort cannot be used with a named port", f"{fld}.endPort")
        return PortSpec(proto, name=_port_name(ctx, port, f"{fld}.port"))
    lo = _port_number(ctx, int(port) if isinstance(port, str) else port, f"{fld}.port")
    hi = lo
    if end is not None:
        hi = _port_number(ctx, end, f"{fld}.endPort")
        if hi < lo:
            raise ctx.err(f"endPort {hi} is below port {lo}", f"{fld}.endPort")
    return PortSpec(proto, lo, hi)


# ---------------------------------------------------------------------------------------------------
# AdminNetworkPolicy / BaselineAdminNetworkPolicy (v1alpha1) and ClusterNetworkPolicy (v1alpha2)
# ---------------------------------------------------------------------------------------------------

_ANP_ACTIONS = {"Allow": ALLOW, "Deny": DENY, "Pass": PASS}
_CNP_ACTIONS = {"Accept": ALLOW, "Deny": DENY, "Pass": PASS}


def parse_admin_policy(obj: KubeObject) -> ParsedPolicy:
    ctx = _Ctx(obj)
    spec = _map(ctx, obj.raw.get("spec"), "spec")
    kind = obj.kind
    if kind == CNP_KIND:
        tier_raw = spec.get("tier")
        if tier_raw not in ("Admin", "Baseline"):
            raise ctx.err(f"tier must be Admin or Baseline, got {tier_raw!r}", "spec.tier")
        tier = TIER_ADMIN if tier_raw == "Admin" else TIER_BASELINE
        actions = _CNP_ACTIONS
    elif kind == ANP_KIND:
        tier, actions = TIER_ADMIN, _ANP_ACTIONS
    else:
        tier, actions = TIER_BASELINE, {"Allow": ALLOW, "Deny": DENY}
        if obj.name != "default":
            raise ctx.err("a BaselineAdminNetworkPolicy must be named 'default'", "metadata.name")
    priority = 0
    if kind != BANP_KIND:
        pr = spec.get("priority")
        if isinstance(pr, bool) or not isinstance(pr, int) or not 0 <= pr <= 1000:
            raise ctx.err(f"priority must be an integer in 0-1000, got {pr!r}", "spec.priority")
        priority = pr
    subj = _map(ctx, spec.get("subject"), "spec.subject")
    if ("namespaces" in subj) == ("pods" in subj):
        raise ctx.err("subject needs exactly one of namespaces or pods", "spec.subject")
    if "namespaces" in subj:
        s_ns = _sel(ctx, subj["namespaces"], "spec.subject.namespaces", nil_is_all=True)
        s_pod: LabelSelector | None = _ALL_SEL
    else:
        sp = _map(ctx, subj["pods"], "spec.subject.pods")
        s_ns = _sel(ctx, sp.get("namespaceSelector"), "spec.subject.pods.namespaceSelector", nil_is_all=True)
        s_pod = _sel(ctx, sp.get("podSelector"), "spec.subject.pods.podSelector", nil_is_all=True)
    pol = ParsedPolicy(kind, obj.name, "", tier, priority, s_ns, s_pod or _ALL_SEL, obj=obj)
    for direction, key in ((INGRESS, "from"), (EGRESS, "to")):
        raw = _list(ctx, spec.get(direction), f"spec.{direction}")
        if len(raw) > 100:
            raise ctx.err("at most 100 rules per direction", f"spec.{direction}")
        for i, r in enumerate(raw):
            base = f"spec.{direction}[{i}]"
            r = _map(ctx, r, base)
            act = r.get("action")
            if act not in actions:
                raise ctx.err(f"action must be one of {', '.join(actions)}, got {act!r}", f"{base}.action")
            peers_raw = _list(ctx, r.get(key), f"{base}.{key}")
            if not peers_raw:
                raise ctx.err(f"{key} needs at least one peer", f"{base}.{key}")
            peers: list[Peer] = []
            for j, p in enumerate(peers_raw):
                peers.extend(_admin_peer(ctx, pol, p, direction, f"{base}.{key}[{j}]"))
            if "protocols" in r:
                ports = _cnp_ports(ctx, r.get("protocols"), f"{base}.protocols")
            else:
                ports = _anp_ports(ctx, r.get("ports"), f"{base}.ports")
            rule = ParsedRule(direction, i + 1, actions[act], tuple(peers), ports, str(r.get("name") or ""))
            pol.rules(direction).append(rule)
    return pol


def _admin_peer(ctx: _Ctx, pol: ParsedPolicy, p: Any, direction: str, fld: str) -> list[Peer]:
    p = _map(ctx, p, fld)
    out: list[Peer] = []
    if "namespaces" in p:
        sel = _sel(ctx, p["namespaces"], f"{fld}.namespaces", nil_is_all=True)
        out.append(Peer(ns_sel=sel, text=f"namespaces [{sel}]"))
    if "pods" in p:
        pp = _map(ctx, p["pods"], f"{fld}.pods")
        ns_sel = _sel(ctx, pp.get("namespaceSelector"), f"{fld}.pods.namespaceSelector", nil_is_all=True)
        pod_sel = _sel(ctx, pp.get("podSelector"), f"{fld}.pods.podSelector", nil_is_all=True)
        out.append(
            Peer(
                ns_sel=ns_sel, pod_sel=pod_sel or _ALL_SEL, text=f"pods [{pod_sel}] in namespaces [{ns_sel}]"
            )
        )
    if "networks" in p:
        if direction != EGRESS:
            raise ctx.err("networks peers are only allowed in egress rules", f"{fld}.networks")
        nets = _list(ctx, p["networks"], f"{fld}.networks")
        ivs = [_cidr(ctx, c, f"{fld}.networks[{k}]") for k, c in enumerate(nets)]
        out.append(Peer(ips=sets.normalize(ivs), text=f"networks {', '.join(map(str, nets))}"))
    for unsupported in ("nodes", "domainNames", "sameLabels", "notSameLabels"):
        if unsupported in p:
            # node and FQDN peers need data a manifest set does not carry; the peer matches nothing
            pol.warnings.append(f"{fld}.{unsupported}: peer type not evaluated (matches nothing)")
    if not out and not any(k in p for k in ("nodes", "domainNames")):
        raise ctx.err("peer needs namespaces, pods, networks or nodes", fld)
    return out


def _port_range(ctx: _Ctx, rg: dict[str, Any], fld: str) -> tuple[int, int]:
    """start and end of an (admin or cluster) network policy port range, end not below start."""
    lo = _port_number(ctx, rg.get("start"), f"{fld}.start")
    hi = _port_number(ctx, rg.get("end"), f"{fld}.end")
    if hi < lo:
        raise ctx.err(f"end {hi} is below start {lo}", f"{fld}.end")
    return lo, hi


def _anp_ports(ctx: _Ctx, raw: Any, fld: str) -> tuple[PortSpec, ...] | None:
    items = _list(ctx, raw, fld)
    out = []
    for i, p in enumerate(items):
        f = f"{fld}[{i}]"
        p = _map(ctx, p, f)
        if len(p) != 1:
            raise ctx.err("a port needs exactly one of portNumber, namedPort or portRange", f)
        if "portNumber" in p:
            pn = _map(ctx, p["portNumber"], f"{f}.portNumber")
            n = _port_number(ctx, pn.get("port"), f"{f}.portNumber.port")
            out.append(PortSpec(_proto(ctx, pn.get("protocol"), f"{f}.portNumber.protocol"), n, n))
        elif "namedPort" in p:
            out.append(PortSpec(None, name=_port_name(ctx, p["namedPort"], f"{f}.namedPort")))
        elif "portRange" in p:
            pr = _map(ctx, p["portRange"], f"{f}.portRange")
            lo, hi = _port_range(ctx, pr, f"{f}.portRange")
            out.append(PortSpec(_proto(ctx, pr.get("protocol"), f"{f}.portRange.protocol"), lo, hi))
        else:
            raise ctx.err("a port needs portNumber, namedPort or portRange", f)
    return tuple(out) or None


def _cnp_ports(ctx: _Ctx, raw: Any, fld: str) -> tuple[PortSpec, ...] | None:
    items = _list(ctx, raw, fld)
    out = []
    for i, p in enumerate(items):
        f = f"{fld}[{i}]"
        p = _map(ctx, p, f)
        if "destinationNamedPort" in p:
            out.append(
                PortSpec(None, name=_port_name(ctx, p["destinationNamedPort"], f"{f}.destinationNamedPort"))
            )
            continue
        for key, proto in (("tcp", "TCP"), ("udp", "UDP"), ("sctp", "SCTP")):
            if key not in p:
                continue
            dp = _map(
                ctx, _map(ctx, p[key], f"{f}.{key}").get("destinationPort"), f"{f}.{key}.destinationPort"
            )
            if not dp:
                out.append(PortSpec(proto))
            elif "number" in dp:
                n = _port_number(ctx, dp["number"], f"{f}.{key}.destinationPort.number")
                out.append(PortSpec(proto, n, n))
            elif "range" in dp:
                rg_f = f"{f}.{key}.destinationPort.range"
                lo, hi = _port_range(ctx, _map(ctx, dp["range"], rg_f), rg_f)
                out.append(PortSpec(proto, lo, hi))
            else:
                raise ctx.err("destinationPort needs number or range", f"{f}.{key}.destinationPort")
    return tuple(out) or None


def parse_security_group_policy(obj: KubeObject) -> SecurityGroupPolicy:
    """vpcresources.k8s.aws/v1beta1 SecurityGroupPolicy (amazon-vpc-resource-controller-k8s)."""
    ctx = _Ctx(obj)
    spec = _map(ctx, obj.raw.get("spec"), "spec")
    pod_sel = _sel(ctx, spec.get("podSelector"), "spec.podSelector")
    sa_sel = _sel(ctx, spec.get("serviceAccountSelector"), "spec.serviceAccountSelector")
    if pod_sel is None and sa_sel is None:
        raise ctx.err("needs podSelector or serviceAccountSelector", "spec")
    sg = _map(ctx, spec.get("securityGroups"), "spec.securityGroups")
    ids = _list(ctx, sg.get("groupIds"), "spec.securityGroups.groupIds")
    if not ids or not all(isinstance(i, str) for i in ids):
        raise ctx.err("groupIds needs at least one security group id", "spec.securityGroups.groupIds")
    return SecurityGroupPolicy(obj.name, obj.namespace, pod_sel, sa_sel, tuple(ids), obj)


def parse_policy(obj: KubeObject) -> ParsedPolicy | SecurityGroupPolicy:
    if obj.kind == NP_KIND:
        return parse_network_policy(obj)
    if obj.kind == SGP_KIND:
        return parse_security_group_policy(obj)
    return parse_admin_policy(obj)


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
