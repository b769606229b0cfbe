"""The state stores (first-seen keys, findings store) on a real database: each test runs on SQLite
and on a PostgreSQL server (tests/detect/conftest.py)."""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import func, select

from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.state import FindingsStore, FirstSeen
from kubestrata.detect.statedb import findings_table, findings_upsert, first_seen_table, make_engine
from kubestrata.errors import KubestrataError
from kubestrata.findings import EventRef, Finding, Layer, Severity
from tests.detect import conftest as pg_conftest
from tests.detect.helpers import event, rule_ids


def _finding(fp: str, rule: str = "KS-AUD-F49") -> Finding:
    ref = EventRef("k8saudit", "a-1", "ResponseComplete")
    return Finding(rule, "t", Severity.HIGH, Layer.CLUSTER, f"m {fp}", event=ref, time="", _fingerprint=fp)


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_findings_upsert_adds_counts_and_keeps_first_seen(state_url: str) -> None:
    engine = make_engine(state_url)
    row = {"fingerprint": "a" * 32, "rule_id": "KS-AUD-F49", "severity": "high", "first_seen": 10.0,
           "last_seen": 10.0, "count": 2, "finding": '{"v":1}'}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(findings_upsert(engine.dialect.name), [row])
        conn.execute(
            findings_upsert(engine.dialect.name),
            [{**row, "last_seen": 20.0, "count": 3, "finding": '{"v":2}'}],
        )
    with engine.connect() as conn:
        got = conn.execute(select(findings_table)).mappings().one()
    assert (got["first_seen"], got["last_seen"], got["count"], got["finding"]) == (10.0, 20.0, 5, '{"v":2}')
    engine.dispose()


def test_first_seen_insert_ignores_known_keys(state_url: str) -> None:
    engine = make_engine(state_url)
    a = FirstSeen(engine)
    assert a.check("c", "image", "nginx") and not a.check("c", "image", "nginx")
    a.flush()
    b = FirstSeen(engine)  # a second process that loaded before a's next write
    assert not b.check("c", "image", "nginx")
    b._known.clear()  # as if it had not loaded it: the insert must not fail on the existing row
    b._complete = True
    assert b.check("c", "image", "nginx")
    b.flush()
    assert _count(engine, first_seen_table) == 1
    engine.dispose()


def test_beyond_the_cache_the_database_answers(state_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FirstSeen, "MAX_CACHE", 10)
    monkeypatch.setattr(FindingsStore, "MAX_CACHE", 10)
    engine = make_engine(state_url)
    fs = FirstSeen(engine)
    assert all(fs.check("c", "ua", f"k{i}") for i in range(25))
    fs.flush()
    fs2 = FirstSeen(engine)  # 25 rows > cache: loads a part, asks the database for the rest
    assert not fs2._complete
    assert not any(fs2.check("c", "ua", f"k{i}") for i in range(25))
    assert fs2.check("c", "ua", "new")
    store = FindingsStore(engine, window=100)
    assert all(store.admit(_finding(f"f{i}"), 1000.0) for i in range(25))
    store.flush()
    store2 = FindingsStore(engine, window=100)
    assert not store2._complete
    assert not any(store2.admit(_finding(f"f{i}"), 1050.0) for i in range(25))
    assert store2.admit(_finding("f0"), 1200.0)  # the window has passed
    counts = {f["fingerprint"]: f["count"] for f in store2.all()}
    assert counts["f0"] == 3 and counts["f1"] == 2 and len(counts) == 25
    engine.dispose()


def test_attacker_controlled_keys_are_stored(state_url: str) -> None:
    """Keys come from audit fields an attacker chooses: NUL bytes (which PostgreSQL text refuses),
    long multi-byte strings (a btree index entry is limited to ~2.7 KB), long cluster names."""
    engine = make_engine(state_url)
    fs = FirstSeen(engine)
    weird = [
        "evil\x00agent",
        "\U0001f600" * 5000,
        "\U0001f600" * 5000 + "x",  # differs only past any prefix limit: still a different key
        "é" * 3000,
        "lone \ud800 surrogate",
    ]
    cluster = "c" * 300
    assert all(fs.check(cluster, "user-agent", k) for k in weird)
    fs.flush()
    again = FirstSeen(engine)
    assert not any(again.check(cluster, "user-agent", k) for k in weird)
    assert again.check(cluster, "user-agent", "evil\x00agent2")
    again.flush()
    assert _count(engine, first_seen_table) == len(weird) + 1
    engine.dispose()


def test_pipeline_with_nul_in_user_agent(state_url: str) -> None:
    p = Pipeline(DetectConfig(cluster="c1", state_url=state_url))
    ev = event(
        "get",
        "secrets",
        name="db",
        user="mallory\x00@example.com",
        user_agent="curl\x00/8",
        ips=["192.0.2.10"],
    )
    assert "KS-AUD-G40" in rule_ids(p.process_obj(ev))
    p.close()
    p2 = Pipeline(DetectConfig(cluster="c1", state_url=state_url, dedup_window=0))
    ev = event(
        "get",
        "secrets",
        name="db",
        user="mallory\x00@example.com",
        user_agent="curl\x00/8",
        ips=["192.0.2.10"],
    )
    assert "KS-AUD-G40" not in rule_ids(p2.process_obj(ev))
    p2.close()


def test_concurrent_writers_share_one_database(state_url: str) -> None:
    """docs/detect.md allows two processes on one database (each may report a first sighting once):
    concurrent batches over overlapping keys, in different orders, must neither fail nor deadlock,
    and the stored counts must add up."""
    make_engine(state_url).dispose()  # tables exist before the writers race
    keys = [f"user{i}|get|pods" for i in range(2000)]
    fps = [f"{i:032x}" for i in range(600)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer(seed: int) -> None:
        try:
            engine = make_engine(state_url)
            fs = FirstSeen(engine)
            store = FindingsStore(engine, window=0.5)
            rng = random.Random(seed)
            barrier.wait()
            for rnd in range(3):
                order = keys[:]
                rng.shuffle(order)
                for k in order:
                    fs.check("c", "user-verb-resource", k)
                fs.flush()
                order = fps[:]
                rng.shuffle(order)
                for fp in order:
                    store.admit(_finding(fp), 1000.0 + rnd)  # each round: one new + one bump
                    store.admit(_finding(fp), 1000.0 + rnd + 0.1)
                store.flush()
            engine.dispose()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[0]
    engine = make_engine(state_url)
    assert _count(engine, first_seen_table) == len(keys)
    with engine.connect() as conn:
        counts = conn.execute(select(findings_table.c.count)).scalars().all()
    assert len(counts) == len(fps) and set(counts) == {4 * 3 * 2}
    engine.dispose()


def test_unreachable_or_undriven_database_is_a_clear_error() -> None:
    with pytest.raises(KubestrataError, match="cannot open state database"):
        make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(KubestrataError, match="cannot open state database"):
        make_engine("nosuchdialect://x/y")
    with pytest.raises(KubestrataError, match="cannot open state database"):
        make_engine("postgresql+pg8000://x@127.0.0.1:1/y")  # a driver that is not installed
    for bad in (
        "postgresql+psycopg://u:s3cret@127.0.0.1:notaport/db",
        "postgresql+psycopg://u:s3cret@[::1/db",
    ):
        with pytest.raises(KubestrataError, match="cannot open state database") as e:
            make_engine(bad)
        assert "s3cret" not in str(e.value)


def test_secret_in_url_is_not_shown(pg_server) -> None:
    with pytest.raises(KubestrataError) as e:
        make_engine(f"postgresql+psycopg://kubestrata:hunter2@127.0.0.1:{pg_server.port}/missing_db")
    assert "hunter2" not in str(e.value)


def test_server_restart_between_flushes(pg_server, pg_url: str) -> None:
    """A long-running watch keeps pooled connections; a PostgreSQL restart must not lose state."""
    p = Pipeline(DetectConfig(cluster="c1", state_url=pg_url))
    assert "KS-AUD-G40" in rule_ids(
        p.process_obj(event("get", "secrets", name="a", user="m@x.io", ips=["192.0.2.1"]))
    )
    p.flush()
    pg_server.restart()
    assert "KS-AUD-G40" in rule_ids(
        p.process_obj(event("get", "secrets", name="a", user="n@x.io", ips=["192.0.2.1"]))
    )
    p.close()
    p2 = Pipeline(DetectConfig(cluster="c1", state_url=pg_url, dedup_window=0))
    for u in ("m@x.io", "n@x.io"):
        ev = event("get", "secrets", name="a", user=u, ips=["192.0.2.1"])
        assert "KS-AUD-G40" not in rule_ids(p2.process_obj(ev))
    p2.close()


def test_outage_keeps_batches_for_retry(pg_server, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The server goes away mid-watch: ingestion goes on, the batch waits, and it is written once
    the server is back; a pipeline closed while the server is down says what was not written."""
    ev = lambda u: event("get", "secrets", name="a", user=u, ips=["192.0.2.1"])  # noqa: E731
    p = Pipeline(DetectConfig(cluster="c1", state_url=pg_url))
    assert "KS-AUD-G40" in rule_ids(p.process_obj(ev("a@x.io")))
    pg_server.pause()
    try:
        assert "KS-AUD-G40" in rule_ids(p.process_obj(ev("b@x.io")))
        p.flush()  # does not raise: kept for retry
        assert "state database unavailable" in caplog.text and "kubestrata:" not in caplog.text
        assert p._first_seen.outage.down and p._first_seen._pending
    finally:
        pg_server.start_again()
    p._first_seen.outage._retry_at = p.store.outage._retry_at = 0.0  # skip the back-off
    p.flush()
    assert not p._first_seen._pending and not p._first_seen.outage.down
    p.close()
    p2 = Pipeline(DetectConfig(cluster="c1", state_url=pg_url, dedup_window=0))
    assert not any("KS-AUD-G40" in rule_ids(p2.process_obj(ev(u))) for u in ("a@x.io", "b@x.io"))
    assert "KS-AUD-G40" in rule_ids(p2.process_obj(ev("c@x.io")))
    pg_server.pause()
    try:
        with pytest.raises(
            KubestrataError, match="state database unavailable: 3 first-seen keys not written"
        ):
            p2.close()
    finally:
        pg_server.start_again()


def test_missing_postgres_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_conftest, "_pg_bindir", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL binaries not found"):
        pg_conftest.require_postgres()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL state tests"):
        pg_conftest.require_postgres()


def test_outage_beyond_the_cache(pg_server, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cache a miss asks the database; while it is down the key counts as new (and the
    finding as not seen) instead of stopping ingestion, and the dead server is not dialled per event."""
    monkeypatch.setattr(FirstSeen, "MAX_CACHE", 2)
    monkeypatch.setattr(FindingsStore, "MAX_CACHE", 2)
    engine = make_engine(pg_url)
    seed = FirstSeen(engine)
    for i in range(5):
        seed.check("c", "ua", f"k{i}")
    seed.close()
    fs, store = FirstSeen(engine), FindingsStore(engine, window=100)
    assert not fs._complete
    pg_server.pause()
    try:
        stored_not_cached = next(f"k{i}" for i in range(5) if ("c", "ua", f"k{i}") not in fs._known)
        assert fs.check("c", "ua", stored_not_cached)  # unknown while down: reported again, not lost
        assert fs.outage.down and fs.outage.backing_off()
        for _ in range(3):
            store.admit(_finding("x"), 1.0)
        store._complete = False
        assert store.admit(_finding("y"), 1.0)
    finally:
        pg_server.start_again()
    fs.outage._retry_at = 0.0
    fs.close()
    assert not fs.outage.down
    engine.dispose()
