"""`kubestrata serve` configuration: the ``serve:`` section of the one kubestrata config file.

The same file's ``scan:`` section configures the best-practice checks the admission webhook runs,
so a cluster's scan and its admission warnings agree. Command-line flags override file values.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kubestrata.config import ScanConfig, load_yaml_model
from kubestrata.identity.config import IdentityConfig


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TLSConfig(_Model):
    cert: Path | None = Field(None, description="PEM serving certificate (chain). Required: HTTPS only.")
    key: Path | None = Field(None, description="PEM private key of the certificate.")
    reload_interval: float = Field(10.0, gt=0, description="Seconds between checks for rotated files.")


class ClusterPoliciesConfig(_Model):
    enabled: bool = Field(
        False, description="Watch cedar.k8s.aws/v1alpha1 Policy objects in the cluster (list + watch)."
    )
    kubeconfig: Path | None = Field(
        None, description="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)."
    )
    context: str | None = None
    tier: str = Field(
        "last",
        pattern="^(first|last)$",
        description="Where the cluster's Policy objects sit among the directory tiers: last (directories "
        "decide first, so their forbids cannot be overridden from the cluster) or first.",
    )
    watch_timeout: int = Field(300, gt=0, description="Seconds the API server keeps one watch open.")


class PoliciesConfig(_Model):
    dirs: list[Path] = Field(
        default_factory=list,
        description="Directories of .cedar files and cedar.k8s.aws/v1alpha1 Policy YAML, in tier order.",
    )
    reload_interval: float = Field(10.0, gt=0, description="Seconds between checks for changed policies.")
    cluster: ClusterPoliciesConfig = Field(default_factory=ClusterPoliciesConfig)


class LimitsConfig(_Model):
    # The API server caps a request at 3 MiB of JSON; a review carries one object plus its old version.
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    header_timeout: float = Field(10.0, gt=0, description="Seconds to receive a request's headers.")
    body_timeout: float = Field(10.0, gt=0, description="Seconds to receive a request's body.")
    keep_alive: float = Field(
        75.0, gt=0, description="Idle keep-alive seconds (API server reuses connections)."
    )
    max_concurrency: int | None = Field(
        1000, gt=0, description="Connections+tasks before answering 503 (uvicorn limit_concurrency)."
    )


class OnError(StrEnum):
    DENY = "deny"
    ALLOW = "allow"


class NamespacesConfig(_Model):
    file: Path | None = Field(
        None, description="YAML/JSON with Namespace objects: their labels select the PSS level."
    )
    live: bool = Field(False, description="Look namespaces up in the cluster (in-cluster or kubeconfig).")
    kubeconfig: Path | None = None
    context: str | None = None
    cache_ttl: float = Field(30.0, ge=0, description="Seconds a live lookup is cached.")
    lookup_timeout: float = Field(2.0, gt=0)


class PSSConfig(_Model):
    enabled: bool = True
    configuration: Path | None = Field(
        None, description="PodSecurityConfiguration file (defaults and exemptions), as the API server reads."
    )
    exempt_namespaces: list[str] = Field(default_factory=lambda: ["kube-system"])
    exempt_usernames: list[str] = Field(default_factory=list)
    exempt_runtime_classes: list[str] = Field(default_factory=list)


class ChecksConfig(_Model):
    enabled: bool = True
    include: list[str] = Field(default_factory=list, description="Check ids/globs/domains; empty = all.")
    exclude: list[str] = Field(default_factory=list)


class MutationsConfig(_Model):
    fixes: list[str] = Field(
        default_factory=list,
        description="Check ids whose fix patches the mutating webhook applies. None by default: every fix "
        "changes how a workload runs, so each one is an explicit choice.",
    )
    operations: list[str] = Field(default_factory=lambda: ["CREATE"])
    pss_level: str | None = Field(
        None,
        description="Apply the Pod Security fixes that bring a pod to this level (baseline, restricted, "
        "optionally :vX.Y): allowPrivilegeEscalation false, drop ALL, seccomp RuntimeDefault...",
    )
    pss_include_flagged: bool = Field(
        False,
        description="Also apply PSS fixes flagged as possibly breaking (runAsNonRoot may need an image change).",
    )


class AdmissionConfig(_Model):
    namespaces: NamespacesConfig = Field(default_factory=NamespacesConfig)
    pss: PSSConfig = Field(default_factory=PSSConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    cedar: bool = Field(True, description="Evaluate Cedar admission forbids.")
    mutations: MutationsConfig = Field(default_factory=MutationsConfig)
    on_error: OnError = Field(
        OnError.DENY,
        description="A denying handler (Cedar, PSS) that errors: deny (fail closed) or allow (fail open).",
    )
    exempt_namespaces: list[str] = Field(
        default_factory=list, description="Namespaces every admission handler skips (e.g. the webhook's own)."
    )


class AuditConfig(_Model):
    enabled: bool = Field(True, description="Serve /audit (the API server's audit webhook backend).")
    cluster: str = Field("", description="Cluster name recorded in findings and first-seen state.")
    findings_file: Path | None = Field(None, description="JSON lines of findings; default stdout.")
    state_url: str | None = Field(None, description="SQLAlchemy URL for first-seen state (default: memory).")


class LoggingConfig(_Model):
    level: str = "info"


class ServeConfig(_Model):
    host: str = "0.0.0.0"
    port: int = Field(8443, ge=0, le=65535)
    tls: TLSConfig = Field(default_factory=TLSConfig)
    policies: PoliciesConfig = Field(default_factory=PoliciesConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    admission: AdmissionConfig = Field(default_factory=AdmissionConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    shutdown_timeout: float = Field(15.0, ge=0, description="Seconds in-flight requests get on SIGTERM.")


class FileConfig(BaseModel):
    """The whole kubestrata config file as `serve` reads it (other sections are ignored here)."""

    model_config = ConfigDict(extra="allow")
    serve: ServeConfig = Field(default_factory=ServeConfig)
    scan: ScanConfig = Field(default_factory=ScanConfig)


def load_serve_config(path: str | Path | None) -> FileConfig:
    return FileConfig() if path is None else load_yaml_model(path, FileConfig)
