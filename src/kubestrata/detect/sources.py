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
from io import BytesIO
from pathlib import Path
from typing import IO, Any

import orjson

from kubestrata.errors import KubestrataError

log = logging.getLogger("kubestrata.detect.sources")

READ_CHUNK = 1 << 16
READ_BLOCK = 1 << 18


@dataclass(frozen=True, slots=True)
class Oversize:
    """A line longer than the limit, skipped without holding it in memory."""

    length: int


def read_lines(fh: IO[bytes], max_bytes: int) -> Iterator[bytes | Oversize]:
    """Complete lines (without the newline and trailing carriage returns) from a binary stream; a line
    longer than max_bytes yields Oversize (its length, the newline included) and is discarded as it
    is read, so memory stays bounded. A final line without a newline is yielded at EOF."""
    for lines in read_line_blocks(fh, max_bytes):
        yield from lines


def read_line_blocks(fh: IO[bytes], max_bytes: int) -> Iterator[list[bytes | Oversize]]:
    """read_lines, a list of lines at a time (the lines of one read).

    Read in blocks split in C (``read1``: what is available, so a live pipe is not held back), not
    ``readline`` per line: the per-line call was a few µs of every replayed event. A block without a
    carriage return or an oversize line (the usual one) is handed on as split, without a step per line."""
    read = getattr(fh, "read1", fh.read)
    rest = b""
    skipped = -1  # >= 0: inside an oversize line, this many of its bytes seen
    while True:
        block = read(READ_BLOCK)
        if not block:
            if skipped >= 0:
                yield [Oversize(skipped + len(rest))]
            elif len(rest) > max_bytes:
                yield [Oversize(len(rest))]
            elif rest:
                yield [rest.rstrip(b"\r\n")]
            return
        head: list[bytes | Oversize] = []
        if skipped >= 0:
            end = block.find(b"\n")
            if end < 0:
                skipped += len(block)
                continue
            head.append(Oversize(skipped + end + 1))
            skipped = -1
            block = block[end + 1 :]
        data = rest + block if rest else block
        # the lines with their newlines (the last one without, when unfinished): BytesIO finds each
        # newline with memchr, where bytes.split(b"\n") looks at every byte (~4 instructions a byte,
        # ~5k of a usual audit line); each line's one newline is then stripped
        ends = BytesIO(data).readlines()
        rest = ends.pop() if ends and ends[-1][-1:] != b"\n" else b""
        lines: list[bytes | Oversize]
        # (no line is longer than the data it was split from: the usual block needs no look at each)
        if b"\r" in data or (len(data) > max_bytes and ends and max(map(len, ends)) > max_bytes + 1):
            lines = [Oversize(len(x)) if len(x) > max_bytes + 1 else x.rstrip(b"\r\n") for x in ends]
        else:
            lines = [x.rstrip(b"\n") for x in ends]  # (one newline: exactly the split's line)
        if head or lines:
            yield head + lines if head else lines
        if len(rest) > max_bytes:  # an oversize line still being read: count it, do not keep it
            skipped, rest = len(rest), b""


@dataclass(frozen=True, slots=True)
class FilePosition:
    """Where a follower stands: the file (device, inode) and the offset just after the last line
    it handed out."""

    device: int
    inode: int
    offset: int
    head: str = ""  # digest of the file's first bytes (up to HEAD_BYTES, never past offset)


HEAD_BYTES = 256


def head_digest(fd: int, offset: int) -> str:
    """Identifies a file beyond its inode (which a filesystem reuses once a rotated file is
    deleted): the bytes before a read position of an append-only log never change."""
    return hashlib.sha256(os.pread(fd, min(offset, HEAD_BYTES), 0)).hexdigest()[:32]


def find_by_inode(path: str, device: int, inode: int) -> str | None:
    """The file in ``path``'s directory with this (device, inode): where a rotation moved it
    (audit.log.1 for logrotate, audit-<time>.log for the API server's own rotation)."""
    d = os.path.dirname(os.path.abspath(path))
    try:
        with os.scandir(d) as it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_ino == inode and st.st_dev == device and entry.is_file(follow_symlinks=False):
                    return entry.path
    except OSError:
        return None
    return None


class FileFollower:
    """``tail -F`` with a position: iterate for lines as they are appended (None when idle, so
    the caller can flush and save ``position``); reopens when the file is rotated (new inode) or
    truncated; stops when ``stop`` is set.

    ``resume``: a saved FilePosition. Same inode: continue at its offset (from 0 if the file is
    now shorter: truncated). Another inode: the file was rotated while we were stopped; the rest
    of the old file is read first if it is still in the directory, else the new file is read
    from 0. Each case is logged, because the last one can lose the old file's tail."""

    def __init__(
        self,
        path: str,
        max_bytes: int,
        stop: threading.Event | None = None,
        poll: float = 0.25,
        from_start: bool = True,
        resume: FilePosition | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.stop = stop or threading.Event()
        self.poll = poll
        self.from_start = from_start
        self.resume = resume
        self.position: FilePosition | None = None
        self._fh: IO[bytes] | None = None
        self._head: tuple[tuple[int, int], str] | None = None  # the full-length head digest, once known
        self.notes: list[str] = []  # what resuming did, for the caller to report

    def _at(self, fh: IO[bytes], dev: Any, ino: Any) -> None:
        self._fh = fh
        self.position = FilePosition(dev, ino, fh.tell())

    def saved_position(self) -> FilePosition | None:
        """The position with the digest of the file's head, for saving (one small pread)."""
        p, fh = self.position, self._fh
        if p is None:
            return None
        cached = self._head
        if cached is not None and cached[0] == (p.device, p.inode) and p.offset >= HEAD_BYTES:
            return FilePosition(p.device, p.inode, p.offset, cached[1])
        if fh is None or fh.closed:
            return p
        try:
            digest = head_digest(fh.fileno(), p.offset)
        except OSError:
            return p
        if p.offset >= HEAD_BYTES:
            self._head = ((p.device, p.inode), digest)
        return FilePosition(p.device, p.inode, p.offset, digest)

    def _note(self, msg: str) -> None:
        self.notes.append(msg)
        log.warning("%s", msg)

    def _open_resumed(self) -> tuple[IO[bytes] | None, bool]:
        """(file to read first, whether it is a rotated old file), following ``resume``."""
        r, self.resume = self.resume, None
        assert r is not None
        self.from_start = True  # with a saved position, every file opened later is new: read it all
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == (r.device, r.inode):
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open across iterations
            if os.fstat(fh.fileno()).st_size < r.offset:
                self._note(
                    f"{self.path} is shorter than the saved position {r.offset} (truncated): reading from 0"
                )
            elif r.head and head_digest(fh.fileno(), r.offset) != r.head:
                self._note(
                    f"{self.path} is not the file the saved position belongs to (same inode, other content: "
                    f"the old file was rotated away and deleted): reading it from 0; lines written to the "
                    f"old file after byte {r.offset} are not read"
                )
            else:
                fh.seek(r.offset)
                self._note(f"resuming {self.path} at byte {r.offset}")
            return fh, False
        old = find_by_inode(self.path, r.device, r.inode)
        if old is not None and r.head:
            with open(old, "rb") as probe:
                if head_digest(probe.fileno(), r.offset) != r.head:
                    old = None
        if old is not None:
            fh = open(old, "rb")  # noqa: SIM115
            fh.seek(min(r.offset, os.fstat(fh.fileno()).st_size))
            self._note(
                f"{self.path} was rotated while stopped: reading the rest of {old} from byte {r.offset} first"
            )
            return fh, True
        self._note(
            f"{self.path} was rotated while stopped and the old file (inode {r.inode}) is gone: reading the "
            f"new file from 0; lines written to the old file after byte {r.offset} are not read"
        )
        return None, False

    def __iter__(self) -> Iterator[bytes | Oversize | None]:
        stop, poll, max_bytes, path = self.stop, self.poll, self.max_bytes, self.path
        fh: IO[bytes] | None = None
        draining_old = False  # reading a rotated file found at resume: move on at its EOF
        ino = dev = None
        pending = b""
        if self.resume is not None:
            fh, draining_old = self._open_resumed()
            if fh is not None:
                st = os.fstat(fh.fileno())
                dev, ino = st.st_dev, st.st_ino
                self._at(fh, dev, ino)
        while not stop.is_set():
            if fh is None:
                try:
                    fh = open(path, "rb")  # noqa: SIM115 - kept open across iterations
                except FileNotFoundError:
                    stop.wait(poll)
                    continue
                except OSError as e:
                    raise KubestrataError(f"cannot read {path}: {e.strerror or e}") from None
                st = os.fstat(fh.fileno())
                dev, ino = st.st_dev, st.st_ino
                if not self.from_start:
                    fh.seek(0, os.SEEK_END)
                self.from_start = True  # a rotated file is read from its start
                self._at(fh, dev, ino)
            chunk = fh.readline(max_bytes + 1 - len(pending))
            if chunk:
                pending += chunk
                if pending.endswith(b"\n"):
                    self._at(fh, dev, ino)
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
                    self._at(fh, dev, ino)
                    yield Oversize(n)
                continue
            # at EOF: rotated or truncated?
            if draining_old:
                rotated = True
            else:
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
                draining_old = False
                continue
            yield None
            stop.wait(poll)
        if fh is not None:
            fh.close()


def follow_lines(
    path: str,
    max_bytes: int,
    stop: threading.Event | None = None,
    poll: float = 0.25,
    from_start: bool = True,
) -> Iterator[bytes | Oversize | None]:
    """``tail -F`` without a saved position (see FileFollower)."""
    return iter(FileFollower(path, max_bytes, stop, poll, from_start))


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

    def poll_once(self, handle: Callable[[str, str], object]) -> int:
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
        handle: Callable[[str, str], object],
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
