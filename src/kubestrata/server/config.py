"""`kubestrata serve` configuration: the ``serve:`` section of the one kubestrata config file.

The same file's ``scan:`` section configures the best-practice checks the admission webhook runs,
so a cluster's scan and its admission warnings agree. Command-line flags override file values.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kubestrata.config import discover_config, load_yaml_model
from kubestrata.configschema import ScanSection
from kubestrata.identity.config import IdentityConfig


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TLSConfig(_Model):
    cert: Path | None = Field(None, description="PEM serving certificate (chain). Required: HTTPS only.")
    key: Path | None = Field(None, description="PEM private key of the certificate.")
    reload_interval: float = Field(10.0, gt=0, description="Seconds between checks for rotated files.")
    client_ca: Path | None = Field(
        None,
        description="PEM CA bundle that signs the callers' client certificates (the API server's). Every "
        "webhook route then requires a verified client certificate (mutual TLS).",
    )
    client_names: list[str] = Field(
        default_factory=list,
        description="Allowed client identities: a certificate's subject CN or any of its SAN values "
        "(DNS, URI, e-mail, IP). Empty: any certificate the client CA signed.",
    )
    insecure_no_client_auth: bool = Field(
        False,
        description="Serve without client certificates: anyone who reaches the port may ask for "
        "decisions; /audit is then refused. For local trials and platforms that cannot present one.",
    )
    handshake_timeout: float = Field(
        10.0, gt=0, description="Seconds a client has to complete the TLS handshake."
    )


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
    settle_seconds: float = Field(
        2.0,
        ge=0,
        description="A change is loaded once the files have not changed for this long (so a file "
        "caught half-written is never applied). Renaming complete files into place is the safe way.",
    )
    deny_on_error: bool = Field(
        False,
        description="/authorize: a forbid that errors denies the request (naming it) instead of giving "
        "no opinion. Safer for forbids that guard something, but one broken forbid then denies every "
        "request it could match until it is fixed.",
    )
    cluster: ClusterPoliciesConfig = Field(default_factory=ClusterPoliciesConfig)


class FieldLimits(_Model):
    """Sizes of the review fields that reach Cedar entities, logs and detection state. Kubernetes'
    own limits are far below these: names are at most 253 bytes, label values 63, keys 317."""

    user: int = Field(1024, gt=0, description="Bytes of a user name, uid or group name.")
    groups: int = Field(256, gt=0, description="Groups of one user.")
    extra_keys: int = Field(64, gt=0, description="Keys of userInfo/SAR extra.")
    extra_values: int = Field(64, gt=0, description="Values per extra key.")
    extra_value: int = Field(4096, gt=0, description="Bytes of one extra key or value.")
    name: int = Field(1024, gt=0, description="Bytes of a resource, namespace, object name, path.")
    selector_requirements: int = Field(64, gt=0, description="Label/field selector requirements.")
    label: int = Field(4096, gt=0, description="Bytes of a selector key or value.")


class LimitsConfig(_Model):
    # The API server caps a request at 3 MiB of JSON; a review carries one object plus its old version.
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    header_timeout: float = Field(10.0, gt=0, description="Seconds to receive a request's headers.")
    body_timeout: float = Field(10.0, gt=0, description="Seconds to receive a request's body.")
    keep_alive: float = Field(
        120.0,
        gt=90,
        description="Idle keep-alive seconds; above client-go's 90 s idle timeout, so the API server, "
        "not kubestrata, closes an idle connection (no request races a server-side close).",
    )
    max_connections: int = Field(
        1000,
        gt=0,
        description="Open connections (TLS handshakes included). Over it, the oldest idle connection is "
        "closed; when none is idle, the new one is refused.",
    )
    reserve: int = Field(
        100,
        ge=0,
        description="Connections only authenticated callers may use: connections still in the TLS "
        "handshake or not yet authenticated share max_connections - reserve.",
    )
    fields: FieldLimits = Field(default_factory=FieldLimits)


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
    watch: bool = Field(
        True,
        description="With live: mirror every namespace's labels with a list + watch (no API call per "
        "review); while the watch is down, single GETs with the TTL cache.",
    )
    max_entries: int = Field(4096, gt=0, description="Namespaces kept in memory (watch or cache).")
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
    redis_url: str | None = Field(
        None,
        description="Publish events to the Redis partition streams for `kubestrata detect worker` "
        "instead of detecting in the server (scale-out; docs/detect.md).",
    )
    redis_prefix: str = Field("ks:events", description="Key prefix of the partition streams.")
    partitions: int = Field(16, ge=1, description="Partition streams (the workers' --partitions).")


class OpsConfig(_Model):
    """/healthz, /readyz and /metrics: plain HTTP on their own port, so probes and scrapes never
    compete with the webhook port's connections and never need a client certificate."""

    host: str = Field("127.0.0.1", description="Bind address (0.0.0.0 in a pod: the kubelet probes it).")
    port: int = Field(8080, ge=0, le=65535)


class ManifestsConfig(_Model):
    """What `kubestrata serve manifests` needs beyond the server's own settings."""

    namespace: str = Field("kubestrata-system", description="Namespace of the Deployment and Service.")
    service: str = Field("kubestrata", description="Service (and webhook configuration) name.")
    timeout_seconds: int = Field(
        5,
        ge=1,
        le=30,
        description="Admission webhook timeout: the API server waits this long, then applies the "
        "failure policy (the authorization webhook's timeout is in its AuthorizationConfiguration).",
    )
    apiserver_cidrs: list[str] = Field(
        default_factory=list,
        description="Addresses the API server connects from (and listens on): the NetworkPolicy admits "
        "only these to the webhook port and lets the server reach only these.",
    )
    apiserver_ports: list[int] = Field(default_factory=lambda: [443, 6443])
    metrics_namespaces: list[str] = Field(
        default_factory=list, description="Namespaces (Prometheus) admitted to the ops port."
    )


class LoggingConfig(_Model):
    level: str = "info"


class ServeConfig(_Model):
    host: str = "0.0.0.0"
    port: int = Field(8443, ge=0, le=65535)
    tls: TLSConfig = Field(default_factory=TLSConfig)
    policies: PoliciesConfig = Field(default_factory=PoliciesConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)
    manifests: ManifestsConfig = Field(default_factory=ManifestsConfig)
    admission: AdmissionConfig = Field(default_factory=AdmissionConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    shutdown_timeout: float = Field(15.0, ge=0, description="Seconds in-flight requests get on SIGTERM.")
    drain_seconds: float = Field(
        5.0,
        ge=0,
        description="On SIGTERM, seconds to keep serving with /readyz at 503 and keep-alive off before "
        "the listener closes (endpoints leave the Service meanwhile).",
    )


def require_caller_auth(sc: ServeConfig) -> None:
    """Refuse to start a server that would answer anyone, unless the operator said so explicitly."""
    from kubestrata.errors import KubestrataError

    if sc.tls.client_ca is None and not sc.tls.insecure_no_client_auth:
        raise KubestrataError(
            "refusing to serve without client authentication: any pod that reaches the port could ask "
            "for decisions and post forged events to /audit. Give --client-ca FILE (the CA of the API "
            "server's client certificate; `kubestrata certs` writes one) or, for a local trial, "
            "--insecure-no-client-auth"
        )
    if sc.tls.client_ca is not None and sc.tls.insecure_no_client_auth:
        raise KubestrataError("--client-ca and --insecure-no-client-auth contradict each other: give one")
    if sc.tls.client_names and sc.tls.client_ca is None:
        raise KubestrataError("--client-name needs --client-ca (the names are read from client certificates)")


class FileConfig(BaseModel):
    """The whole kubestrata config file as `serve` reads it; an unknown section is an error, as for
    every command (a misspelt section must not be ignored silently)."""

    model_config = ConfigDict(extra="forbid")
    serve: ServeConfig = Field(default_factory=ServeConfig)
    scan: ScanSection = Field(default_factory=ScanSection)


CONFIGMAP_KEY = "kubestrata.yaml"


def load_serve_config(path: str | Path | None) -> FileConfig:
    """The config file, or the ConfigMap manifest that carries it under ``data["kubestrata.yaml"]``
    (deploy/config.yaml: what the pods mount is what `serve manifests` generates from)."""
    if path is None:
        path = discover_config()
    if path is None:
        return FileConfig()
    import tempfile

    import yaml

    from kubestrata.errors import InputError

    p = Path(path)
    try:
        head = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        head = None  # load_yaml_model reports it, naming the file
    if isinstance(head, dict) and head.get("kind") == "ConfigMap":
        text = (head.get("data") or {}).get(CONFIGMAP_KEY)
        if not isinstance(text, str):
            raise InputError(f"a ConfigMap config needs data.{CONFIGMAP_KEY}", file=str(p), field="data")
        with tempfile.TemporaryDirectory() as d:
            inner = Path(d) / CONFIGMAP_KEY
            inner.write_text(text, encoding="utf-8")
            try:
                return load_yaml_model(inner, FileConfig)
            except InputError as e:
                raise InputError(e.detail, file=f"{p} (data.{CONFIGMAP_KEY})", field=e.field) from None
    return load_yaml_model(p, FileConfig)
