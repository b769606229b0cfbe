"""Test doubles for engines the server calls (the real Cedar engine is tested in test_cedar_*)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubestrata.server.config import FileConfig, ServeConfig


class RecordingAuthorizer:
    """Allows everything except the verb "delete" (a forbid named `fake.cedar#0`)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def review(self, sar: dict[str, Any]) -> dict[str, Any]:
        self.seen.append(sar)
        attrs = sar["spec"].get("resourceAttributes") or sar["spec"].get("nonResourceAttributes")
        if attrs.get("verb") == "boom":
            raise RuntimeError("engine exploded")
        if attrs.get("verb") == "delete":
            return {"allowed": False, "denied": True, "reason": "forbidden by fake.cedar#0"}
        return {"allowed": True, "reason": "permitted by fake.cedar#1"}


@dataclass
class Decision:
    allowed: bool
    denials: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class ForbidNamedProd:
    """Cedar-admission double: forbids objects named prod-*; raises on objects named boom-*."""

    def evaluate(self, request: dict[str, Any]) -> Decision:
        name = ((request.get("object") or request.get("oldObject") or {}).get("metadata") or {}).get(
            "name", ""
        )
        if name.startswith("boom-"):
            raise RuntimeError("engine exploded")
        if name.startswith("prod"):
            return Decision(False, [('demo.cedar#3 (@id "no-prod")', "production objects are frozen")])
        return Decision(True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(**serve: Any) -> FileConfig:
    return FileConfig(serve=ServeConfig.model_validate(serve))
