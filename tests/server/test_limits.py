"""Bounded resources, against the real server: an idle-connection flood does not starve the API
server's keep-alive traffic, idle connections cost little memory, oversized fields are refused
without growing the process, and every refusal is counted."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubestrata.server.assemble import build_state
from tests.conftest import REPO_ROOT
from tests.server.fakes import RecordingAuthorizer, config, free_port

DEMO = REPO_ROOT / "examples" / "cedar-demo" / "policies"
SAR = {
    "apiVersion": "authorization.k8s.io/v1",
    "kind": "SubjectAccessReview",
    "spec": {
        "user": "alice",
        "groups": ["config-editors"],
        "resourceAttributes": {
            "verb": "get",
            "version": "v1",
            "resource": "configmaps",
            "namespace": "team-a",
        },
    },
}


def _deploy_memory_limit() -> int:
    docs = list(yaml.safe_load_all((REPO_ROOT / "deploy" / "deployment.yaml").read_text()))
    dep = next(d for d in docs if d and d["kind"] == "Deployment")
    limit = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert limit.endswith("Mi")
    return int(limit[:-2]) * 1024 * 1024


def _open_raw(port: int, n: int, hello: bool) -> list[socket.socket]:
    """n TCP connections that start (or not) a TLS handshake and then say nothing more."""
    out = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if hello and i % 2:
            s.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
        out.append(s)
    return out


def test_idle_flood_does_not_starve_keep_alive_callers(live_server_factory):
    state = build_state(config(), cedar=None, pss=None, audit=None)
    state.authorizer = RecordingAuthorizer()
    limits = state.config.limits
    srv = live_server_factory(state, max_connections=limits.max_connections, reserve=limits.reserve)
    flood = _open_raw(srv.port, 1000, hello=True)
    try:
        latencies: list[float] = []
        codes: list[int] = []
        with srv.client() as keep:  # the API server's keep-alive pool: one connection, reused
            for i in range(300):
                t0 = time.perf_counter()
                codes.append(keep.post("/authorize", json=SAR).status_code)
                latencies.append(time.perf_counter() - t0)
                if i % 50 == 0:  # and a fresh connection now and then, as the pool grows
                    with srv.client() as fresh:
                        codes.append(fresh.post("/authorize", json=SAR).status_code)
        flood += _open_raw(srv.port, 200, hello=False)  # still arriving
        with srv.client() as c:
            codes.append(c.post("/authorize", json=SAR).status_code)
    finally:
        for s in flood:
            s.close()
    assert set(codes) == {200}, codes
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert p99 < 0.050, f"p99 {p99 * 1000:.1f} ms"
    with srv.ops() as o:  # probes have their own port
        assert o.get("/readyz").status_code == 200
        metrics = o.get("/metrics").text
    evicted = [
        ln
        for ln in metrics.splitlines()
        if ln.startswith('kubestrata_connections_closed_total{reason="evicted_idle"}')
    ]
    assert evicted and float(evicted[0].split()[-1]) >= 100  # the flood competed with itself
    assert "503" not in "".join(
        ln for ln in metrics.splitlines() if ln.startswith("kubestrata_http_requests_total")
    )


def test_connection_table_evicts_oldest_idle_and_refuses_only_when_all_busy():
    from kubestrata.server.run import ConnectionTable

    class Fake:
        def __init__(self) -> None:
            self.aborted = False

        def _abort(self) -> None:
            self.aborted = True

    closed: list[str] = []
    t = ConnectionTable(4, 2, closed.append)
    a, b = Fake(), Fake()
    ea, eb = t.admit(a), t.admit(b)
    assert ea and eb and len(t) == 2
    ec = t.admit(Fake())  # the untrusted class (4 - 2) is full: the oldest untrusted idle goes
    assert ec and a.aborted and not b.aborted and closed == ["evicted_idle"]
    t.trust(eb)
    t.trust(ec)
    t.busy(eb, True)
    t.busy(ec, True)
    d, e = Fake(), Fake()
    ed = t.admit(d)
    ee = t.admit(e)
    assert ed and ee and len(t) == 4
    t.busy(ed, True)
    t.busy(ee, True)
    assert t.admit(Fake()) is None and closed[-1] == "refused"  # the untrusted class is all busy
    t.trust(ed)
    t.trust(ee)
    assert t.admit(Fake()) is None and closed[-1] == "refused"  # everything busy
    t.busy(eb, False)
    f = Fake()
    assert t.admit(f) is not None and closed[-1] == "evicted_idle"  # the idle trusted one made room


# --- a real `kubestrata serve` process: memory ----------------------------------------------------


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def process(tmp_path_factory: pytest.TempPathFactory, certs: Any) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("serve-proc")
    cfg = tmp / "k.yaml"
    # room for 2,000 idle connections, to measure what each costs
    cfg.write_text("serve:\n  limits: {max_connections: 2500, reserve: 100}\n  audit: {enabled: false}\n")
    port, ops = free_port(), free_port()
    err = (tmp / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubestrata", "serve", "-c", str(cfg), "--tls-cert", str(certs.cert),
         "--tls-key", str(certs.key), "--insecure-no-client-auth", "--policies", str(DEMO),
         "--host", "127.0.0.1", "--port", str(port), "--ops-port", str(ops)],
        env={"PYTHONPATH": str(REPO_ROOT / "src"), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=err,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{ops}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (tmp / "stderr.log").read_text()
        time.sleep(0.1)
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    try:
        yield {"proc": proc, "port": port, "ops": ops, "ctx": ctx}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        err.close()


def test_rss_stays_under_the_deploy_limit_with_2000_idle_tls_connections(process):
    port, ctx, pid = process["port"], process["ctx"], process["proc"].pid
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=10) as c:
        for _ in range(20):  # warm: the first requests allocate the engines' caches
            assert c.post("/authorize", json=SAR).status_code == 200
    before = _rss(pid)
    conns = []
    try:
        for _ in range(2000):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            conns.append(ctx.wrap_socket(raw, server_hostname="localhost"))  # full TLS handshake
        time.sleep(0.5)
        after = _rss(pid)
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=10) as c:
            assert c.post("/authorize", json=SAR).status_code == 200  # still serving
    finally:
        for s in conns:
            s.close()
    per_conn = (after - before) / 2000
    print(
        f"RSS {before / 2**20:.0f} MiB -> {after / 2**20:.0f} MiB: {per_conn / 1024:.1f} KiB per connection"
    )
    assert after < _deploy_memory_limit()
    # asyncio's own TLS protocol alone allocates 256 KiB per connection; ours shares one buffer
    assert per_conn < 100 * 1024, f"{per_conn / 1024:.0f} KiB per idle TLS connection"


def test_one_megabyte_fields_are_refused_without_growing_rss(process):
    port, ctx, pid = process["port"], process["ctx"], process["proc"].pid
    big = "u" * (1024 * 1024)
    sar = json.loads(json.dumps(SAR))
    sar["spec"]["user"] = big
    pod = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "operation": "CREATE",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "namespace": "team-a",
            "userInfo": {"username": "alice", "groups": [big]},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        },
    }
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=30) as c:
        for _ in range(5):  # warm the code paths (and the allocator) first
            c.post("/authorize", json=sar)
            c.post("/admit", json=pod)
        before = _rss(pid)
        for _ in range(120):
            st = c.post("/authorize", json=sar).json()["status"]
            assert st["denied"] is True and "spec.user is over 1024 characters" in st["reason"]
            r = c.post("/admit", json=pod)
            assert r.status_code == 400 and "groups has a group name over" in r.json()["message"]
        after = _rss(pid)
    assert after - before < 32 * 1024 * 1024, f"RSS grew {(after - before) / 2**20:.0f} MiB"
    metrics = httpx.get(f"http://127.0.0.1:{process['ops']}/metrics").text
    assert 'kubestrata_bad_requests_total{reason="field_too_large",route="admit"} 125.0' in metrics
    assert 'kubestrata_http_requests_total{code="400",route="admit"} 125.0' in metrics


def test_refusals_are_counted_including_the_servers_own(live_server_factory, certs):
    state = build_state(config(), cedar=None, pss=None, audit=None)
    srv = live_server_factory(state, header_timeout=0.3)
    with srv.client() as c:
        assert c.post("/authorize", json=SAR).status_code == 503  # no authorizer: not ready
        assert c.get("/nowhere").status_code == 404
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    ctx = srv.ssl_context()
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"POST /authorize HTTP/1.1\r\nHost: x\r\n")  # headers never finish: 408
    assert s.recv(100).startswith(b"HTTP/1.1 408")
    s.close()
    s = ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", srv.port), timeout=5), server_hostname="localhost"
    )
    s.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # h11 refuses: 400
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    m = srv.get("/metrics").text
    for line in (
        'kubestrata_http_requests_total{code="503",route="authorize"} 1.0',
        'kubestrata_http_requests_total{code="404",route="other"} 1.0',
        'kubestrata_http_requests_total{code="408",route="other"} 1.0',
        'kubestrata_http_requests_total{code="400",route="other"} 1.0',
        'kubestrata_bad_requests_total{reason="not_ready",route="authorize"} 1.0',
    ):
        assert line in m, line


def test_keep_alive_outlasts_client_go_idle_timeout():
    from kubestrata.server.config import LimitsConfig

    assert LimitsConfig().keep_alive > 90
    with pytest.raises(ValueError, match="greater than 90"):
        LimitsConfig(keep_alive=75)


def test_drain_closes_idle_connections_and_readyz_fails(live_server_factory):
    state = build_state(config(), cedar=None, pss=None, audit=None)
    state.authorizer = RecordingAuthorizer()
    srv = live_server_factory(state, max_connections=100, drain_seconds=1.0)
    with srv.client() as c:
        r = c.post("/authorize", json=SAR)
        assert r.status_code == 200 and r.headers.get("connection") != "close"
        srv.server.begin_drain()
        assert srv.get("/readyz").status_code == 503
        r = c.post("/authorize", json=SAR)  # served, then the connection is given up
        assert r.status_code == 200 and r.headers["connection"] == "close"
    srv.thread.join(10)
    assert not srv.thread.is_alive()


def test_servers_on_two_loops_in_one_process_never_mix_reads(live_server_factory):
    """The TLS read buffer is shared per event loop; two loops in two threads must not share it
    (a mix-up shows as TLS record errors or wrong answers)."""
    import threading

    servers = []
    for _ in range(2):
        st = build_state(config(), cedar=None, pss=None, audit=None)
        st.authorizer = RecordingAuthorizer()
        servers.append(live_server_factory(st, max_connections=100))
    errors: list[BaseException] = []
    big = json.loads(json.dumps(SAR))
    big["spec"]["extra"] = {"k": ["v" * 300] * 60}  # ~18 KB: several TLS records per request

    def hammer(srv: Any, verb: str) -> None:
        body = json.loads(json.dumps(big))
        body["spec"]["resourceAttributes"]["verb"] = verb
        want = verb == "delete"
        try:
            with srv.client() as c:
                for _ in range(60):
                    st = c.post("/authorize", json=body).json()["status"]
                    assert st.get("denied", False) is want
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=hammer, args=(s, v)) for s in servers for v in ("get", "delete")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
