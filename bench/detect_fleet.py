"""Benchmark: scale-out detection on Redis Streams (``kubestrata detect publish|worker``).

    python bench/detect_fleet.py --scaling --events 100000          # 1 worker vs 3, realistic mix
    python bench/detect_fleet.py --heavy --events 300000            # replay -o jsonl, finding-heavy
    python bench/detect_fleet.py --soak --events 1000000            # 3 workers, one SIGKILLed

Redis is Debian's redis-server started here on a free loopback port (no persistence); the shared
state is a SQLite file in bench/out unless ``--state-url`` names a database (e.g. PostgreSQL; its
ks_* tables are dropped first). Workers are separate processes (`python -m kubestrata detect
worker`); their CPU time comes from wait4's rusage, so figures are CPU seconds, not wall time
(the machine is shared).

Inputs (generated, seeded):
- realistic: bench/detect.py's mix (95% reads by controllers, nodes and a few humans; 5% writes);
- finding-heavy: bench/detect.py's write events (lease updates, event creates, configmap updates,
  pod deletes) each by a new identity, so every event gives exactly one finding (KS-AUD-F01, a user
  outside allowed_k8s_users) with its own fingerprint. The soak uses it because events and findings
  then pair one to one: every event processed <=> its fingerprint in the store.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OUT = Path(__file__).resolve().parent / "out"

_spec = importlib.util.spec_from_file_location("kubestrata_bench_detect", Path(__file__).parent / "detect.py")
assert _spec and _spec.loader
detect_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(detect_bench)

HEAVY_RESOURCES = ("leases", "events", "configmaps")


def iter_heavy(n: int, seed: int = 7) -> Iterator[bytes]:
    """n finding-heavy events (one finding each, distinct fingerprints), generated as consumed."""
    rng = random.Random(seed)
    i = 0
    while i < n:
        ev = detect_bench.write_event(rng)
        if ev["objectRef"]["resource"] not in HEAVY_RESOURCES and ev["verb"] != "delete":
            continue
        ev["user"]["username"] = f"user-{i}@example.com"
        ev["auditID"] = str(uuid.UUID(int=rng.getrandbits(128)))
        i += 1
        yield orjson.dumps(ev)


def realistic_lines(n: int, seed: int = 5) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ev = detect_bench.read_event(rng) if rng.random() < 0.95 else detect_bench.write_event(rng)
        ev["auditID"] = str(uuid.UUID(int=rng.getrandbits(128)))
        out.append(orjson.dumps(ev))
    return out


# --- Redis -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ks-bench-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--save", "", "--appendonly", "no", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")],
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        import redis

        for _ in range(200):
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- a fleet of worker processes -------------------------------------------------------------------


def worker_cmd(redis_url: str, state: str, name: str, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "kubestrata", "detect", "worker", "--redis", redis_url, "--state", state,
            "--consumer", name, "--cluster-name", "bench", "-o", "jsonl", *args]  # fmt: skip


def worker_stats(outdir: Path) -> dict[str, dict[str, int]]:
    return {f.name.split(".")[0]: orjson.loads(f.read_bytes()) for f in sorted(outdir.glob("*.stats.json"))}


class Fleet:
    """Worker processes, each writing its findings to its own file; CPU per worker from wait4."""

    def __init__(self, redis_url: str, state: str, n: int, outdir: Path, args: list[str]) -> None:
        self.outdir = outdir
        outdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.cpu: dict[str, float] = {}
        self.killed: set[str] = set()
        for i in range(n):
            name = f"worker-{i}"
            self.spawn(name, redis_url, state, args, env)

    def spawn(self, name: str, redis_url: str, state: str, args: list[str], env: dict[str, str]) -> None:
        with (
            (self.outdir / f"{name}.jsonl").open("ab") as out,
            (self.outdir / f"{name}.err").open("ab") as err,
        ):
            self.procs[name] = subprocess.Popen(
                worker_cmd(
                    redis_url, state, name, [*args, "--stats", str(self.outdir / f"{name}.stats.json")]
                ),
                stdout=out,
                stderr=err,
                env=env,
            )

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.killed.add(name)

    def wait(self, timeout: float = 3600) -> None:
        deadline = time.monotonic() + timeout
        for name, p in self.procs.items():
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    p.returncode = os.waitstatus_to_exitcode(status)
                    self.cpu[name] = ru.ru_utime + ru.ru_stime
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} still running")
                time.sleep(0.05)
            if p.returncode != 0 and name not in self.killed:
                raise RuntimeError(
                    f"{name} exited {p.returncode}: {(self.outdir / f'{name}.err').read_text()[-2000:]}"
                )

    def fingerprints(self) -> Counter[str]:
        """How often each fingerprint was emitted, over every worker's output."""
        out: Counter[str] = Counter()
        for f in sorted(self.outdir.glob("worker-*.jsonl")):
            with f.open("rb") as fh:
                for line in fh:
                    try:
                        out[orjson.loads(line)["fingerprint"]] += 1
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        pass  # the killed worker's last line may be cut
        return out


def publish(redis_url: str, lines: Iterable[bytes], partitions: int, rate: float | None = None) -> float:
    """XADD every line (in-process Publisher); the CPU seconds it took."""
    from kubestrata.detect.streams import Layout, Publisher, check_layout, connect, ensure_groups

    client = connect(redis_url)
    layout = Layout(partitions=partitions)
    check_layout(client, layout)
    ensure_groups(client, layout)
    pub = Publisher(client, layout, cluster="bench")
    c0, t0 = time.process_time(), time.monotonic()
    for i, line in enumerate(lines):
        pub.publish_line(line, "bench")
        if rate and i % 1000 == 999:
            ahead = (i + 1) / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    pub.flush()
    return time.process_time() - c0


def acked(redis_url: str, partitions: int) -> tuple[int, int]:
    """(entries read by the group, entries pending) over all partitions."""
    from kubestrata.detect.streams import GROUP, Layout, connect

    client = connect(redis_url)
    layout = Layout(partitions=partitions)
    read = pending = 0
    for p in range(partitions):
        for g in client.xinfo_groups(layout.stream(p)):
            if g["name"] in (GROUP, GROUP.encode()):
                read += int(g.get("entries-read") or 0)
                pending += int(g["pending"])
    return read, pending


def pending_of(redis_url: str, partitions: int, consumer: str) -> int:
    from kubestrata.detect.streams import GROUP, Layout, connect

    client = connect(redis_url)
    layout = Layout(partitions=partitions)
    n = 0
    for p in range(partitions):
        for c in client.xpending(layout.stream(p), GROUP)["consumers"]:
            if c["name"] in (consumer, consumer.encode()):
                n += int(c["pending"])
    return n


def stored_fingerprints(state: str) -> Counter[str]:
    from sqlalchemy import select

    from kubestrata.detect.statedb import findings_table, make_engine

    engine = make_engine(state)
    with engine.connect() as conn:
        fps = Counter(r[0] for r in conn.execute(select(findings_table.c.fingerprint)))
    engine.dispose()
    return fps


def fresh_state(url: str | None, tag: str) -> str:
    if url:
        from kubestrata.detect.statedb import make_engine, metadata

        engine = make_engine(url)
        metadata.drop_all(engine)
        engine.dispose()
        return url
    db = OUT / f"fleet-{tag}.db"
    for f in OUT.glob(f"fleet-{tag}.db*"):
        f.unlink()
    return str(db)


# --- the three measurements ------------------------------------------------------------------------


def scaling(args: argparse.Namespace) -> None:
    lines = realistic_lines(args.events)
    for n in args.workers:
        redis = Redis()
        try:
            state = fresh_state(args.state_url, f"scale{n}")
            pcpu = publish(redis.url, lines, args.partitions)
            out = OUT / f"fleet-scale-{n}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.monotonic()
            fleet = Fleet(
                redis.url,
                state,
                n,
                out,
                ["--idle-exit", "2", "--lease-ttl", "3", "--partitions", str(args.partitions)],
            )
            fleet.wait()
            wall = time.monotonic() - t0 - 2  # less the idle wait before exit
            cpu = sum(fleet.cpu.values())
            read, pending = acked(redis.url, args.partitions)
            print(f"{n} worker(s): {args.events:,} events, wall {wall:.1f}s ({args.events / wall:,.0f} events/s), "
                  f"CPU {cpu:.1f}s ({args.events / cpu:,.0f} events per CPU-second; per worker "
                  f"{', '.join(f'{c:.1f}' for c in fleet.cpu.values())}); publisher CPU {pcpu:.1f}s; "
                  f"read {read:,}, pending {pending}, findings {sum(fleet.fingerprints().values()):,}")  # fmt: skip
        finally:
            redis.stop()


def heavy(args: argparse.Namespace) -> None:
    path = OUT / f"detect-heavy-{args.events}.jsonl"
    if not path.exists():
        with path.open("wb") as fh:
            for line in iter_heavy(args.events):
                fh.write(line + b"\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    for i in range(args.repeat):
        with open(os.devnull, "wb") as devnull:
            t0 = time.monotonic()
            p = subprocess.Popen([sys.executable, "-m", "kubestrata", "detect", "replay", str(path), "-o", "jsonl",
                                  "--fail-on", "never"], stdout=devnull, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
            _, status, ru = os.wait4(p.pid, 0)
        cpu = ru.ru_utime + ru.ru_stime
        print(f"replay -o jsonl run {i + 1}: {args.events:,} finding-heavy events, CPU {cpu:.2f}s "
              f"({args.events / cpu:,.0f} events per CPU-second, start-up included), wall {time.monotonic() - t0:.1f}s, "
              f"PYTHONUNBUFFERED={os.environ.get('PYTHONUNBUFFERED', '')!r}")  # fmt: skip


def soak(args: argparse.Namespace) -> dict[str, Any]:
    return run_soak(args.events, args.state_url, OUT / "fleet-soak", args.partitions, verbose=True)


def run_soak(events: int, state_url: str | None, out: Path, partitions: int = 12, verbose: bool = False,
             kill_at: float = 0.3, redis_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    """3 workers, publishing while they run; one SIGKILLed when ``kill_at`` of the events are
    processed. Returns the counts the caller asserts on."""
    lines = iter_heavy(events)
    redis = None if redis_url else Redis()
    url = redis_url or redis.url  # type: ignore[union-attr]
    try:
        if state_url:
            state = fresh_state(state_url, "soak")
        else:
            state = str(out.parent / f"{out.name}.db")
            for f in out.parent.glob(f"{out.name}.db*"):
                f.unlink()
        shutil.rmtree(out, ignore_errors=True)
        from kubestrata.detect.streams import Layout, check_layout, connect, ensure_groups

        client = connect(url)
        check_layout(client, Layout(partitions=partitions))
        ensure_groups(client, Layout(partitions=partitions))
        t0 = time.monotonic()
        fleet = Fleet(url, state, 3, out, ["--idle-exit", "4", "--lease-ttl", "2", "--min-idle", "2",
                                           "--partitions", str(partitions), "--batch", "200"])  # fmt: skip
        pub = threading.Thread(target=publish, args=(url, lines, partitions))
        pub.start()
        victim = "worker-1"
        while True:  # kill one worker mid-run, while it holds unacknowledged entries
            read, _ = acked(url, partitions)
            if read >= events * kill_at and pending_of(url, partitions, victim):
                fleet.kill(victim)
                break
            if read >= events:
                break
            time.sleep(0.05)
        pub.join()
        fleet.wait()
        wall = time.monotonic() - t0
        read, pending = acked(url, partitions)
        emitted = fleet.fingerprints()
        stored = stored_fingerprints(state)
        result = {
            "events": events,
            "read": read,
            "pending": pending,
            "stored": len(stored),
            "emitted": len(emitted),
            "emitted_twice": sum(1 for c in emitted.values() if c > 1),
            "stored_not_emitted": len(set(stored) - set(emitted)),
            "killed": sorted(fleet.killed),
            "wall_s": round(wall, 1),
            "cpu_s": {k: round(v, 1) for k, v in fleet.cpu.items()},
            "dead": client.xlen(f"{Layout().prefix}:dead"),
            "claimed": sum(st["claimed"] for st in worker_stats(out).values()),
        }
        if verbose:
            print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return result
    finally:
        if redis is not None:
            redis.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scaling", action="store_true")
    ap.add_argument("--heavy", action="store_true")
    ap.add_argument("--soak", action="store_true")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--state-url", help="shared state database (default: a SQLite file in bench/out)")
    ap.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL for the state")
    args = ap.parse_args()
    pg = None
    if args.postgres:
        sys.path.insert(0, str(ROOT))
        from tests.detect.conftest import PostgresServer, _pg_bindir

        bindir = _pg_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL binaries (apt-get install postgresql)")
        pg = PostgresServer(bindir)
        pg.start()
        args.state_url = pg.new_database()
    try:
        run(args)
    finally:
        if pg is not None:
            pg.stop()


def run(args: argparse.Namespace) -> None:
    OUT.mkdir(exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if args.scaling:
        scaling(args)
    if args.heavy:
        heavy(args)
    if args.soak:
        soak(args)


if __name__ == "__main__":
    main()
