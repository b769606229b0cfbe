"""`kubestrata cedar` commands: validate policies, check a review offline, convert RBAC, print the schema."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from kubestrata.cli.common import EXIT_FINDINGS, err_console, handle_errors, write_output
from kubestrata.errors import InputError, KubestrataError

app = typer.Typer(
    help="Cedar policies for Kubernetes: validate, check reviews offline, convert RBAC.",
    no_args_is_help=True,
)


@app.command()
@handle_errors
def validate(
    paths: list[str] = typer.Argument(..., help="Directories or files of .cedar policies / Policy objects."),
) -> None:
    """Parse and validate policies against kubestrata's Cedar schema (exit 1 if any is rejected)."""
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
    if problems:
        for prob in problems:
            err_console.print(prob, markup=False, highlight=False, soft_wrap=True)
        err_console.print(f"{len(problems)} problem(s); these policies would be rejected", markup=False)
        raise typer.Exit(EXIT_FINDINGS)
    from kubestrata.authz.lint import lint_policies

    for lint in lint_policies(policies):  # warnings: the set is valid, but likely not what was meant
        err_console.print(str(lint), markup=False, highlight=False, soft_wrap=True)
    typer.echo(f"{len(policies)} policies in {len(sources)} source(s) are valid")


@app.command()
@handle_errors
def check(
    review: str = typer.Argument(
        ..., help="A SubjectAccessReview or AdmissionReview JSON/YAML file ('-' for stdin)."
    ),
    policies: list[str] = typer.Option(
        ..., "--policies", "-p", help="Policy directory or file; repeat for ordered tiers, as the server."
    ),
) -> None:
    """Print the webhook's response JSON for a review, evaluated offline."""
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
    output: str = typer.Option("-", "--output", "-o", help="Write the Cedar policies here (default stdout)."),
    cluster: bool = typer.Option(False, "--cluster", help="Read RBAC from the live cluster instead."),
    context: str = typer.Option(None, "--context", help="kubeconfig context (with --cluster)."),
    kubeconfig: str = typer.Option(None, "--kubeconfig", help="kubeconfig file (with --cluster)."),
    timeout: float = typer.Option(
        60.0, "--timeout", help="Seconds to wait for the API server (with --cluster)."
    ),
) -> None:
    """Convert RBAC Roles, ClusterRoles and bindings into equivalent Cedar permits."""
    from kubestrata.authz.rbac_convert import convert_rbac

    kinds = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
    if cluster:
        from kubestrata.cli.scan import load_cluster_input
        from kubestrata.findings import Coverage

        try:
            snap, _ = load_cluster_input([], True, context, kubeconfig, None, timeout, Coverage(), quiet=True)
        except ImportError:
            raise KubestrataError("live cluster input is not available in this build") from None
        objs = [o for o in snap.real_objects() if o.kind in kinds]
    else:
        from kubestrata.kube.loader import load_paths

        if not paths:
            raise KubestrataError("give manifest paths (files, directories or - for stdin) or --cluster")
        res = load_paths(paths)
        if res.errors:
            for e in res.errors:
                err_console.print(f"error: {e}", markup=False, soft_wrap=True)
            raise typer.Exit(2)
        objs = [o for o in res.objects if o.kind in kinds]
        if not objs:
            raise KubestrataError("no Roles, ClusterRoles or bindings found in the input")
    conv = convert_rbac(objs)
    for w in conv.warnings:
        err_console.print(f"warning: {w}", markup=False, soft_wrap=True)
    write_output(conv.text(), output)


@app.command("schema")
@handle_errors
def show_schema() -> None:
    """Print kubestrata's Cedar schema for Kubernetes (Cedar schema syntax)."""
    from kubestrata.authz.schema import SCHEMA_TEXT

    typer.echo(SCHEMA_TEXT, nl=False)
