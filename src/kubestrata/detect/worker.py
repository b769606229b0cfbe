"""A detection worker: one member of the consumer group on the partition streams (streams.py).

Correctness across workers, and why it is built this way:

- **Partitioned by cluster + identity.** A worker reads only the partitions it leases, and every
  event of one identity is in one partition, so the threshold windows keyed by the identity
  (KS-AUD-N13, N14) and the first-seen keys that start with the identity (``user|...``) are decided
  in one process with no round trip per event. Keeping every window in shared state instead would
  cost a network round trip on every counted event.
- **What is not per identity is shared.** A window keyed by something else (N18: a source IP seen
  from many identities) is counted atomically in Redis (streams.SharedWindows); a first-seen key
  that does not start with the identity (an image) is claimed atomically in the state database
  (INSERT ... ON CONFLICT DO NOTHING RETURNING).
- **At least once.** An entry is acknowledged only after its first-seen keys and findings are
  written to the state database and its findings are written to the outputs. A worker killed
  mid-batch leaves its entries pending; its leases expire and the partition's next owner claims
  them with XAUTOCLAIM after ``min_idle``.
- **Findings idempotent by fingerprint.** A finding is emitted only if this worker's insert into
  the shared ``ks_findings`` table (primary key: the fingerprint) inserted the row, or re-opened it
  after the dedup window (``ON CONFLICT DO UPDATE ... WHERE last_seen <= now - window RETURNING``).
  A redelivered event, on any worker, finds its finding's row and emits nothing. The database, not a
  Redis key with a TTL, holds this because it is already the durable record of findings
  (``kubestrata detect findings``), survives a Redis restart, and the check costs one statement per
  batch, not per finding.
- **Poison.** An entry that cannot be decoded, is not a valid event, or raises, is parked in the
  dead-letter stream with the reason and acknowledged. An entry delivered more than
  ``max_deliveries`` times (workers died on it) is parked without being run again.

Moving partitions: the new owner reloads first-seen keys from the database and takes the open
windows the old owner left in Redis (``<prefix>:handover:<p>``) when it let go cleanly. A worker
that dies takes its open windows with it: a burst that straddles the death can need up to one more
threshold's worth of events.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.pipeline import DetectConfig, Pipeline, _Window, parse_time
from kubestrata.detect.state import FindingsStore, FirstSeen, db_text
from kubestrata.detect.statedb import findings_table, first_seen_table, insert_for
from kubestrata.detect.streams import (
    GROUP,
    KIND_AUDIT,
    Layout,
    Leases,
    SharedWindows,
    dead_letter,
    ensure_groups,
    entries,
)
from kubestrata.errors import KubestrataError
from kubestrata.findings import Finding

log = logging.getLogger("kubestrata.detect.worker")


# --- shared state -------------------------------------------------------------------------------


class FleetFirstSeen(FirstSeen):
    """First-seen with an atomic claim for keys other workers may meet too."""

    def claim(self, cluster: str, dimension: str, key: str) -> bool:
        k = (db_text(cluster, 253), dimension, db_text(key, 1024))
        if k in self._known:
            return False
        if self.engine is None:
            self._known.add(k)
            return True
        stmt = (
            insert_for(self.engine.dialect.name, first_seen_table)
            .values(cluster=k[0], dimension=k[1], key=k[2], first_seen=time.time())
            .on_conflict_do_nothing()
            .returning(first_seen_table.c.key)
        )
        try:
            with self.engine.begin() as conn:
                new = conn.execute(stmt).first() is not None
        except OperationalError as e:  # unreachable: treat as new rather than stop ingesting
            self.outage.failed(e, len(self._pending))
            new = True
        self._known.add(k)
        return new

    def reload(self) -> None:
        """Keys written by other workers (a partition moved here): read them again."""
        if self.engine is None:
            return
        self.flush(force=True)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(
                        first_seen_table.c.cluster, first_seen_table.c.dimension, first_seen_table.c.key
                    ).limit(self.MAX_CACHE + 1)
                ).all()
        except OperationalError as e:
            self.outage.failed(e, len(self._pending))
            self._complete = False  # misses now ask the database
            return
        self._complete = self._complete and len(rows) <= self.MAX_CACHE
        self._known.update((r[0], r[1], r[2]) for r in rows[: self.MAX_CACHE])


class SharedFindings:
    """Emit-once by fingerprint in the shared ``ks_findings`` table (see the module docstring)."""

    def __init__(self, engine: Engine, window: float) -> None:
        self.engine = engine
        self.window = window
        stmt = insert_for(engine.dialect.name, findings_table)
        cond = findings_table.c.last_seen <= stmt.excluded.first_seen - window if window > 0 else None
        self.stmt = stmt.on_conflict_do_update(
            index_elements=[findings_table.c.fingerprint],
            set_={
                "last_seen": stmt.excluded.last_seen,
                "count": findings_table.c.count + 1,
                "finding": stmt.excluded.finding,
            },
            where=cond,
        ).returning(findings_table.c.fingerprint)

    def commit(self, findings: list[tuple[Finding, float]]) -> list[Finding]:
        """The findings to emit: those whose row this call inserted or re-opened. Raises
        SQLAlchemyError when the database is unreachable (the caller then acknowledges nothing)."""
        if not findings:
            return []
        rows: dict[str, dict[str, Any]] = {}
        by_fp: dict[str, Finding] = {}
        for f, when in findings:
            fp = f.fingerprint
            if fp in rows:  # one statement may not touch a row twice (PostgreSQL)
                continue
            by_fp[fp] = f
            rows[fp] = {"fingerprint": fp, "rule_id": f.rule_id, "severity": f.severity.value,
                        "first_seen": when, "last_seen": when, "count": 1,
                        "finding": orjson.dumps(f.to_dict()).decode()}  # fmt: skip
        with self.engine.begin() as conn:
            # fingerprint order: concurrent workers lock rows in one order and cannot deadlock
            won = {r[0] for r in conn.execute(self.stmt, [rows[k] for k in sorted(rows)])}
        return [f for fp, f in by_fp.items() if fp in won]


class FleetPipeline(Pipeline):
    """The detection pipeline of one cluster inside a worker."""

    def __init__(self, config: DetectConfig, windows: SharedWindows | None) -> None:
        self.windows = windows
        self._cur_user = ""
        self._cur_id = ""
        super().__init__(config, sinks=[])

    def make_first_seen(self, engine: Engine | None) -> FirstSeen:
        return FleetFirstSeen(engine)

    def make_store(self, engine: Engine | None) -> FindingsStore:
        # in-process dedup only: the shared table decides what is emitted (SharedFindings)
        return FindingsStore(None, self.config.dedup_window)

    def process_event(self, ev: AuditEvent) -> list[Finding]:
        self._cur_user = ev.user
        self._cur_id = f"{ev.audit_id}/{ev.stage}" if ev.audit_id else uuid.uuid4().hex
        return super().process_event(ev)

    def first_seen(self, dimension: str, key: str) -> bool:
        if key.startswith(self._cur_user + "|"):
            return super().first_seen(dimension, key)  # partition-local: this worker owns the identity
        assert isinstance(self._first_seen, FleetFirstSeen)
        return self._first_seen.claim(self.config.cluster, dimension, key)

    def count(self, rule_id: str, key: str, ev: AuditEvent, distinct: str = "") -> int | None:
        if self.windows is None or key == ev.user:
            return super().count(rule_id, key, ev, distinct)
        threshold = self.config.thresholds.get(rule_id, 1)
        window = self.config.windows.get(rule_id, 900.0)
        now = parse_time(ev.timestamp) or time.time()
        return self.windows.count(
            f"{self.config.cluster}\x1f{rule_id}\x1f{key}", now, window, threshold, distinct or self._cur_id
        )

    def reload(self) -> None:
        assert isinstance(self._first_seen, FleetFirstSeen)
        self._first_seen.reload()


# --- message kinds a worker can run -------------------------------------------------------------

Handler = Callable[["Worker", str, Any, str], list[Finding]]


def _run_audit(worker: Worker, cluster: str, obj: Any, origin: str) -> list[Finding]:
    pipe = worker.pipeline_for(cluster)
    bad = pipe.stats.bad_total
    out = pipe.process_obj(obj, origin)
    if pipe.stats.bad_total > bad:
        sample = pipe.stats.samples[-1] if pipe.stats.samples else {}
        raise Poison(f"bad event: {sample.get('detail', 'invalid')}")
    return out


HANDLERS: dict[str, Handler] = {KIND_AUDIT: _run_audit}


def register_handler(kind: str, handler: Handler) -> None:
    """Run messages of ``kind`` (streams.register_kind) with ``handler(worker, cluster, obj, origin)``
    -> finding dicts (each with ``fingerprint``, ``ruleId``, ``severity`` and ``time``)."""
    HANDLERS[kind] = handler


class Poison(Exception):
    """This message can never be processed: park it."""


# --- the worker ---------------------------------------------------------------------------------


@dataclass
class WorkerStats:
    messages: int = 0
    findings: int = 0
    dead: int = 0
    claimed: int = 0
    trimmed: int = 0
    batches: int = 0
    state_retries: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Worker:
    def __init__(
        self,
        client: Any,
        layout: Layout,
        config: DetectConfig,
        sinks: list[Any],
        *,
        consumer: str,
        batch: int = 500,
        block_ms: int = 1000,
        lease_ttl: float = 10.0,
        min_idle: float = 30.0,
        max_deliveries: int = 5,
        tick: float = 1.0,
    ) -> None:
        if not config.state_url:
            raise ValueError("a worker needs a shared state database (state_url)")
        self.client = client
        self.layout = layout
        self.config = config
        self.sinks = sinks
        self.me = consumer
        self.batch = batch
        self.block_ms = block_ms
        self.min_idle_ms = int(min_idle * 1000)
        self.max_deliveries = max_deliveries
        self.tick_seconds = tick
        self.leases = Leases(client, layout, consumer, lease_ttl)
        self.windows = SharedWindows(client, layout)
        self.stats = WorkerStats()
        self.pipelines: dict[str, FleetPipeline] = {}
        self._shared: SharedFindings | None = None

    def pipeline_for(self, cluster: str) -> FleetPipeline:
        pipe = self.pipelines.get(cluster)
        if pipe is None:
            if len(self.pipelines) >= 256:
                raise Poison(f"more than 256 clusters in one worker; cluster {cluster[:64]!r} refused")
            cfg = DetectConfig(**{**self.config.__dict__, "cluster": cluster})
            pipe = self.pipelines[cluster] = FleetPipeline(cfg, self.windows)
            if self._shared is None:
                assert pipe.engine is not None  # a worker's config has a state_url (checked in __init__)
                self._shared = SharedFindings(pipe.engine, cfg.dedup_window)
        return pipe

    # -- the loop --

    def run(self, stop: threading.Event, idle_exit: float | None = None) -> None:
        """Until ``stop`` is set (or, with ``idle_exit``, after that many seconds without a message)."""
        ensure_groups(self.client, self.layout)
        for attempt in range(5):  # workers starting together race to create the state tables
            try:
                self.pipeline_for(self.config.cluster)
                break
            except KubestrataError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        last_tick = 0.0
        last_work = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now - last_tick >= self.tick_seconds:
                    last_tick = now
                    if self._tick():
                        last_work = time.monotonic()
                if not self.leases.owned:
                    stop.wait(0.2)
                else:
                    reply = self.client.xreadgroup(
                        GROUP, self.me, {self.layout.stream(p): ">" for p in sorted(self.leases.owned)},
                        count=max(1, self.batch // len(self.leases.owned)), block=self.block_ms,
                    )  # fmt: skip
                    got = [(s, i, f, 1) for s, i, f in entries(reply or [])]
                    if got:
                        self._handle(got)
                        last_work = time.monotonic()
                if idle_exit is not None and time.monotonic() - last_work > idle_exit:
                    break
        finally:
            self.close()

    def _tick(self) -> bool:
        gained, _lost = self.leases.tick(int(time.time() * 1000), self._before_release)
        if gained:
            # what the previous owner learnt: first-seen keys from the database (it flushed them
            # before letting go, or before acknowledging), windows from its hand-over note
            for pipe in self.pipelines.values():
                pipe.reload()
            self._take_windows(gained)
        worked = False
        for p in sorted(self.leases.owned):
            worked |= self._claim(p)
        return worked

    def _before_release(self, parts: set[int]) -> None:
        for pipe in self.pipelines.values():
            pipe.flush()
        self._hand_over_windows(parts)

    HANDOVER_TTL_MS = 24 * 3600 * 1000

    def _hand_over_windows(self, parts: set[int]) -> None:
        """The open threshold windows of the identities in ``parts``, left in Redis for the next
        owner (a partition moves when a worker joins or leaves cleanly)."""
        notes: dict[int, list[list[Any]]] = {p: [] for p in parts}
        for cluster, pipe in self.pipelines.items():
            for (rule_id, key), w in list(pipe._windows.items()):
                p = self.layout.partition_of(cluster, key)
                if p in notes:
                    notes[p].append([cluster, rule_id, key, list(w.items), w.distinct])
                    del pipe._windows[(rule_id, key)]
        red = self.client.pipeline(transaction=False)
        for p, rows in notes.items():
            if rows:
                red.set(self.layout.handover(p), orjson.dumps(rows), px=self.HANDOVER_TTL_MS)
        red.execute()

    def _take_windows(self, parts: set[int]) -> None:
        red = self.client.pipeline(transaction=False)
        for p in sorted(parts):
            red.getdel(self.layout.handover(p))
        for blob in red.execute():
            if not blob:
                continue
            try:
                rows = orjson.loads(blob)
                for cluster, rule_id, key, items, distinct in rows:
                    w = self.pipeline_for(cluster)._windows.setdefault((rule_id, key), _Window())
                    w.items.extend(items)
                    w.distinct.update(distinct)
            except (orjson.JSONDecodeError, TypeError, ValueError, Poison) as e:
                log.warning("ignored an unreadable window hand-over note: %s", e)

    def _claim(self, p: int) -> bool:
        """Take over entries of partition p pending longer than min_idle (their worker died)."""
        stream = self.layout.stream(p)
        cursor: Any = "0-0"
        worked = False
        while True:
            nxt, claimed, deleted = self.client.xautoclaim(
                stream, GROUP, self.me, self.min_idle_ms, start_id=cursor, count=self.batch
            )
            if deleted:
                # trimmed by MAXLEN before anyone acknowledged them: lost, and said so
                self.stats.trimmed += len(deleted)
                log.warning("%d pending entries of %s were trimmed before processing (raise --maxlen)",
                            len(deleted), stream)  # fmt: skip
            if claimed:
                worked = True
                self.stats.claimed += len(claimed)
                counts = {
                    r["message_id"]: r["times_delivered"]
                    for r in self.client.xpending_range(
                        stream, GROUP, claimed[0][0], claimed[-1][0], len(claimed) * 2, consumername=self.me
                    )
                }
                self._handle([(stream.encode(), i, f, counts.get(i, 1)) for i, f in claimed])
            if nxt in (b"0-0", "0-0"):
                return worked
            cursor = nxt

    def _handle(self, batch: list[tuple[bytes, bytes, dict[bytes, bytes] | None, int]]) -> None:
        red = self.client.pipeline(transaction=False)
        acks: dict[bytes, list[bytes]] = {}
        found: list[tuple[Finding, float]] = []
        for stream, entry_id, fields, deliveries in batch:
            if not fields:  # its payload was trimmed away while pending
                self.stats.trimmed += 1
                acks.setdefault(stream, []).append(entry_id)
                continue
            self.stats.messages += 1
            if deliveries > self.max_deliveries:
                reason = f"delivered {deliveries} times without being acknowledged (workers died on it)"
                self._park(red, stream, entry_id, fields, reason)
                continue
            try:
                for f in self._detect(fields):
                    found.append((f, parse_time(f.time or "") or time.time()))
            except Poison as e:
                self._park(red, stream, entry_id, fields, str(e))
                continue
            except Exception as e:  # a bug must not stop the fleet: park, name it, go on
                log.exception("detection raised on %s %s", stream, entry_id)
                self._park(red, stream, entry_id, fields, f"detection raised {type(e).__name__}: {e}")
                continue
            acks.setdefault(stream, []).append(entry_id)
        try:
            for pipe in self.pipelines.values():
                pipe.flush()
            emitted = self._shared.commit(found) if self._shared is not None else []
        except SQLAlchemyError as e:
            # nothing is acknowledged: the entries stay pending and are claimed again after min_idle
            self.stats.state_retries += 1
            log.warning("state database unavailable, batch left pending: %s", str(e).splitlines()[0][:200])
            for pipe in self.pipelines.values():
                for f, _ in found:
                    pipe.store._last.pop(f.fingerprint, None)  # let the redelivery admit it again
            time.sleep(1.0)
            return
        for f in emitted:
            for s in self.sinks:
                s.submit(f)
        for s in self.sinks:
            s.flush()
        self.stats.findings += len(emitted)
        for stream, ids in acks.items():
            red.xack(stream, GROUP, *ids)
        red.execute()
        self.stats.batches += 1

    def _detect(self, fields: dict[bytes, bytes]) -> list[Finding]:
        kind = fields.get(b"kind", b"").decode("utf-8", "replace")
        handler = HANDLERS.get(kind)
        if handler is None:
            raise Poison(f"unknown message kind {kind[:64]!r}")
        data = fields.get(b"data")
        if data is None:
            raise Poison("no data field")
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise Poison(f"undecodable: {str(e)[:200]}") from None
        cluster = fields.get(b"cluster", b"").decode("utf-8", "replace")
        origin = fields.get(b"origin", b"").decode("utf-8", "replace")
        return handler(self, cluster, obj, origin)

    def _park(
        self, red: Any, stream: bytes, entry_id: bytes, fields: dict[bytes, bytes], reason: str
    ) -> None:
        self.stats.dead += 1
        if self.stats.dead <= 5:
            log.warning(
                "parked %s %s in %s: %s", stream.decode(), entry_id.decode(), self.layout.dead, reason[:200]
            )
        dead_letter(red, self.layout, stream, entry_id, fields, reason)

    def close(self) -> None:
        try:
            for pipe in self.pipelines.values():
                pipe.close()
            self._hand_over_windows(set(self.leases.owned))  # a clean stop: the next owner counts on
        finally:
            try:
                self.leases.release_all()
            except Exception as e:  # Redis gone at shutdown: the leases simply expire
                log.warning("could not release leases: %s", e)
