"""The `kubestrata` console script."""

from __future__ import annotations

import typer

from kubestrata import __version__
from kubestrata.cli import access, cedar, checks, detect, netpol, pss, serve
from kubestrata.cli.scan import scan

app = typer.Typer(
    name="kubestrata",
    help="Layered Kubernetes security: scan manifests or clusters, serve webhooks, detect threats.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("scan")(scan)
app.add_typer(checks.app, name="checks")
app.add_typer(pss.app, name="pss")
app.add_typer(cedar.app, name="cedar")
app.add_typer(detect.app, name="detect")
app.add_typer(netpol.app, name="netpol")
app.add_typer(access.app, name="access")
app.add_typer(__import__("kubestrata.cli.identity", fromlist=["app"]).app, name="identity")
serve.register(app)


@app.command()
def version() -> None:
    """Print the kubestrata version."""
    typer.echo(f"kubestrata {__version__}")


def main() -> None:
    app()
