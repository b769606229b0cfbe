"""Falco k8saudit parity, continued: the activity records ("K8s <X> Created/Deleted",
KS-AUD-F30..F49), secret reads (F50, F51), default administrators (F52), Ingresses without TLS
(F53) and untrusted nodes (F54, F55)."""

from __future__ import annotations

from collections.abc import Iterator

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.facts import Fact
from kubestrata.detect.rules.falco_k8saudit import falco
from kubestrata.detect.rules.helpers import (
    is_system,
)
from kubestrata.detect.rules.registry import SIGMA, Hit, RuleContext, RuleSpec, hit, rule

# (resource, Falco's display word, MITRE, legacy rule name) of the activity rules "K8s <X> Created/Deleted"
ACTIVITY = [
    ("deployments", "Deployment", ("T1610",), None),
    ("services", "Service", ("T1133",), None),
    ("configmaps", "ConfigMap", ("T1552",), None),
    ("namespaces", "Namespace", ("T1610",), None),
    ("serviceaccounts", "Serviceaccount", ("T1136",), None),
    ("roles", "Role", ("T1098",), "K8s Role/Clusterrole"),
    ("clusterroles", "ClusterRole", ("T1098",), "K8s Role/Clusterrole"),
    ("rolebindings", "RoleBinding", ("T1098",), "K8s Role/Clusterrolebinding"),
    ("clusterrolebindings", "ClusterRoleBinding", ("T1098",), "K8s Role/Clusterrolebinding"),
    ("secrets", "Secret", ("T1552.007",), None),
]
ACTIVITY_SPECS: list[RuleSpec] = []
_ACTIVITY_IDS: dict[tuple[str, str], str] = {}
for _i, (_res, _word, _mitre, _legacy) in enumerate(ACTIVITY):
    for _j, _action in enumerate(("Created", "Deleted")):
        _spec = falco(
            f"KS-AUD-F{30 + 2 * _i + _j}",
            f"K8s {_word} {_action}",
            "INFO",
            f"A {_word} was {_action.lower()} successfully (activity record)"
            + (" by a non-system user outside kube-system." if _res == "secrets" else "."),
            _mitre,
            legacy=(f"{_legacy} {_action}",) if _legacy else (),
        )
        ACTIVITY_SPECS.append(_spec)
        _ACTIVITY_IDS[(_action.lower()[:6], _res)] = _spec.id


@rule(*ACTIVITY_SPECS, on="create,delete " + ",".join(sorted(r for r, *_ in ACTIVITY)))
def falco_activity(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if not ev.success:
        return
    if ev.resource == "namespaces" and ev.verb == "delete" and is_system(ev.user):
        return
    if ev.resource == "secrets" and (ev.namespace == "kube-system" or is_system(ev.user)):
        return
    rid = _ACTIVITY_IDS[(ev.verb, ev.resource)]
    yield hit(rid, f"{ev.resource[:-1]} {ev.namespace + '/' if ev.namespace else ''}{ev.name} {ev.verb}d",
              ("verb", ev.verb), ("objectRef.name", ev.name), ("responseStatus.code", ev.code))  # fmt: skip


@rule(
    falco("KS-AUD-F50", "K8s Secret Get Successfully", "ERROR", "A Secret was read with get.", ("T1552.007",),
          sigma=(SIGMA + "kubernetes_audit_secrets_enumeration.yml",)),
    on="get secrets",
)  # fmt: skip
def secret_get_succeeded(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.success:
        yield hit("KS-AUD-F50", f"secret {ev.namespace}/{ev.name} read", ("responseStatus.code", ev.code))


@rule(
    falco("KS-AUD-F51", "K8s Secret Get Unsuccessfully Tried", "WARNING", "A get of a Secret failed.", ("T1552.007",)),
    on="get secrets",
)  # fmt: skip
def secret_get_failed(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if not ev.success:
        yield hit(
            "KS-AUD-F51", f"failed read of secret {ev.namespace}/{ev.name}", ("responseStatus.code", ev.code)
        )


@rule(
    falco(
        "KS-AUD-F52",
        "Full K8s Administrative Access",
        "WARNING",
        "A request by a default administrator user name (silent until --full-admin-users is given, "
        "as Falco's allowed_full_admin_users).",
        ("T1078",),
        enabled=False,
    ),
    on="* *",
    when=Fact.NON_SYSTEM_USER,
)
def full_admin(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    users = ctx.config.full_admin_users
    if users and not is_system(ev.user) and ev.user in users:
        yield hit("KS-AUD-F52", f"request by default administrator {ev.user!r}", ("user.username", ev.user))


@rule(
    falco(
        "KS-AUD-F53",
        "Ingress Object without TLS Certificate Created",
        "WARNING",
        "An Ingress without spec.tls was created.",
        ("T1040",),
    ),
    on="create ingresses",
)
def ingress_without_tls(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    spec = ev.request_object.get("spec")
    if ev.success and not (isinstance(spec, dict) and "tls" in spec):
        yield hit("KS-AUD-F53", f"Ingress {ev.namespace}/{ev.name} created without TLS",
                  ("requestObject.spec.tls", None))  # fmt: skip


def _untrusted_node(ev: AuditEvent, ctx: RuleContext) -> bool:
    allowed = ctx.config.allowed_nodes
    return allowed is not None and ev.name not in allowed


@rule(
    falco("KS-AUD-F54", "Untrusted Node Successfully Joined the Cluster", "ERROR",
          "A Node not in --allowed-node joined (silent until configured).", ("T1078",), enabled=False),
    on="create nodes",
)  # fmt: skip
def untrusted_node_joined(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.success and _untrusted_node(ev, ctx):
        yield hit("KS-AUD-F54", f"node {ev.name!r} not in the allowed list", ("objectRef.name", ev.name))


@rule(
    falco("KS-AUD-F55", "Untrusted Node Unsuccessfully Tried to Join the Cluster", "WARNING",
          "A Node not in --allowed-node failed to join (silent until configured).", ("T1078",), enabled=False),
    on="create nodes",
)  # fmt: skip
def untrusted_node_tried(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if not ev.success and _untrusted_node(ev, ctx):
        yield hit("KS-AUD-F55", f"node {ev.name!r} not in the allowed list", ("objectRef.name", ev.name))
