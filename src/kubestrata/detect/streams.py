"""Redis Streams transport for scale-out detection: the message envelope, partitioned streams,
the publisher, partition leases and the consumer-group operations a worker needs.

Layout (``prefix`` defaults to ``ks:events``):

- ``<prefix>:<p>`` for p in 0..partitions-1: the partition streams. An event goes to partition
  ``crc32(cluster \\x1f identity) % partitions``, so every event of one identity in one cluster lands
  in one stream; XADD trims each with ``MAXLEN ~``.
- one consumer group (``kubestrata-detect``) on every partition stream;
- ``<prefix>:lease:<p>``: which worker owns partition p (SET NX PX, renewed while alive). Only the
  owner reads a partition, so threshold windows and first-seen keys of an identity live in one
  process (see worker.py);
- ``<prefix>:workers``: a sorted set of live workers (score = last heartbeat), for the fair share;
- ``<prefix>:dead``: the dead-letter stream (the original fields plus ``reason``).

Envelope fields (all bytes): ``v`` (1), ``kind`` (``k8s-audit``; runtime and CloudTrail producers
register their own kinds with ``register_kind``), ``cluster``, ``origin`` (file:line, webhook,
log group/stream, Kinesis shard/sequence) and ``data`` (one event as JSON).

Redis 7.0 semantics used here: shared/reference/runtime-cloudtrail.md §6 (redis/docs xadd,
xreadgroup, xautoclaim, xpending, xack).
"""

from __future__ import annotations

import logging
import os
import socket
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from kubestrata.detect.decode import NotAudit, decode_cloudwatch_payload, iter_event_dicts, loads
from kubestrata.detect.escape import clean
from kubestrata.detect.event import BadEvent
from kubestrata.errors import KubestrataError

log = logging.getLogger("kubestrata.detect.streams")

ENVELOPE_VERSION = b"1"
GROUP = "kubestrata-detect"
DEFAULT_PREFIX = "ks:events"
DEFAULT_PARTITIONS = 16
DEFAULT_MAXLEN = 1_000_000  # per partition; ~ trimming (whole macro nodes), so a little more stays
DEAD_MAXLEN = 100_000
KIND_AUDIT = "k8s-audit"


# --- kinds: what may ride the envelope ---------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A message kind: how a producer splits a decoded document into events and which identity
    partitions them. ``split`` raises BadEvent / NotAudit like decode.iter_event_dicts."""

    name: str
    split: Callable[[Any], Iterator[dict[str, Any]]]
    identity: Callable[[dict[str, Any]], str]


def _audit_identity(ev: dict[str, Any]) -> str:
    user = ev.get("user")
    name = user.get("username") if type(user) is dict else None
    return name if type(name) is str else ""


KINDS: dict[str, Kind] = {KIND_AUDIT: Kind(KIND_AUDIT, iter_event_dicts, _audit_identity)}


def register_kind(kind: Kind) -> None:
    """Let another event family (runtime, CloudTrail) ride the same streams and workers."""
    KINDS[kind.name] = kind


# --- naming and connection ---------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    prefix: str = DEFAULT_PREFIX
    partitions: int = DEFAULT_PARTITIONS

    def stream(self, p: int) -> str:
        return f"{self.prefix}:{p}"

    def lease(self, p: int) -> str:
        return f"{self.prefix}:lease:{p}"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def handover(self, p: int) -> str:
        return f"{self.prefix}:handover:{p}"

    def window(self, key: str) -> str:
        return f"{self.prefix}:window:{key}"

    def partition_of(self, cluster: str, identity: str) -> int:
        return zlib.crc32(f"{cluster}\x1f{identity}".encode("utf-8", "surrogatepass")) % self.partitions

    def partition_number(self, stream: bytes | str) -> int:
        s = stream.decode() if isinstance(stream, bytes) else stream
        return int(s.rsplit(":", 1)[1])


def connect(url: str) -> Any:
    """A redis-py client for a redis:// or rediss:// URL; a clear error when Redis is unreachable."""
    try:
        import redis
    except ImportError:
        raise KubestrataError("the redis client is not installed: pip install 'kubestrata[redis]'") from None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise KubestrataError("--redis must be a redis://, rediss:// or unix:// URL")
    try:
        client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
        client.ping()
    except (redis.RedisError, ValueError) as e:
        # the message names host and port; a password in the URL is never echoed
        raise KubestrataError(f"cannot reach Redis: {str(e).splitlines()[0][:200]}") from None
    return client


def ensure_groups(client: Any, layout: Layout) -> None:
    """The consumer group on every partition stream (MKSTREAM; BUSYGROUP = already there)."""
    import redis

    for p in range(layout.partitions):
        try:
            client.xgroup_create(layout.stream(p), GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise


def check_layout(client: Any, layout: Layout) -> None:
    """Every producer and worker of a prefix must agree on the partition count (it decides where an
    identity's events go): the first one records it, the others compare."""
    key = f"{layout.prefix}:partitions"
    client.set(key, layout.partitions, nx=True)
    have = int(client.get(key) or layout.partitions)
    if have != layout.partitions:
        raise KubestrataError(
            f"{layout.prefix} is partitioned {have} ways, not {layout.partitions}: use --partitions {have}"
        )


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def dead_letter(
    pipe: Any,
    layout: Layout,
    stream: bytes | str,
    entry_id: bytes | str,
    fields: dict[bytes, bytes],
    reason: str,
) -> None:
    """Queue (on a redis pipeline) the park-and-acknowledge of one entry: the original fields plus
    the reason go to the dead-letter stream, and the entry leaves the group's pending list."""
    parked = {k: v for k, v in fields.items() if k != b"reason"}
    parked[b"reason"] = clean(reason, 500).encode()
    parked[b"stream"] = stream if isinstance(stream, bytes) else stream.encode()
    parked[b"entry"] = entry_id if isinstance(entry_id, bytes) else entry_id.encode()
    pipe.xadd(layout.dead, parked, maxlen=DEAD_MAXLEN, approximate=True)
    pipe.xack(stream, GROUP, entry_id)


# --- the publisher -----------------------------------------------------------------------------


@dataclass
class PublishStats:
    documents: int = 0
    events: int = 0
    bad: int = 0
    ignored: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"documents": self.documents, "events": self.events, "bad": self.bad, "ignored": self.ignored}


class Publisher:
    """Splits documents into events and XADDs each to its identity's partition, in pipelined
    batches. Undecodable documents go straight to the dead-letter stream with the reason (the
    producer has already judged them; a worker would only park them again)."""

    BATCH = 500

    def __init__(
        self,
        client: Any,
        layout: Layout,
        cluster: str = "",
        kind: str = KIND_AUDIT,
        maxlen: int = DEFAULT_MAXLEN,
        max_event_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        if kind not in KINDS:
            raise KubestrataError(f"unknown message kind {kind!r} (known: {', '.join(sorted(KINDS))})")
        self.client = client
        self.layout = layout
        self.cluster = cluster
        self.kind = KINDS[kind]
        self.maxlen = maxlen
        self.max_event_bytes = max_event_bytes
        self.stats = PublishStats()
        self._pipe = client.pipeline(transaction=False)
        self._queued = 0
        self._cluster_b = cluster.encode()
        self._kind_b = kind.encode()

    def publish_line(self, line: bytes, origin: str = "") -> int:
        """One JSON document (a JSONL line, a webhook body, a CloudWatch payload): its events."""
        self.stats.documents += 1
        stripped = line.strip()
        if not stripped:
            return 0
        if len(stripped) > self.max_event_bytes:
            self._park(stripped[:1024], origin, f"oversize: {len(stripped)} bytes > {self.max_event_bytes}")
            return 0
        try:
            if stripped[:4] == b"H4sI" or stripped[:2] == b"\x1f\x8b":
                obj = decode_cloudwatch_payload(stripped)
                stripped = b""  # wrapped: the events are re-encoded one by one
            else:
                obj = loads(stripped)
        except BadEvent as e:
            self._park(stripped, origin, f"undecodable: {e.reason}")
            return 0
        return self.publish_obj(obj, origin, stripped)

    def publish_obj(self, obj: Any, origin: str = "", original: bytes = b"") -> int:
        """The events of a decoded document. ``original``: the document's bytes, forwarded as-is
        when the document is a single event (no re-encoding on the common path)."""
        n = 0
        try:
            events = list(self.kind.split(obj))
        except NotAudit:
            self.stats.ignored += 1
            return 0
        except BadEvent as e:
            self._park(original or _dump(obj), origin, f"bad document: {e}")
            return 0
        single = len(events) == 1 and events[0] is obj and original
        for ev in events:
            data = original if single else _dump(ev)
            p = self.layout.partition_of(self.cluster, self.kind.identity(ev))
            self._pipe.xadd(
                self.layout.stream(p),
                {b"v": ENVELOPE_VERSION, b"kind": self._kind_b, b"cluster": self._cluster_b,
                 b"origin": origin.encode("utf-8", "replace")[:512], b"data": data},
                maxlen=self.maxlen,
                approximate=True,
            )  # fmt: skip
            n += 1
            self._queued += 1
            if self._queued >= self.BATCH:
                self.flush()
        self.stats.events += n
        return n

    def _park(self, data: bytes, origin: str, reason: str) -> None:
        self.stats.bad += 1
        fields = {b"v": ENVELOPE_VERSION, b"kind": self._kind_b, b"cluster": self._cluster_b,
                  b"origin": origin.encode("utf-8", "replace")[:512], b"data": data,
                  b"reason": clean(reason, 500).encode()}  # fmt: skip
        self._pipe.xadd(self.layout.dead, fields, maxlen=DEAD_MAXLEN, approximate=True)
        self._queued += 1
        if self.stats.bad <= 5:
            log.warning(
                "parked bad input from %s in %s: %s", clean(origin, 200), self.layout.dead, clean(reason, 200)
            )

    def discard(self) -> None:
        """Drop what is queued (after a failed flush: the caller reports the failure upstream)."""
        self._pipe.reset()
        self._queued = 0

    def flush(self) -> None:
        """Send what is queued; returns once Redis has every entry (the caller may then checkpoint)."""
        if self._queued:
            self._pipe.execute()
            self._queued = 0


def _dump(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:
        return repr(obj).encode("utf-8", "replace")


# --- partition leases ----------------------------------------------------------------------------

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Leases:
    """Which partitions this worker owns. Every ``tick``: heartbeat, renew what it owns (a lease
    it lost is dropped), then take free partitions up to its fair share ceil(partitions / live
    workers) or give back the ones above it. A dead worker's leases expire after ``ttl``; the
    survivors then take its partitions (and, through XAUTOCLAIM, its pending entries)."""

    def __init__(self, client: Any, layout: Layout, me: str, ttl: float = 10.0) -> None:
        self.client = client
        self.layout = layout
        self.me = me
        self.me_b = me.encode()
        self.ttl_ms = int(ttl * 1000)
        self.owned: set[int] = set()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        start = zlib.crc32(self.me_b) % layout.partitions
        self._order = [(start + i) % layout.partitions for i in range(layout.partitions)]

    def live_workers(self, now_ms: int) -> int:
        c, key = self.client, self.layout.workers
        p = c.pipeline(transaction=False)
        p.zadd(key, {self.me: now_ms})
        p.zremrangebyscore(key, "-inf", now_ms - self.ttl_ms)
        p.zcard(key)
        return max(1, int(p.execute()[-1]))

    def tick(self, now_ms: int, before_release: Callable[[set[int]], None]) -> tuple[set[int], set[int]]:
        """(gained, lost) partitions. ``before_release(parts)`` runs before a lease is given back
        (flush state, acknowledge: the next owner must find everything written)."""
        share = -(-self.layout.partitions // self.live_workers(now_ms))
        lost: set[int] = set()
        for p in sorted(self.owned):
            if not self._renew(keys=[self.layout.lease(p)], args=[self.me_b, self.ttl_ms]):
                lost.add(p)
        self.owned -= lost
        if len(self.owned) > share:
            extra = set(sorted(self.owned, key=self._order.index)[share:])
            before_release(extra)
            for p in extra:
                self._release(keys=[self.layout.lease(p)], args=[self.me_b])
            self.owned -= extra
            lost |= extra
        gained: set[int] = set()
        for p in self._order:
            if len(self.owned) >= share:
                break
            if p not in self.owned and self.client.set(
                self.layout.lease(p), self.me_b, nx=True, px=self.ttl_ms
            ):
                self.owned.add(p)
                gained.add(p)
        return gained, lost

    def release_all(self) -> None:
        for p in self.owned:
            self._release(keys=[self.layout.lease(p)], args=[self.me_b])
        self.owned = set()
        self.client.zrem(self.layout.workers, self.me)


# --- shared sliding windows (threshold rules keyed by something other than the identity) -------

_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then redis.call('DEL', KEYS[1]) return n end
redis.call('PEXPIRE', KEYS[1], math.floor(tonumber(ARGV[2]) * 1000) + 1000)
return 0
"""


class SharedWindows:
    """A sliding-window count in Redis, atomic across workers (one Lua call per counted event).
    The member is the event's id (or the distinct value), so a redelivered event is not counted
    twice; reaching the threshold deletes the window, so one burst gives one finding."""

    def __init__(self, client: Any, layout: Layout) -> None:
        self.layout = layout
        self._script = client.register_script(_WINDOW)

    def count(self, key: str, now: float, window: float, threshold: int, member: str) -> int | None:
        n = int(self._script(keys=[self.layout.window(key)], args=[now, window, threshold, member]))
        return n or None


def entries(reply: Iterable[Any]) -> Iterator[tuple[bytes, bytes, dict[bytes, bytes] | None]]:
    """(stream, id, fields) from an XREADGROUP reply (redis-py, RESP2: [[stream, [(id, fields)]]])."""
    for stream, msgs in reply:
        for entry_id, fields in msgs:
            yield stream, entry_id, fields
