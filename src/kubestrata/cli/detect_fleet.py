"""`kubestrata detect publish` and `kubestrata detect worker`: scale-out detection on Redis Streams
(kubestrata.detect.streams / worker). Registered on the detect app by cli/detect.py."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import typer

from kubestrata.cli import options
from kubestrata.cli.common import err_console, escape, handle_errors
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
    FALCOSIDEKICK,
    FULL_ADMIN,
    LEARN,
    MAL,
    MAXB,
    MINSEV,
    ONLY,
    QUEUE,
    STATE,
    TOR,
    WEBHOOK,
    WatchFormat,
    build_config,
    build_sinks,
    default_state_path,
)  # fmt: skip
from kubestrata.detect.sources import Oversize, read_lines
from kubestrata.errors import KubestrataError

if TYPE_CHECKING:
    from kubestrata.detect.streams import Publisher

REDIS = typer.Option(..., "--redis", help="Redis URL of the streams (redis://host:6379/0).", metavar="URL")
PREFIX = typer.Option("ks:events", "--redis-prefix", help="Key prefix of the partition streams.")
PARTITIONS = typer.Option(
    16, "--partitions", help="Partition streams (fixed per prefix; more than the most workers you will run)."
)


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()
    try:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    except ValueError:  # not the main thread (tests)
        pass
    return stop


@handle_errors
def publish(
    files: list[str] = typer.Argument(None, help="Audit log files (JSON lines; - for stdin)."),
    redis_url: str = REDIS,
    prefix: str = PREFIX,
    partitions: int = PARTITIONS,
    maxlen: int = typer.Option(
        1_000_000, "--maxlen", help="Approximate length each partition stream is trimmed to (XADD MAXLEN ~)."
    ),
    follow: bool = typer.Option(False, "--follow", help="Keep following FILE (like tail -F) from its end."),
    cloudwatch: bool = typer.Option(False, "--cloudwatch", help="Poll CloudWatch Logs (EKS audit)."),
    kinesis: str = typer.Option(
        None,
        "--kinesis",
        help="Read a Kinesis stream fed by a CloudWatch Logs subscription.",
        metavar="STREAM",
    ),
    log_group: str = typer.Option(None, "--log-group", help="Default /aws/eks/<--cluster-name>/cluster."),
    region: str = typer.Option(None, "--region"),
    endpoint_url: str = typer.Option(None, "--endpoint-url", help="AWS endpoint (testing)."),
    profile: str = typer.Option(None, "--profile", help="AWS profile."),
    checkpoint: str = typer.Option(None, "--checkpoint", help="CloudWatch / Kinesis position file."),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between CloudWatch / Kinesis polls."),
    once: bool = typer.Option(False, "--once", help="Stop at the end of the input (one poll)."),
    cluster: str = CLUSTER,
    max_event_bytes: int = MAXB,
) -> None:
    """Publish audit events to the partition streams for `detect worker` (file, stdin, CloudWatch, Kinesis).

    Each event goes to the partition of its cluster and user, so one identity's events are read by
    one worker. Undecodable input is parked in <prefix>:dead with the reason.

    Example: kubestrata detect publish audit.log --redis redis://127.0.0.1:6379/0 --cluster-name prod"""
    from kubestrata.detect.streams import Layout, Publisher, check_layout, connect

    sources = sum([bool(files), cloudwatch, bool(kinesis)])
    if sources != 1:
        raise KubestrataError("give FILES, --cloudwatch or --kinesis STREAM (exactly one)")
    if follow and (not files or len(files) != 1 or files[0] == "-"):
        raise KubestrataError("--follow takes exactly one FILE")
    if partitions < 1:
        raise KubestrataError("--partitions must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    client = connect(redis_url)
    layout = Layout(prefix, partitions)
    check_layout(client, layout)
    pub = Publisher(client, layout, cluster=cluster, maxlen=maxlen, max_event_bytes=max_event_bytes)
    stop = _stop_on_sigterm()
    try:
        if kinesis:
            from kubestrata.detect.kinesis import KinesisReader, kinesis_client

            reader = KinesisReader(kinesis_client(region, endpoint_url, profile), kinesis, checkpoint)
            if once:
                reader.poll_once(pub.publish_line, pub.flush)
            else:
                reader.run(pub.publish_line, stop, interval, after_batch=pub.flush)
        elif cloudwatch:
            from kubestrata.detect.sources import CloudWatchPoller, cloudwatch_client

            poller = CloudWatchPoller(cloudwatch_client(region, endpoint_url, profile), cluster=cluster or None,
                                      log_group=log_group, checkpoint=checkpoint)  # fmt: skip
            # the checkpoint is saved per page, after handle: flush per event keeps Redis ahead of it
            handle = _flushing(pub)
            if once:
                poller.poll_once(handle)
            else:
                poller.run(handle, stop, interval, after_poll=pub.flush)
        elif follow:
            from kubestrata.detect.sources import FileFollower

            for n, line in enumerate(FileFollower(files[0], max_event_bytes, stop, from_start=False), 1):
                if line is None:
                    pub.flush()
                    if once:
                        break
                elif not isinstance(line, Oversize):
                    pub.publish_line(line, f"{files[0]}:{n}")
        else:
            for path in files:
                _publish_file(pub, path, max_event_bytes)
    finally:
        pub.flush()
    st = pub.stats
    err_console.print(escape(f"{st.documents} lines, {st.events} events published to {partitions} partitions "
                             f"of {prefix}, {st.bad} parked in {layout.dead}, {st.ignored} ignored"))  # fmt: skip


def _flushing(pub: Publisher) -> Callable[[str, str], None]:
    def handle(message: str, origin: str) -> None:
        pub.publish_line(message.encode("utf-8", "surrogatepass"), origin)
        pub.flush()

    return handle


def _publish_file(pub: Publisher, path: str, max_bytes: int) -> None:
    name = "<stdin>" if path == "-" else path
    try:
        fh = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise KubestrataError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        for n, line in enumerate(read_lines(fh, max_bytes), 1):
            if isinstance(line, Oversize):
                pub._park(b"", f"{name}:{n}", f"oversize: {line.length} bytes > {max_bytes}")
            else:
                pub.publish_line(line, f"{name}:{n}")
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


@handle_errors
def worker(
    redis_url: str = REDIS,
    prefix: str = PREFIX,
    partitions: int = PARTITIONS,
    consumer: str = typer.Option(
        None, "--consumer", help="Consumer name (default host-pid; unique per worker)."
    ),
    batch: int = typer.Option(500, "--batch", help="Entries read per XREADGROUP, over all owned partitions."),
    lease_ttl: float = typer.Option(10.0, "--lease-ttl", help="Seconds a dead worker keeps its partitions."),
    min_idle: float = typer.Option(
        30.0, "--min-idle", help="Seconds an entry stays pending before another worker claims it."
    ),
    max_deliveries: int = typer.Option(
        5, "--max-deliveries", help="Deliveries after which an unacknowledged entry is parked as poison."
    ),
    idle_exit: float = typer.Option(
        None, "--idle-exit", help="Stop after this many seconds without a message (batch jobs, tests)."
    ),
    stats_json: str = typer.Option(None, "--stats", help="Write worker statistics as JSON to this file."),
    fmt: WatchFormat = options.output(
        WatchFormat.JSONL, "jsonl (kubestrata findings) or falco (Falco JSON alerts)."
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
    falcosidekick: str = FALCOSIDEKICK,
) -> None:
    """Run as one member of the detection consumer group: findings to the usual outputs.

    Workers share first-seen state and the findings store in --state (PostgreSQL for several hosts);
    a finding is emitted once across the fleet, however often its event is redelivered.

    Example: kubestrata detect worker --redis redis://redis:6379/0 --state postgresql+psycopg://detect@db/detect"""
    from kubestrata.detect.streams import Layout, check_layout, connect, consumer_name
    from kubestrata.detect.worker import Worker

    if state is None:
        state = default_state_path()
    if state == ":memory:":
        raise KubestrataError("a worker needs a shared --state database (a file or a URL), not :memory:")
    config = build_config(
        cluster, state, tor_exit_list, malicious_ip_list, custom_threat_list, cloud_ranges, min_severity,
        disable, only, allowed_image, allowed_user, full_admin_user, allowed_node, dedup_window, max_event_bytes, learn,
        control_plane_identities,
    )  # fmt: skip
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    client = connect(redis_url)
    layout = Layout(prefix, partitions)
    check_layout(client, layout)
    sinks = build_sinks(True, alert_file, webhook, block=True, queue=queue, falco=fmt is WatchFormat.FALCO,
                        falcosidekick=falcosidekick)  # fmt: skip
    w = Worker(client, layout, config, sinks, consumer=consumer or consumer_name(), batch=batch,
               lease_ttl=lease_ttl, min_idle=min_idle, max_deliveries=max_deliveries)  # fmt: skip
    try:
        w.run(_stop_on_sigterm(), idle_exit=idle_exit)
    finally:
        for s in sinks:
            s.close()
    st = w.stats
    err_console.print(escape(f"{w.me}: {st.messages} messages, {st.findings} findings emitted, {st.dead} parked, "
                             f"{st.claimed} claimed from other workers, {st.trimmed} trimmed"))  # fmt: skip
    if stats_json:
        try:
            Path(stats_json).write_bytes(orjson.dumps(st.to_dict(), option=orjson.OPT_INDENT_2))
        except OSError as e:
            raise KubestrataError(f"cannot write {stats_json}: {e.strerror or e}") from None
