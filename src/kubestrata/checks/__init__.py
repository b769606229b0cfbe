"""Posture checks: the registry and metadata (base), and one module per domain (workload, rbac,
awsauth, accessentries, identity, eks, ecr, encryption, network, nodes, nodeos, images,
vulnerabilities, pss, inputs), so each domain name in ``--include`` matches its checks. A check is a
function of (object, context) -> findings registered with its metadata; its pass and fail examples are
examples/<id>/{pass,fail}.yaml. Shared support: accesssupport.py and ekssupport.py (one model per
scan), needs.py (what allow-listed system components need), limits.py (what checks do not cover).
Built-in check modules are discovered by walking this package."""

from __future__ import annotations

import importlib
import pkgutil

from kubestrata.checks.base import (
    REGISTRY,
    Check,
    CheckContext,
    CheckMeta,
    CheckRegistry,
    check,
    cluster_check,
)

_loaded = False


def load_builtin_checks() -> CheckRegistry:
    """Import every module in kubestrata.checks (each registers its checks) once; return the registry."""
    global _loaded
    if not _loaded:
        for mod in pkgutil.iter_modules(__path__):
            if mod.name not in ("base",) and not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True
    return REGISTRY


__all__ = [
    "REGISTRY",
    "Check",
    "CheckContext",
    "CheckMeta",
    "CheckRegistry",
    "check",
    "cluster_check",
    "load_builtin_checks",
]
