"""`kubestrata access`: who can do what (RBAC plus EKS access policies), how they could get more, and
what an aws-auth -> access entries migration changes."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer
import yaml

from kubestrata.cli import options
from kubestrata.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    exit_with,
    handle_errors,
    warning_line,
    write_output,
)
from kubestrata.errors import KubestrataError
from kubestrata.report import access as report

if TYPE_CHECKING:
    from kubestrata.access.model import AccessModel

app = typer.Typer(
    rich_markup_mode=None,
    help="Cluster access: aws-auth and access entries, effective permissions, escalation paths, migration.",
    no_args_is_help=True,
)

PATHS_ARG = typer.Argument(
    None, help="Manifest files or directories (RBAC, aws-auth, workloads); - reads stdin."
)
EKS_OPT = typer.Option(
    [],
    "--eks",
    help="AWS CLI JSON (describe-cluster, list-access-entries, describe-access-entry, "
    "list-associated-access-policies, ...) or an EKSClusterAccess snapshot; repeatable; - reads stdin.",
)


OutFmt = options.TableOrJson
OUTPUT = options.output(OutFmt.TABLE, "table or json.")
OUTPUT_FILE = options.output_file()


class MigrateFmt(StrEnum):
    CLI = "cli"
    EKSCTL = "eksctl"
    TERRAFORM = "terraform"
    JSON = "json"


class Target(StrEnum):
    CLUSTER_ADMIN = "cluster-admin"
    KUBE_SYSTEM_SECRETS = "kube-system-secrets"
    NODE_ROOT = "node-root"


def _load_model(paths: list[str] | None, eks_files: list[str]) -> AccessModel:
    from kubestrata.access.model import AccessModel
    from kubestrata.eks.awsjson import is_aws_cli_json, read_aws_json_files
    from kubestrata.kube.cluster import Cluster
    from kubestrata.kube.loader import load_paths

    if not paths and not eks_files:
        raise KubestrataError("give manifest paths (RBAC, aws-auth ConfigMap, workloads) and/or --eks files")
    loaded = load_paths(paths or [])
    aws_json: list[str] = []
    skipped = []
    for e in loaded.errors:
        # AWS CLI output among the manifests (no kind): read it as EKS data instead of skipping it
        if e.file and e.file.endswith(".json") and e.field == "kind" and is_aws_cli_json(e.file):
            aws_json.append(e.file)
        else:
            skipped.append(e)
    eks_files = [*eks_files, *aws_json]
    if paths and not loaded.objects and not eks_files:
        # nothing to evaluate: answering "0 identities" or "denied" would read as a clean result
        if skipped:
            raise skipped[0]
        raise KubestrataError("no Kubernetes objects found in the input")
    for e in skipped:
        warning_line(f"{e} (skipped)")
    for subject, detail in loaded.not_evaluated:  # kustomizations not rendered, Helm charts
        warning_line(f"not evaluated: {subject}: {detail}")
    snap = Cluster(loaded.objects)
    eks = read_aws_json_files(eks_files) if eks_files else None
    model = AccessModel(snap, eks)
    if eks is not None:
        from kubestrata.eks.objects import from_objects

        # snapshot documents among the manifests add to the AWS CLI files
        extra, errs = from_objects(snap.of_kind("EKSClusterAccess"))
        model.errors.extend(errs)
        if extra is not None:
            eks.entries.extend(e for e in extra.entries if eks.entry_for(e.principal_arn) is None)
    if model.errors:
        raise model.errors[0]
    return model


@app.command("import")
@handle_errors
def import_cmd(
    files: list[str] = typer.Argument(None, help="AWS CLI JSON outputs; - reads stdin."),
    live: bool = typer.Option(False, "--live", help="Collect through boto3 instead (read-only EKS calls)."),
    cluster_name: str = typer.Option(None, "--cluster-name", help="EKS cluster name (with --live)."),
    region: str = typer.Option(None, "--region"),
    profile: str = typer.Option(None, "--profile"),
    endpoint_url: str = typer.Option(
        None, "--endpoint-url", help="EKS endpoint override (e.g. a local emulator)."
    ),
    creator_arn: str = typer.Option(
        None,
        "--creator-arn",
        help="IAM ARN that created the cluster (CloudTrail CreateCluster); in CONFIG_MAP mode it is an "
        "invisible system:masters.",
    ),
    output_file: str = OUTPUT_FILE,
) -> None:
    """Combine AWS CLI output (or a live account) into one EKSClusterAccess document for `kubestrata scan`.

    Example: kubestrata access import examples/access/eks --output-file eks.yaml"""
    from kubestrata.eks.awsjson import read_aws_json_files
    from kubestrata.eks.live import collect_live

    if live:
        if not cluster_name:
            raise KubestrataError("--live needs --cluster-name")
        gaps: list[str] = []
        eks = collect_live(cluster_name, region=region, profile=profile, endpoint_url=endpoint_url, gaps=gaps)
        failed = next((g for g in gaps if g.startswith("describe-cluster:")), None)
        if failed is not None:
            # without the cluster itself the snapshot would be empty and read as "nothing to fix"
            raise KubestrataError(f"cannot read EKS cluster {cluster_name!r}: {failed.partition(': ')[2]}")
        for g in gaps:
            warning_line(f"not collected: {g}")
    else:
        if not files:
            raise KubestrataError("give AWS CLI JSON files (or - for stdin), or --live --cluster-name NAME")
        eks = read_aws_json_files(files)
    if creator_arn:
        from kubestrata.eks.arn import ArnError, parse_arn

        try:
            parse_arn(creator_arn)
        except ArnError as e:
            raise KubestrataError(f"--creator-arn: {e}") from None
        eks.creator_arn = creator_arn
    text = "# kubestrata EKS access snapshot: pass it to `kubestrata scan` with your manifests\n"
    from kubestrata.eks.document import to_document

    write_output(text + yaml.safe_dump(to_document(eks), sort_keys=False), output_file)


def _warn_not_evaluated(model: AccessModel) -> None:
    """Bindings whose role is unknown (not in the input, not built in): the answer may be incomplete."""
    for n in model.not_evaluated():
        warning_line(f"not evaluated: {n}")


@app.command("who-can")
@handle_errors
def who_can(
    verb: str = typer.Argument(..., help="get, list, create, update, patch, delete, impersonate, bind, ..."),
    resource: str = typer.Argument(
        ..., help="TYPE\\[.GROUP]\\[/SUBRESOURCE] (pods, deployments.apps, pods/exec) or a URL (/metrics)."
    ),
    name: str = typer.Argument(None, help="Object name (matches resourceNames)."),
    namespace: str = options.namespace("Namespace of the request (default: cluster-scoped)."),
    paths: list[str] = typer.Option([], "--manifests", "-m", help="Manifest files or directories."),
    eks_files: list[str] = EKS_OPT,
    output: OutFmt = OUTPUT,
    output_file: str = OUTPUT_FILE,
) -> None:
    """Every user, group, ServiceAccount and IAM principal allowed, RBAC and access policies together.

    Example: kubestrata access who-can get secrets -n kube-system -m examples/demo-cluster"""
    from kubestrata.access.model import parse_request

    model = _load_model(paths, eks_files)
    req = parse_request(verb, resource, name or "")
    namespace = namespace or ""
    rows = model.who_can(req, namespace)
    _warn_not_evaluated(model)
    write_output(report.who_can(str(req), namespace, rows, model.not_evaluated(), output.value), output_file)


@app.command("can-i")
@handle_errors
def can_i(
    verb: str = typer.Argument(...),
    resource: str = typer.Argument(...),
    name: str = typer.Argument(None),
    as_: str = typer.Option(
        ..., "--as", help="An IAM ARN (user, role or assumed-role session) or a Kubernetes username."
    ),
    as_group: list[str] = typer.Option([], "--as-group", help="Extra groups (for a Kubernetes username)."),
    session_name: str = typer.Option(
        "", "--session-name", help="Role session name for {{SessionName}} templates."
    ),
    namespace: str = options.namespace("Namespace of the request (default: cluster-scoped)."),
    paths: list[str] = typer.Option([], "--manifests", "-m", help="Manifest files or directories."),
    eks_files: list[str] = EKS_OPT,
    output: OutFmt = OUTPUT,
) -> None:
    """Like `kubectl auth can-i`, but an IAM ARN is mapped through access entries / aws-auth and access
    policy grants count. Exits 0 for yes, 1 for no.

    Example: kubestrata access can-i get secrets -n kube-system --as system:serviceaccount:shop:web
    -m examples/demo-cluster"""
    from kubestrata.access.model import AUTHENTICATED, kubernetes_user, parse_request
    from kubestrata.rbac import UserInfo

    namespace = namespace or ""
    model = _load_model(paths, eks_files)
    req = parse_request(verb, resource, name or "")
    if as_.startswith("arn:"):
        ident = model.resolve(as_, session_name)
        if ident is None:
            result: dict[str, Any] = {
                "allowed": False,
                "identity": None,
                "reasons": [f"{as_} is not mapped (mode {model.mode}): it cannot authenticate"],
            }
            write_output(report.can_i(result, output.value), None)
            exit_with(EXIT_FINDINGS, "no: the principal is not mapped")
        user = UserInfo(ident.username, (*ident.groups, *as_group, AUTHENTICATED))
        assocs = ident.associations
        who = {
            "arn": ident.arn,
            "source": ident.source,
            "username": ident.username,
            "groups": list(user.groups),
        }
    else:
        user = kubernetes_user(as_, as_group)
        assocs = ()
        for ident in model.identities():
            if ident.username == as_:
                assocs = ident.associations
        who = {"username": as_, "groups": list(user.groups)}
    allowed, grants, notes = model.check(req, user, namespace, assocs)
    notes = [*notes, *(f"not evaluated: {n}" for n in model.not_evaluated(user))]
    result = {
        "allowed": allowed,
        "request": str(req),
        "namespace": namespace or None,
        "identity": who,
        "reasons": [f"{g.via}: {g.detail}" for g in grants] or ["no RBAC rule or access policy allows it"],
        "notes": notes,
    }
    write_output(report.can_i(result, output.value), None)
    if not allowed:
        exit_with(EXIT_FINDINGS, "no: not allowed")
    raise typer.Exit(EXIT_OK)


@app.command("identities")
@handle_errors
def identities(
    paths: list[str] = PATHS_ARG,
    eks_files: list[str] = EKS_OPT,
    output: OutFmt = OUTPUT,
) -> None:
    """Every IAM principal that can authenticate and what Kubernetes sees: username, groups, policies.

    Example: kubestrata access identities examples/demo-cluster examples/access/eks"""
    model = _load_model(paths, eks_files)
    rows = [
        {
            "principal": i.arn,
            "source": i.source + (" (overrides aws-auth)" if i.shadows else ""),
            "type": i.entry_type or "-",
            "username": i.username,
            "groups": list(i.groups),
            "accessPolicies": [f"{a.policy} ({a.scope})" for a in i.associations],
        }
        for i in model.identities()
    ]
    write_output(report.identities(model.mode, rows, output.value), None)


@app.command("paths")
@handle_errors
def paths_cmd(
    paths: list[str] = PATHS_ARG,
    to: Target = typer.Option(Target.CLUSTER_ADMIN, "--to", help="Crown jewel to reach."),
    from_: str = typer.Option(
        None, "--from", help="Only paths from this node id (e.g. sa:ns/name, iam:ARN, group:g)."
    ),
    eks_files: list[str] = EKS_OPT,
    include_admins: bool = typer.Option(
        False, "--include-admins", help="Also list identities that already are admins."
    ),
    output: OutFmt = OUTPUT,
    output_file: str = OUTPUT_FILE,
) -> None:
    """Shortest escalation paths (BFS) to a crown jewel, with the evidence for every edge.

    Example: kubestrata access paths examples/demo-cluster --to cluster-admin"""
    from kubestrata.access.paths import AttackGraph, is_direct_admin

    model = _load_model(paths, eks_files)
    graph = AttackGraph(model)
    _warn_not_evaluated(model)
    nxt = graph.shortest_to(to.value)
    sources = [from_] if from_ else graph.sources()
    found = []
    for s in sources:
        if s not in nxt:
            continue
        p = graph.path_from(s, nxt)
        if to == Target.CLUSTER_ADMIN and is_direct_admin(p) and not include_admins and not from_:
            continue
        found.append((s, p))
    omitted = not include_admins and to == Target.CLUSTER_ADMIN
    write_output(report.paths(to.value, found, omitted, output.value), output_file)


@app.command("migrate")
@handle_errors
def migrate(
    paths: list[str] = PATHS_ARG,
    fmt: MigrateFmt = options.output(MigrateFmt.CLI, "cli (AWS CLI commands), eksctl, terraform or json."),
    cluster_name: str = typer.Option(None, "--cluster-name"),
    region: str = typer.Option(None, "--region"),
    eks_files: list[str] = EKS_OPT,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print only who gains and who loses what."),
    output_file: str = OUTPUT_FILE,
) -> None:
    """Translate aws-auth into access entries; the diff is printed first (as comments) and to --dry-run.

    Example: kubestrata access migrate examples/demo-cluster --cluster-name demo -o terraform"""
    from kubestrata.access.migrate import plan_migration
    from kubestrata.report.migrate import render

    model = _load_model(paths, eks_files)
    plan = plan_migration(model, cluster_name or "")
    write_output(render(plan, fmt.value, region, dry_run), output_file)
