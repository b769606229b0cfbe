"""`kubestrata detect`: audit-log threat detection (replay a file, watch a stream or CloudWatch)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from kubestrata.cli import options
from kubestrata.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    err_console,
    exit_with,
    handle_errors,
    stdout_console,
    write_output,
)
from kubestrata.detect.catalogue import CATALOGUE
from kubestrata.detect.pipeline import DEFAULT_MAX_EVENT_BYTES, DetectConfig, IPList, IPLists, Pipeline
from kubestrata.detect.router import (
    DetectRouter,
    InputFormat,
    extra_rule_ids,
    extra_specs,
    feed_file,
    feed_lines,
)
from kubestrata.detect.rules import ALLOWED_K8S_USERS, dispatch_of
from kubestrata.detect.sinks import CountingSink, FileSink, MemorySink, StreamSink, WebhookSink
from kubestrata.detect.sources import Oversize
from kubestrata.errors import KubestrataError
from kubestrata.findings import Finding, Severity
from kubestrata.report.detect import print_summary, stats_line

app = typer.Typer(
    rich_markup_mode=None,
    help="Detect attacks and risky changes in Kubernetes audit logs (GuardDuty- and Falco-equivalent).",
    no_args_is_help=True,
)


class ReplayFormat(StrEnum):
    JSONL = "jsonl"
    JSON = "json"
    TABLE = "table"
    NONE = "none"
    FALCO = "falco"


class WatchFormat(StrEnum):
    JSONL = "jsonl"
    FALCO = "falco"


class StoredFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"


def default_state_path() -> str:
    """Where `watch` keeps first-seen state and findings unless --state says otherwise."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    path = os.path.join(base, "kubestrata", "detect.db")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as e:
        raise KubestrataError(
            f"cannot create {os.path.dirname(path)}: {e.strerror or e}; use --state"
        ) from None
    return path


def _opt_list(path: str | None) -> IPList | None:
    return IPList.load(path) if path else None


def build_config(
    cluster: str,
    state: str | None,
    tor_exit_list: str | None,
    malicious_ip_list: str | None,
    custom_threat_list: str | None,
    cloud_ranges: str | None,
    min_severity: str,
    disable: list[str] | None,
    only: list[str] | None,
    allowed_image: list[str] | None,
    allowed_user: list[str] | None,
    full_admin_user: list[str] | None,
    allowed_node: list[str] | None,
    dedup_window: float,
    max_event_bytes: int,
    learn: bool,
    control_plane_identities: str | None = None,
) -> DetectConfig:
    known = set(CATALOGUE) | extra_rule_ids()  # runtime, CloudTrail and attack-sequence rules too
    for rid in [*(disable or []), *(only or [])]:
        if rid not in known:
            raise KubestrataError(f"unknown rule id {rid!r} (see `kubestrata detect rules`)")
    try:
        Severity.parse(min_severity)
    except ValueError as e:
        raise KubestrataError(str(e)) from None
    if max_event_bytes < 1024:
        raise KubestrataError("--max-event-bytes must be at least 1024")
    extra: dict[str, Any] = {}
    if control_plane_identities:
        from kubestrata.detect.identities import load

        extra["control_plane"] = load(control_plane_identities, set(CATALOGUE))
    return DetectConfig(
        **extra,
        cluster=cluster,
        state_url=state,
        ip_lists=IPLists(
            malicious=_opt_list(malicious_ip_list),
            custom=_opt_list(custom_threat_list),
            tor=_opt_list(tor_exit_list),
            cloud=_opt_list(cloud_ranges),
        ),
        min_severity=min_severity.lower(),
        disabled=frozenset(disable or ()),
        only=frozenset(only) if only else None,
        allowed_images=frozenset(allowed_image or ()),
        allowed_users=ALLOWED_K8S_USERS | frozenset(allowed_user or ()),
        full_admin_users=frozenset(full_admin_user or ()),
        allowed_nodes=frozenset(allowed_node) if allowed_node else None,
        dedup_window=dedup_window,
        max_event_bytes=max_event_bytes,
        learning=learn,
    )


def build_sinks(
    stdout: bool,
    alert_file: str | None,
    webhook: str | None,
    block: bool,
    queue: int,
    falco: bool = False,
    falcosidekick: str | None = None,
) -> list[Any]:
    sinks: list[Any] = []
    if falco or falcosidekick:
        from kubestrata.detect.falco_output import FalcosidekickSink, FalcoStreamSink
    if stdout:
        sinks.append((FalcoStreamSink if falco else StreamSink)(block=block, capacity=queue))
    if falcosidekick:
        try:
            sinks.append(FalcosidekickSink(falcosidekick, block=block, capacity=queue))
        except ValueError as e:
            raise KubestrataError(f"--falcosidekick: {e}") from None
    if alert_file:
        try:
            sinks.append(FileSink(alert_file, block=block, capacity=queue))
        except OSError as e:
            raise KubestrataError(f"cannot open {alert_file}: {e.strerror or e}") from None
    if webhook:
        try:
            sinks.append(WebhookSink(webhook, block=block, capacity=queue))
        except ValueError as e:
            raise KubestrataError(str(e)) from None
    return sinks


def _feed_file(pipe: Pipeline | DetectRouter, path: str) -> None:
    """A file or stdin as plain JSON lines, as they arrive (watch: no look-ahead at the first
    bytes, unlike feed_file's sniffing of whole documents)."""
    name = "<stdin>" if path == "-" else path
    try:
        fh = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise KubestrataError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        feed_lines(pipe, fh, name)
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


# Common options (typer has no option groups shared between commands; keep the names identical)
CLUSTER = typer.Option(
    "", "--cluster-name", help="Cluster name recorded in findings and first-seen state.", metavar="NAME"
)
STATE = typer.Option(
    None,
    "--state",
    help="Detection state database: a SQLite file or a SQLAlchemy URL (e.g. postgresql+psycopg://...).",
)
TOR = typer.Option(
    None, "--tor-exit-list", help="File of Tor exit IPs (one a line, e.g. Tor's bulk exit list)."
)
MAL = typer.Option(
    None, "--malicious-ip-list", help="Threat-intel IP/CIDR file (GuardDuty MaliciousIPCaller)."
)
CUSTOM = typer.Option(
    None, "--custom-threat-list", help="Your own IP/CIDR threat list (MaliciousIPCaller.Custom)."
)
CLOUD = typer.Option(
    None,
    "--cloud-ranges",
    help="Cloud provider CIDRs (plain list or AWS ip-ranges.json) treated as non-public.",
)
MINSEV = typer.Option(
    "info", "--min-severity", help="Report findings at or above: info, low, medium, high, critical."
)
DISABLE = typer.Option(None, "--disable", help="Rule id to turn off (repeatable).")
ONLY = typer.Option(None, "--only", help="Run only these rule ids (repeatable).")
ALLOWED_IMAGE = typer.Option(None, "--allowed-image", help="Allowed image repository; enables KS-AUD-F02.")
ALLOWED_USER = typer.Option(
    None, "--allowed-user", help="User added to Falco's allowed_k8s_users (KS-AUD-F01), repeatable."
)
FULL_ADMIN = typer.Option(None, "--full-admin-user", help="Default admin user name; enables KS-AUD-F52.")
ALLOWED_NODE = typer.Option(None, "--allowed-node", help="Allowed node name; enables KS-AUD-F54/F55.")
DEDUP = typer.Option(
    3600.0, "--dedup-window", help="Seconds within which a repeated finding is counted, not re-emitted."
)
MAXB = typer.Option(
    DEFAULT_MAX_EVENT_BYTES, "--max-event-bytes", help="Longer lines are counted as bad and skipped."
)
LEARN = typer.Option(
    False, "--learn", help="Record first-seen state only; raise no anomaly findings (baseline)."
)
ALERT_FILE = typer.Option(None, "--alert-file", help="Also append findings (JSON lines) to this file.")
WEBHOOK = typer.Option(None, "--webhook", help="Also POST each finding as JSON to this http(s) URL.")
CONTROL_PLANE = typer.Option(
    None,
    "--control-plane-identities",
    help="YAML file of identities exempt from the actor rules, by name (added to the built-in list; "
    "'replace: true' replaces it). See docs/detect.md.",
)
FALCOSIDEKICK = typer.Option(
    None,
    "--falcosidekick",
    help="Also POST each finding as a Falco alert (source k8saudit) to this falcosidekick URL.",
    metavar="URL",
)
QUEUE = typer.Option(
    10_000, "--queue", help="Per-sink queue length; when full, alerts are dropped and counted."
)
INPUT_FORMAT = typer.Option(
    InputFormat.AUTO,
    "--input-format",
    help="auto (recognise each document: audit event, Tetragon export, Falco alert, CloudTrail record or "
    "log file, kubestrata scan report), audit, tetragon, falco, cloudtrail or scan.",
    case_sensitive=False,
)
SEQUENCES = typer.Option(
    True,
    "--sequences/--no-sequences",
    help="Correlate findings of every input into attack sequences (KS-SEQ-*).",
)
REGION = typer.Option(None, "--region", help="AWS region (CloudTrail S3 / LookupEvents, CloudWatch).")
ENDPOINT = typer.Option(None, "--endpoint-url", help="AWS endpoint (testing).")
PROFILE = typer.Option(None, "--profile", help="AWS profile.")


def _finish_batch(
    fmt: ReplayFormat, collected: MemorySink | CountingSink, router: DetectRouter, sinks: list[Any],
    stats_json: str | None, threshold: Severity | None,
) -> None:  # fmt: skip
    """Output, statistics and the --fail-on exit of a batch run (replay, cloudtrail). ``collected``
    keeps the findings for table and json output, and only counts them otherwise."""
    findings: list[Finding] = collected.items if isinstance(collected, MemorySink) else []
    pipe = router.pipeline
    extra = router.extra.line()
    if fmt is ReplayFormat.TABLE:
        print_summary(stdout_console(), findings, pipe.stats, sinks)
        if extra:
            stdout_console().print(escape(extra))
    else:
        if fmt is ReplayFormat.JSON:
            write_output(
                orjson.dumps([f.to_dict() for f in findings], option=orjson.OPT_INDENT_2).decode() + "\n",
                None,
            )
        err_console.print(escape(stats_line(pipe.stats, sinks)))
        if extra:
            err_console.print(escape(extra))
    if stats_json:
        try:
            doc = {**pipe.stats.to_dict(), **router.extra.to_dict()}
            Path(stats_json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        except OSError as e:
            raise KubestrataError(f"cannot write {stats_json}: {e.strerror or e}") from None
    if threshold is not None:
        if isinstance(collected, MemorySink):
            n = sum(1 for f in findings if f.severity.rank >= threshold.rank)
        else:
            n = sum(c for sev, c in collected.by_severity.items() if Severity(sev).rank >= threshold.rank)
        if n:
            exit_with(
                EXIT_FINDINGS,
                f"{n} finding{'s' if n != 1 else ''} at or above {threshold.value} (--fail-on {threshold.value})",
            )
    raise typer.Exit(EXIT_OK)


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
    _finish_batch(fmt, collected, router, sinks, stats_json, threshold)


@app.command()
@handle_errors
def watch(
    file: str = typer.Argument(None, help="Audit log file to follow (- for stdin); omit with --cloudwatch."),
    from_start: bool = typer.Option(
        False, "--from-start", help="Read the file from its start, not its end (when no position is saved)."
    ),
    cloudwatch: bool = typer.Option(
        False, "--cloudwatch", help="Poll CloudWatch Logs (EKS control-plane audit)."
    ),
    log_group: str = typer.Option(None, "--log-group", help="Default /aws/eks/<--cluster>/cluster."),
    stream_prefix: str = typer.Option("kube-apiserver-audit-", "--stream-prefix"),
    region: str = typer.Option(None, "--region"),
    endpoint_url: str = typer.Option(None, "--endpoint-url", help="CloudWatch Logs endpoint (testing)."),
    profile: str = typer.Option(None, "--profile", help="AWS profile."),
    checkpoint: str = typer.Option(
        None, "--checkpoint", help="Poller checkpoint file (resume without loss or repeats)."
    ),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between CloudWatch polls."),
    lookback: float = typer.Option(
        300.0, "--lookback", help="Seconds re-read before the checkpoint (late delivery)."
    ),
    once: bool = typer.Option(
        False, "--once", help="Stop at the end of the input (one poll / current end of file)."
    ),
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
    fmt: WatchFormat = options.output(
        WatchFormat.JSONL, "jsonl (kubestrata findings) or falco (Falco JSON alerts)."
    ),
    falcosidekick: str = FALCOSIDEKICK,
    input_format: InputFormat = INPUT_FORMAT,
    sequences: bool = SEQUENCES,
) -> None:
    """Follow a file or stdin (like tail -F) or poll CloudWatch; stream findings to the sinks.

    State (first-seen keys, findings, and FILE's read position, from which a restart resumes)
    persists in SQLite at $XDG_STATE_HOME/kubestrata/detect.db unless --state names another
    database (``--state :memory:`` keeps it in memory).

    Example: kubestrata detect watch /var/log/kubernetes/audit.log --cluster-name prod"""
    if bool(file) == cloudwatch:
        raise KubestrataError("give a FILE to follow, or --cloudwatch (not both)")
    if state is None:
        state = default_state_path()
    config = build_config(
        cluster, state, tor_exit_list, malicious_ip_list, custom_threat_list, cloud_ranges, min_severity,
        disable, only, allowed_image, allowed_user, full_admin_user, allowed_node, dedup_window, max_event_bytes, learn,
        control_plane_identities,
    )  # fmt: skip
    sinks = build_sinks(
        True, alert_file, webhook, block=False, queue=queue, falco=fmt is WatchFormat.FALCO,
        falcosidekick=falcosidekick,
    )  # fmt: skip
    pipe = DetectRouter(Pipeline(config, sinks), input_format, sequences)  # Pipeline's interface
    stop = threading.Event()
    try:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    except ValueError:  # not the main thread (tests)
        pass
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if cloudwatch:
            from kubestrata.detect.sources import CloudWatchPoller, cloudwatch_client

            poller = CloudWatchPoller(
                cloudwatch_client(region, endpoint_url, profile),
                cluster=cluster or None,
                log_group=log_group,
                stream_prefix=stream_prefix,
                checkpoint=checkpoint,
                lookback=lookback,
            )
            if once:
                poller.poll_once(pipe.process_line)
            else:
                poller.run(pipe.process_line, stop, interval, after_poll=pipe.flush)
        elif file == "-":
            _feed_file(pipe, "-")
        else:
            _follow_file(pipe, file, cluster, stop, from_start, once)
    finally:
        pipe.close()
        err_console.print(escape(stats_line(pipe.stats, sinks)))
        if pipe.extra.line():
            err_console.print(escape(pipe.extra.line()))


def _follow_file(
    pipe: Pipeline, file: str, cluster: str, stop: threading.Event, from_start: bool, once: bool
) -> None:
    """Follow FILE, keeping the read position (device, inode, offset) in the state database:
    saved after each batch's findings are written, resumed from on the next start."""
    import time

    from kubestrata.detect.sources import FileFollower, FilePosition
    from kubestrata.detect.state import WatchPositions

    positions = WatchPositions(pipe.engine) if pipe.engine is not None else None
    source = f"{cluster}|{os.path.abspath(file)}"
    saved = positions.load(source) if positions is not None else None
    follower = FileFollower(
        file, pipe.config.max_event_bytes, stop, from_start=from_start,
        resume=FilePosition(*saved) if saved else None,
    )  # fmt: skip
    last_save, unsaved = time.monotonic(), 0

    def checkpoint() -> None:
        nonlocal last_save, unsaved
        pipe.flush()  # findings and first-seen keys first: the position never runs ahead of them
        stores_down = pipe.store.outage.down or pipe._first_seen.outage.down
        pos = follower.saved_position() if positions is not None and not stores_down else None
        if positions is not None and pos is not None:
            positions.save(source, pos.device, pos.inode, pos.offset, pos.head)
        last_save, unsaved = time.monotonic(), 0

    try:
        for n, line in enumerate(follower, 1):
            if line is None:  # idle: persist batched state and the position, then wait for more
                checkpoint()
                if once:
                    break
                continue
            if isinstance(line, Oversize):
                pipe.stats.lines += 1
                pipe.bad("oversize", f"{file}:{n}", f"{line.length} bytes")
            else:
                pipe.process_line(line, f"{file}:{n}")
            unsaved += 1
            if unsaved >= 2000 or time.monotonic() - last_save > 1.0:
                checkpoint()
    finally:
        checkpoint()


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
    from kubestrata.detect.state import FindingsStore, make_engine

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


# `detect cloudtrail` (LookupEvents) lives in its own module; it reads the shared options above.
# Imported as a module (as detect_fleet below): mypy then types these options before that module's
# signatures read them (with `from ... import cloudtrail_lookup` the cycle left them undetermined).
from kubestrata.cli import detect_cloudtrail as _cloudtrail  # noqa: E402

app.command("cloudtrail")(handle_errors(_cloudtrail.cloudtrail_lookup))

# scale-out commands (publish, worker) live in their own module; importing it registers them here
from kubestrata.cli import detect_fleet as _fleet  # noqa: E402, F401
