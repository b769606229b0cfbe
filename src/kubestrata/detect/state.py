"""Detection state: first-seen keys per cluster for the AnomalousBehavior rules, and the findings
store with its dedup window. In memory, and persistent when given a database engine
(detect/statedb.py, SQLAlchemy, imported only then). Reads go through an in-memory cache; writes
are batched, so the hot path touches the database only for keys it has never seen in this process.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import orjson

from kubestrata.errors import KubestrataError
from kubestrata.findings import Finding

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.exc import OperationalError

log = logging.getLogger("kubestrata.detect.state")


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


class FirstSeen:
    """first_seen(cluster, dimension, key) -> True exactly once per key, across restarts."""

    MAX_CACHE = 500_000
    FLUSH_EVERY = 500

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine
        self._known: set[tuple[str, str, str]] = set()
        self._pending: list[dict[str, Any]] = []
        self.outage = StateUnavailable("first-seen keys")
        # Groups of keys all known here, named by a caller that would otherwise ask for each key of a
        # group on every request (rules/anomaly.py: the dimensions of one request). Known keys stay
        # known until the cache forgets them (below): then a forgotten key may be new again, so the
        # groups are emptied too and ``forgets`` counted (a caller that asked while it happened does
        # not record its group).
        self.known_groups: set[Hashable] = set()
        self.forgets = 0
        # Load what is known up front; while everything fits, a cache miss means "new" and the
        # database is only written, never queried, on the hot path.
        self._complete = True
        if engine is not None:
            from sqlalchemy import select

            from kubestrata.detect.statedb import first_seen_table

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
            self.known_groups.clear()
            self.forgets += 1
            self._complete = False
        if self.engine is not None and not self._complete and not self.outage.backing_off():
            from sqlalchemy import select
            from sqlalchemy.exc import OperationalError

            from kubestrata.detect.statedb import first_seen_table

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
        from sqlalchemy.exc import OperationalError

        from kubestrata.detect.statedb import first_seen_table, insert_for

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
            from sqlalchemy import select

            from kubestrata.detect.statedb import findings_table

            with engine.connect() as conn:
                rows = conn.execute(
                    select(findings_table.c.fingerprint, findings_table.c.last_seen)
                    .order_by(findings_table.c.last_seen.desc())
                    .limit(self.MAX_CACHE + 1)
                ).all()
            self._complete = len(rows) <= self.MAX_CACHE
            self._last.update((r[0], r[1]) for r in rows[: self.MAX_CACHE])

    def memory_admissions(self) -> tuple[dict[str, float], int] | None:
        """For a caller that admits inline (Pipeline.process_event): the fingerprints and their cap
        of admit's first branch, when that branch is all admit does with a new fingerprint (this
        class itself, no database); else None, and every finding goes through admit. A new
        fingerprint, under the cap, is admitted by setting it to the event's time."""
        if type(self) is FindingsStore and self.engine is None:
            return self._last, self.MAX_CACHE
        return None

    def admit(self, finding: Finding, when: float) -> bool:
        fp = finding._fingerprint  # set by the detect factory: the property is a Python call per finding
        if fp is None:
            fp = finding.fingerprint
        last = self._last.get(fp)
        if last is None and self.engine is None and len(self._last) < self.MAX_CACHE:
            self._last[fp] = when  # a new finding in memory: what the rest does with it, in short
            return True
        if (
            last is None
            and self.engine is not None
            and not self._complete
            and fp not in self._new
            and not self.outage.backing_off()
        ):
            from sqlalchemy import select
            from sqlalchemy.exc import OperationalError

            from kubestrata.detect.statedb import findings_table

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
        from sqlalchemy import bindparam, update
        from sqlalchemy.exc import OperationalError

        from kubestrata.detect.statedb import findings_table, findings_upsert

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
        from sqlalchemy import select

        from kubestrata.detect.statedb import findings_table

        with self.engine.connect() as conn:
            rows = conn.execute(select(findings_table).order_by(findings_table.c.first_seen)).mappings().all()
        return [{**orjson.loads(r["finding"]), "count": r["count"]} for r in rows]
