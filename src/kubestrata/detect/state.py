"""Persistent detection state (SQLAlchemy): first-seen keys per cluster for the AnomalousBehavior
rules, and the findings store with its dedup window.

SQLite by default (a file, or ``:memory:``); any SQLAlchemy URL works, e.g.
``postgresql+psycopg://user@host/db`` (``pip install 'kubestrata[postgres]'``; tests/detect runs
the state tests on a real PostgreSQL server). Reads go through an
in-memory cache; writes are batched, so the hot path touches the database only for keys it has
never seen in this process.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from kubestrata.errors import KubestrataError
from kubestrata.findings import Finding

log = logging.getLogger("kubestrata.detect.state")

metadata = MetaData()

# While the database is unreachable, writes wait in memory up to this many rows per store; beyond
# that the oldest are dropped and counted (the in-memory caches still hold them for this process).
MAX_PENDING = 100_000


class StateUnavailable:
    """Tolerates a database outage (server restart, network) in long-running ingestion: a failed
    batch is kept for the next flush and the outage logged once, instead of stopping the watch."""

    RETRY_SECONDS = 5.0

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False
        self.dropped = 0
        self._retry_at = 0.0

    def backing_off(self) -> bool:
        """Whether to skip this flush: a dead server would otherwise be dialled once per event."""
        return self.down and time.monotonic() < self._retry_at

    def failed(self, e: OperationalError, pending: int) -> None:
        if not self.down:
            # first line only: the driver's message names host and port, never the password
            log.warning("state database unavailable (%s); %d %s kept for retry: %s",
                        self.what, pending, self.what, str(e.orig or e).splitlines()[0][:200])  # fmt: skip
        self.down = True
        self._retry_at = time.monotonic() + self.RETRY_SECONDS

    def recovered(self) -> None:
        if self.down:
            log.warning("state database reachable again (%s)", self.what)
        self.down = False

    def check_closed(self, pending: int) -> None:
        if pending or self.dropped:
            raise KubestrataError(
                f"state database unavailable: {pending} {self.what} not written"
                + (f", {self.dropped} dropped while it was down" if self.dropped else "")
            )


first_seen_table = Table(
    "ks_first_seen",
    metadata,
    Column("cluster", String(253), primary_key=True),
    Column("dimension", String(64), primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("first_seen", Float, nullable=False),
)

findings_table = Table(
    "ks_findings",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("rule_id", String(32), nullable=False, index=True),
    Column("severity", String(16), nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("count", Integer, nullable=False),
    Column("finding", Text, nullable=False),
)


watch_position_table = Table(
    "ks_watch_position",
    metadata,
    Column("source", String(1024), primary_key=True),  # cluster + absolute path of the watched file
    Column("device", BigInteger, nullable=False),
    Column("inode", BigInteger, nullable=False),
    Column("byte_offset", BigInteger, nullable=False),
    Column("head", String(64), nullable=False),  # digest of the first bytes: inode reuse
    Column("updated", Float, nullable=False),
)


def db_text(value: str, max_bytes: int) -> str:
    """``value`` as a key column can hold it on every backend. PostgreSQL text cannot contain NUL,
    and a btree index entry is limited to about 2.7 KB, while audit fields (user names, user agents,
    images) are attacker-controlled and unbounded. Such values become a readable prefix plus a
    digest of the whole value, so distinct values stay distinct; every other value is unchanged."""
    try:
        raw = value.encode("utf-8")
        fits = "\x00" not in value and len(raw) <= max_bytes
    except UnicodeEncodeError:  # lone surrogates: no database text type accepts them
        raw, fits = value.encode("utf-8", "surrogatepass"), False
    if fits:
        return value
    digest = hashlib.sha256(raw).hexdigest()[:32]
    head = raw[: max_bytes - 48].decode("utf-8", "ignore").replace("\x00", "\ufffd")
    return f"{head} #sha256:{digest}"


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for a URL or a plain SQLite file path."""
    if "://" not in url:
        url = "sqlite://" if url == ":memory:" else f"sqlite:///{url}"
    try:
        # pre-ping: a long-running watch outlives server restarts and idle-connection timeouts
        engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite:"))
    except (SQLAlchemyError, ImportError, ValueError) as e:  # ValueError: e.g. a port that is no number
        # the message names the dialect or driver, never the URL (it may hold a password)
        raise KubestrataError(f"cannot open state database: {str(e).splitlines()[0][:200]}") from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL + NORMAL: durable across process crashes, no fsync per transaction
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    try:
        metadata.create_all(engine)
    except SQLAlchemyError as e:
        raise KubestrataError(f"cannot open state database: {str(e).splitlines()[0][:200]}") from None
    return engine


def insert_for(dialect: str, table: Table) -> Any:
    """An INSERT with ON CONFLICT support: both SQLite and PostgreSQL spell it the same way."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def findings_upsert(dialect: str) -> Any:
    stmt = insert_for(dialect, findings_table)
    return stmt.on_conflict_do_update(
        index_elements=[findings_table.c.fingerprint],
        set_={
            "last_seen": stmt.excluded.last_seen,
            "count": findings_table.c.count + stmt.excluded.count,
            "finding": stmt.excluded.finding,
        },
    )


class FirstSeen:
    """first_seen(cluster, dimension, key) -> True exactly once per key, across restarts."""

    MAX_CACHE = 500_000
    FLUSH_EVERY = 500

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine
        self._known: set[tuple[str, str, str]] = set()
        self._pending: list[dict[str, Any]] = []
        self.outage = StateUnavailable("first-seen keys")
        # Load what is known up front; while everything fits, a cache miss means "new" and the
        # database is only written, never queried, on the hot path.
        self._complete = True
        if engine is not None:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(
                        first_seen_table.c.cluster, first_seen_table.c.dimension, first_seen_table.c.key
                    ).limit(self.MAX_CACHE + 1)
                ).all()
            self._complete = len(rows) <= self.MAX_CACHE
            self._known.update((r[0], r[1], r[2]) for r in rows[: self.MAX_CACHE])

    def check(self, cluster: str, dimension: str, key: str) -> bool:
        if (cluster, dimension, key) in self._known:  # known as is: db_text would not change it
            return False
        k = (db_text(cluster, 253), dimension, db_text(key, 1024))
        if k in self._known:
            return False
        if len(self._known) >= self.MAX_CACHE:
            self.flush()
            self._known.clear()  # bounded memory; the database still remembers
            self._complete = False
        if self.engine is not None and not self._complete and not self.outage.backing_off():
            try:
                with self.engine.connect() as conn:
                    row = conn.execute(
                        select(first_seen_table.c.key).where(
                            first_seen_table.c.cluster == k[0],
                            first_seen_table.c.dimension == k[1],
                            first_seen_table.c.key == k[2],
                        )
                    ).first()
            except OperationalError as e:  # unreachable: treat as new rather than stop ingesting
                self.outage.failed(e, len(self._pending))
                row = None
            if row is not None:
                self._known.add(k)
                return False
        self._known.add(k)
        if self.engine is not None:
            self._pending.append({"cluster": k[0], "dimension": k[1], "key": k[2], "first_seen": time.time()})
            if len(self._pending) >= self.FLUSH_EVERY:
                self.flush()
        return True

    def flush(self, force: bool = False) -> None:
        if self.engine is None or not self._pending or (self.outage.backing_off() and not force):
            return
        stmt = insert_for(self.engine.dialect.name, first_seen_table).on_conflict_do_nothing()
        # key order: concurrent writers then lock rows in one order and cannot deadlock (PostgreSQL)
        rows = sorted(self._pending, key=lambda r: (r["cluster"], r["dimension"], r["key"]))
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt, rows)
        except OperationalError as e:
            self.outage.failed(e, len(self._pending))
            if len(self._pending) > MAX_PENDING:
                self.outage.dropped += len(self._pending) - MAX_PENDING
                del self._pending[: len(self._pending) - MAX_PENDING]
            return
        self.outage.recovered()
        self._pending = []

    def close(self) -> None:
        """Final flush; an error if anything could not be written."""
        self.flush(force=True)
        if self.engine is not None:
            self.outage.check_closed(len(self._pending))


class FindingsStore:
    """Findings by fingerprint. A finding whose fingerprint was stored less than ``window``
    seconds before (event time) only bumps the count and is not re-emitted. Writes are batched
    (every FLUSH_EVERY changes or FLUSH_SECONDS, and on close): one transaction per finding would
    cost an fsync each and stall ingestion."""

    FLUSH_EVERY = 256
    FLUSH_SECONDS = 2.0
    MAX_CACHE = 200_000

    def __init__(self, engine: Engine | None, window: float = 3600.0) -> None:
        self.engine = engine
        self.window = window
        self._last: dict[str, float] = {}
        self._new: dict[str, dict[str, Any]] = {}
        self._bumps: dict[str, int] = {}
        self._last_flush = time.monotonic()
        self.suppressed = 0
        self.outage = StateUnavailable("findings")
        self._complete = True
        if engine is not None:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(findings_table.c.fingerprint, findings_table.c.last_seen)
                    .order_by(findings_table.c.last_seen.desc())
                    .limit(self.MAX_CACHE + 1)
                ).all()
            self._complete = len(rows) <= self.MAX_CACHE
            self._last.update((r[0], r[1]) for r in rows[: self.MAX_CACHE])

    def admit(self, finding: Finding, when: float) -> bool:
        fp = finding.fingerprint
        last = self._last.get(fp)
        if (
            last is None
            and self.engine is not None
            and not self._complete
            and fp not in self._new
            and not self.outage.backing_off()
        ):
            try:
                with self.engine.connect() as conn:
                    row = conn.execute(
                        select(findings_table.c.last_seen).where(findings_table.c.fingerprint == fp)
                    ).first()
            except OperationalError as e:  # unreachable: emit rather than stop ingesting
                self.outage.failed(e, len(self._new) + len(self._bumps))
                row = None
            last = row[0] if row else None
        # Audit delivery is out of order (EKS: best effort, minutes late): an event older than the
        # last emission of this finding is a late copy of something already reported, never a new
        # finding; only an event at least ``window`` after the last emission re-emits.
        if last is not None and self.window > 0 and when - last < self.window:
            self.suppressed += 1
            if self.engine is not None:
                self._bumps[fp] = self._bumps.get(fp, 0) + 1
                self._maybe_flush()
            return False
        if len(self._last) >= self.MAX_CACHE:
            self.flush()
            self._last.clear()  # bounded memory; the database still remembers
            self._complete = False
        newest = when if last is None else max(last, when)  # (admitted: when >= last + window)
        self._last[fp] = newest
        if self.engine is not None and fp in self._new:
            pending = self._new[fp]  # re-admitted before the last one was written
            pending.update(
                last_seen=newest, count=pending["count"] + 1, finding=orjson.dumps(finding.to_dict()).decode()
            )
            self._maybe_flush()
        elif self.engine is not None:
            self._new[fp] = {
                "fingerprint": fp,
                "rule_id": finding.rule_id,
                "severity": finding.severity.value,
                "first_seen": when,
                "last_seen": newest,
                "count": 1,
                "finding": orjson.dumps(finding.to_dict()).decode(),
            }
            self._maybe_flush()
        return True

    def _maybe_flush(self) -> None:
        if len(self._new) + len(self._bumps) >= self.FLUSH_EVERY or (
            time.monotonic() - self._last_flush > self.FLUSH_SECONDS
        ):
            self.flush()

    def flush(self, force: bool = False) -> None:
        self._last_flush = time.monotonic()
        if self.engine is None or not (self._new or self._bumps) or (self.outage.backing_off() and not force):
            return
        # One transaction per statement, rows in fingerprint order: concurrent writers then take
        # row locks in the same order and cannot deadlock (PostgreSQL).
        try:
            if self._new:
                with self.engine.begin() as conn:
                    conn.execute(
                        findings_upsert(self.engine.dialect.name), [self._new[k] for k in sorted(self._new)]
                    )
                self._new = {}
            if self._bumps:
                bump = (
                    update(findings_table)
                    .where(findings_table.c.fingerprint == bindparam("fp"))
                    .values(count=findings_table.c.count + bindparam("n"))
                )
                with self.engine.begin() as conn:
                    conn.execute(bump, [{"fp": fp, "n": n} for fp, n in sorted(self._bumps.items())])
                self._bumps = {}
        except OperationalError as e:
            self.outage.failed(e, len(self._new) + len(self._bumps))
            for pending in (self._new, self._bumps):
                while len(pending) > MAX_PENDING:  # dicts keep insertion order: oldest first
                    del pending[next(iter(pending))]
                    self.outage.dropped += 1
            return
        self.outage.recovered()

    def close(self) -> None:
        """Final flush; an error if anything could not be written."""
        self.flush(force=True)
        if self.engine is not None:
            self.outage.check_closed(len(self._new) + len(self._bumps))

    def all(self) -> list[dict[str, Any]]:
        if self.engine is None:
            return []
        self.flush(force=True)
        with self.engine.connect() as conn:
            rows = conn.execute(select(findings_table).order_by(findings_table.c.first_seen)).mappings().all()
        return [{**orjson.loads(r["finding"]), "count": r["count"]} for r in rows]


class WatchPositions:
    """Read positions of followed files (``detect watch FILE``): (device, inode, offset) per
    source, saved after the findings of the lines before it are written, so a restart resumes
    where the last run stopped (at least once: lines after the last save are read again, and
    their findings are folded by the findings store). A save that fails while the database is
    down is retried at the next save; the position only moves forward in the file."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.outage = StateUnavailable("watch positions")

    def load(self, source: str) -> tuple[int, int, int, str] | None:
        key = db_text(source, 1024)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    watch_position_table.c.device,
                    watch_position_table.c.inode,
                    watch_position_table.c.byte_offset,
                    watch_position_table.c.head,
                ).where(watch_position_table.c.source == key)
            ).first()
        return (int(row[0]), int(row[1]), int(row[2]), str(row[3])) if row else None

    def save(self, source: str, device: int, inode: int, offset: int, head: str = "") -> bool:
        if self.outage.backing_off():
            return False
        key = db_text(source, 1024)
        stmt = insert_for(self.engine.dialect.name, watch_position_table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[watch_position_table.c.source],
            set_={
                "device": stmt.excluded.device,
                "inode": stmt.excluded.inode,
                "byte_offset": stmt.excluded.byte_offset,
                "head": stmt.excluded.head,
                "updated": stmt.excluded.updated,
            },
        )
        row = {"source": key, "device": device, "inode": inode, "byte_offset": offset, "head": head,
               "updated": time.time()}  # fmt: skip
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt, [row])
        except OperationalError as e:
            self.outage.failed(e, 1)
            return False
        self.outage.recovered()
        return True
