"""Node OS and access posture (KS-NODE-003..007): container-optimized OS, end-of-life OS images, SSH
on node groups, IMDSv2 and its hop limit, publicly addressable nodes.

Node objects give the OS image (``status.nodeInfo.osImage``) and addresses; node group and launch
template data come from the EKSClusterAccess snapshot (``kubestrata access import`` of
``aws eks describe-nodegroup`` and ``aws ec2 describe-launch-template-versions`` output, or ``--live``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from kubestrata.checks.base import CheckContext, check, cluster_check
from kubestrata.checks.ekssupport import snapshot
from kubestrata.eks.model import SNAPSHOT_KIND
from kubestrata.eks.objects import from_objects
from kubestrata.findings import Evidence, Finding, GapReason, Layer, Severity
from kubestrata.kube.objects import KubeObject

INFRA = Layer.INFRASTRUCTURE

# osImage prefix -> (end of support, what ends, source). Longest prefixes are tried first.
EOL: dict[str, tuple[dt.date, str]] = {
    # "Amazon EKS will end support for EKS optimized AL2 AMIs on November 26, 2025" (EKS AMI deprecation
    # FAQs); Kubernetes 1.32 is the last version with AL2 AMIs. Amazon Linux 2 itself ends 2026-06-30.
    "Amazon Linux 2": (dt.date(2025, 11, 26), "EKS-optimized Amazon Linux 2 AMIs"),
    "Ubuntu 16.04": (dt.date(2021, 4, 30), "Ubuntu 16.04 LTS standard support"),
    "Ubuntu 18.04": (dt.date(2023, 5, 31), "Ubuntu 18.04 LTS standard support"),
    "Ubuntu 20.04": (dt.date(2025, 5, 31), "Ubuntu 20.04 LTS standard support"),
    "CentOS Linux 7": (dt.date(2024, 6, 30), "CentOS Linux 7"),
    "CentOS Linux 8": (dt.date(2021, 12, 31), "CentOS Linux 8"),
    "Debian GNU/Linux 10": (dt.date(2024, 6, 30), "Debian 10 LTS"),
    "Red Hat Enterprise Linux Server 7": (dt.date(2024, 6, 30), "RHEL 7 maintenance support"),
}
CONTAINER_OPTIMIZED = ("Bottlerocket", "Amazon Linux 2023", "Flatcar", "Container-Optimized OS", "Talos")


def _node_info(obj: KubeObject) -> dict[str, Any]:
    status = obj.raw.get("status")
    info = status.get("nodeInfo") if isinstance(status, dict) else None
    return info if isinstance(info, dict) else {}


def _serverless(obj: KubeObject) -> bool:
    """Fargate nodes: AWS runs the OS."""
    return obj.labels.get("eks.amazonaws.com/compute-type") == "fargate"


def _eol(os_image: str) -> tuple[str, dt.date, str] | None:
    for prefix in sorted(EOL, key=len, reverse=True):
        if os_image.startswith(prefix) and not (
            prefix == "Amazon Linux 2" and os_image.startswith("Amazon Linux 20")
        ):
            date, what = EOL[prefix]
            return prefix, date, what
    return None


@check(
    "KS-NODE-003",
    "Node runs a general-purpose OS, not a container-optimized one",
    severity=Severity.LOW,
    layer=INFRA,
    kinds=["Node"],
    rationale="A container-optimized OS (Bottlerocket, or the minimal EKS-optimized Amazon Linux 2023) "
    "ships only what the kubelet and container runtime need, with a read-only root file system "
    "(Bottlerocket) and atomic updates, so there is less to patch and less for an attacker who "
    "escapes a container to use. CIS Amazon EKS Benchmark 3.3.1 recommends one.",
    remediation="Move the node group to a Bottlerocket or AL2023 AMI type (managed node groups: "
    "amiType BOTTLEROCKET_* or AL2023_*; Karpenter: EC2NodeClass amiSelectorTerms alias bottlerocket@latest "
    "or al2023@latest), then rotate the nodes.",
    references={
        "cis-eks": ["3.3.1"],
        "nsa-cisa": ["Kubernetes Pod security: use immutable, minimal host OS"],
        "mitre": ["T1611 Escape to Host"],
    },
)
def general_purpose_os(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    info = _node_info(obj)
    image = str(info.get("osImage") or "")
    if not image or _serverless(obj) or str(info.get("operatingSystem") or "linux") != "linux":
        return
    if any(image.startswith(p) or p in image for p in CONTAINER_OPTIMIZED):
        return
    yield general_purpose_os.meta.finding(
        obj,
        f"node {obj.name!r} runs {image!r}, a general-purpose OS; prefer Bottlerocket or Amazon Linux 2023",
        evidence=[Evidence("status.nodeInfo.osImage", image, "Bottlerocket or Amazon Linux 2023")],
    )


@check(
    "KS-NODE-004",
    "Node OS image is past its end of support",
    severity=Severity.HIGH,
    layer=INFRA,
    kinds=["Node"],
    rationale="An OS past its end of support gets no security fixes: kernel and runtime vulnerabilities "
    "stay open for good. EKS-optimized Amazon Linux 2 AMIs lost support on 2025-11-26 (Kubernetes 1.32 is "
    "the last version with them); Ubuntu 20.04 standard support ended 2025-05-31, 18.04 on 2023-05-31; "
    "CentOS 7 and RHEL 7 maintenance on 2024-06-30.",
    remediation="Replace the nodes with a supported image (Bottlerocket or AL2023 on EKS), e.g. a new "
    "managed node group or Karpenter EC2NodeClass, then `kubestrata nodes rotate` the old ones away.",
    references={
        "cis-eks": ["3.3.1"],
        "nsa-cisa": ["Infrastructure: patch and upgrade nodes"],
        "mitre": ["T1068 Exploitation for Privilege Escalation"],
    },
)
def eol_os(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    image = str(_node_info(obj).get("osImage") or "")
    hit = _eol(image) if image and not _serverless(obj) else None
    if hit is None:
        return
    prefix, date, what = hit
    if ctx.now.date() <= date:
        return
    yield eol_os.meta.finding(
        obj,
        f"node {obj.name!r} runs {image!r}: support for {what} ended on {date.isoformat()}",
        evidence=[Evidence("status.nodeInfo.osImage", image, f"a supported OS (not {prefix})")],
    )


def _nodegroups(ctx: CheckContext) -> tuple[Any, list[tuple[int, dict[str, Any]]]]:
    eks = snapshot(ctx)
    if eks is None:
        return None, []
    return eks, list(enumerate(eks.nodegroups))


@cluster_check(
    "KS-NODE-005",
    "Node group allows SSH remote access",
    severity=Severity.MEDIUM,
    layer=INFRA,
    rationale="SSH keys on nodes are long-lived shared credentials and port 22 is an entry point into the "
    "node and every pod on it. A managed node group with remoteAccess.ec2SshKey and no "
    "sourceSecurityGroups opens port 22 to 0.0.0.0/0. AWS Systems Manager Session Manager gives audited "
    "shell access without SSH (the EKS best-practices guide's advice).",
    remediation="Create node groups without remoteAccess (it cannot be removed from an existing group: "
    "replace the group) and use SSM Session Manager (the SSM agent runs on EKS AMIs and Bottlerocket's "
    "control container).",
    references={
        "cis-eks": ["5.4.2 (private nodes)"],
        "nsa-cisa": ["Infrastructure: limit access to nodes"],
        "mitre": ["T1021.004 Remote Services: SSH"],
    },
)
def nodegroup_ssh(ctx: CheckContext) -> Iterator[Finding]:
    eks, groups = _nodegroups(ctx)
    for i, ng in groups:
        ra = ng.get("remoteAccess")
        if not isinstance(ra, dict) or not ra.get("ec2SshKey"):
            continue
        name = ng.get("nodegroupName", f"#{i}")
        sgs = ra.get("sourceSecurityGroups") or []
        yield nodegroup_ssh.meta.finding(
            eks.obj,
            f"node group {name!r} allows SSH with key {ra['ec2SshKey']!r}"
            + ("" if sgs else " from anywhere (no sourceSecurityGroups: port 22 open to 0.0.0.0/0)"),
            severity=None if sgs else Severity.HIGH,
            evidence=[Evidence(f"nodegroups[{i}].remoteAccess", ra, "unset (use SSM Session Manager)")],
        )


def _launch_template(eks: Any, ng: dict[str, Any]) -> dict[str, Any] | None:
    ref = ng.get("launchTemplate") or {}
    version = str(ref.get("version") or "")
    for v in eks.launch_template_versions:
        if ref.get("id") and v.get("LaunchTemplateId") != ref["id"]:
            continue
        if not ref.get("id") and v.get("LaunchTemplateName") != ref.get("name"):
            continue
        if version and version not in ("$Default", "$Latest") and str(v.get("VersionNumber")) != version:
            continue
        return v
    return None


@cluster_check(
    "KS-NODE-006",
    "Node launch template does not require IMDSv2 or lets pods reach it (hop limit > 1)",
    severity=Severity.HIGH,
    layer=INFRA,
    rationale="The instance metadata service hands out the node IAM role's credentials. IMDSv1 (HttpTokens "
    "optional) answers plain GETs, so an SSRF in any pod steals them; with IMDSv2 required and a PUT "
    "response hop limit of 1, the token cannot cross the extra network hop into a pod's network "
    "namespace, so pods (other than hostNetwork ones) cannot reach the node's credentials at all.",
    remediation="In the node group's launch template: MetadataOptions HttpTokens=required and "
    "HttpPutResponseHopLimit=1 (Karpenter EC2NodeClass: metadataOptions httpTokens: required, "
    "httpPutResponseHopLimit: 1); give pods their own credentials with EKS Pod Identity or IRSA.",
    references={
        "cis-eks": ["4.1 (least privilege for node identity)", "5.2 (IAM)"],
        "nsa-cisa": ["Infrastructure: restrict access to the cloud metadata service"],
        "mitre": ["T1552.005 Unsecured Credentials: Cloud Instance Metadata API"],
    },
)
def imds(ctx: CheckContext) -> Iterator[Finding]:
    eks, groups = _nodegroups(ctx)
    for i, ng in groups:
        ref = ng.get("launchTemplate")
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
            continue  # EKS's own launch template: nothing the input can show
        name = ng.get("nodegroupName", f"#{i}")
        lt = _launch_template(eks, ng)
        if lt is None:
            ctx.gap(
                f"nodegroup/{name}",
                GapReason.MISSING_INPUT,
                f"launch template {ref.get('id') or ref.get('name')} version {ref.get('version', '$Default')} "
                "not in the snapshot: IMDS settings (KS-NODE-006) and public IPs (KS-NODE-007) not evaluated. "
                "Provide: aws ec2 describe-launch-template-versions --launch-template-id ID --versions V, then "
                "access import",
            )
            continue
        j = eks.launch_template_versions.index(lt)
        mo = (lt.get("LaunchTemplateData") or {}).get("MetadataOptions") or {}
        where = f"launchTemplateVersions[{j}].LaunchTemplateData.MetadataOptions"
        if mo.get("HttpEndpoint") == "disabled":
            continue
        tokens = mo.get("HttpTokens") or "optional"
        hops = mo.get("HttpPutResponseHopLimit")
        if tokens != "required":
            yield imds.meta.finding(
                eks.obj,
                f"node group {name!r}: launch template {lt.get('LaunchTemplateName') or lt.get('LaunchTemplateId')} "
                f"v{lt.get('VersionNumber')} does not require IMDSv2 (HttpTokens {tokens}): any pod that can "
                "make an HTTP request can read the node role's credentials",
                evidence=[Evidence(f"{where}.HttpTokens", tokens, "required")],
            )
        elif isinstance(hops, int) and hops > 1:
            yield imds.meta.finding(
                eks.obj,
                f"node group {name!r}: IMDSv2 hop limit {hops} lets pods reach the node's instance metadata "
                "and its IAM role credentials",
                severity=Severity.MEDIUM,
                evidence=[Evidence(f"{where}.HttpPutResponseHopLimit", hops, 1)],
            )


@cluster_check(
    "KS-NODE-007",
    "Nodes are publicly addressable",
    severity=Severity.MEDIUM,
    layer=INFRA,
    rationale="A node with a public IP address is reachable from the internet on every port its security "
    "groups allow (kubelet 10250, NodePorts, SSH), instead of only through load balancers. CIS Amazon EKS "
    "5.4.2 asks for private nodes.",
    remediation="Run nodes in private subnets (MapPublicIpOnLaunch false) with a NAT gateway or VPC endpoints "
    "for egress, and do not set AssociatePublicIpAddress in launch templates.",
    references={
        "cis-eks": ["5.4.2"],
        "nsa-cisa": ["Network separation and hardening"],
        "mitre": ["T1133 External Remote Services"],
    },
)
def public_nodes(ctx: CheckContext) -> Iterator[Finding]:
    for node in ctx.cluster.of_kind("Node"):
        status = node.raw.get("status")
        addrs = status.get("addresses") if isinstance(status, dict) else None
        for k, a in enumerate(addrs if isinstance(addrs, list) else []):
            if isinstance(a, dict) and a.get("type") == "ExternalIP" and a.get("address"):
                yield public_nodes.meta.finding(
                    node,
                    f"node {node.name!r} has the public address {a['address']}",
                    evidence=[Evidence(f"status.addresses[{k}]", a, "no ExternalIP (private subnet)")],
                )
                break
    # the launch templates are optional here: no gap when the input has no snapshot (the node addresses
    # above are already the evidence that matters)
    eks, _ = ctx.memo("eks.snapshot", lambda: from_objects(ctx.cluster.of_kind(SNAPSHOT_KIND)))
    if eks is None:
        return
    for j, lt in enumerate(eks.launch_template_versions):
        for k, ni in enumerate((lt.get("LaunchTemplateData") or {}).get("NetworkInterfaces") or []):
            if isinstance(ni, dict) and ni.get("AssociatePublicIpAddress") is True:
                yield public_nodes.meta.finding(
                    eks.obj,
                    f"launch template {lt.get('LaunchTemplateName') or lt.get('LaunchTemplateId')} "
                    f"v{lt.get('VersionNumber')} gives its instances public IP addresses",
                    evidence=[
                        Evidence(
                            f"launchTemplateVersions[{j}].LaunchTemplateData.NetworkInterfaces[{k}]"
                            ".AssociatePublicIpAddress",
                            True,
                            False,
                        )
                    ],
                )
