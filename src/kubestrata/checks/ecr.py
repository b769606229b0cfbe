"""Registry posture for the cluster's images (KS-ECR-*): ECR repositories without scanning, mutable
tags, and the cluster VPC without the private endpoints image pulls need.

They read the EKS snapshot's ``imageRegistry`` data (kubestrata.eks.ecr: ``aws ecr
describe-repositories``, ``aws ecr get-registry-scanning-configuration``, ``aws ec2
describe-vpc-endpoints`` through `kubestrata access import`, or live). A snapshot without it is a
coverage gap when images are part of the scan, and silence otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubestrata.checks.base import CheckContext, cluster_check
from kubestrata.findings import Evidence, Finding, GapReason, Layer, Severity

INFRA = Layer.INFRASTRUCTURE
REFS = {
    "cis-eks": ["5.1.1", "5.1.2"],
    "nsa-cisa": ["Image scanning and immutable tags"],
    "mitre": ["T1525 Implant Internal Image"],
}
HOW = {
    "repositories": "aws ecr describe-repositories > repos.json",
    "registryScanning": "aws ecr get-registry-scanning-configuration > scanning.json",
    "vpcEndpoints": "aws ec2 describe-vpc-endpoints --filters Name=vpc-id,Values=VPC_ID > endpoints.json",
}


def _posture(ctx: CheckContext, need: str) -> tuple[Any, Any] | None:
    from kubestrata.eks.model import SNAPSHOT_KIND
    from kubestrata.eks.objects import from_objects

    eks, _ = ctx.memo("eks.snapshot", lambda: from_objects(ctx.cluster.of_kind(SNAPSHOT_KIND)))
    if eks is None:
        return None
    from kubestrata.eks.ecr import RegistryPosture

    posture = RegistryPosture.of(eks)
    have = {
        "repositories": posture.repositories is not None,
        "registryScanning": posture.scanning is not None,
        "vpcEndpoints": posture.vpc_endpoints is not None and bool(posture.vpc_id),
    }[need]
    if not have:
        images = ctx.config.images
        if images.enabled or images.results:

            def record() -> bool:
                ctx.gap(
                    f"{SNAPSHOT_KIND}/{eks.cluster_name or 'eks'}",
                    GapReason.MISSING_INPUT,
                    f"registry posture not evaluated: the EKS snapshot has no {need}. Provide: {HOW[need]}, then "
                    "kubestrata access import (describe-cluster gives the VPC)",
                )
                return True

            ctx.memo(f"ecr.gap.{need}", record)
        return None
    return eks, posture


def _region(eks: Any, posture: Any) -> str:
    for arn in [eks.cluster_arn, *[str(r.get("repositoryArn") or "") for r in posture.repositories or []]]:
        parts = arn.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return ""


@cluster_check(
    "KS-ECR-001",
    "ECR repository without scan on push or enhanced scanning",
    severity=Severity.MEDIUM,
    layer=INFRA,
    rationale="An image that is never scanned when pushed (basic scan on push) or continuously (enhanced "
    "scanning with Amazon Inspector) reaches the cluster with whatever it contains; enhanced scanning also "
    "re-evaluates images when new CVEs are published.",
    remediation="aws ecr put-registry-scanning-configuration --scan-type ENHANCED --rules "
    '\'[{"scanFrequency":"CONTINUOUS_SCAN","repositoryFilters":[{"filter":"*","filterType":"WILDCARD"}]}]\' '
    "(or at least a BASIC SCAN_ON_PUSH rule for the repository).",
    references=REFS,
)
def scanning(ctx: CheckContext) -> Iterator[Finding]:
    got = _posture(ctx, "repositories")
    if got is None:
        return
    eks, posture = got
    if posture.scanning is None:
        _posture(ctx, "registryScanning")  # gap when images are in scope; judge the repositories alone
    for i, repo in enumerate(posture.repositories):
        name = str(repo.get("repositoryName"))
        freqs = posture.registry_rule_covers(name)
        if posture.scan_type() == "ENHANCED" and freqs:
            continue
        if (
            "SCAN_ON_PUSH" in freqs
            or (repo.get("imageScanningConfiguration") or {}).get("scanOnPush") is True
        ):
            continue
        yield scanning.meta.finding(
            eks.obj,
            f"ECR repository {name} is not scanned on push and not covered by enhanced scanning "
            f"(registry scan type {posture.scan_type()}"
            + ("" if posture.scanning is not None else ", registry scanning configuration not given")
            + ")",
            evidence=[
                Evidence(
                    f"imageRegistry.repositories[{i}].imageScanningConfiguration.scanOnPush",
                    (repo.get("imageScanningConfiguration") or {}).get("scanOnPush"),
                    True,
                ),
            ],
        )


@cluster_check(
    "KS-ECR-002",
    "ECR repository allows tags to be overwritten",
    severity=Severity.LOW,
    layer=INFRA,
    rationale="With imageTagMutability MUTABLE a push can move an existing tag to a different image: the "
    "workload that references shop/api:2.4.1 runs whatever was pushed last under that name, which is not "
    "what was reviewed or scanned.",
    remediation="aws ecr put-image-tag-mutability --repository-name NAME --image-tag-mutability IMMUTABLE "
    "(or IMMUTABLE_WITH_EXCLUSION for tags like latest), and pin workloads by digest.",
    references=REFS,
)
def mutable_tags(ctx: CheckContext) -> Iterator[Finding]:
    got = _posture(ctx, "repositories")
    if got is None:
        return
    eks, posture = got
    for i, repo in enumerate(posture.repositories):
        mut = str(repo.get("imageTagMutability") or "MUTABLE")
        if mut.startswith("IMMUTABLE"):
            continue
        yield mutable_tags.meta.finding(
            eks.obj,
            f"ECR repository {repo.get('repositoryName')} has imageTagMutability {mut}: its tags can be moved "
            "to another image",
            evidence=[Evidence(f"imageRegistry.repositories[{i}].imageTagMutability", mut, "IMMUTABLE")],
        )


@cluster_check(
    "KS-ECR-003",
    "Cluster VPC without private endpoints for image pulls",
    severity=Severity.LOW,
    layer=INFRA,
    rationale="Nodes in private subnets pull images from ECR through the ecr.api and ecr.dkr interface "
    "endpoints and the S3 gateway endpoint (layers are served from S3). Without them pulls leave the VPC "
    "through a NAT gateway (or fail in subnets without one), and the registry cannot be restricted to the "
    "VPC with endpoint policies.",
    remediation="Create interface endpoints com.amazonaws.REGION.ecr.api and .ecr.dkr with private DNS "
    "enabled (security group allowing 443 from the node subnets) and a gateway endpoint "
    "com.amazonaws.REGION.s3 on the private route tables.",
    references={
        "cis-eks": ["5.4.x"],
        "nsa-cisa": ["Network separation"],
        "mitre": ["T1557 Adversary-in-the-Middle"],
    },
)
def vpc_endpoints(ctx: CheckContext) -> Iterator[Finding]:
    got = _posture(ctx, "vpcEndpoints")
    if got is None:
        return
    eks, posture = got
    region = _region(eks, posture)
    if not region:
        ctx.gap(
            "KS-ECR-003",
            GapReason.MISSING_INPUT,
            "no region known (no cluster or repository ARN in the snapshot)",
        )
        return
    eps = posture.endpoints(region)
    problems = []
    for svc, typ in (("ecr.api", "Interface"), ("ecr.dkr", "Interface"), ("s3", "Gateway")):
        ok = [
            e
            for e in eps[svc]
            if e.get("VpcEndpointType") == typ
            and str(e.get("State", "available")).lower() == "available"
            and (typ == "Gateway" or e.get("PrivateDnsEnabled") is True)
            and (typ != "Gateway" or e.get("RouteTableIds"))
        ]
        if not ok:
            seen = ", ".join(
                f"{e.get('VpcEndpointId')} ({e.get('VpcEndpointType')}, {e.get('State')}, private DNS "
                f"{e.get('PrivateDnsEnabled')})"
                for e in eps[svc]
            )
            problems.append(
                f"com.amazonaws.{region}.{svc} ({typ}"
                + (f"; present but unusable: {seen}" if seen else "")
                + ")"
            )
    if problems:
        yield vpc_endpoints.meta.finding(
            eks.obj,
            f"VPC {posture.vpc_id} has no usable endpoint for " + ", ".join(problems),
            evidence=[
                Evidence(
                    "imageRegistry.VpcEndpoints",
                    sorted(str(e.get("ServiceName")) for e in posture.vpc_endpoints),
                    [f"com.amazonaws.{region}.{s}" for s in ("ecr.api", "ecr.dkr", "s3")],
                )
            ],
        )
