"""`kubestrata detect watch`: follow a file or stdin (keeping the read position in the state database)
or poll CloudWatch Logs, streaming findings to the sinks. Registered on the detect app by cli/detect.py."""

from __future__ import annotations

import logging
import os
import signal
import threading

import typer

from kubestrata.cli import options
from kubestrata.cli.common import err_console, escape
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
    INPUT_FORMAT,
    LEARN,
    MAL,
    MAXB,
    MINSEV,
    ONLY,
    QUEUE,
    SEQUENCES,
    STATE,
    TOR,
    WEBHOOK,
    WatchFormat,
    build_config,
    build_sinks,
    default_state_path,
)
from kubestrata.detect.pipeline import Pipeline
from kubestrata.detect.router import DetectRouter, InputFormat, feed_lines, open_input
from kubestrata.detect.sources import Oversize
from kubestrata.errors import KubestrataError
from kubestrata.report.detect import stats_line


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

            def handle(line: str, origin: str) -> None:  # the poller takes no findings back
                pipe.process_line(line, origin)

            if once:
                poller.poll_once(handle)
            else:
                poller.run(handle, stop, interval, after_poll=pipe.flush)
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
    pipe: DetectRouter, file: str, cluster: str, stop: threading.Event, from_start: bool, once: bool
) -> None:
    """Follow FILE, keeping the read position (device, inode, offset) in the state database:
    saved after each batch's findings are written, resumed from on the next start."""
    import time

    from kubestrata.detect.sources import FileFollower, FilePosition
    from kubestrata.detect.statedb import WatchPositions

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


def _feed_file(pipe: Pipeline | DetectRouter, path: str) -> None:
    """A file or stdin as plain JSON lines, as they arrive (watch: no look-ahead at the first
    bytes, unlike feed_file's sniffing of whole documents)."""
    with open_input(path) as (fh, name):
        feed_lines(pipe, fh, name)
