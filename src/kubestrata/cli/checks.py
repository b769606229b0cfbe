"""`kubestrata checks`: list the checks and generate their reference page."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from kubestrata.checks import load_builtin_checks
from kubestrata.cli.common import handle_errors

app = typer.Typer(help="List checks and generate their documentation.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_checks(markdown: bool = typer.Option(False, "--markdown", help="Print docs/checks.md.")) -> None:
    """List every check with its id, severity, layer and title."""
    registry = load_builtin_checks()
    if markdown:
        from kubestrata.report.checks_doc import render_checks_markdown

        typer.echo(render_checks_markdown(registry), nl=False)
        return
    table = Table(header_style="bold")
    for col in ("ID", "Severity", "Layer", "Kinds", "Title"):
        table.add_column(col)
    for c in registry:
        kinds = ", ".join(sorted(c.meta.kinds)) if len(c.meta.kinds) <= 3 else f"{len(c.meta.kinds)} kinds"
        table.add_row(
            c.meta.id, c.meta.severity.value, c.meta.layer.value, kinds or "(cluster)", c.meta.title
        )
    Console(highlight=False).print(table)
