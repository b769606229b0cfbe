"""What each check deliberately does not cover (data/limits.yaml), for docs/checks.md."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def check_limits() -> dict[str, str]:
    doc = yaml.safe_load(resources.files("kubestrata.checks").joinpath("data/limits.yaml").read_text())
    return {str(k): str(v) for k, v in (doc or {}).items()}
