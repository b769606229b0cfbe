"""kubestrata configuration (one file, YAML), validated by pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kubestrata.configpath import discover_config
from kubestrata.errors import InputError

M = TypeVar("M", bound=BaseModel)

DEFAULT_ALLOWED_REGISTRIES = ["*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn"]


class PrivilegedAllowEntry(BaseModel):
    """A workload allowed to run privileged containers (system components); glob patterns."""

    model_config = ConfigDict(extra="forbid")
    namespace: str = "kube-system"
    name: str = "*"
    kind: str = "*"
    container: str = "*"


class PSSExclusion(BaseModel):
    """A Kyverno-style exclusion from KS-PSS-004 (podSecurity.exclude): one Pod Security control,
    optionally only for some images, namespaces and offending values."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    control: str = Field(
        alias="controlName",
        description='PSS control name as the standard names it ("Capabilities", "Host Ports") or a '
        "Pod Security Admission check id (capabilities_baseline, hostPorts).",
    )
    images: list[str] = Field(
        default_factory=list,
        description="Glob patterns of container images; empty = every container. A pod-level field "
        "(host namespaces, sysctls...) is only excluded by an entry without images.",
    )
    namespaces: list[str] = Field(default_factory=list, description="Glob patterns; empty = every namespace.")
    values: list[str] = Field(
        default_factory=list,
        description="Allowed values (capabilities, host ports, sysctl names): only violations whose every "
        "offending value is listed are excluded; empty = any value.",
    )
    reason: str = ""

    @field_validator("control")
    @classmethod
    def _known_control(cls, v: str) -> str:
        from kubestrata.pss.controls import check_ids

        if not check_ids(v):
            raise ValueError(
                f"unknown Pod Security control {v!r} (see docs/scan.md, Pod Security exclusions)"
            )
        return v

    @model_validator(mode="after")
    def _values_only_where_listed(self) -> PSSExclusion:
        from kubestrata.pss.controls import check_ids

        if self.values and not check_ids(self.control) <= VALUE_CONTROLS:
            raise ValueError("values apply only to Capabilities, Host Ports and Sysctls")
        return self


VALUE_CONTROLS = frozenset({"capabilities_baseline", "capabilities_restricted", "hostPorts", "sysctls"})


class ScanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    allowed_registries: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_REGISTRIES),
        description="Glob patterns of image registries that are allowed (KS-IMG-003).",
    )
    extra_allowed_registries: list[str] = Field(default_factory=list)
    privileged_allowlist: list[PrivilegedAllowEntry] = Field(
        # kube-system CNI and storage drivers: the components that need privilege by design
        default_factory=lambda: [
            PrivilegedAllowEntry(namespace="kube-system", name=n)
            for n in (
                "aws-node",
                "kube-proxy",
                "ebs-csi-node",
                "efs-csi-node",
                "calico-node",
                "cilium",
                "eks-pod-identity-agent",
                "aws-network-policy-agent",
                "fsx-csi-node",
                "s3-csi-node",
                "csi-*",
                "*-csi-node",
            )
        ]
    )
    system_components: list[dict[str, Any]] = Field(
        default_factory=list,
        description="More system components and what they are known to need (the shape of "
        "kubestrata/checks/data/system-components.yaml); checked before the shipped list.",
    )
    require_cpu_limits: bool = Field(
        False,
        description="KS-WL-006 also requires resources.limits.cpu (off by default: CPU limits throttle a "
        "container even when the node is idle; requests and the memory limit are always required).",
    )
    pss_exclusions: list[PSSExclusion] = Field(
        default_factory=list,
        description="Kyverno-style exclusions from KS-PSS-004 per control, image, namespace and value.",
    )
    allow_annotation_suppressions: bool = True
    pss_configuration: str | None = Field(
        None,
        description="A PodSecurityConfiguration file (the API server's PSA defaults and exemptions) that "
        "KS-PSS checks apply; without it, PSA's built-in defaults (privileged:latest, no exemptions).",
    )
    max_node_age_days: float = Field(
        21.0,
        gt=0,
        description="Nodes older than this are findings (KS-NODE-001); EKS Auto Mode rotates at 21 days.",
    )
    sensitive_host_paths: list[str] = Field(
        default_factory=lambda: [
            "/",
            "/etc",
            "/proc",
            "/sys",
            "/boot",
            "/root",
            "/dev",
            "/var/run",
            "/run",
            "/var/lib/kubelet",
            "/var/lib/docker",
            "/var/lib/containerd",
            "/var/run/docker.sock",
            "/run/containerd/containerd.sock",
            "/var/run/containerd/containerd.sock",
            "/var/run/crio/crio.sock",
            "/run/crio/crio.sock",
            "/etc/kubernetes",
            "/var/log",
        ]
    )

    @property
    def registries(self) -> list[str]:
        return [*self.allowed_registries, *self.extra_allowed_registries]


class Config(BaseModel):
    """The one kubestrata config file. Each command reads its section; `serve` validates its own."""

    model_config = ConfigDict(extra="forbid")
    scan: ScanConfig = Field(default_factory=ScanConfig)
    serve: dict[str, Any] | None = Field(None, description="`kubestrata serve` settings (see docs/serve.md).")


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the mapping at ``loc`` inside ``model`` (for "unknown key" messages)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(str(part))
        if info is None:
            return []
        ann = info.annotation
        args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = ann if isinstance(ann, type) else (args[0] if args else None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def load_yaml_model(path: str | Path, model: type[M], what: str = "config") -> M:
    """Read a YAML file into a pydantic model; every problem is an InputError naming file and field."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise InputError(f"cannot read {what}: {e.strerror or e}", file=str(p)) from None
    except UnicodeDecodeError as e:
        raise InputError(
            f"not UTF-8 text (byte {e.start}); expected a YAML {what} file", file=str(p)
        ) from None
    except yaml.YAMLError as e:
        raise InputError(f"invalid YAML: {e}", file=str(p)) from None
    if not isinstance(data, dict):
        raise InputError(f"the {what} file must be a mapping", file=str(p))
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            valid = _fields_at(model, loc[:-1])
            msg = f"unknown key {loc[-1]!r}" + (f"; valid keys here: {', '.join(valid)}" if valid else "")
        raise InputError(msg, file=str(p), field=".".join(str(x) for x in loc)) from None


def load_config(path: str | Path | None, *, discover: bool = True) -> Config:
    """The config file given with -c, else the discovered one (see discover_config), else defaults."""
    if path is None and discover:
        path = discover_config()
    return Config() if path is None else load_yaml_model(path, Config)
