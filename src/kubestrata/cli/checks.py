"""`kubestrata checks`: list the checks and generate their reference page."""

from __future__ import annotations

from enum import StrEnum

import typer

from kubestrata.checks import load_builtin_checks
from kubestrata.cli import options
from kubestrata.cli.common import handle_errors, stdout_console

app = typer.Typer(
    rich_markup_mode=None, help="List checks and generate their documentation.", no_args_is_help=True
)


class ChecksFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"


@app.command("list")
@handle_errors
def list_checks(
    output: ChecksFormat = options.output(ChecksFormat.TABLE, "table, json or markdown (docs/checks.md)."),
) -> None:
    """List every check with its id, severity, layer and title.

    Example: kubestrata checks list -o json"""
    registry = load_builtin_checks()
    if output is ChecksFormat.JSON:
        import orjson

        doc = [
            {
                "id": c.meta.id,
                "severity": c.meta.severity.value,
                "layer": c.meta.layer.value,
                "kinds": sorted(c.meta.kinds),
                "title": c.meta.title,
            }
            for c in registry
        ]
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    if output is ChecksFormat.MARKDOWN:
        from kubestrata.report.checks_doc import render_checks_markdown

        typer.echo(render_checks_markdown(registry), nl=False)
        return
    from kubestrata.report.checks_doc import checks_table

    stdout_console().print(checks_table(registry))
