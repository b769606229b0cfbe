"""Pod specs inside the nine workload kinds, and the one container visitor.

Pod templates live at (kubernetes/pod-security-admission admission.go PodSpecExtractor):
  Pod                                   .spec
  PodTemplate                           .template.spec
  Deployment/ReplicaSet/StatefulSet/
  DaemonSet/Job/ReplicationController   .spec.template.spec
  CronJob                               .spec.jobTemplate.spec.template.spec
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubestrata.errors import InputError
from kubestrata.kube.objects import KubeObject

# kind -> path of keys from the object to the PodTemplateSpec (metadata + spec); () for Pod itself
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "PodTemplate": ("template",),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
WORKLOAD_KINDS = frozenset(TEMPLATE_PATHS)
CONTROLLER_KINDS = WORKLOAD_KINDS - {"Pod"}

CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """A pod's metadata and spec, as found in a workload, with the field path of the spec."""

    metadata: dict[str, Any]
    spec: dict[str, Any]
    spec_path: str  # e.g. "spec.template.spec"

    @property
    def labels(self) -> dict[str, str]:
        lab = self.metadata.get("labels")
        return lab if isinstance(lab, dict) else {}

    @property
    def annotations(self) -> dict[str, str]:
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, dict) else {}


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """A container with its list field ("containers", "initContainers", "ephemeralContainers"),
    index and full field path from the object root."""

    container: dict[str, Any]
    list_field: str
    index: int
    path: str

    @property
    def name(self) -> str:
        return str(self.container.get("name") or f"{self.list_field}[{self.index}]")

    @property
    def security_context(self) -> dict[str, Any]:
        sc = self.container.get("securityContext")
        return sc if isinstance(sc, dict) else {}


def template_node(raw: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The PodTemplateSpec mapping (metadata + spec) inside a workload object and its dotted path
    ("" for a Pod itself, "spec.template", ...); None for kinds without one. A missing template is
    an empty one. Raises InputError (with the field path) when a step has the wrong type."""
    kind = raw.get("kind")
    path = TEMPLATE_PATHS.get(kind) if isinstance(kind, str) else None
    if path is None:
        return None
    node: Any = raw
    walked: list[str] = []
    for key in path:
        if node is None:
            break
        if not isinstance(node, dict):
            raise InputError(
                f"expected a mapping, got {type(node).__name__}", field=".".join(walked) or "(root)"
            )
        node = node.get(key)
        walked.append(key)
    if node is None:
        node = {}
    if not isinstance(node, dict):
        raise InputError(f"expected a mapping, got {type(node).__name__}", field=".".join(walked))
    return node, ".".join(walked)


def pod_template(obj: KubeObject | dict[str, Any]) -> PodTemplate | None:
    """The pod template of a workload object, or None for kinds without one.

    Raises InputError (with field path) when the template exists but has the wrong shape.
    """
    raw = obj.raw if isinstance(obj, KubeObject) else obj
    found = template_node(raw)
    if found is None:
        return None
    node, prefix = found
    meta = node.get("metadata") or {}
    if not isinstance(meta, dict):
        raise InputError("expected a mapping", field=f"{prefix}.metadata" if prefix else "metadata")
    spec = node.get("spec")
    if spec is None:
        spec = {}
    spec_path = f"{prefix}.spec" if prefix else "spec"
    if not isinstance(spec, dict):
        raise InputError("expected a mapping", field=spec_path)
    return PodTemplate(meta, spec, spec_path)


def iter_containers(spec: dict[str, Any], spec_path: str = "spec") -> Iterator[ContainerRef]:
    """Every container in PSA's visit order: init, regular, ephemeral.

    Raises InputError when a container list or a container has the wrong type.
    """
    for list_field in CONTAINER_FIELDS:
        items = spec.get(list_field)
        if items is None:
            continue
        if not isinstance(items, list):
            raise InputError(
                f"expected a list, got {type(items).__name__}", field=f"{spec_path}.{list_field}"
            )
        for i, c in enumerate(items):
            path = f"{spec_path}.{list_field}[{i}]"
            if not isinstance(c, dict):
                raise InputError(f"expected a container mapping, got {type(c).__name__}", field=path)
            sc = c.get("securityContext")
            if sc is not None and not isinstance(sc, dict):
                raise InputError(
                    f"expected a mapping, got {type(sc).__name__}", field=f"{path}.securityContext"
                )
            yield ContainerRef(c, list_field, i, path)


def json_type(t: type) -> str:
    """The JSON name of a Python type, as the API server's validation messages spell types."""
    return {
        bool: "boolean",
        str: "string",
        int: "integer",
        float: "number",
        dict: "object",
        list: "array",
    }.get(t, t.__name__)


def validate_pod_spec(spec: dict[str, Any], spec_path: str = "spec") -> list[ContainerRef]:
    """Type-check the fields checks rely on; raise InputError naming the first bad field. Returns the
    containers (iter_containers) it checked."""
    for fld, typ in (
        ("securityContext", dict),
        ("volumes", list),
        ("hostNetwork", bool),
        ("hostPID", bool),
        ("hostIPC", bool),
        ("automountServiceAccountToken", bool),
    ):
        v = spec.get(fld)
        if v is not None and not isinstance(v, typ):
            raise InputError(
                f"expected {json_type(typ)}, got {json_type(type(v))}", field=f"{spec_path}.{fld}"
            )
    containers = list(iter_containers(spec, spec_path))
    for c in containers:
        # container fields the checks read; the API server rejects any other type
        for fld, ctyp in (("image", str), ("volumeMounts", list), ("ports", list), ("resources", dict)):
            v = c.container.get(fld)
            if v is not None and not isinstance(v, ctyp):
                raise InputError(
                    f"expected {json_type(ctyp)}, got {json_type(type(v))}", field=f"{c.path}.{fld}"
                )
    for i, v in enumerate(spec.get("volumes") or []):
        if not isinstance(v, dict):
            raise InputError("expected a volume mapping", field=f"{spec_path}.volumes[{i}]")
    return containers


def service_account_name(spec: dict[str, Any]) -> str:
    """The pod's ServiceAccount: serviceAccountName, else the deprecated serviceAccount, else default."""
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
