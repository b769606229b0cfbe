"""Write the EKSClusterAccess snapshot document (what `kubestrata access import` prints).

Field names are the AWS CLI's (camelCase for EKS, PascalCase for IAM), so that the one reader,
kubestrata.eks.awsjson.merge_aws_json, reads the document back; the round trip is tested."""

from __future__ import annotations

from typing import Any

from kubestrata.eks.model import SNAPSHOT_API_VERSION, SNAPSHOT_KIND, EKSAccess


def to_document(eks: EKSAccess) -> dict[str, Any]:
    """The EKSClusterAccess document (AWS CLI field names, so merge_aws_json reads it back)."""
    doc: dict[str, Any] = {
        "apiVersion": SNAPSHOT_API_VERSION,
        "kind": SNAPSHOT_KIND,
        "metadata": {"name": eks.cluster_name or "eks", "namespace": "kube-system"},
    }
    cluster: dict[str, Any] = {}
    if eks.cluster_name:
        cluster["name"] = eks.cluster_name
    if eks.cluster_arn:
        cluster["arn"] = eks.cluster_arn
    if eks.authentication_mode is not None or eks.bootstrap_creator_admin is not None:
        ac: dict[str, Any] = {}
        if eks.authentication_mode is not None:
            ac["authenticationMode"] = eks.authentication_mode
        if eks.bootstrap_creator_admin is not None:
            ac["bootstrapClusterCreatorAdminPermissions"] = eks.bootstrap_creator_admin
        cluster["accessConfig"] = ac
    if eks.oidc_issuer:
        cluster["identity"] = {"oidc": {"issuer": eks.oidc_issuer}}
    if eks.version:
        cluster["version"] = eks.version
    if eks.platform_version:
        cluster["platformVersion"] = eks.platform_version
    if eks.encryption:
        cluster["encryptionConfig"] = [
            {"resources": list(e.resources), "provider": {"keyArn": e.key_arn}} for e in eks.encryption
        ]
    if eks.logging is not None:
        on = [t for t, v in eks.logging.items() if v]
        off = [t for t, v in eks.logging.items() if not v]
        cluster["logging"] = {
            "clusterLogging": [
                *([{"types": on, "enabled": True}] if on else []),
                *([{"types": off, "enabled": False}] if off else []),
            ]
        }
    if eks.endpoint is not None:
        cluster["resourcesVpcConfig"] = {
            "endpointPublicAccess": eks.endpoint.public,
            "endpointPrivateAccess": eks.endpoint.private,
            "publicAccessCidrs": list(eks.endpoint.public_cidrs),
        }
    if cluster:
        doc["cluster"] = cluster
    doc["accessEntries"] = [
        {
            "principalArn": e.principal_arn,
            "type": e.type,
            **({"username": e.username} if e.username else {}),
            "kubernetesGroups": list(e.groups),
            **({"createdAt": e.created_at} if e.created_at else {}),
            "associatedAccessPolicies": [
                {
                    "policyArn": f"arn:aws:eks::aws:cluster-access-policy/{a.policy}",
                    "accessScope": {"type": a.scope.type, "namespaces": list(a.scope.namespaces)},
                }
                for a in e.associations
            ],
        }
        for e in eks.entries
    ]
    if eks.pod_identity:
        doc["podIdentityAssociations"] = [
            {
                "namespace": p.namespace,
                "serviceAccount": p.service_account,
                "roleArn": p.role_arn,
                **({"associationId": p.association_id} if p.association_id else {}),
                **({"targetRoleArn": p.target_role_arn} if p.target_role_arn else {}),
            }
            for p in eks.pod_identity
        ]
    if eks.node_roles:
        doc["nodeRoles"] = [
            {"roleArn": n.role_arn, "source": n.source, "type": n.type} for n in eks.node_roles
        ]
    if eks.iam_principals is not None:
        doc["iamPrincipals"] = [
            {
                "Arn": p.arn,
                "PrincipalId": p.principal_id,
                **({"CreateDate": p.create_date} if p.create_date else {}),
                **({"AssumeRolePolicyDocument": p.trust_policy} if p.trust_policy is not None else {}),
            }
            for p in eks.iam_principals.values()
        ]
    if eks.creator_arn:
        doc["creatorArn"] = eks.creator_arn
    if eks.kms_keys:
        doc["kmsKeys"] = [
            {
                "keyArn": k.arn,
                **({"keyId": k.key_id} if k.key_id else {}),
                **({"keyRotationEnabled": k.rotation_enabled} if k.rotation_enabled is not None else {}),
                **(
                    {"rotationPeriodInDays": k.rotation_period_days}
                    if k.rotation_period_days is not None
                    else {}
                ),
                **({"keyManager": k.key_manager} if k.key_manager else {}),
                **({"origin": k.origin} if k.origin else {}),
                **({"keyState": k.key_state} if k.key_state else {}),
            }
            for k in eks.kms_keys.values()
        ]
    if eks.ebs_volumes is not None:
        doc["ebsVolumes"] = [
            {
                "volumeId": v.volume_id,
                "encrypted": v.encrypted,
                **({"kmsKeyId": v.kms_key_id} if v.kms_key_id else {}),
            }
            for v in eks.ebs_volumes.values()
        ]
    if eks.version_dates:
        doc["clusterVersions"] = [
            {
                "clusterVersion": v.version,
                **({"releaseDate": v.release.isoformat()} if v.release else {}),
                "endOfStandardSupportDate": v.end_of_standard.isoformat(),
                "endOfExtendedSupportDate": v.end_of_extended.isoformat(),
            }
            for v in eks.version_dates.values()
        ]
    if eks.nodegroups:
        doc["nodegroups"] = eks.nodegroups
    if eks.launch_template_versions:
        doc["launchTemplateVersions"] = eks.launch_template_versions
    if eks.guardduty is not None:
        g = eks.guardduty
        doc["guardDuty"] = {
            "status": g.status,
            "features": [
                {
                    "name": n,
                    "status": st,
                    **(
                        {
                            "additionalConfiguration": [
                                {"name": an, "status": ast} for an, ast in g.additional[n].items()
                            ]
                        }
                        if g.additional.get(n)
                        else {}
                    ),
                }
                for n, st in g.features.items()
            ],
        }
    return doc
