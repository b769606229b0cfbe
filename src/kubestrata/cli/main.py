"""The `kubestrata` console script.

Sub-commands are imported only when they run: `kubestrata --help`, `--version` and shell completion
must not pay for sqlalchemy, boto3, kubernetes or cedarpy (about a second of CPU), and `scan` must not
pay for `detect`. The table below is the one list of top-level commands and their one-line help.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

from kubestrata import __version__
from kubestrata.cli import clickapi as click
from kubestrata.cli import deprecations

# name -> (module, attribute, one-line help); the attribute is a Typer app (a group) or a function
# (a single command)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "scan": ("kubestrata.cli.scan", "scan", "Scan manifests or a live cluster across all three layers."),
    "pss": ("kubestrata.cli.pss", "app", "Pod Security Standards: PSA's exact decisions, offline; what-if."),
    "serve": ("kubestrata.cli.serve", "serve_app", "Serve the authorization, admission and audit webhooks."),
    "certs": ("kubestrata.cli.serve", "certs", "Make a CA and serving certificate for `serve`."),
    "cedar": ("kubestrata.cli.cedar", "app", "Cedar policies for Kubernetes: validate, check, from-rbac."),
    "detect": ("kubestrata.cli.detect", "app", "Detect attacks in audit logs (GuardDuty/Falco-equivalent)."),
    "netpol": ("kubestrata.cli.netpol", "app", "Network reachability: list, eval, explain, diff, coverage."),
    "access": ("kubestrata.cli.access", "app", "Who can do what: aws-auth, access entries, RBAC, paths."),
    "kms": ("kubestrata.cli.kms", "app", "KMS v2 plugin for Secrets encryption; key rotation and rewrap."),
    "nodes": ("kubestrata.cli.nodes", "app", "CIS EKS node audit, node OS posture and safe node rotation."),
    "identity": (
        "kubestrata.cli.identity",
        "app",
        "IAM authentication tokens, Pod Identity agent, IRSA OIDC.",
    ),
    "image": (
        "kubestrata.cli.image",
        "app",
        "Container images: inventory, vulnerabilities (offline OSV), SBOM, scanner imports.",
    ),
    "checks": ("kubestrata.cli.checks", "app", "List the posture checks and generate their reference."),
    "version": ("kubestrata.cli.main", "version", "Print the kubestrata version."),
}


def load_command(name: str) -> click.BaseCommand:
    """The click command for one top-level name (imports its module)."""
    module, attr, _ = COMMANDS[name]
    obj = getattr(importlib.import_module(module), attr)
    cmd: click.BaseCommand
    if isinstance(obj, typer.Typer):
        cmd = typer.main.get_group(obj)
    else:
        single = typer.Typer(rich_markup_mode=None, add_completion=False)
        single.command(name)(obj)
        cmd = typer.main.get_command(single)
    cmd.name = name
    _tidy_help(cmd, name)
    return cmd


def _tidy_help(cmd: click.BaseCommand, path: str = "") -> None:
    """Help that reads like a command-line tool's, and one environment variable per flag named after
    the flag: KUBESTRATA_<COMMAND>_<FLAG> (KUBESTRATA_SCAN_FAIL_ON, KUBESTRATA_DETECT_REPLAY_OUTPUT).
    No Python types (`<list[str]>`) beside arguments, no env-var line under each flag (the root help
    states the rule once)."""
    prefix = "_".join(["KUBESTRATA", *path.upper().replace("-", "_").split()])
    for p in cmd.params:
        if isinstance(p, click.Option):
            p.show_envvar = False
            long = next((o for o in p.opts if o.startswith("--")), None)
            if long and p.envvar is None and path:
                p.envvar = f"{prefix}_{long[2:].upper().replace('-', '_')}"
            if p.metavar is None and not p.is_flag and not click.choices_of(p):
                p.metavar = (p.name or "value").upper().replace("_", "-")
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            _tidy_help(sub, f"{path} {name}".strip())


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use; help listings use the static table."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.BaseCommand | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            if _listing_only(ctx):
                # a help listing: a stand-in with the one-line help, nothing imported
                return click.Command(cmd_name, help=COMMANDS[cmd_name][2])
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands.get(cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _tidy_help(self)
        return super().parse_args(ctx, deprecations.rewrite(args, quiet=ctx.resilient_parsing))

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        # sub-command names from the table: completing `kubestrata sc<TAB>` imports nothing
        items = [
            click.CompletionItem(name, help=text)
            for name, (_, _, text) in COMMANDS.items()
            if name.startswith(incomplete)
        ]
        return items + click.BaseCommand.shell_complete(self, ctx, incomplete)

    def format_help(self, ctx: click.Context, formatter: Any) -> None:
        ctx.meta["kubestrata.listing"] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.meta.pop("kubestrata.listing", None)


def _listing_only(ctx: click.Context) -> bool:
    # set while the root's own help is formatted
    return bool(ctx.meta.get("kubestrata.listing"))


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"kubestrata {__version__}")
        raise typer.Exit()


app = typer.Typer(
    rich_markup_mode=None,
    name="kubestrata",
    cls=LazyGroup,
    help="Layered Kubernetes security: scan manifests or clusters, serve webhooks, detect threats.\n\n"
    "Every flag can also be set in the environment as KUBESTRATA_<COMMAND>_<FLAG> "
    "(e.g. KUBESTRATA_SCAN_FAIL_ON=critical). Reference: docs/cli.md.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    show_version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_version_callback
    ),
) -> None:
    if ctx.resilient_parsing:
        return


def version() -> None:
    """Print the kubestrata version."""
    typer.echo(f"kubestrata {__version__}")


def main() -> None:
    app(prog_name="kubestrata")
