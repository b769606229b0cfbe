"""`kubestrata detect`: audit-log threat detection (replay a file, watch a stream or CloudWatch)."""

from __future__ import annotations

import logging
import os
import sys

import orjson
import typer

from kubestrata.cli import options
from kubestrata.cli.common import escape, handle_errors, stdout_console, write_output
from kubestrata.cli.detect_cloudtrail import cloudtrail_lookup
from kubestrata.cli.detect_fleet import publish, worker
from kubestrata.cli.detect_options import (
    ALERT_FILE,
    ALLOWED_IMAGE,
    ALLOWED_NODE,
    ALLOWED_USER,
    CLOUD,
    CLUSTER,
    CONTROL_PLANE,
    CUSTOM,
    DEDUP,
    DISABLE,
    ENDPOINT,
    FALCOSIDEKICK,
    FULL_ADMIN,
    INPUT_FORMAT,
    LEARN,
    MAL,
    MAXB,
    MINSEV,
    ONLY,
    PROFILE,
    QUEUE,
    REGION,
    SEQUENCES,
    STATE,
    TOR,
    WEBHOOK,
    ReplayFormat,
    StoredFormat,
    build_config,
    build_sinks,
    finish_batch,
)
from kubestrata.cli.detect_watch import watch
from kubestrata.detect.catalogue import CATALOGUE
from kubestrata.detect.pipeline import Pipeline
from kubestrata.detect.router import DetectRouter, InputFormat, extra_specs, feed_file
from kubestrata.detect.rules import dispatch_of
from kubestrata.detect.sinks import CountingSink, MemorySink
from kubestrata.errors import KubestrataError
from kubestrata.findings import Severity

app = typer.Typer(
    rich_markup_mode=None,
    help="Detect attacks and risky changes in Kubernetes audit logs (GuardDuty- and Falco-equivalent).",
    no_args_is_help=True,
)


@app.command()
@handle_errors
def replay(
    files: list[str] = typer.Argument(
        ...,
        help="Audit logs, Tetragon exports, Falco JSON alerts or CloudTrail log files (JSON lines, gzip or "
        "one JSON document; - for stdin), or s3://bucket/prefix for CloudTrail log objects.",
    ),
    fmt: ReplayFormat = options.output(
        ReplayFormat.JSONL,
        "jsonl (a finding a line, as they come), json (one array), table, none or falco (Falco JSON alerts).",
    ),
    fail_on: str = options.fail_on(),
    stats_json: str = typer.Option(None, "--stats", help="Write ingestion statistics as JSON to this file."),
    cluster: str = CLUSTER,
    state: str = STATE,
    tor_exit_list: str = TOR,
    malicious_ip_list: str = MAL,
    custom_threat_list: str = CUSTOM,
    cloud_ranges: str = CLOUD,
    min_severity: str = MINSEV,
    disable: list[str] = DISABLE,
    only: list[str] = ONLY,
    allowed_image: list[str] = ALLOWED_IMAGE,
    allowed_user: list[str] = ALLOWED_USER,
    full_admin_user: list[str] = FULL_ADMIN,
    allowed_node: list[str] = ALLOWED_NODE,
    dedup_window: float = DEDUP,
    max_event_bytes: int = MAXB,
    learn: bool = LEARN,
    alert_file: str = ALERT_FILE,
    webhook: str = WEBHOOK,
    queue: int = QUEUE,
    control_plane_identities: str = CONTROL_PLANE,
    falcosidekick: str = FALCOSIDEKICK,
    input_format: InputFormat = INPUT_FORMAT,
    sequences: bool = SEQUENCES,
    region: str = REGION,
    endpoint_url: str = ENDPOINT,
    profile: str = PROFILE,
) -> None:
    """Run every rule over audit logs, runtime events (Tetragon, Falco) and CloudTrail (batch), and
    correlate the findings into attack sequences. Findings go to stdout as JSON lines.

    Exit 1 when a finding at or above --fail-on (default high) was raised.

    Example: kubestrata detect replay examples/detect/audit.log -o table"""
    # checked before the logs are read: a typo must not cost a long replay
    threshold = options.parse_fail_on(fail_on)
    config = build_config(
        cluster, state, tor_exit_list, malicious_ip_list, custom_threat_list, cloud_ranges, min_severity,
        disable, only, allowed_image, allowed_user, full_admin_user, allowed_node, dedup_window, max_event_bytes, learn,
        control_plane_identities,
    )  # fmt: skip
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    keep = fmt in (ReplayFormat.TABLE, ReplayFormat.JSON)  # the others stream: count, keep nothing
    collected = MemorySink(block=True, capacity=queue) if keep else CountingSink(block=True)
    stdout = fmt in (ReplayFormat.JSONL, ReplayFormat.FALCO)
    sinks = [
        collected,
        *build_sinks(
            stdout, alert_file, webhook, block=True, queue=queue, falco=fmt is ReplayFormat.FALCO,
            falcosidekick=falcosidekick,
        ),
    ]  # fmt: skip
    router = DetectRouter(Pipeline(config, sinks), input_format, sequences)
    try:
        from kubestrata.cli.detect_cloudtrail import aws_client, feed_s3_url

        s3 = None
        for f in files:
            if f.startswith("s3://"):
                s3 = s3 or aws_client("s3", region, endpoint_url, profile)
                feed_s3_url(router, f, s3)
            else:
                feed_file(router, f)
    finally:
        router.close()
    finish_batch(fmt, collected, router, sinks, stats_json, threshold)


app.command()(handle_errors(watch))


@app.command("rules")
@handle_errors
def list_rules(
    fmt: options.TableOrJson = options.output(options.TableOrJson.TABLE, "table or json."),
) -> None:
    """List the rule catalogue with its GuardDuty / Falco / Sigma / MITRE references.

    Example: kubestrata detect rules -o json"""
    extra = extra_specs()  # runtime (KS-RUN), CloudTrail (KS-CT) and attack sequences (KS-SEQ)
    if fmt is options.TableOrJson.JSON:
        out = [
            {
                "id": r.id,
                "title": r.title,
                "severity": r.severity.value,
                "enabledByDefault": r.enabled,
                "description": r.description,
                "references": r.references(),
                "dispatch": dispatch_of(r.id) if r.id in CATALOGUE else None,
            }
            for r in [*CATALOGUE.values(), *extra]
        ]
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from rich.table import Table  # (rich: imported when a table is printed, not at every start-up)

    t = Table(title=f"{len(CATALOGUE)} audit rules, {len(extra)} runtime, CloudTrail and sequence rules")
    for col in ("Id", "Severity", "Title", "GuardDuty / Falco", "MITRE"):
        t.add_column(col, overflow="fold")
    for r in [*CATALOGUE.values(), *extra]:
        ref = ", ".join([*r.guardduty, *r.falco[:1]])
        t.add_row(
            r.id,
            r.severity.value,
            escape(r.title) + ("" if r.enabled else " (off)"),
            escape(ref),
            ", ".join(r.mitre),
        )
    stdout_console().print(t)


@app.command("findings")
@handle_errors
def stored_findings(
    state: str = typer.Option(..., "--state", help="The state database written by watch/replay."),
    fmt: StoredFormat = options.output(StoredFormat.TABLE, "table, json or jsonl."),
    min_severity: str = MINSEV,
) -> None:
    """Show the findings store: each finding once, with how often it recurred.

    Example: kubestrata detect findings --state ~/.local/state/kubestrata/detect.db -o jsonl"""
    from kubestrata.detect.state import FindingsStore
    from kubestrata.detect.statedb import make_engine

    if "://" not in state and state != ":memory:" and not os.path.exists(state):
        raise KubestrataError(f"no state database at {state}")
    try:
        floor = Severity.parse(min_severity).rank
    except ValueError as e:
        raise KubestrataError(str(e)) from None
    rows = [f for f in FindingsStore(make_engine(state)).all() if Severity(f["severity"]).rank >= floor]
    if fmt is StoredFormat.JSONL:
        write_output("".join(orjson.dumps(f).decode() + "\n" for f in rows), None)
        return
    if fmt is StoredFormat.JSON:
        write_output(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n", None)
        return
    from rich.table import Table

    t = Table(title=f"{len(rows)} stored findings")
    for col in ("Rule", "Severity", "Count", "First time", "Message"):
        t.add_column(col, overflow="fold")
    for f in rows:
        t.add_row(
            escape(f["ruleId"]),
            escape(f["severity"]),
            str(f.get("count", 1)),
            escape(f["time"]),
            escape(f["message"]),
        )
    stdout_console().print(t)


# `detect cloudtrail` (LookupEvents) and the scale-out commands (publish, worker) live in their own
# modules, as watch does; all read the shared options of cli/detect_options.py
app.command("cloudtrail")(handle_errors(cloudtrail_lookup))
app.command("publish")(publish)
app.command("worker")(worker)
