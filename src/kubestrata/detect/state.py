"""Persistent detection state (SQLAlchemy): first-seen keys per cluster for the AnomalousBehavior
rules, and the findings store with its dedup window.

SQLite by default (a file, or ``:memory:``); any SQLAlchemy URL works, e.g.
``postgresql+psycopg://user@host/db`` (install a driver such as psycopg). Reads go through an
in-memory cache; writes are batched, so the hot path touches the database only for keys it has
never seen in this process.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    select,
    update,
)
from sqlalchemy.engine import Engine

metadata = MetaData()

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


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for a URL or a plain SQLite file path."""
    if "://" not in url:
        url = "sqlite://" if url == ":memory:" else f"sqlite:///{url}"
    engine = create_engine(url, future=True)
    metadata.create_all(engine)
    return engine


def _insert(engine: Engine, table: Table):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


class FirstSeen:
    """first_seen(cluster, dimension, key) -> True exactly once per key, across restarts."""

    MAX_CACHE = 500_000
    FLUSH_EVERY = 500

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine
        self._known: set[tuple[str, str, str]] = set()
        self._pending: list[dict[str, Any]] = []

    def check(self, cluster: str, dimension: str, key: str) -> bool:
        k = (cluster, dimension, key[:1024])
        if k in self._known:
            return False
        if len(self._known) >= self.MAX_CACHE:
            self.flush()
            self._known.clear()  # bounded memory; the database still remembers
        if self.engine is not None:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(first_seen_table.c.key).where(
                        first_seen_table.c.cluster == k[0],
                        first_seen_table.c.dimension == k[1],
                        first_seen_table.c.key == k[2],
                    )
                ).first()
            if row is not None:
                self._known.add(k)
                return False
        self._known.add(k)
        if self.engine is not None:
            self._pending.append({"cluster": k[0], "dimension": k[1], "key": k[2], "first_seen": time.time()})
            if len(self._pending) >= self.FLUSH_EVERY:
                self.flush()
        return True

    def flush(self) -> None:
        if self.engine is None or not self._pending:
            return
        stmt = _insert(self.engine, first_seen_table).on_conflict_do_nothing()
        with self.engine.begin() as conn:
            conn.execute(stmt, self._pending)
        self._pending = []


class FindingsStore:
    """Findings by fingerprint. A finding whose fingerprint was stored less than ``window``
    seconds before (event time) only bumps the count and is not re-emitted."""

    def __init__(self, engine: Engine | None, window: float = 3600.0) -> None:
        self.engine = engine
        self.window = window
        self._last: dict[str, float] = {}
        self.suppressed = 0

    def admit(self, finding: dict[str, Any], when: float) -> bool:
        fp = finding["fingerprint"]
        last = self._last.get(fp)
        if last is None and self.engine is not None:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(findings_table.c.last_seen).where(findings_table.c.fingerprint == fp)
                ).first()
            last = row[0] if row else None
        if last is not None and 0 <= when - last < self.window:
            self.suppressed += 1
            if self.engine is not None:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(findings_table)
                        .where(findings_table.c.fingerprint == fp)
                        .values(count=findings_table.c.count + 1)
                    )
            return False
        if len(self._last) > 200_000:
            self._last.clear()
        self._last[fp] = when
        if self.engine is not None:
            stmt = _insert(self.engine, findings_table)
            row = {
                "fingerprint": fp,
                "rule_id": finding["ruleId"],
                "severity": finding["severity"],
                "first_seen": when,
                "last_seen": when,
                "count": 1,
                "finding": orjson.dumps(finding).decode(),
            }
            stmt = stmt.on_conflict_do_update(
                index_elements=[findings_table.c.fingerprint],
                set_={"last_seen": when, "count": findings_table.c.count + 1, "finding": row["finding"]},
            )
            with self.engine.begin() as conn:
                conn.execute(stmt, row)
        return True

    def all(self) -> list[dict[str, Any]]:
        if self.engine is None:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(findings_table).order_by(findings_table.c.first_seen)).mappings().all()
        return [{**orjson.loads(r["finding"]), "count": r["count"]} for r in rows]
