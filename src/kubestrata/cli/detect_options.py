"""The vocabulary every `kubestrata detect` command shares: output formats, the rule, threat-list and
sink options (typer has no option groups shared between commands, so one definition each here keeps the
names identical), and the config, sinks and batch ending they build."""

from __future__ import annotations

import os
import string
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import typer

from kubestrata.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    err_console,
    escape,
    exit_with,
    stdout_console,
    write_output,
)
from kubestrata.detect.catalogue import CATALOGUE
from kubestrata.detect.pipeline import DEFAULT_MAX_EVENT_BYTES, DetectConfig, IPList, IPLists
from kubestrata.detect.router import DetectRouter, InputFormat, extra_rule_ids
from kubestrata.detect.rules import ALLOWED_K8S_USERS
from kubestrata.detect.sinks import CountingSink, FileSink, MemorySink, StreamSink, WebhookSink
from kubestrata.errors import KubestrataError
from kubestrata.findings import Finding, Severity
from kubestrata.report.detect import print_summary, stats_line


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


# what rich prints as is on a stream that is no terminal: no markup ([), no emoji code (:), no
# control or non-ASCII character; the statistics lines are made of these
_PLAIN = frozenset(string.ascii_letters + string.digits + " ,;()/")


def print_err(text: str) -> None:
    """``err_console.print(escape(text))``: a plain line on a stderr that is no terminal is written
    as rich would write it, without importing rich (~30 ms of a replay's start-up)."""
    if _PLAIN.issuperset(text) and not err_console.is_terminal:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        return
    err_console.print(escape(text))


def finish_batch(
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
        print_err(stats_line(pipe.stats, sinks))
        if extra:
            print_err(extra)
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
