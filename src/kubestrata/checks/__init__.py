"""Posture checks. Built-in check modules are discovered by walking this package."""

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
