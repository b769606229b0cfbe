"""Infrastructure-layer network isolation: workloads no policy isolates, namespaces without a
default-deny NetworkPolicy, and network policies that cannot be evaluated (left out as invalid).

All three read one shared ``kubestrata.netpol`` analysis of the snapshot (built once per scan)."""

from __future__ import annotations

from collections.abc import Iterator

from kubestrata.checks.base import CheckContext, check, cluster_check
from kubestrata.errors import InputError
from kubestrata.findings import Evidence, Finding, Layer, Severity
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import WORKLOAD_KINDS, pod_template

INFRA = Layer.INFRASTRUCTURE
POLICY_KINDS = (
    "NetworkPolicy",
    "AdminNetworkPolicy",
    "BaselineAdminNetworkPolicy",
    "ClusterNetworkPolicy",
    "SecurityGroupPolicy",
)
_REFS = {
    "cis-eks": ["4.3.2 Ensure that all Namespaces have Network Policies defined"],
    "nsa-cisa": ["Network separation and hardening: use network policies to isolate resources"],
    "mitre": ["TA0008 Lateral Movement"],
}


def _network(ctx: CheckContext):
    from kubestrata.netpol.engine import Network

    return ctx.memo("netpol.network", lambda: Network(ctx.cluster))


@check(
    "KS-NET-001",
    "Workload not isolated by any network policy",
    severity=Severity.MEDIUM,
    layer=INFRA,
    kinds=WORKLOAD_KINDS,
    rationale="A pod that no NetworkPolicy (or admin/baseline policy) isolates accepts connections from "
    "every pod in the cluster and may open connections anywhere: one compromised pod can reach it and "
    "it can reach everything.",
    remediation="Select the workload with a NetworkPolicy that lists Ingress and Egress in policyTypes "
    "and allows only the peers and ports it needs (or add a namespace default-deny).",
    references=_REFS,
)
def workload_not_isolated(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    from kubestrata.netpol.analysis import restricted

    tpl = pod_template(obj)
    if tpl is None or tpl.spec.get("hostNetwork") is True:
        return  # hostNetwork pods carry node traffic: policies do not select them
    net = _network(ctx)
    meta = workload_not_isolated.meta
    # a workload's own template, or (live snapshots) the real pods reported under its name
    by_obj = ctx.memo(
        "netpol.endpoint_by_object",
        lambda: {
            **{(e.namespace, e.kind, e.name): e for e in net.endpoints},
            **{id(o): e for e in net.endpoints for o in e.objs},
        },
    )
    ep = by_obj.get(id(obj)) or by_obj.get((obj.namespace, obj.kind, obj.name))
    if ep is not None:
        c = net.endpoint_col(ep)
        if restricted(net, c, "ingress") or restricted(net, c, "egress"):
            return
        labels_path = (
            tpl.spec_path[: -len("spec")] + "metadata.labels"
            if tpl.spec_path != "spec"
            else "metadata.labels"
        )
        yield meta.finding(
            obj,
            f"{ep.label} is isolated in no direction: every pod and address may connect to it and it may "
            "connect anywhere",
            evidence=[Evidence(labels_path, dict(ep.labels), "labels selected by a NetworkPolicy")],
        )
        return


@cluster_check(
    "KS-NET-002",
    "Namespace without a default-deny NetworkPolicy",
    severity=Severity.LOW,
    layer=INFRA,
    rationale="Without a namespace-wide default-deny (podSelector: {}), every new workload starts "
    "unprotected until someone writes a policy for it.",
    remediation="Add a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress] (and no rules) "
    "to the namespace, then allow required traffic explicitly.",
    references=_REFS,
)
def namespace_without_default_deny(ctx: CheckContext) -> Iterator[Finding]:
    from kubestrata.netpol.analysis import default_deny_by_namespace

    net = _network(ctx)
    meta = namespace_without_default_deny.meta
    populated = sorted({ep.namespace for ep in net.endpoints if not ep.host_network})
    deny = default_deny_by_namespace(net)
    for ns in populated:
        have = deny.get(ns, set())
        missing = [d for d in ("ingress", "egress") if d not in have]
        if not missing:
            continue
        obj = ctx.cluster.namespace(ns)
        yield meta.finding(
            obj,
            f"namespace {ns!r} has no default-deny NetworkPolicy for {' and '.join(missing)}",
            evidence=[
                Evidence(
                    "metadata.name",
                    ns,
                    f"a NetworkPolicy with podSelector {{}} isolating {', '.join(missing)}",
                )
            ],
        )


@check(
    "KS-NET-003",
    "Network policy cannot be evaluated",
    severity=Severity.MEDIUM,
    layer=INFRA,
    kinds=POLICY_KINDS,
    rationale="An invalid policy (a peer mixing ipBlock and selectors, endPort with a named port, an except "
    "outside its cidr, a malformed CIDR) is rejected by the API server or ignored by the CNI: the "
    "isolation it was meant to give does not exist. The analysis leaves it out.",
    remediation="Fix the field named in the finding; validate policies with `kubestrata netpol list` in CI.",
    references=_REFS,
)
def invalid_network_policy(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    from kubestrata.netpol.model import parse_policy

    net = ctx.built("netpol.network")  # KS-NET-001/002's analysis parsed every policy already
    if net is not None and id(obj) in net.parse_errors:
        e: InputError | None = net.parse_errors[id(obj)]
    else:
        try:
            parse_policy(obj)
            e = None
        except InputError as err:
            e = err
    if e is not None:
        meta = invalid_network_policy.meta
        yield meta.finding(
            obj,
            f"left out of the network analysis: {e.detail}",
            evidence=[Evidence(e.field or "spec", None, "a valid value")],
        )
