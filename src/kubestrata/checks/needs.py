"""What allow-listed system components are known to need (data/system-components.yaml plus
scan.system_components in the config), so that checks judge them against it: a required hostPath,
host namespace, capability, privileged container or root user is informational; anything beyond it is
judged as for any other workload."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from typing import TYPE_CHECKING, Any

from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import iter_containers, pod_template
from kubestrata.packagedata import load_yaml
from kubestrata.pss.checks import CAPABILITIES_ALLOWED_1_0, Violation

if TYPE_CHECKING:
    from kubestrata.checks.base import CheckContext


@dataclass(frozen=True)
class ContainerNeeds:
    privileged: bool = False
    root: bool = False
    capabilities: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Needs:
    """The known needs of one workload (empty for a workload that matches no component)."""

    component: str = ""
    host_namespaces: frozenset[str] = frozenset()
    host_paths: frozenset[str] = frozenset()
    containers: dict[str, ContainerNeeds] = field(default_factory=dict)
    caps_added: dict[str, frozenset[str]] = field(default_factory=dict)  # container -> its add list

    def __bool__(self) -> bool:
        return bool(self.component)

    def container(self, name: str | None) -> ContainerNeeds:
        return self.containers.get(name or "", ContainerNeeds())

    def host_path(self, path: str) -> bool:
        return _norm(path) in self.host_paths

    def covers_violation(self, v: Violation) -> bool:
        """Whether a baseline violation is exactly what the component needs (nothing beyond it)."""
        if not self:
            return False
        if v.check == "hostNamespaces":
            return v.path.rsplit(".", 1)[-1] in self.host_namespaces
        if v.check == "capabilities_baseline" and v.container:
            extra = self.caps_added.get(v.container, frozenset()) - CAPABILITIES_ALLOWED_1_0
            return not (extra - self.container(v.container).capabilities)
        if v.check == "privileged":
            return self.container(v.container).privileged
        return False


def _norm(path: str) -> str:
    p = "/" + str(path).strip("/")
    return p


def _components(raw: list[Any]) -> list[dict[str, Any]]:
    return [c for c in raw if isinstance(c, dict)]


@cache
def shipped() -> tuple[dict[str, Any], ...]:
    doc = load_yaml("kubestrata.checks", "data/system-components.yaml")
    return tuple(_components(doc.get("components") or []))


def _matches(entry: dict[str, Any], namespace: str, kind: str, name: str) -> bool:
    m = entry.get("match") or {}
    return (
        fnmatchcase(namespace, str(m.get("namespace", "kube-system")))
        and fnmatchcase(kind, str(m.get("kind", "*")))
        and fnmatchcase(name, str(m.get("name", "*")))
    )


def _build(entry: dict[str, Any], obj: KubeObject) -> Needs:
    pod = entry.get("pod") or {}
    ns = frozenset(k for k in ("hostNetwork", "hostPID", "hostIPC") if pod.get(k) is True)
    paths = frozenset(_norm(p) for p in pod.get("hostPaths") or [])
    containers = {
        str(name): ContainerNeeds(
            bool(c.get("privileged")),
            bool(c.get("root")),
            frozenset(str(x) for x in c.get("capabilities") or []),
        )
        for name, c in (entry.get("containers") or {}).items()
        if isinstance(c, dict)
    }
    caps: dict[str, frozenset[str]] = {}
    tpl = pod_template(obj)
    if tpl is not None:
        for c in iter_containers(tpl.spec, tpl.spec_path):
            add = ((c.security_context.get("capabilities") or {}) or {}).get("add") or []
            if isinstance(add, list):
                caps[c.name] = frozenset(str(x) for x in add)
    return Needs(str(entry.get("component") or obj.name), ns, paths, containers, caps)


def known_needs_for(obj: KubeObject, ctx: CheckContext) -> Needs:
    """The known needs of ``obj`` (the first matching component, config entries first), or empty."""
    cache = ctx.memo("needs.by-object", dict)
    found: Needs | None = cache.get(id(obj))
    if found is None:
        found = _NO_NEEDS
        ns, kind, name = obj.namespace, obj.kind, obj.name
        for entry in (*ctx.config.system_components, *shipped()):
            if _matches(entry, ns, kind, name):
                found = _build(entry, obj)
                break
        cache[id(obj)] = found
    return found


_NO_NEEDS = Needs()  # what most workloads get: one shared value (Needs is frozen, never modified)
