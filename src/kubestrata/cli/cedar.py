"""`kubestrata cedar` commands: validate policies, check a review offline, convert RBAC, print the schema."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import orjson
import typer

from kubestrata.cli import options
from kubestrata.cli.common import (
    EXIT_FINDINGS,
    err_console,
    exit_with,
    handle_errors,
    warning_line,
    write_output,
)
from kubestrata.cli.inputs import load_input, require_complete
from kubestrata.errors import InputError, KubestrataError


class CedarFormat(StrEnum):
    CEDAR = "cedar"
    JSON = "json"


app = typer.Typer(
    rich_markup_mode=None,
    help="Cedar policies for Kubernetes: validate, check reviews offline, convert RBAC.",
    no_args_is_help=True,
)


@app.command()
@handle_errors
def validate(
    paths: list[str] = typer.Argument(..., help="Directories or files of .cedar policies / Policy objects."),
    output: options.TableOrJson = options.output(options.TableOrJson.TABLE, "table or json."),
) -> None:
    """Parse and validate policies against kubestrata's Cedar schema (exit 1 if any is rejected).

    Example: kubestrata cedar validate examples/cedar/policies"""
    from kubestrata.authz.store import collect_sources, parse_sources

    sources, problems = [], []
    for p in paths:
        if not Path(p).exists():
            raise InputError("no such file or directory", file=p)
        s, probs = collect_sources(p)
        sources += s
        problems += probs
    if not sources:
        # a wrong directory must not read as "all valid"
        raise InputError("no .cedar files or Policy objects found", file=" ".join(paths))
    policies, probs = parse_sources(sources)
    problems += probs
    if output is options.TableOrJson.JSON:
        doc = {
            "valid": not problems,
            "policies": len(policies),
            "sources": len(sources),
            "problems": [str(p) for p in problems],
        }
        write_output(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n", None)
    if problems:
        if output is options.TableOrJson.TABLE:
            for prob in problems:
                err_console.print(prob, markup=False, highlight=False)
        exit_with(EXIT_FINDINGS, f"{len(problems)} problem(s); these policies would be rejected")
    from kubestrata.authz.lint import lint_policies

    for lint in lint_policies(policies):  # warnings: the set is valid, but likely not what was meant
        err_console.print(str(lint), markup=False, highlight=False)
    if output is options.TableOrJson.TABLE:
        typer.echo(f"{len(policies)} policies in {len(sources)} source(s) are valid")


@app.command()
@handle_errors
def check(
    review: str = typer.Argument(
        ..., help="A SubjectAccessReview or AdmissionReview JSON/YAML file ('-' for stdin)."
    ),
    policies: list[str] = typer.Option(
        ...,
        "--policies",
        help="Policy directory or file; repeat for ordered tiers, as the server.",
        metavar="PATH",
    ),
) -> None:
    """Print the webhook's response JSON for a review, evaluated offline.

    Example: kubestrata cedar check --policies examples/cedar/policies examples/cedar/reviews/list-without-selector.json"""
    import sys

    import yaml

    from kubestrata.authz import AdmissionPolicyEvaluator, Authorizer, PolicyStore, admission_response

    try:
        data = sys.stdin.buffer.read() if review == "-" else Path(review).read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", file=review) from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            doc = yaml.safe_load(data)
        except yaml.YAMLError as e:
            raise InputError(f"neither JSON nor YAML: {str(e).splitlines()[0]}", file=review) from None
    if not isinstance(doc, dict):
        raise InputError("expected a SubjectAccessReview or AdmissionReview object", file=review)
    store = PolicyStore([[p] for p in policies])  # one tier each, as `kubestrata serve`
    if not len(store.load()):
        # with no policies every answer is "no opinion": almost surely a wrong --policies path
        raise InputError("no Cedar policies found", file=" ".join(policies))
    kind = doc.get("kind")
    try:
        if kind == "SubjectAccessReview":
            out = Authorizer(store).review(doc)
        elif kind == "AdmissionReview":
            out = admission_response(doc, AdmissionPolicyEvaluator(store))
        else:
            raise InputError(
                f"kind must be SubjectAccessReview or AdmissionReview, got {kind!r}",
                file=review,
                field="kind",
            )
    except KubestrataError as e:
        if isinstance(e, InputError):
            raise
        raise InputError(str(e), file=review) from None
    typer.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())


@app.command("from-rbac")
@handle_errors
def from_rbac(
    paths: list[str] = typer.Argument(None, help="Manifests holding Roles, ClusterRoles and their bindings."),
    output: CedarFormat = options.output(CedarFormat.CEDAR, "cedar (policy text) or json."),
    output_file: str = options.output_file("Write the Cedar policies to this file instead of stdout."),
    cluster: bool = options.cluster("Read RBAC from the live cluster instead."),
    context: str = options.context(),
    kubeconfig: str = options.kubeconfig(),
    timeout: float = options.timeout(),
    strict: bool = options.strict(),
    quiet: bool = options.quiet(),
) -> None:
    """Convert RBAC Roles, ClusterRoles and bindings into equivalent Cedar permits.

    Example: kubestrata cedar from-rbac examples/demo-cluster --output-file rbac.cedar"""
    from kubestrata.authz.rbac_convert import convert_rbac

    kinds = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
    inp = load_input(
        paths, cluster=cluster, context=context, kubeconfig=kubeconfig, timeout=timeout, quiet=quiet
    )
    require_complete(inp.coverage, strict)
    objs = [o for o in inp.cluster.real_objects() if o.kind in kinds]
    if not objs and not cluster:
        raise KubestrataError("no Roles, ClusterRoles or bindings found in the input")
    conv = convert_rbac(objs)
    if not quiet:
        for w in conv.warnings:
            warning_line(w)
    if output is CedarFormat.JSON:
        doc = {"policies": conv.text(), "warnings": conv.warnings}
        write_output(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n", output_file)
        return
    write_output(conv.text(), output_file)


@app.command("schema")
@handle_errors
def show_schema() -> None:
    """Print kubestrata's Cedar schema for Kubernetes (Cedar schema syntax)."""
    from kubestrata.authz.schema import SCHEMA_TEXT

    typer.echo(SCHEMA_TEXT, nl=False)
