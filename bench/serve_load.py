"""End-to-end load over HTTPS on loopback: p50/p99 of /authorize and /admit at a fixed request rate,
each beside a no-policy control run.

    python bench/serve_load.py [--rate 500] [--seconds 10] [--max-requests 20000] [--connections 8]
    python bench/serve_load.py --only estate --new-user-per-request   # no two requests share a user

The server is the real `kubestrata serve` in its own process (the API server's view: mutual TLS
with a client certificate, HTTP/1.1 keep-alive connections, JSON reviews); the client is a thin h11 client so its own CPU stays small. The load is open-loop: request i is due at start + i/rate and
its latency is measured from that due time, so a stalled server cannot hide its queueing delay
(no coordinated omission). Bounded: at most --max-requests per run and --seconds of sending, and
only to 127.0.0.1. Results: a Markdown table on stdout, JSON in bench/out/serve_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h11
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "examples" / "cedar-demo"))

from kubestrata.server.certs import generate_certs  # noqa: E402

OUT = ROOT / "bench" / "out"
DEMO_POLICIES = ROOT / "examples" / "cedar-demo" / "policies"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def authorization_reviews() -> list[dict]:
    import walkthrough as wt  # examples/cedar-demo

    return [s.body for s in wt.STEPS if s.route == "/authorize"]


def admission_reviews() -> list[dict]:
    import walkthrough as wt

    cms = [s.body for s in wt.STEPS if s.route == "/admit"]
    pod = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "bench-pod",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web",
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["config-editors", "system:authenticated"]},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "web",
                    "namespace": "team-a",
                    "labels": {"app": "web", "owner": "alice"},
                },
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example/web:1.4.2",
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }
    return [*cms, pod]


class Server:
    """`kubestrata serve` in a subprocess on a loopback port."""

    def __init__(self, workdir: Path, name: str, policies: Path, config: dict, mtls: bool = True) -> None:
        self.port = _free_port()
        self.ops_port = _free_port()
        self.certs = generate_certs(workdir / "certs", ["127.0.0.1", "localhost"])
        cfg = workdir / f"{name}.yaml"
        cfg.write_text(json.dumps({"serve": config}))
        self.log = OUT / f"serve_load-{name}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubestrata",
                "serve",
                "--tls-cert",
                str(self.certs.cert),
                "--tls-key",
                str(self.certs.key),
                "--policies",
                str(policies),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--ops-port",
                str(self.ops_port),
                *(["--client-ca", str(self.certs.ca_cert)] if mtls else ["--insecure-no-client-auth"]),
                "--config",
                str(cfg),
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )
        self.url = f"https://127.0.0.1:{self.port}"
        self.ops = f"http://127.0.0.1:{self.ops_port}"
        self.ssl = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        if mtls:
            self.ssl.load_cert_chain(str(self.certs.client_cert), str(self.certs.client_key))
        deadline = time.monotonic() + 180  # a 1,000-policy set validates slowly on a busy box
        while True:
            try:
                if httpx.get(self.ops + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"server did not become ready; see {self.log}")
            time.sleep(0.1)

    def server_quantiles(self, route: str) -> dict[str, float]:
        """Upper bucket bounds of the server's own p50/p99 (time inside the app, from /metrics),
        which separates server time from TLS, loopback and client time."""
        text = httpx.get(self.ops + "/metrics", timeout=5).text
        name = route.strip("/")
        buckets = []
        for line in text.splitlines():
            if (
                line.startswith("kubestrata_http_request_duration_seconds_bucket{")
                and f'route="{name}"' in line
            ):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
        total = buckets[-1][1] if buckets else 0
        out = {}
        for q in (0.5, 0.99):
            bound = next((le for le, c in buckets if total and c >= q * total), float("nan"))
            out[f"server_p{int(q * 100)}_le_ms"] = bound * 1000
        return out

    def cpu_seconds(self) -> float:
        """The server process's user+system CPU time (the box is shared: wall time alone misleads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Connection:
    """One keep-alive HTTPS connection speaking HTTP/1.1 through h11 (the parser uvicorn uses): far
    less client CPU per request than a full client library, so the figures are the server's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext) -> Connection:
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
        return cls(r, w)

    async def post(self, route: str, body: bytes) -> int:
        c = self.conn
        data = c.send(
            h11.Request(
                method="POST",
                target=route,
                headers=[
                    ("host", "127.0.0.1"),
                    ("content-type", "application/json"),
                    ("content-length", str(len(body))),
                ],
            )
        )
        data += c.send(h11.Data(data=body)) + c.send(h11.EndOfMessage())
        self.writer.write(data)
        status = 0
        while True:
            ev = c.next_event()
            if ev is h11.NEED_DATA:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                c.receive_data(chunk)
                continue
            if isinstance(ev, h11.Response):
                status = ev.status_code
            elif isinstance(ev, h11.EndOfMessage):
                c.start_next_cycle()
                return status

    def close(self) -> None:
        self.writer.close()


def new_user_bodies(reviews: list[dict], n: int, tag: str) -> list[bytes]:
    """``n`` reviews cycled from ``reviews``, each asked by a user no other request names (as when
    every request comes from a different person: no per-principal cache can answer it)."""
    out = []
    for i in range(n):
        r = json.loads(json.dumps(reviews[i % len(reviews)]))
        spec = r["spec"]
        spec["user"] = f"{tag}-{i}-{spec['user']}"
        for sel in (spec.get("resourceAttributes") or {}).get("labelSelector", {}).get("requirements", []):
            sel["values"] = [spec["user"]]  # an owner selector names the asking user, as before
        out.append(json.dumps(r).encode())
    return out


async def load(
    port: int,
    ctx: ssl.SSLContext,
    route: str,
    bodies: list[bytes],
    rate: float,
    seconds: float,
    max_requests: int,
    connections: int,
    warm_bodies: list[bytes] | None = None,
) -> dict:
    n = min(max_requests, int(rate * seconds))
    conns = [await Connection.open(port, ctx) for _ in range(connections)]
    warm = warm_bodies or bodies
    for i in range(connections * 20):  # warm-up on every connection (handshakes are not measured)
        await conns[i % connections].post(route, warm[i % len(warm)])
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    lat: list[float] = []
    errors = 0

    async def worker(conn: Connection) -> None:
        nonlocal errors
        while True:
            i, due = await queue.get()
            if i < 0:
                return
            try:
                if await conn.post(route, bodies[i % len(bodies)]) != 200:
                    errors += 1
            except (OSError, h11.ProtocolError):
                errors += 1
            lat.append(time.perf_counter() - due)

    workers = [asyncio.create_task(worker(c)) for c in conns]
    start = time.perf_counter() + 0.05
    for i in range(n):  # open loop: request i is due at start + i/rate whatever the server does
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((i, due))
    for _ in conns:
        queue.put_nowait((-1, 0.0))
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

    return {
        "route": route,
        "requests": n,
        "errors": errors,
        "achieved_rps": round(n / elapsed, 1),
        "p50_ms": round(pct(0.50), 3),
        "p90_ms": round(pct(0.90), 3),
        "p99_ms": round(pct(0.99), 3),
        "max_ms": round(lat[-1] * 1000, 3),
        "mean_ms": round(statistics.fmean(lat) * 1000, 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=500.0, help="requests per second (open loop)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of sending per run (bound)")
    ap.add_argument("--max-requests", type=int, default=20000, help="requests per run (bound)")
    ap.add_argument("--connections", type=int, default=8, help="keep-alive connections (API server pool)")
    ap.add_argument("--only", default="", help="run only the runs whose name contains this text")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each scenario (the box may be shared)")
    ap.add_argument("--no-mtls", action="store_true", help="serve without client certificates (comparison)")
    ap.add_argument(
        "--new-user-per-request",
        action="store_true",
        help="authorization runs: every request from a user no other request names",
    )
    args = ap.parse_args()
    if args.rate <= 0 or args.rate > 5000 or args.seconds > 120:
        ap.error("rate must be in (0, 5000] and seconds at most 120: this is a bounded benchmark")
    OUT.mkdir(parents=True, exist_ok=True)

    authz = [json.dumps(b).encode() for b in authorization_reviews()]
    admit = [json.dumps(b).encode() for b in admission_reviews()]
    full_admission = {
        "admission": {
            "namespaces": {"file": None},
            "pss": {"enabled": True},
            "checks": {"enabled": True},
            "cedar": True,
        }
    }
    control_admission = {
        "admission": {"pss": {"enabled": False}, "checks": {"enabled": False}, "cedar": False}
    }
    from kubestrata.authz import synthetic

    rnd = random.Random(4)
    estate_dicts = [synthetic.review(rnd) for _ in range(500)]
    estate_reviews = [json.dumps(r).encode() for r in estate_dicts]
    warm_bodies: dict[str, list[bytes]] = {}
    if args.new_user_per_request:
        n = min(args.max_requests, int(args.rate * args.seconds))
        # warm-up users are new too, and none of them asks again in the measured run
        warm_bodies["/authorize"] = new_user_bodies(estate_dicts, args.connections * 20, "warm")
        authz = new_user_bodies(authorization_reviews(), n, "u")
        estate_reviews = new_user_bodies(estate_dicts, n, "u")
    runs = [
        ("authorization", "/authorize", authz, DEMO_POLICIES, full_admission),
        ("authorization (1,000-policy estate)", "/authorize", estate_reviews, "estate", full_admission),
        ("authorization (no-policy control)", "/authorize", authz, None, control_admission),
        ("admission", "/admit", admit, DEMO_POLICIES, full_admission),
        ("admission (no-policy control)", "/admit", admit, None, control_admission),
    ]
    results = []
    # the box is shared: record how busy it was, since other processes' CPU shows up as latency here
    print(f"load average at start: {os.getloadavg()}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        empty = work / "empty-policies"
        empty.mkdir()
        ns_file = work / "namespaces.yaml"
        ns_file.write_text(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n  labels:\n"
            "    pod-security.kubernetes.io/enforce: restricted\n"
        )
        full_admission["admission"]["namespaces"]["file"] = str(ns_file)
        estate = work / "estate-policies"
        estate.mkdir()
        (estate / "estate.cedar").write_text(synthetic.policy_set(1000))
        for name, route, bodies, policies, cfg in [r for r in runs for _ in range(max(1, args.repeat))]:
            if args.only not in name:
                continue
            tag = name.split()[0] + (
                "-control" if policies is None else "-estate" if policies == "estate" else ""
            )
            dirs = {None: empty, "estate": estate}.get(policies, policies)  # type: ignore[arg-type]
            srv = Server(work, tag, dirs, cfg, mtls=not args.no_mtls)
            try:
                cpu0 = srv.cpu_seconds()
                res = asyncio.run(
                    load(
                        srv.port,
                        srv.ssl,
                        route,
                        bodies,
                        args.rate,
                        args.seconds,
                        args.max_requests,
                        args.connections,
                        warm_bodies.get(route),
                    )
                )
                res["server_cpu_ms_per_request"] = round(
                    (srv.cpu_seconds() - cpu0) * 1000 / max(1, res["requests"]), 3
                )
                res.update(srv.server_quantiles(route))
            finally:
                srv.stop()
            res["run"] = name + (
                " (new user per request)" if args.new_user_per_request and route == "/authorize" else ""
            )
            res["load_average"] = os.getloadavg()[0]
            results.append(res)
            print(f"{name}: {res}", file=sys.stderr)
    meta = {
        "load_average_at_end": os.getloadavg(),
        "rate": args.rate,
        "seconds": args.seconds,
        "connections": args.connections,
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "policies": len(list(DEMO_POLICIES.glob("*.cedar"))),
        "nice": os.nice(0),
        "mtls": not args.no_mtls,
        "new_user_per_request": args.new_user_per_request,
    }
    (OUT / "serve_load.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(
        "| Run | Requests | Achieved req/s | p50 ms | p90 ms | p99 ms | max ms | server p99 ≤ ms "
        "| server CPU ms/req | Errors | Load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['run']} | {r['requests']} | {r['achieved_rps']} | {r['p50_ms']} | {r['p90_ms']} | "
            f"{r['p99_ms']} | {r['max_ms']} | {r['server_p99_le_ms']:g} | {r['server_cpu_ms_per_request']} "
            f"| {r['errors']} | {r['load_average']:.1f} |"
        )
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
