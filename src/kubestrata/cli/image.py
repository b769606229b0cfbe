"""`kubestrata image`: container images - what they hold, read from a registry, an OCI layout or a
docker save archive."""

from __future__ import annotations

import os
import sys

import typer

from kubestrata.cli import options
from kubestrata.cli.common import EXIT_ERROR, exit_with, handle_errors, rich_output, write_output
from kubestrata.errors import KubestrataError

app = typer.Typer(
    rich_markup_mode=None,
    help="Container images: inventory, SBOM and vulnerabilities tied to workloads.",
    no_args_is_help=True,
)

PASSWORD_ENV = "KUBESTRATA_REGISTRY_PASSWORD"


# --- reading and inventory -------------------------------------------------------------------------

SOURCE = typer.Argument(
    ...,
    help="The image: REGISTRY/REPO:TAG, REGISTRY/REPO@sha256:..., oci:DIR[:TAG], "
    "oci-archive:FILE.tar[:TAG] or docker-archive:FILE.tar[:REPO:TAG].",
    metavar="SOURCE",
)
PLATFORM = typer.Option(
    "linux/amd64",
    "--platform",
    help="The platform to read from a multi-arch image.",
    metavar="OS/ARCH[/VARIANT]",
)
USERNAME = typer.Option(
    None,
    "--username",
    help=f"Registry username; the password comes from --password-stdin or ${PASSWORD_ENV}. "
    "Without it, credentials saved by `docker login` (~/.docker/config.json auths) are used; ECR "
    "registries need neither (AWS credentials are used).",
    metavar="USER",
)
PASSWORD_STDIN = typer.Option(False, "--password-stdin", help="Read the registry password from stdin.")
INSECURE = typer.Option(
    False, "--insecure-registry", help="Plain http to a registry on loopback (127.0.0.1, localhost) only."
)


def registry_credentials(username: str | None, password_stdin: bool) -> object:
    """Credentials for the registry: the flags', else those `docker login` saved (per host), else
    None (anonymous, or ECR's automatic credentials)."""
    from kubestrata.image.registry import Credentials, docker_config_credentials

    if password_stdin:
        if not username:
            raise KubestrataError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = os.environ.get(PASSWORD_ENV, "")
    if username:
        if not password:
            raise KubestrataError(f"--username needs a password: --password-stdin or ${PASSWORD_ENV}")
        return Credentials(username, password)
    return docker_config_credentials() or None


@app.command("inventory")
@handle_errors
def inventory(
    source: str = SOURCE,
    output: options.TableOrJson = options.output(options.TableOrJson.TABLE, "table or json."),
    output_file: str = options.output_file(),
    platform: str = PLATFORM,
    username: str = USERNAME,
    password_stdin: bool = PASSWORD_STDIN,
    insecure_registry: bool = INSECURE,
    strict: bool = options.strict(),
) -> None:
    """List the OS and language packages installed in an image, with their package URLs, and what
    its config gets wrong (root user, secret-looking ENV, curl|sh steps, copied keys).

    Reads only package databases and metadata from the layers, verifying every digest.

    Example: kubestrata image inventory registry.example.com/team/app:1.4 -o json"""
    from kubestrata.image.inventory import inventory_of

    inv = inventory_of(
        source,
        platform=platform,
        credentials=registry_credentials(username, password_stdin),  # type: ignore[arg-type]
        insecure=insecure_registry,
    )
    if output is options.TableOrJson.JSON:
        import orjson

        from kubestrata.report.images import inventory_to_dict

        write_output(
            orjson.dumps(inventory_to_dict(inv), option=orjson.OPT_INDENT_2).decode() + "\n", output_file
        )
    else:
        from kubestrata.report.images import render_inventory

        with rich_output(output_file) as console:
            render_inventory(inv, console)
    if strict and inv.gaps:
        exit_with(EXIT_ERROR, f"--strict: {len(inv.gaps)} part(s) of the image could not be read")


# --- end of reading and inventory ------------------------------------------------------------------
