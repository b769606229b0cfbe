"""`kubestrata netpol` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="netpol (not yet implemented).", no_args_is_help=True)
