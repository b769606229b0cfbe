"""kubestrata configuration (one file, YAML): the values every command reads.

The values are plain dataclasses with the defaults; the file is validated by the pydantic schema in
kubestrata.configschema, imported only when there is a file to read, so that a command run without a
config file never imports pydantic (docs/performance.md, start-up)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

DEFAULT_ALLOWED_REGISTRIES = ("*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn")
# kube-system CNI and storage drivers: the components that need privilege by design
DEFAULT_PRIVILEGED_NAMES = (
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
DEFAULT_SENSITIVE_HOST_PATHS = (
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
)
VALUE_CONTROLS = frozenset({"capabilities_baseline", "capabilities_restricted", "hostPorts", "sysctls"})


@dataclass
class PrivilegedAllowEntry:
    """A workload allowed to run privileged containers (system components); glob patterns."""

    namespace: str = "kube-system"
    name: str = "*"
    kind: str = "*"
    container: str = "*"


@dataclass
class PSSExclusion:
    """A Kyverno-style exclusion from KS-PSS-004 (podSecurity.exclude): one Pod Security control,
    optionally only for some images, namespaces and offending values."""

    control: str
    images: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class ScanConfig:
    """The ``scan:`` section (field meanings: kubestrata.configschema.ScanSection)."""

    allowed_registries: list[str] = field(default_factory=lambda: list(DEFAULT_ALLOWED_REGISTRIES))
    extra_allowed_registries: list[str] = field(default_factory=list)
    privileged_allowlist: list[PrivilegedAllowEntry] = field(
        default_factory=lambda: [
            PrivilegedAllowEntry(namespace="kube-system", name=n) for n in DEFAULT_PRIVILEGED_NAMES
        ]
    )
    system_components: list[dict[str, Any]] = field(default_factory=list)
    require_cpu_limits: bool = False
    pss_exclusions: list[PSSExclusion] = field(default_factory=list)
    allow_annotation_suppressions: bool = True
    pss_configuration: str | None = None
    max_node_age_days: float = 21.0
    sensitive_host_paths: list[str] = field(default_factory=lambda: list(DEFAULT_SENSITIVE_HOST_PATHS))

    @property
    def registries(self) -> list[str]:
        return [*self.allowed_registries, *self.extra_allowed_registries]


@dataclass
class Config:
    """The one kubestrata config file. Each command reads its section; `serve` validates its own."""

    scan: ScanConfig = field(default_factory=ScanConfig)
    serve: dict[str, Any] | None = None


def parse_scan_config(data: dict[str, Any], file: str = "<config>") -> ScanConfig:
    """A ``scan:`` mapping as the config file holds it, validated (errors name the field)."""
    from kubestrata.configschema import ScanSection, validate

    section: ScanSection = validate(data, ScanSection, file)
    return section.to_config()


CONFIG_NAME = "kubestrata.yaml"


def discover_config() -> Path | None:
    """./kubestrata.yaml, else $XDG_CONFIG_HOME/kubestrata/kubestrata.yaml (~/.config by default)."""
    here = Path(CONFIG_NAME)
    if here.is_file():
        return here
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "kubestrata" / CONFIG_NAME
    return user if user.is_file() else None


def load_yaml_model(path: str | Path, model: type[M], what: str = "config") -> M:
    """Read a YAML file into a pydantic model; every problem is an InputError naming file and field."""
    import yaml

    from kubestrata.configschema import validate
    from kubestrata.errors import InputError

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
    result: M = validate(data, model, str(p))
    return result


def load_config(path: str | Path | None, *, discover: bool = True) -> Config:
    """The config file given with -c, else the discovered one (see discover_config), else defaults."""
    if path is None and discover:
        path = discover_config()
    if path is None:
        return Config()
    from kubestrata.configschema import ConfigFile

    return load_yaml_model(path, ConfigFile).to_config()
