"""`kubestrata serve manifests`: the webhook configurations and NetworkPolicies generated from the
serve configuration and the loaded policies, so the cluster never sends kubestrata more than it acts
on and deploy/ cannot drift from the config.

Scope, from what the configured admission handlers declare:
- Cedar admission forbids: the operations of each forbid's action (``k8s::admission::Action``) on
  the resource type its scope names (``resource is apps::v1::Deployment``); a forbid with no
  resource type covers every namespaced resource; permits do nothing at admission (allow by default).
- Pod Security: pods (CREATE, UPDATE; ``pods/ephemeralcontainers``) and the workload kinds (warnings).
- Best-practice checks: CREATE and UPDATE of the kinds the selected checks read.
- Mutations: their operations on their kinds (no MutatingWebhookConfiguration when none is on).

Never sent, whatever the rules say (matchConditions): leases, events, endpoints, endpointslices,
bindings, token reviews and token requests, nodes; requests by nodes and by the control plane's own
``system:`` users (service accounts stay in: controllers' pods are where Pod Security bites); and
kube-system, kube-node-lease, kube-public and kubestrata's own namespace (namespaceSelector).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import yaml

from kubestrata.kube.live import RESOURCES

SYSTEM_NAMESPACES = ("kube-system", "kube-node-lease", "kube-public")
NEVER_RESOURCES = ("leases", "events", "endpoints", "endpointslices", "bindings", "tokenreviews", "nodes")
NEVER_SUBRESOURCES = ("token", "binding")
ALL_OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
_KIND = {r.kind: r for r in RESOURCES}
# CONNECT requests carry these option kinds (the reference schema's hand-added entity types)
_CONNECT = {
    "PodExecOptions": "pods/exec",
    "PodAttachOptions": "pods/attach",
    "PodPortForwardOptions": "pods/portforward",
    "PodProxyOptions": "pods/proxy",
    "ServiceProxyOptions": "services/proxy",
    "NodeProxyOptions": "nodes/proxy",
}
MATCH_CONDITIONS = [
    {
        "name": "not-high-volume-system-resources",
        "expression": "!(request.resource.resource in ["
        + ", ".join(f"'{r}'" for r in NEVER_RESOURCES)
        + "])",
    },
    {
        "name": "not-token-or-binding-subresources",
        "expression": "!(request.subResource in [" + ", ".join(f"'{s}'" for s in NEVER_SUBRESOURCES) + "])",
    },
    {"name": "not-nodes", "expression": "!('system:nodes' in request.userInfo.groups)"},
    {
        "name": "not-control-plane-users",
        "expression": "!request.userInfo.username.startsWith('system:') || "
        "request.userInfo.username.startsWith('system:serviceaccount:')",
    },
]

Rules = dict[tuple[str, str], set[str]]  # (apiGroup, resource) -> operations; "*" resource: all


def _add_kind(rules: Rules, kind: str, ops: set[str]) -> None:
    r = _KIND.get(kind)
    if r is None or not r.namespaced or r.plural in NEVER_RESOURCES:
        return  # cluster-scoped or not an API kind (KubeletConfiguration): not admitted here
    rules[(r.group, r.plural)] |= ops


def _cedar_rules(rules: Rules, policies: list[Any]) -> None:
    for p in policies:
        if p.effect != "forbid":
            continue
        act, res = p.est.get("action", {}), p.est.get("resource", {})
        if act.get("op") == "All":
            ops = set(ALL_OPERATIONS)
        else:
            ents = [act["entity"]] if "entity" in act else list(act.get("entities", []))
            if not any(e.get("type") == "k8s::admission::Action" for e in ents):
                continue  # an authorization policy
            ops = set()
            for e in ents:
                if e.get("type") == "k8s::admission::Action":
                    ops |= set(ALL_OPERATIONS) if e.get("id") == "all" else {e.get("id", "").upper()}
        rtype = res.get("entity_type") or (res.get("entity") or {}).get("type")
        if res.get("op") == "All" or not rtype:
            rules[("*", "*")] |= ops
            continue
        parts = rtype.split("::")
        if len(parts) != 3:
            rules[("*", "*")] |= ops
            continue
        group, _version, kind = parts
        group = "" if group == "core" else group
        if kind in _CONNECT:
            rules[("", _CONNECT[kind])] |= {"CONNECT"}
        elif kind in _KIND and _KIND[kind].group == group:
            _add_kind(rules, kind, ops)
        else:
            rules[(group, "*")] |= ops  # a kind we have no table entry for: its whole group


def admission_rules(state: Any, any_cedar_forbid: bool = False) -> tuple[Rules, Rules]:
    """(validating, mutating) rules for a ServerState built from the config. ``any_cedar_forbid``:
    policies arrive later (cluster Policy objects), so Cedar admission must see everything."""
    validating: Rules = defaultdict(set)
    mutating: Rules = defaultdict(set)
    for h in state.registry.handlers:
        rules = mutating if h.mutating else validating
        if h.engine == "cedar":
            if any_cedar_forbid:
                rules[("*", "*")] |= set(ALL_OPERATIONS)
            store = getattr(
                getattr(getattr(state.authorizer, "_authz", None), "store", None), "snapshot", None
            )
            _cedar_rules(rules, [p for t in store.tiers for p in t.policies.values()] if store else [])
            continue
        ops = set(h.operations or ALL_OPERATIONS)
        for kind in sorted(h.kinds or ()):
            _add_kind(rules, kind, ops)
        if h.engine == "pss":
            rules[("", "pods/ephemeralcontainers")] |= {"UPDATE"}
    return validating, mutating


def _rule_list(rules: Rules) -> list[dict[str, Any]]:
    if ("*", "*") in rules:
        ops = rules[("*", "*")]
        # everything else is covered by the wildcard unless it needs more operations
        rest = {k: v - ops for k, v in rules.items() if k != ("*", "*") and v - ops}
        out = [_rule(["*"], ["*/*"], ops)]
        return out + _rule_list(rest)
    by_ops: dict[tuple[str, tuple[str, ...]], set[str]] = defaultdict(set)
    for (group, res), ops in rules.items():
        by_ops[(group, tuple(sorted(ops)))].add(res)
    return [_rule([g], sorted(res), set(ops)) for (g, ops), res in sorted(by_ops.items())]


def _rule(groups: list[str], resources: list[str], ops: set[str]) -> dict[str, Any]:
    order = [o for o in ALL_OPERATIONS if o in ops]
    return {
        "apiGroups": groups,
        "apiVersions": ["*"],
        "operations": order,
        "resources": resources,
        "scope": "Namespaced",
    }


def _webhook(name: str, path: str, rules: Rules, mc: Any, failure: str) -> dict[str, Any]:
    return {
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": failure,
        "matchPolicy": "Equivalent",
        "timeoutSeconds": mc.timeout_seconds,
        "clientConfig": {
            "service": {"name": mc.service, "namespace": mc.namespace, "path": path, "port": 443},
            "caBundle": "CA_BUNDLE",
        },
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": [*SYSTEM_NAMESPACES, mc.namespace],
                }
            ]
        },
        "matchConditions": MATCH_CONDITIONS,
        "rules": _rule_list(rules),
    }


def webhook_configurations(state: Any, any_cedar_forbid: bool = False) -> list[dict[str, Any]]:
    mc = state.config.manifests
    validating, mutating = admission_rules(state, any_cedar_forbid)
    out: list[dict[str, Any]] = []
    if validating:
        out.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": mc.service},
                "webhooks": [_webhook("validate.kubestrata.io", "/admit", validating, mc, "Fail")],
            }
        )
    if mutating:
        wh = _webhook("mutate.kubestrata.io", "/mutate", mutating, mc, "Ignore")
        wh["reinvocationPolicy"] = "Never"
        out.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": mc.service},
                "webhooks": [wh],
            }
        )
    return out


def network_policies(state: Any) -> list[dict[str, Any]]:
    sc = state.config
    mc = sc.manifests
    apiserver = [{"ipBlock": {"cidr": c}} for c in mc.apiserver_cidrs]
    ingress: list[dict[str, Any]] = [{"from": apiserver, "ports": [{"protocol": "TCP", "port": sc.port}]}]
    if mc.metrics_namespaces:
        ingress.append(
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                    for ns in mc.metrics_namespaces
                ],
                "ports": [{"protocol": "TCP", "port": sc.ops.port}],
            }
        )
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": mc.namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": mc.service, "namespace": mc.namespace},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": mc.service}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": ingress,
                # the API server only: namespace lookups and the Policy watch
                "egress": [
                    {
                        "to": apiserver,
                        "ports": [{"protocol": "TCP", "port": p} for p in mc.apiserver_ports],
                    }
                ],
            },
        },
    ]


HEADER = (
    "# Generated from the serve configuration and the policies it loads; edit those and regenerate\n"
    "# (a test fails when this file drifts):\n"
    "#   kubestrata serve manifests{args}\n"
)


def render(docs: list[dict[str, Any]], header: str) -> str:
    body = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=110) for d in docs)
    return header + body
