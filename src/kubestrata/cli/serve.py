"""`kubestrata serve` and `kubestrata certs`: the HTTPS webhook server."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the server's top-level commands to the main app."""
