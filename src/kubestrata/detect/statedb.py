"""The detection state database (SQLAlchemy): its schema, engines and statements, and the read
positions of followed files. The stores that use it (detect/state.py) import this module only when
a database is configured, so a run without ``--state`` never imports SQLAlchemy.

SQLite by default (a file, or ``:memory:``); any SQLAlchemy URL works, e.g.
``postgresql+psycopg://user@host/db`` (``pip install 'kubestrata[postgres]'``; tests/detect runs
the state tests on a real PostgreSQL server).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from kubestrata.detect.state import StateUnavailable, db_text
from kubestrata.errors import KubestrataError

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
