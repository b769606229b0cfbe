"""``serve.identity``: the TokenReview webhook for IAM tokens (``authenticate``, off until ``cluster_id`` is
set) and the Pod Identity pod mutation on /mutate (``pod_identity``, off until associations are given)."""

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


class PodIdentityWebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    associations: list[Path] = Field(
        default_factory=list,
        description="PodIdentityAssociation objects or EKS pod identity JSON (files or directories); "
        "pods of those service accounts get the Pod Identity environment.",
    )
    from_cluster: bool = Field(
        False, description="Also read PodIdentityAssociation objects from the cluster."
    )
    kubeconfig: Path | None = None
    context: str | None = None
    credentials_uri: str = Field(
        "http://169.254.170.23/v1/credentials", description="AWS_CONTAINER_CREDENTIALS_FULL_URI to inject."
    )


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authenticate: AuthenticateConfig = Field(default_factory=AuthenticateConfig)
    pod_identity: PodIdentityWebhookConfig = Field(default_factory=PodIdentityWebhookConfig)


def attach_identity(state: Any, cfg: IdentityConfig, *, add_handlers: bool = True) -> None:
    """Give a ServerState its authenticator and register the Pod Identity mutation."""
    state.authenticator = build_authenticator(cfg.authenticate)
    pi = cfg.pod_identity
    if add_handlers and (pi.associations or pi.from_cluster):
        from kubestrata.identity.associations import Associations, load_cluster, load_files
        from kubestrata.identity.webhook import add_pod_identity

        assoc = load_files(pi.associations) if pi.associations else Associations([])
        if pi.from_cluster:
            live = load_cluster(str(pi.kubeconfig) if pi.kubeconfig else None, pi.context)
            assoc = Associations([*assoc, *live])
        add_pod_identity(state.registry, assoc, uri=pi.credentials_uri)


def build_authenticator(cfg: AuthenticateConfig) -> Any:
    """The Authenticator for a config, or None when ``cluster_id`` is empty."""
    if not cfg.cluster_id:
        return None
    from kubestrata.errors import KubestrataError
    from kubestrata.identity.authenticator import AccessMapper, Authenticator, load_access_model

    if not cfg.manifests and not cfg.eks:
        raise KubestrataError(
            "serve.identity.authenticate: give manifests (the aws-auth ConfigMap, an EKSClusterAccess snapshot) "
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
