"""Our detections on objects that give lasting access or run code: admission webhooks, client
certificates, privileged ClusterRoleBindings, CronJobs, DaemonSets (KS-AUD-N01..N05)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.helpers import binding_role, binding_subjects, exempt, introduced, produced
from kubestrata.detect.rules.lists import PRIVILEGED_CLUSTER_ROLES
from kubestrata.detect.rules.registry import ELASTIC, SIGMA, Hit, RuleContext, RuleSpec, hit, rule
from kubestrata.findings import Severity


def _webhook_summary(hooks: Any) -> list[dict[str, Any]] | None:
    """What a webhook configuration does (name, target, rules, failure policy), without the
    caBundle that cert injectors rewrite on every rotation."""
    if not isinstance(hooks, list):
        return None
    out = []
    for h in hooks:
        if isinstance(h, dict):
            cc = cc_ if isinstance(cc_ := h.get("clientConfig"), dict) else {}
            out.append({"name": h.get("name"), "url": cc.get("url"), "service": cc.get("service"),
                        "rules": h.get("rules"), "failurePolicy": h.get("failurePolicy")})  # fmt: skip
    return out


@rule(
    RuleSpec(
        "KS-AUD-N01",
        "Admission webhook configuration created",
        Severity.MEDIUM,
        "A Mutating/ValidatingWebhookConfiguration was created, or its targets or rules changed "
        "(create, update, patch, server-side apply): it can read or rewrite every matching API request.",
        ("T1546", "T1554"),
        elastic=(ELASTIC + "persistence_kubernetes_admission_webhook_created_or_modified.toml",),
        sigma=(SIGMA + "kubernetes_audit_change_admission_controller.yml",),
    ),
    on="create,update,patch mutatingwebhookconfigurations,validatingwebhookconfigurations",
)
def admission_webhook(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        what = "created" if ev.verb == "create" or ev.code == 201 else "changed"
        yield hit("KS-AUD-N01", f"{ev.resource[:-1]} {ev.name!r} {what}",
                  (f"{prefix}.webhooks", _webhook_summary(obj.get("webhooks"))))  # fmt: skip

    yield from introduced(ev, ctx, check)


@rule(
    RuleSpec(
        "KS-AUD-N02",
        "Client certificate signing request created",
        Severity.LOW,
        "A user (control-plane identities excepted, by name) requested a kube-apiserver client "
        "certificate: long-lived credentials.",
        ("T1098.001",),
        elastic=(
            ELASTIC + "persistence_kubernetes_client_certificate_signing_request_created_or_approved.toml",
        ),
    ),
    on="create,patch certificatesigningrequests",
)
def client_csr(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    p = produced(ev, ctx)
    spec = p.obj.get("spec") if p is not None and p.created else None
    if not ev.success or exempt(ev, ctx, "KS-AUD-N02") or not isinstance(spec, dict):
        return
    usages = usages_ if isinstance(usages_ := spec.get("usages"), list) else []
    if spec.get("signerName") == "kubernetes.io/kube-apiserver-client" and "client auth" in usages:
        yield hit("KS-AUD-N02", f"client certificate requested ({ev.name})",
                  ("requestObject.spec.signerName", spec.get("signerName")),
                  ("requestObject.spec.groups", spec.get("groups")))  # fmt: skip


@rule(
    RuleSpec(
        "KS-AUD-N03",
        "ClusterRoleBinding to a privileged role",
        Severity.MEDIUM,
        "A ClusterRoleBinding to cluster-admin, admin, edit or a control-plane role was created, "
        "or its subjects changed (the API server's bootstrap bindings excepted).",
        ("T1098.006",),
        sigma=(SIGMA + "kubernetes_audit_rolebinding_modification.yml",),
    ),
    on="create,update,patch clusterrolebindings",
)
def privileged_crb(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if exempt(ev, ctx, "KS-AUD-N03"):
        return

    def check(obj: dict[str, Any], prefix: str) -> Iterator[Hit]:
        role = binding_role(ev, obj)
        if role in PRIVILEGED_CLUSTER_ROLES:
            yield hit("KS-AUD-N03", f"ClusterRoleBinding {ev.name!r} to {role!r} ({ev.verb})",
                      (f"{prefix}.roleRef.name", role), (f"{prefix}.subjects", binding_subjects(ev, obj)))  # fmt: skip

    yield from introduced(ev, ctx, check)


@rule(
    RuleSpec(
        "KS-AUD-N04",
        "CronJob created or modified",
        Severity.LOW,
        "A CronJob was created or modified: scheduled code execution.",
        ("T1053.007",),
        sigma=(SIGMA + "kubernetes_audit_cronjob_modification.yml",),
    ),
    on="create,update,patch cronjobs",
)
def cronjob_change(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if ev.success and not exempt(ev, ctx, "KS-AUD-N04"):
        yield hit("KS-AUD-N04", f"CronJob {ev.namespace}/{ev.name} {ev.verb}d", ("verb", ev.verb))


@rule(
    RuleSpec(
        "KS-AUD-N05",
        "DaemonSet created",
        Severity.LOW,
        "A user (control-plane identities excepted) created a DaemonSet, also by server-side apply: "
        "code on every node.",
        ("T1610",),
    ),
    on="create,patch daemonsets",
)
def daemonset_created(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    created = ev.verb == "create" or ev.code == 201  # server-side apply creates with patch, 201
    if ev.success and created and not exempt(ev, ctx, "KS-AUD-N05"):
        yield hit("KS-AUD-N05", f"DaemonSet {ev.namespace}/{ev.name} created", ("objectRef.name", ev.name))
