"""Adapters from the engines of other packages (Cedar in kubestrata.authz, PSS in kubestrata.pss,
audit detection in kubestrata.detect) to the small interfaces the server and admission handlers use.
Each is imported here only, so the server's wiring to an engine lives in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CedarEngines:
    """The policy store plus the SAR authorizer and the admission evaluator that share it."""

    store: Any
    authorizer: Any
    admission: Any
    reload: Any  # () -> number of policies; raises when the new set is rejected
    count: int = 0


@dataclass
class SimpleCedarVerdict:
    denied: bool
    policies: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def load_cedar(dirs: list[Path]) -> CedarEngines:
    raise NotImplementedError("the Cedar engine (kubestrata.authz) is not wired yet")


def load_pss(config: Any) -> Any:
    """The PSS engine adapter, or None when kubestrata.pss is not part of this build."""
    return None


def load_audit(metrics: Any) -> Any:
    """The audit-webhook sink of kubestrata.detect, or None (then /audit answers 501)."""
    return None
