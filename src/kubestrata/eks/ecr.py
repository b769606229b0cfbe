"""Registry posture inputs for the EKS snapshot: ECR repositories (``aws ecr describe-repositories``),
the registry's scanning configuration (``aws ecr get-registry-scanning-configuration``) and the VPC's
endpoints (``aws ec2 describe-vpc-endpoints``), with the cluster's VPC from describe-cluster.

kubestrata.eks.awsjson calls ``apply_aws_json`` for every AWS CLI document it reads, ``apply_snapshot``
and ``to_document`` for its own EKSClusterAccess document (key ``imageRegistry``), and ``collect_live``
beside its other read-only calls. The data sits in ``EKSAccess.image_registry`` as AWS prints it;
``RegistryPosture`` reads it for the KS-ECR checks. Field names are the API members (botocore ``ecr``
2015-09-21, ``ec2``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KEY = "imageRegistry"


def _store(out: Any) -> dict[str, Any]:
    return out.image_registry


def apply_aws_json(r: Any, d: dict[str, Any], out: Any, pre: str) -> bool:
    """Merge one AWS CLI document; True when it was one of ours. ``r`` is eks.awsjson's field reader."""
    store = _store(out)
    matched = False
    cluster = d.get("cluster")
    if isinstance(cluster, dict):
        vpc = (
            (cluster.get("resourcesVpcConfig") or {}).get("vpcId")
            if isinstance(cluster.get("resourcesVpcConfig"), dict)
            else None
        )
        if isinstance(vpc, str) and vpc:
            store["vpcId"] = vpc
    repos_in = d.get("repositories")
    if isinstance(repos_in, list) and all(
        isinstance(x, dict) and ("repositoryArn" in x or "repositoryName" in x) for x in repos_in
    ):  # "repositories" alone is too common a key (composer.json) to claim a file by
        repos = store.setdefault("repositories", [])
        for i, repo in enumerate(r.lst(d["repositories"], pre + "repositories")):
            repo = r.obj(repo, f"{pre}repositories[{i}]")
            r.s(repo, "repositoryName", f"{pre}repositories[{i}]", required=True)
            repos.append(repo)
        matched = True
    if "scanningConfiguration" in d and "registryId" in d:
        store["registryScanning"] = {
            "registryId": d.get("registryId"),
            "scanningConfiguration": r.obj(d["scanningConfiguration"], pre + "scanningConfiguration"),
        }
        matched = True
    if "VpcEndpoints" in d:
        eps = store.setdefault("vpcEndpoints", [])
        for i, ep in enumerate(r.lst(d["VpcEndpoints"], pre + "VpcEndpoints")):
            ep = r.obj(ep, f"{pre}VpcEndpoints[{i}]")
            r.s(ep, "ServiceName", f"{pre}VpcEndpoints[{i}]", required=True)
            eps.append(ep)
        matched = True
    return matched


def apply_snapshot(r: Any, d: dict[str, Any], out: Any) -> None:
    reg = d.get(KEY)
    if reg is None:
        return
    reg = r.obj(reg, KEY)
    store = _store(out)
    if isinstance(reg.get("vpcId"), str):
        store["vpcId"] = reg["vpcId"]
    for i, repo in enumerate(r.lst(reg.get("repositories"), KEY + ".repositories")):
        repo = r.obj(repo, f"{KEY}.repositories[{i}]")
        r.s(repo, "repositoryName", f"{KEY}.repositories[{i}]", required=True)
        store.setdefault("repositories", []).append(repo)
    for i, ep in enumerate(r.lst(reg.get("VpcEndpoints"), KEY + ".VpcEndpoints")):
        ep = r.obj(ep, f"{KEY}.VpcEndpoints[{i}]")
        r.s(ep, "ServiceName", f"{KEY}.VpcEndpoints[{i}]", required=True)
        store.setdefault("vpcEndpoints", []).append(ep)
    if reg.get("registryScanning") is not None:
        rs = r.obj(reg["registryScanning"], KEY + ".registryScanning")
        store["registryScanning"] = {
            "registryId": rs.get("registryId"),
            "scanningConfiguration": r.obj(
                rs.get("scanningConfiguration"), KEY + ".registryScanning.scanningConfiguration"
            ),
        }


def to_document(out: Any) -> dict[str, Any]:
    store = _store(out)
    if not store:
        return {}
    doc: dict[str, Any] = {}
    if store.get("vpcId"):
        doc["vpcId"] = store["vpcId"]
    if "repositories" in store:
        doc["repositories"] = store["repositories"]
    if "registryScanning" in store:
        doc["registryScanning"] = store["registryScanning"]
    if "vpcEndpoints" in store:
        doc["VpcEndpoints"] = store["vpcEndpoints"]
    return {KEY: doc}


def collect_live(
    session: Any, call: Callable[..., dict[str, Any] | None], endpoint_url: str | None, vpc_id: str | None
) -> list[tuple[str, Any]]:
    """The same inputs through boto3 (read-only calls); ``call`` records a failed call as a gap."""
    docs: list[tuple[str, Any]] = []
    ecr = session.client("ecr", endpoint_url=endpoint_url)
    repos: list[Any] = []
    token = None
    while True:
        got = call(
            "ecr describe-repositories", ecr.describe_repositories, **({"nextToken": token} if token else {})
        )
        if got is None:
            break
        repos.extend(got.get("repositories") or [])
        token = got.get("nextToken")
        if not token:
            docs.append(("ecr describe-repositories", {"repositories": repos}))
            break
    got = call("ecr get-registry-scanning-configuration", ecr.get_registry_scanning_configuration)
    if got is not None:
        docs.append(("ecr get-registry-scanning-configuration", got))
    if vpc_id:
        ec2 = session.client("ec2", endpoint_url=endpoint_url)
        got = call(
            "ec2 describe-vpc-endpoints",
            ec2.describe_vpc_endpoints,
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
        )
        if got is not None:
            docs.append(("ec2 describe-vpc-endpoints", {"VpcEndpoints": got.get("VpcEndpoints") or []}))
    return docs


# -- reading it -----------------------------------------------------------------------------------------


@dataclass
class RegistryPosture:
    vpc_id: str
    repositories: list[dict[str, Any]] | None
    scanning: dict[str, Any] | None
    vpc_endpoints: list[dict[str, Any]] | None

    @classmethod
    def of(cls, eks: Any) -> RegistryPosture:
        store = getattr(eks, "image_registry", None) or {}
        return cls(
            str(store.get("vpcId") or ""),
            store.get("repositories"),
            store.get("registryScanning"),
            store.get("vpcEndpoints"),
        )

    def scan_type(self) -> str:
        return str(((self.scanning or {}).get("scanningConfiguration") or {}).get("scanType") or "BASIC")

    def registry_rule_covers(self, repository: str) -> list[str]:
        """Scan frequencies of the registry rules whose filters match ``repository`` (ECR wildcards)."""
        from fnmatch import fnmatchcase

        out = []
        for rule in ((self.scanning or {}).get("scanningConfiguration") or {}).get("rules") or []:
            if not isinstance(rule, dict):
                continue
            filters = [f.get("filter") for f in rule.get("repositoryFilters") or [] if isinstance(f, dict)]
            if any(isinstance(f, str) and fnmatchcase(repository, f) for f in filters):
                out.append(str(rule.get("scanFrequency") or ""))
        return out

    def endpoints(self, region: str) -> dict[str, list[dict[str, Any]]]:
        """ecr.api, ecr.dkr, s3 -> the endpoints of this VPC for that service."""
        want = {
            f"com.amazonaws.{region}.ecr.api": "ecr.api",
            f"com.amazonaws.{region}.ecr.dkr": "ecr.dkr",
            f"com.amazonaws.{region}.s3": "s3",
        }
        out: dict[str, list[dict[str, Any]]] = {v: [] for v in want.values()}
        for ep in self.vpc_endpoints or []:
            if self.vpc_id and ep.get("VpcId") not in (None, self.vpc_id):
                continue
            name = want.get(str(ep.get("ServiceName")))
            if name:
                out[name].append(ep)
        return out
