"""KMS v2 plugin latency and CPU cost over its Unix socket, as kube-apiserver calls it.

    python bench/kms.py [--calls 20000] [--aws-calls 2000] [--concurrency 200] [--no-aws]

The plugin is the real `kubestrata kms serve` in its own process; the client is a grpc.aio client
built from the same proto, keeping --concurrency calls in flight (closed loop) and timing each call
from send to reply. Payloads are 32-byte DEK seeds, what the API server wraps. For each backend and
method it reports wall-clock p50/p99/max at concurrency 1 (service time plus transport) and at
--concurrency (which adds queueing on this machine), and the plugin's CPU time per call (utime +
stime of the plugin process from /proc, the figure that does not depend on how loaded the shared
machine is). The AWS backend runs against moto's KMS server in a third process on 127.0.0.1, so its
wall figures include moto's own time; the plugin CPU per call is the backend's overhead.
Results: a Markdown table on stdout, JSON in bench/out/kms.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kubestrata.kms.apis.v2 import api_pb2, api_pb2_grpc  # noqa: E402

OUT = ROOT / "bench" / "out"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    return env


def start_plugin(args: list[str], sock: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubestrata", "kms", "serve", "--socket", f"unix://{sock}", *args],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"plugin did not start: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.1)
    return proc


def start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("moto server did not start") from None
            time.sleep(0.2)


async def run_calls(stub, method: str, n: int, concurrency: int, ciphertexts: list) -> list[float]:  # noqa: ANN001
    """n calls of one method with `concurrency` in flight; per-call wall latency in seconds."""
    lat: list[float] = []
    next_i = 0

    async def worker() -> None:
        nonlocal next_i
        while next_i < n:
            i = next_i
            next_i += 1
            if method == "Encrypt":
                req = api_pb2.EncryptRequest(plaintext=os.urandom(32), uid=str(uuid.uuid4()))
                t = time.perf_counter()
                await stub.Encrypt(req, timeout=60)
            else:
                ct, kid = ciphertexts[i % len(ciphertexts)]
                req = api_pb2.DecryptRequest(ciphertext=ct, key_id=kid, uid=str(uuid.uuid4()))
                t = time.perf_counter()
                await stub.Decrypt(req, timeout=60)
            lat.append(time.perf_counter() - t)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat


async def measure(sock: Path, pid: int, calls: int, concurrency: int) -> dict:
    out: dict = {}
    async with grpc.aio.insecure_channel(f"unix://{sock}") as ch:
        stub = api_pb2_grpc.KeyManagementServiceStub(ch)
        st = await stub.Status(api_pb2.StatusRequest(), timeout=30)
        assert st.healthz == "ok", st.healthz
        seeds = []
        for _ in range(64):
            r = await stub.Encrypt(api_pb2.EncryptRequest(plaintext=os.urandom(32), uid="warm"), timeout=30)
            seeds.append((r.ciphertext, r.key_id))
        for method, n in (("Decrypt", calls), ("Encrypt", max(calls // 4, 100))):
            for conc, count in ((1, max(n // 20, 50)), (concurrency, n)):
                await run_calls(stub, method, min(count, 200), conc, seeds)  # warm-up
                cpu0, c0, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
                lat = await run_calls(stub, method, count, conc, seeds)
                wall = time.perf_counter() - t0
                server_cpu, client_cpu = cpu_seconds(pid) - cpu0, time.process_time() - c0
                out[f"{method}@{conc}"] = {
                    "calls": count,
                    "p50_ms": round(pct(lat, 50) * 1e3, 2),
                    "p99_ms": round(pct(lat, 99) * 1e3, 2),
                    "max_ms": round(max(lat) * 1e3, 2),
                    "calls_per_s_wall": round(count / wall),
                    "plugin_cpu_ms_per_call": round(server_cpu / count * 1e3, 3),
                    "client_cpu_ms_per_call": round(client_cpu / count * 1e3, 3),
                }
    return out


def bench_backend(name: str, plugin_args: list[str], calls: int, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="ks-kms-bench-", dir="/tmp") as d:
        sock = Path(d) / "kms.sock"
        if name == "local":
            subprocess.run(
                [sys.executable, "-m", "kubestrata", "kms", "init", "--keyring", f"{d}/keyring.json"],
                env=_env(),
                check=True,
                capture_output=True,
            )
            plugin_args = ["--keyring", f"{d}/keyring.json"]
        proc = start_plugin(plugin_args, sock)
        try:
            return asyncio.run(measure(sock, proc.pid, calls, concurrency))
        finally:
            proc.terminate()
            proc.wait(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20000, help="Decrypt calls at full concurrency (local).")
    ap.add_argument(
        "--aws-calls", type=int, default=2000, help="Decrypt calls at full concurrency (aws/moto)."
    )
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--no-aws", action="store_true")
    a = ap.parse_args()
    results = {"local": bench_backend("local", [], a.calls, a.concurrency)}
    if not a.no_aws:
        moto, endpoint = start_moto()
        try:
            import boto3

            os.environ.update(_env())
            kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
            arn = kms.create_key(Description="bench")["KeyMetadata"]["Arn"]
            aws_args = [
                "--backend",
                "aws",
                "--key-id",
                arn,
                "--endpoint-url",
                endpoint,
                "--region",
                "us-east-1",
            ]
            aws_args += ["--encryption-context", "cluster=bench"]
            results["aws (moto)"] = bench_backend("aws", aws_args, a.aws_calls, a.concurrency)
        finally:
            moto.terminate()
            moto.wait(15)
    meta = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "grpcio": grpc.__version__,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "kms.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"machine: {meta}")
    print(
        "| backend | call @ concurrency | calls | p50 ms | p99 ms | max ms | calls/s | plugin CPU ms/call |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for backend, rows in results.items():
        for key, r in rows.items():
            print(
                f"| {backend} | {key} | {r['calls']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | "
                f"{r['calls_per_s_wall']} | {r['plugin_cpu_ms_per_call']} |"
            )


if __name__ == "__main__":
    main()
