"""GuardDuty's AnomalousBehavior types (KS-AUD-G40..G47) as first-seen state: a request that
opens a dimension never seen in this cluster (user x verb x resource, user agent, source network,
image)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.helpers import (
    WORKLOAD_ON,
    binding_role,
    containers,
    excessive_permissions,
    exempt,
    images,
    is_public,
    parse_ip,
    privileged_and_mounts,
    produced,
    produced_spec,
    role_rules,
    suspicious_command,
)
from kubestrata.detect.rules.lists import (
    ADMIN_ROLES,
    PRIVILEGED_CLUSTER_ROLES,
    SUSPICIOUS_IMAGE,
    SYSTEM_NAMESPACES,
)
from kubestrata.detect.rules.registry import (
    RULE_ERRORS,
    SIGMA,
    STARTED,
    Hit,
    RuleContext,
    RuleSpec,
    hit,
    rule,
)
from kubestrata.findings import Severity


def _novelty(ev: AuditEvent, ctx: RuleContext, exempt_for: str = "") -> list[str]:
    """Which first-seen dimensions this request opens in this cluster: user x verb x resource,
    the user's user agent (product token) and the user's source network (/24, /64).

    ``exempt_for``: a rule id; then [] also when the request is exempt from that rule (helpers.exempt),
    which is asked only of a request whose group is not known. A known group opens nothing whoever
    made the request, and the exemption reads no state and records none, so the answer is the one
    of the exemption asked first; the usual request is spared it (~2k instructions: the exemption
    list's lookups and two calls)."""
    user, ips = ev.user, ev.source_ips
    addr = ips[-1] if ips else ""  # (ev.remote_ip, inline)
    net = _net_cache.get(addr, _NOT_CACHED)  # (_source_network's cache, inline)
    if net is _NOT_CACHED:
        net = _source_network(addr)
    # A ServiceAccount's private address is its pod's, new with every reschedule: only a public
    # one (its token used from outside the cluster network) is a new location.
    net_key = net[0] if net is not None and (net[1] or "system:serviceaccounts" not in ev.groups) else None
    # Most requests open nothing: their keys are known, and stay known until the state forgets keys
    # (state.FirstSeen.known_groups). What the keys are made of names the group (the whole user
    # agent: fewer steps than its product token, and clients send few), so such a request is
    # answered by one lookup instead of three keys built and asked for.
    state = ctx.first_seen_state
    group = (user, ev.verb, ev.resource, ev.subresource, ev.user_agent, net_key)
    known = state.known_groups
    if group in known:
        return []
    if exempt_for and exempt(ev, ctx, exempt_for):
        return []
    forgets = state.forgets
    first_seen = ctx.first_seen
    ua = ev.user_agent.partition(" ")[0].partition("/")[0]
    res = ev.resource + ("/" + ev.subresource if ev.subresource else "")
    new = []
    if first_seen("user-verb-resource", f"{user}|{ev.verb}|{res}"):
        new.append(f"first {ev.verb} {res} by {user}")
    if ua and first_seen("user-agent", f"{user}|{ua}"):
        new.append(f"first user agent {ua!r} for {user}")
    if net_key is not None and first_seen("source-network", f"{user}|{net_key}"):
        new.append(f"first request from {net_key} for {user}")
    if not new and state.forgets == forgets:
        if len(known) >= _MAX_KNOWN_GROUPS:
            known.clear()  # bounded: clients choose these fields
        known.add(group)
    return new


_MAX_KNOWN_GROUPS = 65536


_net_cache: dict[str, tuple[str, bool] | None] = {}
_NOT_CACHED = ("", False)  # (a miss of _net_cache in _novelty, told apart by identity)


def _source_network(addr: str) -> tuple[str, bool] | None:
    """(the /24 or /64 network of an address, whether it is public), cached."""
    r = _net_cache.get(addr, False)
    if r is False:
        ip = parse_ip(addr)
        r = None
        if ip is not None:
            # an IPv4 address's /24 is its dotted quad's first three numbers: what ip_network names
            # (which, with is_global, was ~15 us per new address); is_public remembers is_global
            net = str(ip).rpartition(".")[0] + ".0/24" if ip.version == 4 else _network_64(ip)
            r = (net, is_public(addr))
        if len(_net_cache) > 65536:
            _net_cache.clear()
        _net_cache[addr] = r
    return r  # type: ignore[return-value]  # False (the miss marker) was replaced; mypy keeps bool


def _network_64(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def _anomaly(
    rid: str,
    ev: AuditEvent,
    ctx: RuleContext,
    message: str,
    *ev_fields: tuple[str, Any],
    severity: Severity | None = None,
) -> list[Hit]:
    """The rule's hit when the request opens a first-seen dimension (a list: no generator per event)."""
    new = _novelty(ev, ctx)
    if new and not ctx.learning:
        return [
            hit(rid, message + " (" + "; ".join(new) + ")", *ev_fields, ("anomaly", new), severity=severity)
        ]
    return []


@rule(
    RuleSpec(
        "KS-AUD-G40",
        "Unusual secrets access",
        Severity.MEDIUM,
        "A user read secrets in a way never seen before in this cluster (new user x verb, "
        "user agent or source network).",
        ("T1552.007",),
        guardduty=("CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed",),
    ),
    on="get,list,watch secrets",
)
def anomalous_secrets(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.success and not exempt(ev, ctx, "KS-AUD-G40"):
        yield from _anomaly("KS-AUD-G40", ev, ctx, f"unusual {ev.verb} of secrets", ("verb", ev.verb))


@rule(
    RuleSpec(
        "KS-AUD-G41",
        "Unusual binding to a powerful role",
        Severity.MEDIUM,
        "An unusual RoleBinding/ClusterRoleBinding to an over-permissive role or in a sensitive "
        "namespace; high when the role is admin or cluster-admin.",
        ("T1098.006",),
        guardduty=("PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated",),
    ),
    on="create,update,patch rolebindings,clusterrolebindings",
)
def anomalous_binding(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    p = produced(ev, ctx)
    if p is None:
        return
    role = binding_role(ev, p.obj)
    sensitive_ns = ev.namespace in SYSTEM_NAMESPACES
    if (
        ev.success
        and not exempt(ev, ctx, "KS-AUD-G41")
        and (role in PRIVILEGED_CLUSTER_ROLES or sensitive_ns)
    ):
        sev = Severity.HIGH if role in ADMIN_ROLES else None
        yield from _anomaly("KS-AUD-G41", ev, ctx, f"unusual binding to {role!r}",
                            (f"{p.prefix}.roleRef.name", role), severity=sev)  # fmt: skip


@rule(
    RuleSpec(
        "KS-AUD-G42",
        "Unusual exec into a pod",
        Severity.MEDIUM,
        "pods/exec by a user, user agent or network never seen doing it in this cluster.",
        ("T1609",),
        guardduty=("Execution:Kubernetes/AnomalousBehavior.ExecInPod",),
    ),
    on="create,get pods/exec",
    stages=STARTED,
)
def anomalous_exec(ev: AuditEvent, ctx: RuleContext) -> list[Hit] | None:
    # not a generator itself: it runs on every exec (see native_exec); _anomaly inline, its message
    # and evidence built only for a hit (the usual exec opens nothing)
    code = ev.code  # (exec_ok, inline)
    if code is None or code == 101 or 200 <= code < 300:
        # the exemption asked by _novelty, after its known groups. The command is read first, as
        # _anomaly's argument was (it raises at a URI urlsplit refuses), and raises as it did when
        # the exemption was asked first: only of a request that is not exempt
        try:
            cmd = ev.exec_command()
        except RULE_ERRORS:
            if exempt(ev, ctx, "KS-AUD-G42"):
                return None
            raise
        new = _novelty(ev, ctx, "KS-AUD-G42")
        if new and not ctx.learning:
            return [hit("KS-AUD-G42", f"unusual exec into {ev.namespace}/{ev.name} (" + "; ".join(new) + ")",
                        ("requestURI?command", cmd), ("anomaly", new))]  # fmt: skip
    return None


@rule(
    RuleSpec(
        "KS-AUD-G43",
        "Unusual workload with a privileged container",
        Severity.HIGH,
        "An unusual workload create/modify with a privileged container.",
        ("T1610", "T1611"),
        guardduty=("PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",),
    ),
    RuleSpec(
        "KS-AUD-G44",
        "Unusual workload with a sensitive host mount",
        Severity.HIGH,
        "An unusual workload create/modify with a sensitive hostPath in volumeMounts.",
        ("T1611",),
        guardduty=("Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount",),
    ),
    RuleSpec(
        "KS-AUD-G45",
        "Unusual workload deployed",
        Severity.LOW,
        "An unusual workload create/modify (new image or new actor); medium when the image or "
        "command looks like an attack tool or a reverse shell.",
        ("T1610",),
        guardduty=("Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed",),
    ),
    on=WORKLOAD_ON,
)
def anomalous_workload(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    ps = produced_spec(ev, ctx)
    if ps is None or exempt(ev, ctx, "KS-AUD-G45"):
        return
    spec, path = ps
    priv, sens = privileged_and_mounts(spec, path)
    new = _novelty(ev, ctx)
    for img in images(spec, path):
        if ctx.first_seen("image", img or "<none>"):
            new.append(f"first use of image {img!r}")
    if not new or ctx.learning:
        return
    note = " (" + "; ".join(new) + ")"
    if priv:
        yield hit("KS-AUD-G43", "unusual workload with a privileged container" + note,
                  *[(p + ".securityContext.privileged", True) for _, p in priv])  # fmt: skip
    if sens:
        yield hit("KS-AUD-G44", "unusual workload with a writable sensitive host mount" + note,
                  *[(p, hp) for _, p, hp in sens])  # fmt: skip
    bad_img = [i for i in images(spec, path) if SUSPICIOUS_IMAGE.search(i or "")]
    bad_cmd = [t for c, _ in containers(spec, path) if (t := suspicious_command(c))]
    sev = Severity.MEDIUM if bad_img or bad_cmd else None
    yield hit("KS-AUD-G45", f"unusual {ev.verb} of {ev.resource[:-1]} {ev.namespace}/{ev.name}" + note,
              ("images", images(spec, path)), ("suspiciousImages", bad_img), ("suspiciousCommands", bad_cmd),
              ("anomaly", new), severity=sev)  # fmt: skip


@rule(
    RuleSpec(
        "KS-AUD-G46",
        "Unusual role with excessive permissions",
        Severity.LOW,
        "An unusual Role/ClusterRole create with wildcard, escalate/bind/impersonate, secrets, "
        "pods/exec or nodes/proxy permissions.",
        ("T1098.006",),
        guardduty=("PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated",),
    ),
    on="create,update,patch roles,clusterroles",
)
def anomalous_role(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    p = produced(ev, ctx)
    if p is None:
        return
    rules = role_rules(ev, p.obj)
    why = excessive_permissions(rules)
    if why and not exempt(ev, ctx, "KS-AUD-G46"):
        yield from _anomaly("KS-AUD-G46", ev, ctx, f"unusual {ev.resource[:-1]} {ev.name!r} ({', '.join(why)})",
                            (f"{p.prefix}.rules", rules))  # fmt: skip


POWERFUL_VERBS = frozenset({"*", "create", "escalate", "bind", "impersonate", "delete", "patch", "update"})
POWERFUL_RESOURCES = frozenset({"*", "secrets", "pods/exec", "clusterrolebindings", "rolebindings",
                                "clusterroles", "roles", "nodes/proxy", "serviceaccounts/token"})  # fmt: skip


@rule(
    RuleSpec(
        "KS-AUD-G47",
        "Unusual check for powerful permissions",
        Severity.LOW,
        "An unusual successful SelfSubjectAccessReview/RulesReview for a powerful permission "
        "(kubectl auth can-i).",
        ("T1069",),
        sigma=(SIGMA + "kubernetes_audit_rbac_permisions_listing.yml",),
        guardduty=("Discovery:Kubernetes/AnomalousBehavior.PermissionChecked",),
    ),
    on="create selfsubjectaccessreviews,selfsubjectrulesreviews",
)
def anomalous_permission_check(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if not ev.success:
        return
    spec = spec_ if isinstance(spec_ := ev.request_object.get("spec"), dict) else {}
    ra = ra_ if isinstance(ra_ := spec.get("resourceAttributes"), dict) else {}
    status = ev.response_object.get("status")
    if isinstance(status, dict) and status.get("allowed") is False:
        return
    res = str(ra.get("resource") or "") + ("/" + str(ra["subresource"]) if ra.get("subresource") else "")
    verb = str(ra.get("verb") or "")
    powerful = ev.resource == "selfsubjectrulesreviews" or (
        (verb in POWERFUL_VERBS and res in POWERFUL_RESOURCES) or verb == "*" or res == "*"
    )
    if powerful:
        yield from _anomaly("KS-AUD-G47", ev, ctx, f"unusual permission check {verb or 'rules'} {res}",
                            ("requestObject.spec.resourceAttributes", ra))  # fmt: skip
