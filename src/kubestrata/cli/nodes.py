"""`kubestrata nodes`: the CIS EKS worker-node audit and safe age-based node rotation."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from kubestrata.cli import options
from kubestrata.cli.common import EXIT_FINDINGS, EXIT_OK, err_console, handle_errors, printable, write_output
from kubestrata.errors import KubestrataError
from kubestrata.findings import Severity
from kubestrata.report.nodes import audit_table

app = typer.Typer(
    rich_markup_mode=None,
    help="Worker nodes: the CIS EKS node benchmark (on a node, or over configz) and safe rotation by age.",
    no_args_is_help=True,
)


class AuditFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    KUBE_BENCH_JSON = "kube-bench-json"
    ASFF = "asff"


def _exit(findings: list[Any], fail_on: str) -> int:
    if fail_on.lower() == "never":
        return EXIT_OK
    try:
        floor = Severity.parse(fail_on).rank
    except ValueError as e:
        raise KubestrataError(f"--fail-on: {e}") from None
    return EXIT_FINDINGS if any(f.severity.rank >= floor for f in findings) else EXIT_OK


@app.command("audit")
@handle_errors
def audit(
    root: Path = typer.Option(
        Path("/"), "--root", help="The host's file system (e.g. /host in a pod).", metavar="DIR"
    ),
    proc: Path = typer.Option(
        Path("/proc"),
        "--proc",
        help="The host's /proc (the pod needs the host PID namespace).",
        metavar="DIR",
    ),
    benchmark: str = typer.Option(
        "auto",
        "--benchmark",
        help="auto (from the kubelet's Kubernetes version, as kube-bench chooses) or eks-1.0.1, eks-1.1.0, "
        "eks-1.2.0, eks-1.5.0, eks-1.7.0, eks-1.8.0.",
        metavar="NAME",
    ),
    kube_version: str = typer.Option(
        None,
        "--kube-version",
        help="Kubernetes version for --benchmark auto (default: kubelet --version).",
        metavar="X.Y",
    ),
    kube_bench_cfg: Path = typer.Option(
        None,
        "--kube-bench-cfg",
        help="Run kube-bench check files from DIR (DIR/<benchmark>/node.yaml or DIR/*.yaml) through "
        "kubestrata's interpreter; their audit commands run with /bin/sh.",
        metavar="DIR",
    ),
    node_name: str = typer.Option(
        None, "--node-name", help="Name to report (default: $NODE_NAME or hostname)."
    ),
    cluster: bool = options.cluster("Audit every node's kubelet settings (3.2) over configz from outside."),
    context: str = options.context(),
    kubeconfig: str = options.kubeconfig(),
    timeout: float = options.timeout(),
    output: AuditFormat = options.output(
        AuditFormat.TABLE,
        "table, json, kube-bench-json, or asff (AWS Security Hub findings, with --aws-account, --aws-region, "
        "--cluster-arn).",
    ),
    aws_account: str = typer.Option(
        None, "--aws-account", help="AWS account id (with -o asff).", metavar="ID"
    ),
    aws_region: str = typer.Option(None, "--aws-region", help="AWS region (with -o asff).", metavar="REGION"),
    cluster_arn: str = typer.Option(
        None, "--cluster-arn", help="EKS cluster ARN (with -o asff).", metavar="ARN"
    ),
    output_file: str = options.output_file(),
    fail_on: str = options.fail_on(),
    every: float = typer.Option(
        0.0,
        "--every",
        help="Repeat the audit every SECONDS, one report per run (JSON: one line each), for a DaemonSet.",
        metavar="SECONDS",
    ),
) -> None:
    """CIS EKS worker-node checks (3.1 files, 3.2 kubelet) on this node, or over configz with --cluster.

    Example: kubestrata nodes audit --root /host --proc /host/proc -o kube-bench-json"""
    import time

    if every < 0:
        raise KubestrataError("--every must be positive")
    asff_cfg = None
    if output is AuditFormat.ASFF:
        missing = [
            n
            for n, v in (
                ("--aws-account", aws_account),
                ("--aws-region", aws_region),
                ("--cluster-arn", cluster_arn),
            )
            if not v
        ]
        if missing:
            raise KubestrataError(f"-o asff needs {', '.join(missing)}")
        asff_cfg = (aws_account, aws_region, cluster_arn)
    while True:
        code = _audit_once(
            root,
            proc,
            benchmark,
            kube_version,
            kube_bench_cfg,
            node_name,
            cluster,
            context,
            kubeconfig,
            timeout,
            output,
            output_file,
            fail_on,
            compact=every > 0,
            asff_cfg=asff_cfg,
        )
        if not every:
            raise typer.Exit(code)
        time.sleep(every)


def _audit_once(
    root: Path,
    proc: Path,
    benchmark: str,
    kube_version: str | None,
    kube_bench_cfg: Path | None,
    node_name: str | None,
    cluster: bool,
    context: str | None,
    kubeconfig: str | None,
    timeout: float,
    output: AuditFormat,
    output_file: str | None,
    fail_on: str,
    compact: bool,
    asff_cfg: tuple[str, str, str] | None = None,
) -> int:
    import os

    from kubestrata.nodes.audit import audit_host
    from kubestrata.nodes.kbformat.output import kube_bench_json

    if cluster:
        from kubestrata.nodes.audit import audit_cluster

        reports = audit_cluster(kubeconfig, context, timeout, benchmark, kube_version)
    else:
        if not root.is_dir():
            raise KubestrataError(f"--root {root}: not a directory")
        reports = [
            audit_host(
                root=root,
                proc=proc,
                benchmark=benchmark,
                kube_version=kube_version,
                kube_bench_cfg=kube_bench_cfg,
                node_name=node_name or os.environ.get("NODE_NAME"),
            )
        ]
    findings = [f for r in reports for f in r.findings]
    indent = None if compact else 2
    if output is AuditFormat.ASFF and asff_cfg is not None:
        from kubestrata.nodes.audit import asff

        text = json.dumps(asff(reports, *asff_cfg), indent=indent) + "\n"
    elif output is AuditFormat.KUBE_BENCH_JSON:
        text = json.dumps(kube_bench_json([res for r in reports for res in r.results]), indent=indent) + "\n"
    elif output is AuditFormat.JSON:
        doc: Any = reports[0].to_dict() if not cluster else {"nodes": [r.to_dict() for r in reports]}
        text = json.dumps(doc, indent=indent) + "\n"
    else:
        text = audit_table(reports)
    write_output(text, output_file)
    return _exit(findings, fail_on)


class RotateFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def _offline_state(paths: list[str]) -> Any:
    from kubestrata.kube.loader import load_paths
    from kubestrata.nodes.rotate.execute import ClusterState

    loaded = load_paths([Path(p) for p in paths])
    if loaded.errors:  # a plan from a partial input could rotate into a budget it never saw
        raise loaded.errors[0]
    raws = [o.raw for o in loaded.objects]
    kinds: dict[str, list[dict[str, Any]]] = {}
    for r in raws:
        kinds.setdefault(str(r.get("kind")), []).append(r)
    if not kinds.get("Node"):
        raise KubestrataError(f"no Node objects in {', '.join(paths)}")
    return ClusterState(
        kinds.get("Node", []),
        kinds.get("Pod", []),
        kinds.get("PodDisruptionBudget", []),
        kinds.get("NodePool", []),
        [],
    )


def _min_healthy(values: list[str] | None) -> dict[str, int]:
    out = {}
    for v in values or []:
        g, sep, n = v.rpartition("=")
        if not sep or not g or not n.isdigit():
            raise KubestrataError(f"--min-healthy {v!r}: expected GROUP=N (e.g. eks:workers=3)")
        out[g] = int(n)
    return out


@app.command("rotate")
@handle_errors
def rotate(
    paths: list[str] = typer.Argument(
        None, help="Manifests (nodes, pods, PDBs) to plan from, without --cluster."
    ),
    max_age: str = typer.Option("21d", "--max-age", help="Rotate nodes older than this (21d, 36h, 1d12h)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print exactly what would happen; change nothing."),
    min_healthy: list[str] = typer.Option(
        None,
        "--min-healthy",
        help="GROUP=N: keep at least N Ready nodes in a group (default: its Ready count minus one). "
        "Groups are named as the plan shows them (eks:NAME, karpenter:NAME, alpha:NAME).",
        metavar="GROUP=N",
    ),
    poll: float = typer.Option(2.0, "--poll", help="Seconds between retries and checks.", metavar="SECONDS"),
    eviction_timeout: float = typer.Option(
        600.0,
        "--eviction-timeout",
        help="Stop when one pod cannot be evicted for this long.",
        metavar="SECONDS",
    ),
    replacement_timeout: float = typer.Option(
        1200.0,
        "--replacement-timeout",
        help="Stop when no replacement node is Ready after this long.",
        metavar="SECONDS",
    ),
    terminate_instances: bool = typer.Option(
        False,
        "--terminate-instances",
        help="Before deleting each drained node (not Karpenter's), terminate its EC2 instance in its Auto "
        "Scaling group without decrementing the desired capacity (managed node groups, self-managed ASGs).",
    ),
    region: str = typer.Option(None, "--region", help="AWS region (with --terminate-instances)."),
    profile: str = typer.Option(None, "--profile", help="AWS profile (with --terminate-instances)."),
    endpoint_url: str = typer.Option(
        None, "--endpoint-url", help="Auto Scaling endpoint override (with --terminate-instances)."
    ),
    cluster: bool = options.cluster("Plan from (and, without --dry-run, rotate) the live cluster."),
    context: str = options.context(),
    kubeconfig: str = options.kubeconfig(),
    output: RotateFormat = options.output(RotateFormat.TABLE, "table or json (the plan)."),
    output_file: str = options.output_file(),
    quiet: bool = options.quiet(),
) -> None:
    """Replace nodes older than --max-age: cordon, evict through PodDisruptionBudgets, delete, wait for
    the replacement; one node group and zone at a time. Resumes from node annotations.

    Example: kubestrata nodes rotate --cluster --max-age 21d --dry-run"""
    import datetime as dt
    import sys

    from kubestrata.nodes.rotate import execute, planning
    from kubestrata.report.nodes import rotation_plan_text

    age = planning.parse_age(max_age)
    mins = _min_healthy(min_healthy)
    api = None
    if cluster:
        req, api = execute.api_requester(kubeconfig, context)
        state = execute.read_state(req)
    else:
        if not paths:
            raise KubestrataError("give manifests to plan from, or --cluster")
        state = _offline_state(paths)
    try:
        p = planning.plan(
            state.nodes, state.pods, state.pdbs, age, dt.datetime.now(dt.UTC), state.nodepools, mins
        )
        p.notes.extend(state.notes)
        text = (
            json.dumps(p.to_dict(), indent=2) + "\n" if output is RotateFormat.JSON else rotation_plan_text(p)
        )
        write_output(text, output_file)
        if not cluster or dry_run or not p.steps:
            if cluster and not dry_run and not p.steps:
                err_console.print("nothing to rotate")
            raise typer.Exit(EXIT_OK)

        def log(msg: str) -> None:
            if not quiet:
                stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
                sys.stderr.write(f"{stamp} {printable(msg)}\n")
                sys.stderr.flush()

        timing = execute.Timing(
            poll=poll,
            eviction_timeout=eviction_timeout,
            drain_timeout=max(eviction_timeout, 60.0),
            replacement_timeout=replacement_timeout,
        )
        terminate = execute.asg_terminator(region, profile, endpoint_url) if terminate_instances else None
        done = execute.Rotator(req, log, timing, terminate=terminate).run(p)
        log(f"rotated {len(done)} node(s)")
    finally:
        if api is not None:
            api.close()
