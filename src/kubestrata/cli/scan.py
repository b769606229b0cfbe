"""`kubestrata scan`: every posture check over manifests or a live cluster."""

from __future__ import annotations

import gc
from pathlib import Path

import orjson
import typer
from rich.markup import escape

from kubestrata.cli.common import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, err_console, handle_errors, write_output
from kubestrata.config import load_config
from kubestrata.errors import InputError, KubestrataError
from kubestrata.findings import Coverage, GapReason, Severity
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_paths
from kubestrata.report.render import Format, render
from kubestrata.scan import ScanResult, run_scan, select_checks
from kubestrata.suppressions import Suppressions


def load_baseline(path: str) -> set[str]:
    """Fingerprints from a previous `scan -o json` (or SARIF) report."""
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except OSError as e:
        raise InputError(f"cannot read baseline: {e.strerror or e}", file=path) from None
    except orjson.JSONDecodeError as e:
        raise InputError(f"baseline is not JSON: {e}", file=path) from None
    if isinstance(doc, dict) and isinstance(doc.get("findings"), list):
        return {f.get("fingerprint") for f in doc["findings"] if isinstance(f, dict) and f.get("fingerprint")}
    if isinstance(doc, dict) and isinstance(doc.get("runs"), list):  # SARIF
        return {
            r.get("partialFingerprints", {}).get("kubestrata/v1")
            for run in doc["runs"]
            for r in run.get("results", [])
        } - {None}
    raise InputError("expected a kubestrata JSON or SARIF report", file=path, field="findings")


def load_cluster_input(
    paths: list[str],
    cluster: bool,
    context: str | None,
    kubeconfig: str | None,
    namespace: str | None,
    timeout: float,
    coverage: Coverage,
    quiet: bool = False,
) -> tuple[Cluster, int]:
    """The snapshot from manifests or a live API server; returns it and the number of input errors."""
    if cluster:
        from kubestrata.kube.live import collect_cluster

        snap = collect_cluster(
            kubeconfig=kubeconfig,
            context=context,
            namespace=namespace,
            timeout=timeout,
            coverage=coverage,
            progress=not quiet,
        )
        if "Namespace" not in getattr(snap, "missing_kinds", set()):
            _require_namespace(snap, namespace)
        return snap, 0
    if not paths:
        raise KubestrataError("give manifest paths (a file, a directory or - for stdin) or --cluster")
    loaded = load_paths(paths)
    for e in loaded.errors:
        coverage.gap(e.file or "input", GapReason.INVALID, str(e))
    for subject, detail in loaded.not_evaluated:  # kustomizations not rendered, Helm charts
        coverage.gap(subject, GapReason.MISSING_INPUT, f"{subject}: {detail}")
    objs = loaded.objects
    if namespace:
        objs = [o for o in objs if o.namespace in ("", namespace)]
    snap = Cluster(objs)
    if loaded.objects:
        _require_namespace(snap, namespace)
    return snap, len(loaded.errors) + len(loaded.not_evaluated)


def _require_namespace(snap: Cluster, namespace: str | None) -> None:
    """A --namespace that names nothing in the input is a typo to report, not a clean result."""
    if namespace and namespace not in snap.namespaces:
        known = snap.namespaces
        raise KubestrataError(
            f"namespace {namespace!r} is not in the input"
            + (f" (namespaces: {', '.join(known[:10])}{', ...' if len(known) > 10 else ''})" if known else "")
        )


def connectivity_section(snap: Cluster, result: ScanResult) -> str:
    """The network connectivity view for the HTML report; a failure costs the view, never the report."""
    from kubestrata.netpol.engine import Network
    from kubestrata.netpol.graph import connectivity_html

    try:
        return connectivity_html(Network(snap))
    except Exception as e:  # the report must not be lost to a bug in one of its views
        result.notices.append(f"network connectivity view not drawn: {e!r}")
        return ""


@handle_errors
def scan(
    paths: list[str] = typer.Argument(None, help="Manifest files or directories; - reads stdin."),
    cluster: bool = typer.Option(
        False, "--cluster", help="Scan the live cluster of the current kubeconfig context."
    ),
    context: str = typer.Option(None, "--context", help="kubeconfig context (with --cluster)."),
    kubeconfig: str = typer.Option(None, "--kubeconfig", help="kubeconfig file (with --cluster)."),
    namespace: str = typer.Option(
        None, "--namespace", "-n", help="Only this namespace (plus cluster-scoped objects)."
    ),
    output: Format = typer.Option(Format.TABLE, "--output", "-o", help="Report format."),
    output_file: str = typer.Option(
        None, "--output-file", "-f", help="Write the report here instead of stdout."
    ),
    fail_on: str = typer.Option(
        "low", "--fail-on", help="Exit 1 when a finding at or above this severity remains."
    ),
    config_file: str = typer.Option(None, "--config", "-c", help="kubestrata config file (YAML)."),
    suppressions_file: str = typer.Option(None, "--suppressions", help="Suppressions file (YAML)."),
    baseline_file: str = typer.Option(
        None, "--baseline", help="Report only findings not in this earlier JSON/SARIF report."
    ),
    include: list[str] = typer.Option([], "--include", help="Only these checks (id, glob or domain)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Skip these checks (id, glob or domain)."),
    strict: bool = typer.Option(
        False, "--strict", help="Exit 2 if any input could not be read or evaluated."
    ),
    show_suppressed: bool = typer.Option(
        False, "--show-suppressed", help="List suppressed findings in the table."
    ),
    timeout: float = typer.Option(
        60.0, "--timeout", help="Seconds to wait for the API server (with --cluster)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Scan manifests or a live cluster across the cluster, infrastructure and application layers."""
    # A scan builds a few million small objects that live until it ends and hold no reference
    # cycles; the cyclic collector would walk all of them again and again (a third of the run time
    # at 50,000 objects, see docs/performance.md). Reference counting still frees what dies.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _scan(
            paths,
            cluster,
            context,
            kubeconfig,
            namespace,
            output,
            output_file,
            fail_on,
            config_file,
            suppressions_file,
            baseline_file,
            include,
            exclude,
            strict,
            show_suppressed,
            timeout,
            quiet,
        )
    finally:
        if gc_was_enabled:
            gc.enable()


def _scan(
    paths: list[str] | None,
    cluster: bool,
    context: str | None,
    kubeconfig: str | None,
    namespace: str | None,
    output: Format,
    output_file: str | None,
    fail_on: str,
    config_file: str | None,
    suppressions_file: str | None,
    baseline_file: str | None,
    include: list[str],
    exclude: list[str],
    strict: bool,
    show_suppressed: bool,
    timeout: float,
    quiet: bool,
) -> None:
    try:
        threshold = Severity.parse(fail_on)
    except ValueError as e:
        raise KubestrataError(str(e)) from None
    cfg = load_config(config_file)
    if cfg.scan.pss_configuration:
        # read it now, so a broken file is a usage error rather than a gap on every workload
        from kubestrata.pss.config import load_pod_security_configuration

        load_pod_security_configuration(cfg.scan.pss_configuration)
    checks = select_checks(include, exclude)
    sup = Suppressions.load(suppressions_file) if suppressions_file else None
    baseline = load_baseline(baseline_file) if baseline_file else None
    pre = Coverage()
    snap, input_errors = load_cluster_input(
        paths or [], cluster, context, kubeconfig, namespace, timeout, pre, quiet
    )
    if len(snap) == 0 and input_errors:
        for g in pre.gaps:
            # soft_wrap: a path must stay on one line to be copied
            err_console.print(f"[bold red]error:[/] {escape(g.detail)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_ERROR)
    if len(snap) == 0 and not cluster:
        raise KubestrataError("no Kubernetes objects found in the input")
    result = run_scan(snap, config=cfg.scan, checks=checks, suppressions=sup, baseline=baseline)
    result.coverage.merge(pre)
    target = "cluster" if cluster else " ".join(paths or [])
    sections = [connectivity_section(snap, result)] if output is Format.HTML else []
    text = render(
        result,
        output,
        target=target,
        color=output is Format.TABLE and output_file is None and err_console.is_terminal,
        show_suppressed=show_suppressed,
        html_sections=[s for s in sections if s],
    )
    write_output(text, output_file)
    if output is not Format.TABLE and result.coverage.gaps and not quiet:
        err_console.print(
            f"[yellow]warning:[/] {len(result.coverage.gaps)} inputs not evaluated "
            "(listed under coverage.notEvaluated)"
        )
    if strict and result.coverage.gaps:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_FINDINGS if result.at_or_above(threshold) else EXIT_OK)
