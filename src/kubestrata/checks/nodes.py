"""Infrastructure layer: node lifecycle (maximum age, versions) and kubelet hardening (CIS Amazon EKS
Benchmark section 3.2, as kube-bench's cfg/eks-1.8.0/node.yaml tests it).

Kubelet settings are read from KubeletConfiguration objects (kubelet.config.k8s.io/v1beta1), as found
in /etc/kubernetes/kubelet/kubelet-config.json on EKS nodes or returned by the API server's
``/api/v1/nodes/NAME/proxy/configz`` (whose ``kubeletconfig`` wrapper is accepted too).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubestrata.checks.base import CheckContext, check
from kubestrata.findings import Evidence, Finding, Layer, Severity, json_pointer
from kubestrata.kube.objects import KubeObject, parse_time

INFRA = Layer.INFRASTRUCTURE

_UNSET = object()


@check(
    "KS-NODE-001",
    "Node older than the maximum node age",
    severity=Severity.MEDIUM,
    layer=INFRA,
    kinds=["Node"],
    rationale="Long-lived nodes miss AMI security patches and accumulate drift. Replace nodes on a schedule: "
    "EKS Auto Mode rotates nodes every 21 days at most; Karpenter's expireAfter does the same for "
    "self-managed node pools.",
    remediation="Recycle the node (drain and replace it with the latest AMI), and set a maximum lifetime: "
    "Karpenter NodePool spec.template.spec.expireAfter, or managed node group AMI updates.",
    references={
        "cis-eks": ["3.3 (container-optimized, patched OS)"],
        "nsa-cisa": ["Infrastructure: patch and upgrade nodes"],
        "mitre": ["T1190 Exploit Public-Facing Application"],
    },
)
def node_age(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    meta = node_age.meta
    created = parse_time(obj.metadata.get("creationTimestamp"))
    if created is None:
        return
    age_days = (ctx.now - created).total_seconds() / 86400
    limit = ctx.config.max_node_age_days
    if age_days > limit:
        yield meta.finding(
            obj,
            f"node {obj.name!r} is {age_days:.0f} days old, over the {limit:g}-day maximum",
            severity=Severity.HIGH if age_days > 4 * limit else None,
            evidence=[
                Evidence(
                    "metadata.creationTimestamp",
                    obj.metadata.get("creationTimestamp"),
                    f"younger than {limit:g} days",
                )
            ],
        )


@dataclass(frozen=True)
class KubeletRule:
    """One CIS item (eks-1.8.0 numbering): its JSON path in the kubelet config, how to say it, its
    severity. Pass or fail is decided by kubestrata.nodes (kube-bench's tests), not here."""

    cis: str
    path: tuple[str, ...]
    text: str
    expected: str
    severity: Severity


KUBELET_RULES: tuple[KubeletRule, ...] = (
    KubeletRule(
        "3.2.1",
        ("authentication", "anonymous", "enabled"),
        "anonymous authentication is disabled",
        "false",
        Severity.HIGH,
    ),
    KubeletRule(
        "3.2.2",
        ("authorization", "mode"),
        "authorization mode is not AlwaysAllow",
        "Webhook",
        Severity.HIGH,
    ),
    KubeletRule(
        "3.2.3",
        ("authentication", "x509", "clientCAFile"),
        "a client CA file is configured",
        "a CA file path",
        Severity.MEDIUM,
    ),
    KubeletRule(
        "3.2.4",
        ("readOnlyPort",),
        "the read-only port is disabled",
        "0",
        Severity.HIGH,
    ),
    KubeletRule(
        "3.2.5",
        ("streamingConnectionIdleTimeout",),
        "streaming connections time out when idle",
        "a non-zero duration (default 4h)",
        Severity.LOW,
    ),
    KubeletRule(
        "3.2.6",
        ("makeIPTablesUtilChains",),
        "the kubelet manages iptables utility chains",
        "true",
        Severity.LOW,
    ),
    KubeletRule(
        "3.2.7",
        ("eventRecordQPS",),
        "event capture is not disabled",
        ">= 0",
        Severity.LOW,
    ),
    KubeletRule(
        "3.2.8",
        ("rotateCertificates",),
        "client certificate rotation is on",
        "true",
        Severity.MEDIUM,
    ),
    KubeletRule(
        "3.2.9",
        ("featureGates", "RotateKubeletServerCertificate"),
        "server certificate rotation is on",
        "true",
        Severity.MEDIUM,
    ),
)


def kubelet_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The KubeletConfiguration body, unwrapping configz's ``{"kubeletconfig": {...}}``."""
    inner = raw.get("kubeletconfig")
    return inner if isinstance(inner, dict) else raw


def _lookup(cfg: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = cfg
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _UNSET
        node = node[key]
    return node


@check(
    "KS-NODE-002",
    "Kubelet configuration fails a CIS EKS check",
    severity=Severity.MEDIUM,
    layer=INFRA,
    kinds=["KubeletConfiguration"],
    rationale="The kubelet's API gives control of every pod on the node. CIS Amazon EKS Benchmark 3.2 lists "
    "the settings that close it to anonymous and unauthorised callers and keep certificates fresh.",
    remediation="Set the value in the kubelet config file (/etc/kubernetes/kubelet/kubelet-config.json on EKS "
    "AMIs, or the node class / launch template user data) and restart the kubelet.",
    references={
        "cis-eks": [r.cis for r in KUBELET_RULES],
        "nsa-cisa": ["Kubernetes Pod security: kubelet"],
        "mitre": ["T1609 Container Administration Command"],
    },
)
def kubelet_cis(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    """The eks-1.8.0 kubelet checks, decided by the same engine as `kubestrata nodes audit` (a config
    file or configz has no command line, so every item is read from the config)."""
    from kubestrata.nodes.audit import audit_configz
    from kubestrata.nodes.kbformat.model import PASS

    meta = kubelet_cis.meta
    cfg = kubelet_config(obj.raw)
    prefix = "kubeletconfig." if cfg is not obj.raw else ""
    body = {k: v for k, v in cfg.items() if k not in ("apiVersion", "kind", "metadata")}
    by_id = {r.cis: r for r in KUBELET_RULES}
    result = audit_configz(body)
    for group in result.groups:
        for res in group.results:
            rule = by_id.get(res.check.id)
            if res.state == PASS or rule is None:
                continue
            value = _lookup(cfg, rule.path)
            path = prefix + ".".join(rule.path)
            observed = None if value is _UNSET else value
            yield meta.finding(
                obj,
                f"CIS EKS {rule.cis}: {rule.text} is not ensured ({path} is "
                + ("unset" if value is _UNSET else repr(value))
                + f", expected {rule.expected})",
                severity=rule.severity,
                evidence=[Evidence(path, observed, rule.expected)],
                fix=None
                if rule.path[-1] in ("clientCAFile", "mode")
                else [{"op": "add", "path": json_pointer(path), "value": _fix_value(rule)}],
            )


def _fix_value(rule: KubeletRule) -> Any:
    return {
        "3.2.1": False,
        "3.2.4": 0,
        "3.2.5": "4h0m0s",
        "3.2.6": True,
        "3.2.7": 50,
        "3.2.8": True,
        "3.2.9": True,
    }.get(rule.cis)
