"""Where the kubestrata config file is found. Kept apart from kubestrata.config (the pydantic model)
so that a command can learn there is no config file without importing the model (a third of a
second of start-up)."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_NAME = "kubestrata.yaml"


def discover_config() -> Path | None:
    """./kubestrata.yaml, else $XDG_CONFIG_HOME/kubestrata/kubestrata.yaml (~/.config by default)."""
    here = Path(CONFIG_NAME)
    if here.is_file():
        return here
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "kubestrata" / CONFIG_NAME
    return user if user.is_file() else None
