"""Memory per idle TLS connection held by `kubestrata serve`, with and without the shared TLS read
buffer (FrugalSSLProtocol), and optionally other ASGI servers for comparison.

    python bench/serve_memory.py [--connections 1000] [--others]

Each server runs in its own process on 127.0.0.1; the client opens N connections, completes the TLS
handshake on each, then holds them idle; the figure is the server's RSS growth divided by N.
"--others" also measures hypercorn and granian serving a trivial ASGI app, when a Python with them
installed is given by --others-python (they are not kubestrata dependencies). Results: a Markdown
table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kubestrata.server.certs import generate_certs  # noqa: E402

# the stock asyncio TLS protocol for the "before" figure: undo FrugalSSLProtocol in the child
STOCK = """
import asyncio.sslproto, sys
import kubestrata.server.run as r
r.FrugalSSLProtocol.__init__ = asyncio.sslproto.SSLProtocol.__init__
r.FrugalSSLProtocol.get_buffer = asyncio.sslproto.SSLProtocol.get_buffer
r.FrugalSSLProtocol.max_size = 256 * 1024
from kubestrata.cli.main import main
sys.argv = ["kubestrata", *sys.argv[1:]]
main()
"""
TRIVIAL_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_one(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss(pid: int) -> int:
    """RSS of the process and its descendants (hypercorn and granian serve from worker processes)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += _rss_one(p)
        todo += children.get(p, [])
    return total


def _wait_tls(port: int, ctx: ssl.SSLContext, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost"):
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def measure(cmd: list[str], port: int, ctx: ssl.SSLContext, n: int, env: dict[str, str]) -> dict:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conns = []
    try:
        _wait_tls(port, ctx, proc)
        time.sleep(0.5)
        before = _rss(proc.pid)
        for _ in range(n):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            conns.append(ctx.wrap_socket(raw, server_hostname="localhost"))
        time.sleep(1.0)
        after = _rss(proc.pid)
        return {
            "rss_before_mib": before / 2**20,
            "rss_after_mib": after / 2**20,
            "per_conn_kib": (after - before) / n / 1024,
        }
    finally:
        for s in conns:
            s.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--others", action="store_true", help="also hypercorn and granian (trivial app)")
    ap.add_argument("--others-python", default=sys.executable, help="a Python with hypercorn/granian")
    args = ap.parse_args()
    if not 0 < args.connections <= 5000:
        ap.error("connections must be in (0, 5000]")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        certs = generate_certs(work / "certs", ["127.0.0.1", "localhost"])
        ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
        ctx.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        cfg = work / "k.yaml"
        cfg.write_text(json.dumps({"serve": {"limits": {"max_connections": args.connections + 500}}}))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        for name, prefix in (
            ("kubestrata serve (shared TLS buffer)", [sys.executable, "-m", "kubestrata"]),
            ("kubestrata serve (stock asyncio TLS)", [sys.executable, "-c", STOCK]),
        ):
            port, ops = _free_port(), _free_port()
            cmd = [
                *prefix, "serve", "-c", str(cfg), "--tls-cert", str(certs.cert), "--tls-key", str(certs.key),
                "--client-ca", str(certs.ca_cert), "--policies", str(ROOT / "examples" / "cedar-demo" / "policies"),
                "--host", "127.0.0.1", "--port", str(port), "--ops-port", str(ops),
            ]  # fmt: skip
            results.append({"server": name, **measure(cmd, port, ctx, args.connections, env)})
            print(results[-1], file=sys.stderr)
        if args.others:
            (work / "trivial.py").write_text(TRIVIAL_APP)
            oenv = {**env, "PYTHONPATH": str(work)}
            tls = ["--certfile", str(certs.cert), "--keyfile", str(certs.key)]
            for name, mk in (
                (
                    "uvicorn, trivial app (stock asyncio TLS)",
                    lambda p: [args.others_python, "-m", "uvicorn", "trivial:app", "--port", str(p),
                               "--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.key),
                               "--ssl-ca-certs", str(certs.ca_cert), "--ssl-cert-reqs", "2"],
                ),
                (
                    "hypercorn, trivial app",
                    lambda p: [args.others_python, "-m", "hypercorn", "trivial:app", "--bind", f"127.0.0.1:{p}",
                               *tls, "--ca-certs", str(certs.ca_cert), "--verify-mode", "CERT_REQUIRED"],
                ),
                (
                    "granian, trivial app",
                    lambda p: [args.others_python, "-m", "granian", "--interface", "asgi", "--port", str(p),
                               "--ssl-certificate", str(certs.cert), "--ssl-keyfile", str(certs.key),
                               "--ssl-ca", str(certs.ca_cert), "--ssl-client-verify", "trivial:app"],
                ),
            ):  # fmt: skip
                port = _free_port()
                try:
                    results.append({"server": name, **measure(mk(port), port, ctx, args.connections, oenv)})
                except Exception as e:  # noqa: BLE001 - report and go on
                    results.append({"server": name, "error": str(e)})
                print(results[-1], file=sys.stderr)
    print(f"{args.connections} idle TLS connections (handshake complete, client certificate presented)\n")
    print("| Server | RSS before MiB | RSS after MiB | per connection KiB |")
    print("|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['server']} | {r['error']} | | |")
        else:
            print(
                f"| {r['server']} | {r['rss_before_mib']:.0f} | {r['rss_after_mib']:.0f} | {r['per_conn_kib']:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
