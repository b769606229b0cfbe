"""Package data (the YAML tables under each package's data/), read with libyaml when PyYAML has it:
the pure-Python loader took 0.15-0.3 s CPU for the bootstrap ClusterRoles alone, on every scan."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(package: str, path: str) -> Any:
    """The YAML document at ``path`` inside ``package`` (e.g. "kubestrata.rbac", "data/x.yaml")."""
    text = resources.files(package).joinpath(path).read_text(encoding="utf-8")
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)
