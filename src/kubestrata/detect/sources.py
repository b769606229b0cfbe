"""Event sources: JSONL files and stdin (optionally followed like ``tail -f``), and a CloudWatch
Logs FilterLogEvents poller over an EKS cluster's ``kube-apiserver-audit-*`` streams with a
checkpoint file, so that a restart neither loses nor repeats events.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from kubestrata.errors import KubestrataError

log = logging.getLogger("kubestrata.detect.sources")

READ_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class Oversize:
    """A line longer than the limit, skipped without holding it in memory."""

    length: int


def read_lines(fh: IO[bytes], max_bytes: int) -> Iterator[bytes | Oversize]:
    """Complete lines (without the newline) from a binary stream; a line longer than max_bytes
    yields Oversize and is discarded chunk by chunk, so memory stays bounded. A final line without
    a newline is yielded at EOF."""
    while True:
        line = fh.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and not line.endswith(b"\n"):
            n = len(line)
            while True:
                chunk = fh.readline(READ_CHUNK)
                n += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield Oversize(n)
            continue
        yield line.rstrip(b"\r\n")


def follow_lines(
    path: str,
    max_bytes: int,
    stop: threading.Event | None = None,
    poll: float = 0.25,
    from_start: bool = True,
) -> Iterator[bytes | Oversize | None]:
    """``tail -F``: yield lines as they are appended; reopen when the file is rotated (new inode)
    or truncated. Yields None when idle so the caller can flush; stops when ``stop`` is set."""
    stop = stop or threading.Event()
    fh: IO[bytes] | None = None
    ino = None
    pending = b""
    while not stop.is_set():
        if fh is None:
            try:
                fh = open(path, "rb")  # noqa: SIM115 - kept open across iterations
            except FileNotFoundError:
                stop.wait(poll)
                continue
            except OSError as e:
                raise KubestrataError(f"cannot read {path}: {e.strerror or e}") from None
            ino = os.fstat(fh.fileno()).st_ino
            if not from_start:
                fh.seek(0, os.SEEK_END)
            from_start = True  # a rotated file is read from its start
        chunk = fh.readline(max_bytes + 1 - len(pending))
        if chunk:
            pending += chunk
            if pending.endswith(b"\n"):
                yield pending.rstrip(b"\r\n")
                pending = b""
            elif len(pending) > max_bytes:
                n = len(pending)
                pending = b""
                while True:  # discard the rest of the oversize line as it arrives
                    c = fh.readline(READ_CHUNK)
                    n += len(c)
                    if c.endswith(b"\n"):
                        break
                    if not c:
                        if stop.wait(poll):
                            return
                yield Oversize(n)
            continue
        # at EOF: rotated or truncated?
        try:
            st = os.stat(path)
            rotated = st.st_ino != ino or st.st_size < fh.tell()
        except FileNotFoundError:
            rotated = False
        if rotated:
            if pending:
                yield pending
                pending = b""
            fh.close()
            fh = None
            continue
        yield None
        stop.wait(poll)
    if fh is not None:
        fh.close()


# --- CloudWatch Logs -------------------------------------------------------------------------


class Checkpoint:
    """Poller position: the highest event timestamp processed and the ids of events at or after
    ``high - lookback`` (those a re-query can return again). Written atomically."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.high = 0
        self.ids: dict[str, int] = {}  # eventId -> timestamp (ms)
        if path and os.path.exists(path):
            try:
                doc = orjson.loads(Path(path).read_bytes())
                self.high = int(doc["high"])
                self.ids = {str(k): int(v) for k, v in doc["ids"].items()}
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                raise KubestrataError(
                    f"checkpoint {path} is unreadable; move it away to start over"
                ) from None

    def seen(self, event_id: str) -> bool:
        return event_id in self.ids

    def add(self, event_id: str, ts: int) -> None:
        self.ids[event_id] = ts
        if ts > self.high:
            self.high = ts

    def prune(self, lookback_ms: int) -> None:
        floor = self.high - lookback_ms
        self.ids = {k: v for k, v in self.ids.items() if v >= floor}

    def save(self) -> None:
        if not self.path:
            return
        d = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".ckpt-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps({"high": self.high, "ids": self.ids}))
        os.replace(tmp, self.path)


class CloudWatchPoller:
    """FilterLogEvents over ``/aws/eks/<cluster>/cluster``, streams ``kube-apiserver-audit-*``
    (the streams rotate, so a prefix, not names). EKS delivery is best effort and late, so each
    poll re-reads ``lookback`` seconds before the high-water mark and drops event ids already
    processed (kept in the checkpoint)."""

    def __init__(
        self,
        client: Any,
        cluster: str | None = None,
        log_group: str | None = None,
        stream_prefix: str = "kube-apiserver-audit-",
        checkpoint: str | None = None,
        lookback: float = 300.0,
        start_time_ms: int | None = None,
        filter_pattern: str | None = None,
        page_limit: int = 10_000,
    ) -> None:
        if not log_group and not cluster:
            raise KubestrataError("CloudWatch source needs --cluster or --log-group")
        self.client = client
        self.log_group = log_group or f"/aws/eks/{cluster}/cluster"
        self.prefix = stream_prefix
        self.ckpt = Checkpoint(checkpoint)
        self.lookback_ms = int(lookback * 1000)
        self.start_time_ms = start_time_ms
        self.filter_pattern = filter_pattern
        self.page_limit = page_limit
        self.polled_events = 0
        self.skipped_repeats = 0

    def poll_once(self, handle: Callable[[str, str], None]) -> int:
        """One pass to the current end; ``handle(message, origin)`` per new event. Returns the
        number of new events."""
        if self.ckpt.high:
            start = max(0, self.ckpt.high - self.lookback_ms)
        else:
            start = self.start_time_ms if self.start_time_ms is not None else 0
        kwargs: dict[str, Any] = {
            "logGroupName": self.log_group,
            "logStreamNamePrefix": self.prefix,
            "startTime": start,
            "limit": self.page_limit,
        }
        if self.filter_pattern:
            kwargs["filterPattern"] = self.filter_pattern
        new = 0
        token = None
        while True:
            if token:
                kwargs["nextToken"] = token
            try:
                resp = self.client.filter_log_events(**kwargs)
            except Exception as e:  # botocore ClientError / EndpointConnectionError
                raise KubestrataError(f"FilterLogEvents on {self.log_group}: {e}") from None
            for le in resp.get("events", []):
                stream = le.get("logStreamName", "")
                if not stream.startswith(self.prefix):
                    continue  # the prefix is also a filter on our side: never trust the server alone
                eid = le.get("eventId") or _fallback_id(stream, le)
                if self.ckpt.seen(eid):
                    self.skipped_repeats += 1
                    continue
                handle(le.get("message", ""), f"{self.log_group}/{stream}")
                self.ckpt.add(eid, int(le.get("timestamp") or 0))
                new += 1
            self.ckpt.prune(self.lookback_ms)
            self.ckpt.save()  # after each page: a crash repeats at most one page
            token = resp.get("nextToken")
            if not token:
                break
        self.polled_events += new
        return new

    def run(
        self,
        handle: Callable[[str, str], None],
        stop: threading.Event,
        interval: float = 5.0,
        after_poll: Callable[[], None] | None = None,
    ) -> None:
        while not stop.is_set():
            try:
                self.poll_once(handle)
            except KubestrataError as e:
                log.warning("%s; retrying in %.0fs", e, interval)
            if after_poll is not None:
                after_poll()
            stop.wait(interval)


def _fallback_id(stream: str, le: dict[str, Any]) -> str:
    digest = hashlib.sha256(str(le.get("message")).encode("utf-8", "replace")).hexdigest()[:24]
    return f"{stream}/{le.get('timestamp')}/{digest}"


def cloudwatch_client(
    region: str | None = None, endpoint_url: str | None = None, profile: str | None = None
) -> Any:
    import boto3

    session = boto3.session.Session(profile_name=profile, region_name=region)
    return session.client("logs", endpoint_url=endpoint_url)


def time_now_ms() -> int:
    return int(time.time() * 1000)
