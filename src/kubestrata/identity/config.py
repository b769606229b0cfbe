"""``serve.authenticate``: the TokenReview webhook for IAM tokens (off until ``cluster_id`` is set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuthenticateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster_id: str = Field(
        "",
        description="The x-k8s-aws-id tokens must be signed for (`aws eks get-token --cluster-name`); empty: off.",
    )
    partition: str = Field("aws", description="AWS partition whose STS hostnames tokens may name.")
    region: str = Field(
        "", description="The server's region (accepts its STS hostnames beyond the SDK's table)."
    )
    sts_endpoint: str | None = Field(
        None,
        description="Where the presigned GetCallerIdentity is sent (e.g. an STS VPC endpoint); the Host header "
        "stays the token's. Default: the token's own STS host.",
    )
    timeout: float = Field(10.0, gt=0, description="Seconds for the STS call.")
    cache_size: int = Field(10_000, gt=0, description="Verified tokens kept (each until it expires).")
    manifests: list[Path] = Field(
        default_factory=list,
        description="Files or directories with the aws-auth ConfigMap and/or an EKSClusterAccess snapshot.",
    )
    eks: list[Path] = Field(
        default_factory=list,
        description="AWS CLI JSON (describe-cluster, access entries...) as `access --eks`.",
    )
    private_dns_names: dict[str, str] = Field(
        default_factory=dict,
        description="EC2 instance id -> private DNS name for {{EC2PrivateDNSName}} (no EC2 call is made).",
    )


def build_authenticator(cfg: AuthenticateConfig) -> Any:
    """The Authenticator for a config, or None when ``cluster_id`` is empty."""
    if not cfg.cluster_id:
        return None
    from kubestrata.errors import KubestrataError
    from kubestrata.identity.authenticator import AccessMapper, Authenticator, load_access_model

    if not cfg.manifests and not cfg.eks:
        raise KubestrataError(
            "serve.authenticate: give manifests (the aws-auth ConfigMap, an EKSClusterAccess snapshot) "
            "and/or eks (AWS CLI JSON) to map IAM identities"
        )
    model = load_access_model([str(p) for p in cfg.manifests], [str(p) for p in cfg.eks])
    return Authenticator(
        cfg.cluster_id,
        AccessMapper(model, private_dns_names=cfg.private_dns_names),
        partition=cfg.partition,
        region=cfg.region,
        sts_endpoint=cfg.sts_endpoint,
        timeout=cfg.timeout,
        cache_size=cfg.cache_size,
    )
