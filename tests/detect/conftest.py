"""A throwaway PostgreSQL server for the state-store tests, and the ``state_url`` fixture that runs
a test once on SQLite and once on PostgreSQL.

The server is Debian's PostgreSQL (``/usr/lib/postgresql/<version>/bin``), started once per session
on 127.0.0.1 and a unix socket in a temp dir, as an unprivileged user (PostgreSQL refuses to run as
root), with trust authentication: it is reachable only from this machine and lives for the session.
Without the binaries the PostgreSQL cases skip locally and fail in CI, where .ci/run installs them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_USER = "kubestrata"


def _pg_bindir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ks-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._n = itertools.count()
        self._prefix: list[str] = []
        # fsync off: a test server that is thrown away; nothing here measures durability
        self._opts = f"-k {self.root} -h 127.0.0.1 -p {self.port} -c fsync=off -c max_connections=50"
        if os.geteuid() == 0:
            try:
                ent = pwd.getpwnam("postgres")  # made by Debian's postgresql-common
            except KeyError:
                pytest.fail("running as root and there is no 'postgres' user to run PostgreSQL as")
            os.chown(self.root, ent.pw_uid, ent.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        r = subprocess.run([*self._prefix, *args], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{args[0]} failed ({r.returncode}): {r.stderr[-2000:]}\n{log[-2000:]}")

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", self._opts,
                  "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")  # fmt: skip

    def restart(self) -> None:
        """Restart the server (fast shutdown): every open connection is dropped."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-m", "fast", "-w", "restart")  # fmt: skip

    def pause(self) -> None:
        """Stop the server, keeping its data (``start_again`` brings it back)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def start_again(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", self._opts,
                  "-l", str(self.root / "server.log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._n)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def require_postgres() -> Path:
    """The PostgreSQL bin directory; skip without it, but fail in CI (CI=true), which installs it."""
    bindir = _pg_bindir()
    problem = None
    if bindir is None:
        problem = "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            problem = "psycopg is not installed (pip install 'psycopg[binary]', part of the test extra)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem + ": CI must run the PostgreSQL state tests")
        pytest.skip(problem)
    assert bindir is not None
    return bindir


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    bindir = require_postgres()
    server = PostgresServer(bindir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    return pg_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state database: a SQLite file, then a database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return request.getfixturevalue("pg_url")


# --- Redis (detect scale-out: tests/detect/test_fleet.py) ----------------------------------------


class RedisServer:
    """Debian's redis-server on a free loopback port, no persistence, in a temp dir."""

    def __init__(self, binary: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ks-redis-"))
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [binary, "--save", "", "--appendonly", "no", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.root), "--logfile", str(self.root / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None:
                    log = (self.root / "redis.log").read_text()[-2000:]
                    raise RuntimeError(f"redis-server exited: {log}") from None
                time.sleep(0.05)
        client.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    problem = None
    if not os.path.exists(binary):
        problem = "redis-server not found (apt-get install redis-server)"
    else:
        try:
            import redis  # noqa: F401
        except ImportError:
            problem = "the redis client is not installed (pip install redis, part of the test extra)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem + ": CI must run the scale-out tests")
        pytest.skip(problem)
    server = RedisServer(binary)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's Redis, emptied before each test."""
    import redis

    client = redis.Redis(port=redis_server.port)
    client.flushall()
    client.close()
    yield redis_server.url
