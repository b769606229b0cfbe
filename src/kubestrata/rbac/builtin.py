"""The API server's bootstrap ClusterRoles as package data (data/bootstrap-cluster-roles.yaml, with its
upstream source and revision): cluster-admin, admin, edit, view and the system: roles every cluster has,
so that a binding to one of them grants what it grants even when the role object is not in the input.

A role name that is neither in the input nor in this table is unknown: ``unknown_role_detail`` says why
(an EKS-managed ``eks:`` role, a controller or feature-gated ``system:`` role, a custom role that was
not supplied) for the "not evaluated" coverage note.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from kubestrata.packagedata import load_yaml

DATA = "data/bootstrap-cluster-roles.yaml"


@cache
def _table() -> dict[str, Any]:
    doc = load_yaml("kubestrata.rbac", DATA)
    if not isinstance(doc, dict):  # pragma: no cover - package data
        raise ValueError(f"{DATA}: not a mapping")
    return doc


def source() -> str:
    """The upstream file (URL at a fixed revision) the table was transcribed from."""
    return str(_table()["source"])


def versions() -> list[str]:
    """The Kubernetes minors the table is used for."""
    return [str(v) for v in _table()["versions"]]


def _minor(v: str) -> tuple[int, int] | None:
    parts = v.lstrip("v").split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def table_version(version: str = "latest") -> str:
    """The listed minor used for ``version``: itself, else the nearest listed one ("latest" = newest)."""
    listed = versions()
    want = _minor(version)
    if version == "latest" or want is None:
        return listed[-1]
    if version in listed:
        return version
    return min(listed, key=lambda v: abs(_minor(v)[0] * 100 + _minor(v)[1] - want[0] * 100 - want[1]))  # type: ignore[index]


@cache
def builtin_cluster_roles(version: str = "latest") -> dict[str, dict[str, Any]]:
    """ClusterRole objects (as the API server returns them) by name, for ``version``."""
    table_version(version)  # one revision serves every listed minor (see the data file's header)
    out: dict[str, dict[str, Any]] = {}
    for name, spec in _table()["clusterRoles"].items():
        spec = spec or {}
        labels = {"kubernetes.io/bootstrapping": "rbac-defaults", **(spec.get("labels") or {})}
        obj: dict[str, Any] = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": [dict(r) for r in spec.get("rules") or []],
        }
        if spec.get("aggregationRule"):
            obj["aggregationRule"] = {
                "clusterRoleSelectors": [{"matchLabels": dict(m)} for m in spec["aggregationRule"]]
            }
        out[str(name)] = obj
    return out


def is_builtin(name: str, version: str = "latest") -> bool:
    return name in builtin_cluster_roles(version)


def unknown_role_detail(name: str) -> str:
    """Why a ClusterRole name that is not in the input is not evaluated."""
    for prefix, what in (_table().get("providerPrefixes") or {}).items():
        if name.startswith(str(prefix)):
            return (
                f"ClusterRole {name} is {what}; it is not in the input, so what the binding grants is "
                "not evaluated (add it: kubectl get clusterrole " + name + " -o yaml)"
            )
    if name.startswith("system:"):
        return (
            f"ClusterRole {name} is not in the input and not one of the known bootstrap roles "
            "(controller and feature-gated system: roles are not modelled); what the binding grants is "
            "not evaluated (add it: kubectl get clusterrole " + name + " -o yaml)"
        )
    return (
        f"ClusterRole {name} is not in the input and is not a built-in role; what the binding grants is "
        "not evaluated (add the ClusterRole to the input)"
    )
