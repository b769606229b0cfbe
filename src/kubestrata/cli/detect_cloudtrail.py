"""`kubestrata detect cloudtrail` (CloudTrail LookupEvents) and the AWS helpers `detect replay`
uses for s3:// inputs. The command is registered on the detect app by cli/detect.py."""

from __future__ import annotations

from typing import Any

import typer

from kubestrata.cli import options
from kubestrata.cli.common import err_console, escape
from kubestrata.cli.detect_options import (
    ALERT_FILE,
    CLUSTER,
    DEDUP,
    DISABLE,
    ENDPOINT,
    MINSEV,
    ONLY,
    PROFILE,
    REGION,
    STATE,
    WEBHOOK,
    ReplayFormat,
    build_config,
    build_sinks,
    finish_batch,
)
from kubestrata.detect.pipeline import DEFAULT_MAX_EVENT_BYTES, Pipeline
from kubestrata.detect.router import DetectRouter, InputFormat, feed_s3
from kubestrata.detect.sinks import MemorySink
from kubestrata.errors import KubestrataError


def aws_client(service: str, region: str | None, endpoint_url: str | None, profile: str | None) -> Any:
    try:
        import boto3
    except ImportError:
        raise KubestrataError("reading from AWS needs boto3: pip install 'kubestrata[aws]'") from None
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        return session.client(service, endpoint_url=endpoint_url)
    except Exception as e:  # botocore's ProfileNotFound, NoRegionError ...
        raise KubestrataError(f"cannot create the {service} client: {e}") from None


def feed_s3_url(router: DetectRouter, url: str, s3: Any) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if feed_s3(router, url, s3) == 0:
            err_console.print(escape(f"warning: no CloudTrail log objects under {url}"))
    except (BotoCoreError, ClientError) as e:
        raise KubestrataError(f"cannot read {url}: {e}") from None


def cloudtrail_lookup(
    start_time: str = typer.Option(
        None, "--start-time", help="Oldest event time (ISO 8601, or an age like 24h, 7d). Default: 24h ago."
    ),
    end_time: str = typer.Option(None, "--end-time", help="Newest event time (ISO 8601). Default: now."),
    region: str = REGION,
    endpoint_url: str = ENDPOINT,
    profile: str = PROFILE,
    fmt: ReplayFormat = options.output(
        ReplayFormat.JSONL, "jsonl, json, table, none or falco (Falco JSON alerts)."
    ),
    fail_on: str = options.fail_on(),
    stats_json: str = typer.Option(None, "--stats", help="Write ingestion statistics as JSON to this file."),
    cluster: str = CLUSTER,
    state: str = STATE,
    min_severity: str = MINSEV,
    disable: list[str] = DISABLE,
    only: list[str] = ONLY,
    dedup_window: float = DEDUP,
    alert_file: str = ALERT_FILE,
    webhook: str = WEBHOOK,
) -> None:
    """Read EKS management events from CloudTrail's event history (LookupEvents: the last 90 days, no
    trail needed) and run the CloudTrail rules. For trail log files use `detect replay FILE` or
    `detect replay s3://bucket/prefix`.

    Example: kubestrata detect cloudtrail --region eu-west-1 --start-time 7d -o table"""
    import time as _t
    from datetime import UTC, datetime, timedelta

    from kubestrata.detect.cloudtrail import lookup_eks_events

    threshold = options.parse_fail_on(fail_on)
    now = datetime.now(UTC)

    def when(value: str | None, default: datetime | None, flag: str) -> datetime | None:
        if not value:
            return default
        if value[:-1].isdigit() and value[-1] in "hdm":
            unit = {"h": "hours", "d": "days", "m": "minutes"}[value[-1]]
            return now - timedelta(**{unit: int(value[:-1])})
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise KubestrataError(f"{flag}: not an ISO 8601 time or an age like 24h: {value!r}") from None
        return t if t.tzinfo else t.replace(tzinfo=UTC)

    start = when(start_time, now - timedelta(hours=24), "--start-time")
    end = when(end_time, None, "--end-time")
    config = build_config(
        cluster, state, None, None, None, None, min_severity, disable, only, None, None, None, None, dedup_window,
        DEFAULT_MAX_EVENT_BYTES, False,
    )  # fmt: skip
    collected = MemorySink(block=True)
    sinks = [
        collected,
        *build_sinks(fmt in (ReplayFormat.JSONL, ReplayFormat.FALCO), alert_file, webhook, block=True,
                     queue=10_000, falco=fmt is ReplayFormat.FALCO),
    ]  # fmt: skip
    router = DetectRouter(Pipeline(config, sinks), InputFormat.CLOUDTRAIL)
    client = aws_client("cloudtrail", region, endpoint_url, profile)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for n, page in enumerate(lookup_eks_events(client, start, end, sleep=_t.sleep)):
            router.stats.lines += 1
            router.process_obj(page, f"LookupEvents page {n + 1}")
    except (BotoCoreError, ClientError) as e:
        raise KubestrataError(f"CloudTrail LookupEvents failed: {e}") from None
    finally:
        router.close()
    finish_batch(fmt, collected, router, sinks, stats_json, threshold)
