"""Our detections on access: powerful roles, secret reads (thresholds), token requests, system
identities and anonymous requests from public addresses, deleted events (KS-AUD-N12..N20, N23)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.facts import Fact
from kubestrata.detect.rules.helpers import (
    excessive_permissions,
    exempt,
    introduced,
    is_node,
    is_public,
    is_system_principal,
    role_rules,
    rule_values,
)
from kubestrata.detect.rules.lists import SYSTEM_NAMESPACES
from kubestrata.detect.rules.registry import ELASTIC, SIGMA, Hit, RuleContext, RuleSpec, hit, rule
from kubestrata.findings import Severity


@rule(
    RuleSpec(
        "KS-AUD-N12",
        "Role with node proxy permissions created",
        Severity.HIGH,
        "A Role/ClusterRole granting nodes/proxy (or nodes/* or *) was created or changed to: "
        "kubelet API access.",
        ("T1098.006", "T1611"),
    ),
    on="create,update,patch roles,clusterroles",
)
def node_proxy_role(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if exempt(ev, ctx, "KS-AUD-N12"):
        return

    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        res = rule_values(role_rules(ev, obj), "resources")
        bad = [r for r in res if r in ("nodes/proxy", "nodes/*", "*")]
        if bad:
            yield hit("KS-AUD-N12", f"{ev.resource[:-1]} {ev.name!r} grants {', '.join(bad)} ({ev.verb})",
                      (f"{prefix}.rules[*].resources", bad))  # fmt: skip

    yield from introduced(ev, ctx, check)


@rule(
    RuleSpec(
        "KS-AUD-N13",
        "Repeated denied secret reads",
        Severity.MEDIUM,
        "A user had --threshold (default 20) secret gets denied or missing within the window.",
        ("T1552.007",),
    ),
    on="get secrets",
)
def denied_secret_reads(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.code is not None and not ev.success and not exempt(ev, ctx, "KS-AUD-N13"):
        n = ctx.count("KS-AUD-N13", ev.user, ev)
        if n is not None:
            yield hit("KS-AUD-N13", f"{n} denied secret reads by {ev.user}", ("responseStatus.code", ev.code))


@rule(
    RuleSpec(
        "KS-AUD-N14",
        "Bulk secret access",
        Severity.MEDIUM,
        "A user read many distinct secrets (default 15) within the window.",
        ("T1552.007",),
        sigma=(SIGMA + "kubernetes_audit_secrets_enumeration.yml",),
    ),
    on="get,list,watch secrets",
)
def bulk_secret_access(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.success and not exempt(ev, ctx, "KS-AUD-N14"):
        n = ctx.count("KS-AUD-N14", ev.user, ev, distinct=f"{ev.verb}:{ev.namespace}/{ev.name or '*'}")
        if n is not None:
            yield hit("KS-AUD-N14", f"{ev.user} read {n} distinct secrets", ("user.username", ev.user))


@rule(
    RuleSpec(
        "KS-AUD-N15",
        "All secrets listed across namespaces",
        Severity.HIGH,
        "A user (control-plane identities excepted) listed secrets cluster-wide (GET /api/v1/secrets).",
        ("T1552.007",),
        elastic=(
            ELASTIC + "credential_access_kubernetes_secrets_list_cluster_and_sensitive_namespaces.toml",
        ),
    ),
    on="list,watch secrets",
)
def all_secrets(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if not ev.namespace and ev.success and not exempt(ev, ctx, "KS-AUD-N15"):
        yield hit("KS-AUD-N15", f"{ev.user} listed secrets in all namespaces", ("requestURI", ev.uri))


@rule(
    RuleSpec(
        "KS-AUD-N16",
        "Service account token requested",
        Severity.LOW,
        "A token was minted through serviceaccounts/token by a user (kubelets and system "
        "components in system namespaces excepted).",
        ("T1528",),
        elastic=(
            ELASTIC + "credential_access_kubernetes_service_account_token_created_via_tokenrequest.toml",
        ),
    ),
    on="create serviceaccounts/token",
)
def token_request(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if not ev.success:
        return
    if exempt(ev, ctx, "KS-AUD-N16") and (ev.namespace in SYSTEM_NAMESPACES or is_node(ev)):
        return
    yield hit("KS-AUD-N16", f"token minted for {ev.namespace}/{ev.name} by {ev.user}",
              ("objectRef.subresource", "token"))  # fmt: skip


def _public(ev: AuditEvent, ctx: RuleContext) -> list[tuple[int, str]]:
    """(index, address) of the event's public sourceIPs outside the configured cloud ranges."""
    return [(i, ip) for i, ip in enumerate(ev.source_ips) if is_public(ip) and not ctx.ip_lists.is_cloud(ip)]


@rule(
    RuleSpec("KS-AUD-N17", "System identity used from a public address", Severity.HIGH,
             "A system:/eks:/aks: identity made a successful request from a public IP outside the "
             "configured cloud ranges: a stolen token.", ("T1078", "T1528")),
    on="* *",
    when=Fact.PUBLIC_SOURCE,
)  # fmt: skip
def system_identity_from_public_address(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    code = ev.code
    if code is not None and code < 400 and ev.source_ips and is_system_principal(ev.user):
        public = _public(ev, ctx)
        if public:
            yield hit("KS-AUD-N17", f"{ev.user} used from public address {public[0][1]}",
                      *[(f"sourceIPs[{i}]", ip) for i, ip in public], ("user.username", ev.user))  # fmt: skip


@rule(
    RuleSpec("KS-AUD-N18", "Repeated forbidden responses from a public address", Severity.LOW,
             "One public source IP received many (default 10) 403 responses within the window.",
             ("T1613", "T1110"), sigma=(SIGMA + "kubernetes_audit_unauthorized_unauthenticated_actions.yml",)),
    on="* *",
    when=Fact.PUBLIC_SOURCE,
)  # fmt: skip
def forbidden_from_public_address(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.code == 403 and (public := _public(ev, ctx)):
        i, ip = public[-1]
        n = ctx.count("KS-AUD-N18", ip, ev)
        if n is not None:
            yield hit("KS-AUD-N18", f"{n} forbidden responses to {ip}", (f"sourceIPs[{i}]", ip))


@rule(
    RuleSpec(
        "KS-AUD-N19",
        "Anonymous request from a public address",
        Severity.LOW,
        "system:anonymous reached the API server from a public IP (allowed or not): scanning.",
        ("T1595", "T1078.001"),
    ),
    on="* *",
    when=Fact.ANONYMOUS,
)
def anonymous_public(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.user == "system:anonymous":
        public = [(i, ip) for i, ip in enumerate(ev.source_ips) if is_public(ip)]
        if public:
            yield hit("KS-AUD-N19", f"anonymous {ev.verb} {ev.uri or ev.resource} from {public[0][1]}",
                      *[(f"sourceIPs[{i}]", ip) for i, ip in public], ("requestURI", ev.uri),
                      ("annotations.authorization.k8s.io/decision", ev.decision))  # fmt: skip


@rule(
    RuleSpec(
        "KS-AUD-N20",
        "Audit events deleted",
        Severity.MEDIUM,
        "Kubernetes Events were deleted, which hides activity.",
        ("T1070",),
        sigma=(SIGMA + "kubernetes_audit_events_deleted.yml",),
    ),
    on="delete,deletecollection events",
)
def events_deleted(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.success and not exempt(ev, ctx, "KS-AUD-N20"):
        yield hit("KS-AUD-N20", f"events deleted in {ev.namespace or 'all namespaces'}", ("verb", ev.verb))


@rule(
    RuleSpec(
        "KS-AUD-N23",
        "Role with excessive permissions created",
        Severity.MEDIUM,
        "A user (control-plane identities excepted) created a Role/ClusterRole, or changed one to "
        "have, wildcards, escalate/bind/impersonate, secret reads, pods/exec or nodes/proxy.",
        ("T1098.006",),
        elastic=(ELASTIC + "persistence_sensitive_role_creation_or_modification.toml",),
    ),
    on="create,update,patch roles,clusterroles",
)
def excessive_role(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if exempt(ev, ctx, "KS-AUD-N23"):
        return

    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        rules = role_rules(ev, obj)
        why = excessive_permissions(rules)
        if why:
            what = "created" if ev.verb == "create" or ev.code == 201 else "changed"
            yield hit("KS-AUD-N23", f"{ev.resource[:-1]} {ev.name!r} {what} ({', '.join(why)})",
                      *[(f"{prefix}.rules[{i}]", r) for i, r in enumerate(rules)
                        if excessive_permissions([r])])  # fmt: skip

    yield from introduced(ev, ctx, check)
