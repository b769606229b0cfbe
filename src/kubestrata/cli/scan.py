"""`kubestrata scan`: every posture check over manifests or a live cluster."""

from __future__ import annotations

import datetime as dt
import gc
import time
from typing import TYPE_CHECKING, Any

import typer

from kubestrata.baseline import compare, load_baseline
from kubestrata.cli import common, options
from kubestrata.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    err_console,
    exit_with,
    handle_errors,
    leave_to_exit,
    rich_output,
    warning_line,
    write_streamed,
)
from kubestrata.cli.inputs import load_input, require_complete
from kubestrata.cli.progress import stage
from kubestrata.config import load_config
from kubestrata.errors import KubestrataError
from kubestrata.kube.cluster import Cluster
from kubestrata.report.render import Format, write_report
from kubestrata.scan import ScanResult, run_scan, select_checks

if TYPE_CHECKING:
    from kubestrata.report.asff import AwsTarget

if TYPE_CHECKING:
    from kubestrata.report.html import RunInfo


def connectivity_section(snap: Cluster, result: ScanResult) -> str:
    """The network connectivity view for the HTML report; a failure costs the view, never the report."""
    from kubestrata.netpol.engine import Network
    from kubestrata.report.html_network import network_section

    try:
        net = result.indexes.get("netpol.network")  # built by the KS-NET checks, when they ran
        return network_section(net if isinstance(net, Network) else Network(snap))
    except Exception as e:  # the report must not be lost to a bug in one of its views
        result.notices.append(f"network connectivity view not drawn: {e!r}")
        return ""


def html_run(
    snap: Cluster,
    result: ScanResult,
    paths: list[str] | None,
    cluster: bool,
    namespace: str | None,
    started: dt.datetime,
    seconds: float,
) -> RunInfo:
    """What the HTML report says about the run: when, how long, what was read, and the views that
    need the snapshot (network connectivity, each object's owner for grouping)."""
    from kubestrata.report.html import RunInfo, owners

    inputs = ["the live cluster (current kubeconfig context)"] if cluster else list(paths or [])
    if namespace:
        inputs.append(f"namespace {namespace} only")
    section = connectivity_section(snap, result)
    return RunInfo(
        started=started,
        seconds=seconds,
        inputs=inputs,
        sections=[section] if section else [],
        owners=owners(snap, result.findings),
    )


def aws_target(snap: Cluster, result: ScanResult, cluster_arn: str | None, required: bool) -> AwsTarget:
    """The account, region and cluster the ASFF findings belong to: --cluster-arn, else the EKS
    snapshot's ARN, else a placeholder (with a notice; refused for --security-hub)."""
    from kubestrata.eks.model import SNAPSHOT_KIND
    from kubestrata.eks.objects import from_objects
    from kubestrata.report.asff import DEFAULT_CLUSTER_ARN, AwsTarget

    arn = cluster_arn
    if not arn:
        eks, _errors = from_objects(snap.of_kind(SNAPSHOT_KIND))
        arn = eks.cluster_arn if eks is not None else ""
    if not arn:
        if required:
            raise KubestrataError(
                "--security-hub needs the EKS cluster ARN: give --cluster-arn or include the EKS snapshot "
                "(kubestrata access import)"
            )
        note = f"no EKS cluster ARN (no --cluster-arn, no EKS snapshot): ASFF findings name {DEFAULT_CLUSTER_ARN}"
        result.notices.append(note)
        warning_line(note)
        arn = DEFAULT_CLUSTER_ARN
    try:
        return AwsTarget.from_arn(arn)
    except ValueError as e:
        raise KubestrataError(f"--cluster-arn: {e}") from None


@handle_errors
def scan(
    paths: list[str] = typer.Argument(
        None, help="Manifest files or directories; - reads stdin.", metavar="PATH"
    ),
    cluster: bool = options.cluster("Scan the live cluster of the current kubeconfig context."),
    context: str = options.context(),
    kubeconfig: str = options.kubeconfig(),
    namespace: str = options.namespace(),
    output: Format = options.output(Format.TABLE, "Report format."),
    output_file: str = options.output_file("Write the report to this file instead of stdout."),
    fail_on: str = options.fail_on(),
    config_file: str = options.config(),
    suppressions_file: str = typer.Option(
        None, "--suppressions", help="Suppressions file (YAML).", metavar="PATH"
    ),
    baseline_file: str = typer.Option(
        None,
        "--baseline",
        help="Report only findings not in this earlier JSON/SARIF report (-o html also lists the fixed ones "
        "and counts the unchanged).",
        metavar="PATH",
    ),
    include: list[str] = typer.Option(
        [], "--include", help="Only these checks (id, glob or domain).", metavar="CHECK"
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Skip these checks (id, glob or domain).", metavar="CHECK"
    ),
    strict: bool = options.strict(),
    show_suppressed: bool = typer.Option(
        False, "--show-suppressed", help="List suppressed findings in the table."
    ),
    timeout: float = options.timeout(),
    quiet: bool = options.quiet(),
    security_hub: bool = typer.Option(
        False, "--security-hub", help="Send the findings to AWS Security Hub (BatchImportFindings, ASFF)."
    ),
    cluster_arn: str = typer.Option(
        None,
        "--cluster-arn",
        help="EKS cluster ARN for -o asff and --security-hub (default: the EKS snapshot's).",
        metavar="ARN",
    ),
    write_policy_reports: bool = typer.Option(
        False,
        "--write-policy-reports",
        help="With --cluster: apply the PolicyReports to the cluster (server-side apply, field manager "
        "kubestrata) and delete stale ones kubestrata wrote.",
    ),
    images: bool = typer.Option(
        False,
        "--images",
        help="Also read every workload image (once per digest), match it against the offline vulnerability "
        "database and rank what is found by what each workload exposes (scan.images in the config).",
    ),
    image_results: list[str] = typer.Option(
        [],
        "--image-results",
        help="Scanner results to rank without reading images: Trivy, Grype, CycloneDX, SPDX, ECR or "
        "Inspector JSON (repeatable).",
        metavar="FILE",
    ),
) -> None:
    """Scan manifests or a live cluster across the cluster, infrastructure and application layers.

    Exit 0 clean, 1 findings at or above --fail-on (default high), 2 usage or input error.

    Examples: kubestrata scan examples/demo-cluster; helm template ./chart | kubestrata scan -;
    kubestrata scan --cluster -n shop -o sarif --output-file scan.sarif
    """
    # A scan builds a few million small objects that live until it ends and hold no reference
    # cycles; the cyclic collector would walk all of them again and again (a third of the run time
    # at 50,000 objects, see docs/performance.md). Reference counting still frees what dies.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _scan(
            paths, cluster, context, kubeconfig, namespace, output, output_file, fail_on, config_file,
            suppressions_file, baseline_file, include, exclude, strict, show_suppressed, timeout, quiet,
            write_policy_reports, security_hub, cluster_arn, images, image_results,
        )  # fmt: skip
    finally:
        # Not when the console script ends the process next (common.HARD_EXIT): re-enabled, the
        # collector's first pass would walk every object the scan made (none were ever collected,
        # so all are still in the youngest generation), about 7% of a 50,000-object scan's CPU.
        if gc_was_enabled and not common.HARD_EXIT:
            gc.enable()


def _image_options(scan_cfg: Any, images: bool, results: list[str]) -> None:
    """--images and --image-results on top of scan.images; an unreadable results file is a usage error."""
    import os

    if images:
        scan_cfg.images.enabled = True
    for f in [*scan_cfg.images.results, *results]:
        if not os.path.isfile(f):
            raise KubestrataError(f"image results file {f}: no such file")
    scan_cfg.images.results = [*scan_cfg.images.results, *results]


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
    write_policy_reports: bool = False,
    security_hub: bool = False,
    cluster_arn: str | None = None,
    images: bool = False,
    image_results: list[str] | None = None,
) -> None:
    threshold = options.parse_fail_on(fail_on)
    if write_policy_reports and not cluster:
        raise KubestrataError("--write-policy-reports needs --cluster (it writes to the scanned cluster)")
    cfg = load_config(config_file)
    _image_options(cfg.scan, images, image_results or [])
    if cfg.scan.pss_configuration:
        # read it now, so a broken file is a usage error rather than a gap on every workload
        from kubestrata.pss.config import load_pod_security_configuration

        load_pod_security_configuration(cfg.scan.pss_configuration)
    checks = select_checks(include, exclude)
    sup = None
    if suppressions_file:
        from kubestrata.suppressions import Suppressions

        sup = Suppressions.load(suppressions_file)
    baseline = load_baseline(baseline_file) if baseline_file else None
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    with stage("loading the input", quiet=quiet):
        inp = load_input(
            paths, cluster=cluster, context=context, kubeconfig=kubeconfig, namespace=namespace,
            timeout=timeout, quiet=quiet, allow_empty=cluster,
        )  # fmt: skip
    snap = inp.cluster
    with stage(f"evaluating {len(checks)} checks on {len(snap)} objects", quiet=quiet):
        result = run_scan(
            snap, config=cfg.scan, checks=checks, suppressions=sup,
            baseline=baseline.fingerprints if baseline else None,
        )  # fmt: skip
    result.coverage.merge(inp.coverage)
    leave_to_exit(inp, snap, result)
    if baseline is not None:
        result.baseline = compare(baseline, result.findings, result.unchanged)
    target = "cluster" if cluster else " ".join(paths or [])
    with stage(f"writing the {output.value} report", quiet=quiet):
        if output is Format.TABLE:
            from kubestrata.report import table

            with rich_output(output_file) as console:
                table.render(result, console, show_suppressed=show_suppressed)
        else:
            run = None
            if output is Format.HTML:
                run = html_run(snap, result, paths, cluster, namespace, started, time.perf_counter() - clock)
            aws = aws_target(snap, result, cluster_arn, security_hub) if output is Format.ASFF else None
            now = dt.datetime.now(dt.UTC)
            write_streamed(
                lambda out: write_report(
                    result, output, out, target=target, html_run=run, aws_target=aws, now=now
                ),
                output_file,
            )
    if security_hub:
        from kubestrata.integrations import securityhub
        from kubestrata.report.asff import to_findings

        aws = aws_target(snap, result, cluster_arn, security_hub)
        with stage("sending findings to AWS Security Hub", quiet=quiet):
            sent = securityhub.import_findings(
                securityhub.client(aws.region), to_findings(result, aws, dt.datetime.now(dt.UTC))
            )
        if not quiet:
            err_console.print(
                f"kubestrata: Security Hub imported {sent.imported} of {sent.sent} findings in {sent.calls} "
                f"calls ({sent.retried} retried)"
            )
        if sent.failed:
            first = sent.failed[0]
            raise KubestrataError(
                f"Security Hub rejected {len(sent.failed)} findings; first: {first['Id']}: "
                f"{first['ErrorCode']}: {first['ErrorMessage']}"
            )
    if write_policy_reports:
        from kubestrata.kube.policyreports import write_reports
        from kubestrata.report.policyreport import to_reports

        with stage("writing PolicyReports to the cluster", quiet=quiet):
            done = write_reports(
                to_reports(result, target, now=dt.datetime.now(dt.UTC)), kubeconfig=kubeconfig, context=context, namespace=namespace,
                timeout=timeout,
            )  # fmt: skip
        if not quiet:
            err_console.print(
                f"kubestrata: applied {len(done.applied)} PolicyReports, deleted {len(done.deleted)} stale"
            )
    if output is not Format.TABLE and result.coverage.gaps and not quiet:
        warning_line(f"{len(result.coverage.gaps)} inputs not evaluated (listed under coverage.notEvaluated)")
    require_complete(result.coverage, strict)
    if threshold is not None and result.at_or_above(threshold):
        n = sum(1 for f in result.active() if f.severity.rank >= threshold.rank)
        exit_with(
            EXIT_FINDINGS,
            f"{n} finding{'s' if n != 1 else ''} at or above {threshold.value} (--fail-on {threshold.value})",
        )
    raise typer.Exit(EXIT_OK)
