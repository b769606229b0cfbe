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

app = typer.Typer(
    help="Worker nodes: the CIS EKS node benchmark (on a node, or over configz) and safe rotation by age.",
    no_args_is_help=True,
)


class AuditFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    KUBE_BENCH_JSON = "kube-bench-json"


def _exit(findings: list[Any], fail_on: str) -> int:
    if fail_on.lower() == "never":
        return EXIT_OK
    try:
        floor = Severity.parse(fail_on).rank
    except ValueError as e:
        raise KubestrataError(f"--fail-on: {e}") from None
    return EXIT_FINDINGS if any(f.severity.rank >= floor for f in findings) else EXIT_OK


def _table(reports: list[Any]) -> str:
    lines = []
    for rep in reports:
        lines.append(f"node {rep.node}: CIS Amazon EKS Benchmark {rep.benchmark} ({rep.benchmark_reason})")
        for res in rep.results:
            for g in res.groups:
                lines.append(f"  [{g.group.id}] {g.group.text}")
                for r in g.results:
                    line = f"    [{r.state}] {r.check.id} {r.check.text}"
                    if r.state != "PASS" and r.reason:
                        line += f"  ({r.reason})"
                    lines.append(line)
            lines.append(
                f"  == {res.count('PASS')} pass, {res.count('FAIL')} fail, {res.count('WARN')} warn, "
                f"{res.count('INFO')} info"
            )
        for gap in rep.coverage.gaps:
            lines.append(f"  not evaluated: {gap.subject}: {gap.detail}")
    return printable("\n".join(lines) + "\n", keep_lines=True)


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
    output: AuditFormat = options.output(AuditFormat.TABLE, "table, json or kube-bench-json."),
    output_file: str = options.output_file(),
    fail_on: str = options.fail_on(),
) -> None:
    """CIS EKS worker-node checks (3.1 files, 3.2 kubelet) on this node, or over configz with --cluster."""
    import os

    from kubestrata.nodes.audit import audit_host
    from kubestrata.nodes.kbformat import kube_bench_json

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
    if output is AuditFormat.KUBE_BENCH_JSON:
        text = json.dumps(kube_bench_json([res for r in reports for res in r.results]), indent=2) + "\n"
    elif output is AuditFormat.JSON:
        doc: Any = reports[0].to_dict() if not cluster else {"nodes": [r.to_dict() for r in reports]}
        text = json.dumps(doc, indent=2) + "\n"
    else:
        text = _table(reports)
    write_output(text, output_file)
    raise typer.Exit(_exit(findings, fail_on))


def _warn(msg: str) -> None:
    err_console.print(f"[yellow]warning:[/] {printable(msg)}", markup=True)
