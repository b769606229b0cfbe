"""What each check deliberately does not cover (data/limits.yaml), for docs/checks.md."""

from __future__ import annotations

from functools import cache

from kubestrata.packagedata import load_yaml


@cache
def check_limits() -> dict[str, str]:
    doc = load_yaml("kubestrata.checks", "data/limits.yaml")
    return {str(k): str(v) for k, v in (doc or {}).items()}
