"""`kubestrata image`: container images. What they hold, read from a registry, an OCI layout or a
docker save archive (`image inventory`); the offline vulnerability database (db build, update, info),
the vulnerability scan of one image, its CycloneDX SBOM, and imported scanner results.

Image reading comes through kubestrata.image.seam for the vulnerability commands; a CycloneDX or SPDX
SBOM can stand in for an image everywhere a SOURCE is read.
"""

from __future__ import annotations

import os
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kubestrata.cli import options
from kubestrata.cli.common import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    err_console,
    exit_with,
    handle_errors,
    printable,
    rich_output,
    warning_line,
    write_output,
)
from kubestrata.cli.options import TableOrJson
from kubestrata.errors import KubestrataError

if TYPE_CHECKING:
    from kubestrata.image.model import ImageInventory
    from kubestrata.image.registry import CredentialSource
    from kubestrata.image.vulndb import BuildStats, VulnDB

app = typer.Typer(
    rich_markup_mode=None,
    help="Container images: inventory, vulnerabilities (offline OSV), SBOM, scanner imports.",
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


def registry_credentials(username: str | None, password_stdin: bool) -> CredentialSource:
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
        credentials=registry_credentials(username, password_stdin),
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


# ---------------------------------------------------------------------------------------------------
# vulnerabilities, SBOM, imports (helper img-vuln); image reading and `image inventory` are another block
# ---------------------------------------------------------------------------------------------------

db_app = typer.Typer(
    rich_markup_mode=None,
    help="The offline vulnerability database built from OSV exports.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


def _db_opt() -> Any:
    return typer.Option(
        None,
        "--db",
        help="Vulnerability database file (default $XDG_CACHE_HOME/kubestrata/osv.db).",
        metavar="PATH",
    )


def _db_path(db: Path | None) -> Path:
    from kubestrata.image.vulndb import default_path

    return Path(db) if db else default_path()


def _open_db(db: Path | None) -> VulnDB:
    from kubestrata.image.vulndb import DatabaseError, VulnDB

    try:
        return VulnDB(_db_path(db))
    except DatabaseError as e:
        raise KubestrataError(str(e)) from None


def _build_summary(stats: BuildStats, path: Path) -> None:
    err_console.print(
        f"built {printable(str(path))}: {stats.records} records ({stats.affected} affected packages); "
        f"{stats.withdrawn} withdrawn skipped, {stats.git_only} GIT-only not evaluated, {stats.bad} bad"
    )
    for source, detail in stats.problems[:10]:
        warning_line(f"{source}: {detail}")
    if stats.bad > 10:
        warning_line(f"... {stats.bad - 10} more bad records (kubestrata image db info lists 20)")


@db_app.command("build")
@handle_errors
def db_build(
    inputs: list[Path] = typer.Argument(
        ..., help="OSV export zips (<ecosystem>/all.zip), .json records, or directories."
    ),
    db: Path | None = _db_opt(),
    strict: bool = options.strict(),
) -> None:
    """Build the database from downloaded OSV exports (replaces the file when done).

    Example: kubestrata image db build ~/osv/Debian-all.zip ~/osv/PyPI-all.zip --db osv.db"""
    from kubestrata.image.vulndb import DatabaseError, build

    path = _db_path(db)
    try:
        stats = build(inputs, path)
    except DatabaseError as e:
        raise KubestrataError(str(e)) from None
    _build_summary(stats, path)
    if strict and stats.bad:
        exit_with(EXIT_ERROR, f"{stats.bad} OSV record(s) could not be read (--strict)")


@db_app.command("update")
@handle_errors
def db_update(
    db: Path | None = _db_opt(),
    ecosystem: list[str] = typer.Option(
        [],
        "--ecosystem",
        "-e",
        help="OSV ecosystem to fetch (repeatable; default Debian, Alpine, PyPI, npm, Go, Maven).",
    ),
    mirror: str = typer.Option(
        "",
        "--mirror",
        help="Base URL serving <ecosystem>/all.zip (default https://osv-vulnerabilities.storage.googleapis.com).",
        metavar="URL",
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds per download.", metavar="SECONDS"),
) -> None:
    """Download OSV's per-ecosystem exports and rebuild the database.

    Example: kubestrata image db update --ecosystem Debian --ecosystem PyPI"""
    from kubestrata.image.vulndb import (
        DEFAULT_ECOSYSTEMS,
        OSV_BASE_URL,
        DatabaseError,
        UpdateError,
        build,
        download,
    )

    path = _db_path(db)
    with tempfile.TemporaryDirectory(prefix="kubestrata-osv-") as tmp:
        try:
            zips = download(
                ecosystem or DEFAULT_ECOSYSTEMS, tmp, base_url=mirror or OSV_BASE_URL, timeout=timeout
            )
        except UpdateError as e:
            exit_with(EXIT_ERROR, f"update failed, the database is unchanged: {e}")
        try:
            stats = build(zips, path)
        except DatabaseError as e:
            raise KubestrataError(str(e)) from None
    _build_summary(stats, path)


@db_app.command("info")
@handle_errors
def db_info(
    db: Path | None = _db_opt(),
    output: TableOrJson = options.output(TableOrJson.TABLE),
    output_file: str | None = options.output_file(),
) -> None:
    """What the database holds: records per ecosystem and release, bad and skipped records.

    Example: kubestrata image db info --db osv.db"""
    import orjson

    info = _open_db(db).info()
    if output is TableOrJson.JSON:
        write_output(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode() + "\n", output_file)
        return
    lines = [
        f"database  {info['path']}",
        f"built     {info['built']}",
        f"records   {info['records']} ({info['withdrawnSkipped']} withdrawn skipped, {info['badRecords']} bad, "
        f"{info['gitOnlyNotEvaluated']} GIT-only not evaluated)",
        "ecosystems:",
        *(f"  {e['ecosystem']:<24} {e['records']}" for e in info["ecosystems"]),
        "not covered: Amazon Linux (no OSV data; import Inspector or ECR enhanced scanning results)",
    ]
    lines += [f"bad: {p['source']}: {p['detail']}" for p in info["problems"]]
    write_output("\n".join(lines) + "\n", output_file)


def _inventory(source: str) -> ImageInventory:
    """SOURCE as an inventory: an SBOM file (CycloneDX/SPDX JSON) or an image read through the seam."""
    from kubestrata.image import imports
    from kubestrata.image.seam import require_inventorier

    if os.path.isfile(source) and source.endswith(".json"):
        imp = imports.load(source)
        if imp.format not in ("cyclonedx", "spdx"):
            raise KubestrataError(
                f"{source}: a {imp.format} result is not an SBOM; use `kubestrata image import`"
            )
        if not imp.inventories:
            raise KubestrataError(f"{source}: the SBOM lists no packages with purls")
        inv = imp.inventories[0]
        inv.gaps.extend(imp.reports[0].gaps)
        return inv
    return require_inventorier()(source)


def _exit_for(reports: list[Any], fail_on: str, strict: bool) -> None:
    threshold = options.parse_fail_on(fail_on)
    if strict and any(r.gaps for r in reports):
        n = sum(len(r.gaps) for r in reports)
        exit_with(EXIT_ERROR, f"{n} part(s) of the input could not be evaluated (--strict)")
    if threshold is not None:
        hit = [v for r in reports for v in r.vulns if v.severity.rank >= threshold.rank]
        if hit:
            exit_with(EXIT_FINDINGS, f"{len(hit)} vulnerabilities at or above {threshold.value}")


def _render(reports: list[Any], output: TableOrJson, output_file: str | None) -> None:
    from kubestrata.report import image_vulns as render

    if output is TableOrJson.JSON:
        write_output(render.render_json(reports), output_file)
    else:
        with rich_output(output_file) as console:
            render.render_table(reports, console)


@app.command("scan")
@handle_errors
def scan(
    source: str = typer.Argument(
        ..., help="Image reference, OCI layout, docker save archive, or an SBOM JSON file."
    ),
    db: Path | None = _db_opt(),
    output: TableOrJson = options.output(TableOrJson.TABLE),
    output_file: str | None = options.output_file(),
    fail_on: str = options.fail_on(),
    strict: bool = options.strict(),
) -> None:
    """Match one image's packages against the offline vulnerability database.

    Example: kubestrata image scan sbom.cdx.json --db osv.db --fail-on critical"""
    import gc

    from kubestrata.image.matching import match

    vdb = _open_db(db)
    inv = _inventory(source)
    # matching builds hundreds of thousands of small objects that live until the command ends: the
    # cyclic collector would walk them over and over (as in `scan`, which disables it too)
    gc.disable()
    report = match(inv, vdb)
    _render([report], output, output_file)
    _exit_for([report], fail_on, strict)


class SbomFormat(StrEnum):
    CYCLONEDX = "cyclonedx"


@app.command("sbom")
@handle_errors
def sbom(
    source: str = typer.Argument(
        ..., help="Image reference, OCI layout, docker save archive, or an SBOM JSON file."
    ),
    output: SbomFormat = options.output(SbomFormat.CYCLONEDX, help="SBOM format (CycloneDX 1.6 JSON)."),
    output_file: str | None = options.output_file(),
    db: Path | None = typer.Option(
        None,
        "--db",
        help="Also list the vulnerabilities found with this database in the SBOM.",
        metavar="PATH",
    ),
) -> None:
    """Write the image's SBOM as CycloneDX 1.6 JSON.

    Example: kubestrata image sbom registry.example/app:1.2 -o cyclonedx --output-file app.cdx.json"""
    from kubestrata.image.sbom import cyclonedx_json

    inv = _inventory(source)
    report = None
    if db is not None:
        from kubestrata.image.matching import match

        report = match(inv, _open_db(db))
    for g in inv.gaps:
        warning_line(f"not evaluated: {g.subject}: {g.detail}")
    write_output(cyclonedx_json(inv, report) + "\n", output_file)


@app.command("import")
@handle_errors
def import_(
    files: list[str] = typer.Argument(
        None, help="Trivy, Grype, CycloneDX, SPDX, ECR or Inspector JSON files."
    ),
    ecr: list[str] = typer.Option(
        [],
        "--ecr",
        help="Read ECR scan findings live (describe-image-scan-findings) for REPOSITORY:TAG or "
        "REPOSITORY@sha256:... (repeatable).",
        metavar="IMAGE",
    ),
    inspector: bool = typer.Option(
        False,
        "--inspector",
        help="Read Amazon Inspector findings for ECR images live (inspector2 list-findings).",
    ),
    region: str = typer.Option(None, "--region", help="AWS region (with --ecr/--inspector)."),
    profile: str = typer.Option(None, "--profile", help="AWS profile (with --ecr/--inspector)."),
    endpoint_url: str = typer.Option(
        None, "--endpoint-url", help="AWS endpoint override, e.g. a local emulator (with --ecr/--inspector)."
    ),
    db: Path | None = typer.Option(
        None,
        "--db",
        help="Match SBOM packages (CycloneDX components, SPDX packages) with this database.",
        metavar="PATH",
    ),
    output: TableOrJson = options.output(TableOrJson.TABLE),
    output_file: str | None = options.output_file(),
    fail_on: str = options.fail_on(),
    strict: bool = options.strict(),
) -> None:
    """Show results of scanners you already run, in one model (severity, fixed versions, gaps).

    Example: kubestrata image import trivy.json grype.json ecr-findings.json; kubestrata image import --ecr shop/api:2.4.1"""
    from kubestrata.image.imports_match import load_results

    if not files and not ecr and not inspector:
        raise KubestrataError("nothing to import: give result files, --ecr IMAGE or --inspector")
    reports = load_results(files or [], _open_db(db) if db is not None else None)
    if ecr or inspector:
        reports.extend(_live(ecr, inspector, region, profile, endpoint_url))
    _render(reports, output, output_file)
    _exit_for(reports, fail_on, strict)


def _live(
    ecr: list[str], inspector: bool, region: str | None, profile: str | None, endpoint: str | None
) -> list[Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    from kubestrata.image import imports
    from kubestrata.image.imports import aws

    out = []
    try:
        for image in ecr:
            repo, sep, ref = image.partition("@") if "@" in image else image.rpartition(":")
            if not sep or not repo or not ref:
                raise KubestrataError(f"--ecr {image}: expected REPOSITORY:TAG or REPOSITORY@sha256:...")
            doc = aws.fetch_ecr_findings(repo, ref, region=region, profile=profile, endpoint_url=endpoint)
            out.extend(imports.parse(doc, f"ecr:{image}").reports)
        if inspector:
            doc = aws.fetch_inspector_findings(region=region, profile=profile, endpoint_url=endpoint)
            out.extend(imports.parse(doc, "inspector2 list-findings").reports)
    except ClientError as e:
        err = e.response.get("Error", {})
        raise KubestrataError(f"AWS: {err.get('Code', '')}: {err.get('Message', e)}") from None
    except BotoCoreError as e:
        raise KubestrataError(f"AWS: {e}") from None
    return out
