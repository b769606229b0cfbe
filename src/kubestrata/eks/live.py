"""Collect the EKS snapshot live through boto3 (read-only calls), through the same reader as files."""

from __future__ import annotations

from typing import Any

import orjson

from kubestrata.eks.awsjson import merge_aws_json
from kubestrata.eks.model import EKSAccess
from kubestrata.errors import InputError


def collect_live(
    cluster_name: str,
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    gaps: list[str] | None = None,
) -> EKSAccess:
    """Read the same data through boto3 (read-only calls). Calls the endpoint does not support are
    recorded in ``gaps`` rather than failing the whole collection."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    gaps = gaps if gaps is not None else []
    session = boto3.Session(profile_name=profile, region_name=region)
    eks = session.client("eks", endpoint_url=endpoint_url)
    docs: list[tuple[str, Any]] = []

    def call(label: str, fn: Any, **kw: Any) -> dict[str, Any] | None:
        try:
            resp = fn(**kw)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("ResourceNotFoundException",) and label == "describe-cluster":
                raise InputError(f"cluster {cluster_name!r} not found", field="clusterName") from None
            gaps.append(f"{label}: {code or e}")
            return None
        except BotoCoreError as e:
            gaps.append(f"{label}: {e}")
            return None
        resp.pop("ResponseMetadata", None)
        return orjson.loads(orjson.dumps(resp, default=str))

    def pages(label: str, op: str, key: str, **kw: Any) -> list[Any] | None:
        items: list[Any] = []
        token = None
        while True:
            args = dict(kw, **({"nextToken": token} if token else {}))
            resp = call(label, getattr(eks, op), **args)
            if resp is None:
                return None
            items.extend(resp.get(key) or [])
            token = resp.get("nextToken")
            if not token:
                return items

    d = call("describe-cluster", eks.describe_cluster, name=cluster_name)
    if d is not None:
        docs.append(("describe-cluster", d))
    arns = pages("list-access-entries", "list_access_entries", "accessEntries", clusterName=cluster_name)
    for arn in arns or []:
        e = call(
            "describe-access-entry", eks.describe_access_entry, clusterName=cluster_name, principalArn=arn
        )
        if e is not None:
            docs.append(("describe-access-entry", e))
        pol = pages(
            "list-associated-access-policies",
            "list_associated_access_policies",
            "associatedAccessPolicies",
            clusterName=cluster_name,
            principalArn=arn,
        )
        if pol is not None:
            docs.append(
                ("list-associated-access-policies", {"principalArn": arn, "associatedAccessPolicies": pol})
            )
    assocs = pages(
        "list-pod-identity-associations",
        "list_pod_identity_associations",
        "associations",
        clusterName=cluster_name,
    )
    for a in assocs or []:
        got = call(
            "describe-pod-identity-association",
            eks.describe_pod_identity_association,
            clusterName=cluster_name,
            associationId=a.get("associationId"),
        )
        if got is not None:
            docs.append(("describe-pod-identity-association", got))
    for ng in pages("list-nodegroups", "list_nodegroups", "nodegroups", clusterName=cluster_name) or []:
        got = call("describe-nodegroup", eks.describe_nodegroup, clusterName=cluster_name, nodegroupName=ng)
        if got is not None:
            docs.append(("describe-nodegroup", got))
            lt = (got.get("nodegroup") or {}).get("launchTemplate") or {}
            if lt.get("id") or lt.get("name"):
                ec2 = session.client("ec2", endpoint_url=endpoint_url)
                ref = {"LaunchTemplateId": lt["id"]} if lt.get("id") else {"LaunchTemplateName": lt["name"]}
                got = call(
                    "ec2 describe-launch-template-versions",
                    ec2.describe_launch_template_versions,
                    Versions=[str(lt.get("version") or "$Default")],
                    **ref,
                )
                if got is not None:
                    docs.append(("ec2 describe-launch-template-versions", got))
    for fp in (
        pages(
            "list-fargate-profiles", "list_fargate_profiles", "fargateProfileNames", clusterName=cluster_name
        )
        or []
    ):
        got = call(
            "describe-fargate-profile",
            eks.describe_fargate_profile,
            clusterName=cluster_name,
            fargateProfileName=fp,
        )
        if got is not None:
            docs.append(("describe-fargate-profile", got))
    version = ((d or {}).get("cluster") or {}).get("version")
    if isinstance(version, str):
        got = call("describe-cluster-versions", eks.describe_cluster_versions, clusterVersions=[version])
        if got is not None:
            docs.append(("describe-cluster-versions", got))
    keys = [
        (e.get("provider") or {}).get("keyArn")
        for e in ((d or {}).get("cluster") or {}).get("encryptionConfig") or []
        if isinstance(e, dict)
    ]
    if any(keys):
        kms = session.client("kms", endpoint_url=endpoint_url)
        for key in filter(None, keys):
            got = call("kms get-key-rotation-status", kms.get_key_rotation_status, KeyId=key)
            if got is not None:
                # older KMS responses omit KeyId; the request names the key
                docs.append(("kms get-key-rotation-status", {"KeyId": key, **got}))
            got = call("kms describe-key", kms.describe_key, KeyId=key)
            if got is not None:
                docs.append(("kms describe-key", got))
    gd = session.client("guardduty", endpoint_url=endpoint_url)
    detectors = call("guardduty list-detectors", gd.list_detectors)
    for det in (detectors or {}).get("DetectorIds") or []:
        got = call("guardduty get-detector", gd.get_detector, DetectorId=det)
        if got is not None:
            docs.append(("guardduty get-detector", got))
            break  # one detector per account and region
    else:
        if detectors is not None:  # no detector: GuardDuty is off in this account and region
            docs.append(
                ("guardduty list-detectors", {"Status": "DISABLED", "ServiceRole": "", "Features": []})
            )
    out = merge_aws_json(docs)
    out.cluster_name = out.cluster_name or cluster_name
    return out
