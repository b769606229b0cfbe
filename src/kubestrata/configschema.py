"""The config file's schema: pydantic models that validate kubestrata.yaml (field descriptions, aliases,
validators) and convert it into the plain values of kubestrata.config. Imported only when a config file
is read, so a command run without one never pays for pydantic."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kubestrata import config as values
from kubestrata.config import (
    DEFAULT_ALLOWED_REGISTRIES,
    DEFAULT_PRIVILEGED_NAMES,
    DEFAULT_SENSITIVE_HOST_PATHS,
    VALUE_CONTROLS,
)


class PrivilegedAllowSchema(BaseModel):
    """A workload allowed to run privileged containers (system components); glob patterns."""

    model_config = ConfigDict(extra="forbid")
    namespace: str = "kube-system"
    name: str = "*"
    kind: str = "*"
    container: str = "*"


class PSSExclusionSchema(BaseModel):
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
    def _values_only_where_listed(self) -> PSSExclusionSchema:
        from kubestrata.pss.controls import check_ids

        if self.values and not check_ids(self.control) <= VALUE_CONTROLS:
            raise ValueError("values apply only to Capabilities, Host Ports and Sysctls")
        return self


class ScanSection(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    allowed_registries: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_REGISTRIES),
        description="Glob patterns of image registries that are allowed (KS-IMG-003).",
    )
    extra_allowed_registries: list[str] = Field(default_factory=list)
    privileged_allowlist: list[PrivilegedAllowSchema] = Field(
        default_factory=lambda: [
            PrivilegedAllowSchema(namespace="kube-system", name=n) for n in DEFAULT_PRIVILEGED_NAMES
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
    pss_exclusions: list[PSSExclusionSchema] = Field(
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
    sensitive_host_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSITIVE_HOST_PATHS))

    def to_config(self) -> values.ScanConfig:
        return values.ScanConfig(
            **{
                **{k: getattr(self, k) for k in type(self).model_fields},
                "privileged_allowlist": [
                    values.PrivilegedAllowEntry(**e.model_dump()) for e in self.privileged_allowlist
                ],
                "pss_exclusions": [values.PSSExclusion(**e.model_dump()) for e in self.pss_exclusions],
            }
        )


class ConfigFile(BaseModel):
    """The one kubestrata config file. Each command reads its section; `serve` validates its own."""

    model_config = ConfigDict(extra="forbid")
    scan: ScanSection = Field(default_factory=ScanSection)
    serve: dict[str, Any] | None = Field(None, description="`kubestrata serve` settings (see docs/serve.md).")

    def to_config(self) -> values.Config:
        return values.Config(self.scan.to_config(), self.serve)


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


def validate(data: dict[str, Any], model: type[BaseModel], file: str) -> Any:
    """``data`` as ``model``; the first problem is an InputError naming file and field."""
    from kubestrata.errors import InputError

    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            valid = _fields_at(model, loc[:-1])
            msg = f"unknown key {loc[-1]!r}" + (f"; valid keys here: {', '.join(valid)}" if valid else "")
        raise InputError(msg, file=file, field=".".join(str(x) for x in loc)) from None
