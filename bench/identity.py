"""Benchmark: the identity paths (issue 15).

1. Token verification without the STS call: every rule of aws-iam-authenticator's Verify on a boto3-made
   token, and a whole TokenReview answered from the cache (rules + cache hit + access-model mapping).
   Target: median < 1 ms. CPU time per call (time.process_time_ns), since the machine is shared.
2. `kubestrata identity agent` (its own process) serving cached credentials over HTTP keep-alive at a
   fixed rate (default 500 requests/s for 10 s, 200 pods cycling): client-observed latency p50/p99
   (wall) and the agent process's CPU time per request (/proc). Target: p99 < 5 ms.
3. 1,000 pods of two associations asking at once: STS AssumeRole calls counted on the wire (moto's STS),
   with pod-level session tags off (one session per association) and on (one per pod, as EKS).

STS, IAM and S3 are moto's ThreadedMotoServer on loopback (tests/identity/motosts.py). Run from the
repository root: PYTHONPATH=src python bench/identity.py [--rate 500] [--seconds 10]. Writes
bench/out/identity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
import yaml  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from tests.identity.agentkit import sa_token, signing_key  # noqa: E402
from tests.identity.motosts import QueryAuthMotoServer  # noqa: E402

from kubestrata.access.model import AccessModel  # noqa: E402
from kubestrata.identity.authenticator import AccessMapper, Authenticator  # noqa: E402
from kubestrata.identity.token import make_token, parse_token  # noqa: E402
from kubestrata.kube.cluster import Cluster  # noqa: E402
from kubestrata.kube.objects import KubeObject  # noqa: E402

ACCOUNT = "123456789012"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def admin(moto: QueryAuthMotoServer) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


def bench_tokens(moto: QueryAuthMotoServer, n: int) -> dict:
    s = admin(moto)
    iam = s.client("iam", endpoint_url=moto.url)
    iam.create_role(RoleName="dev", AssumeRolePolicyDocument="{}")
    c = s.client("sts", endpoint_url=moto.url).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/dev", RoleSessionName="alice"
    )["Credentials"]
    dev = boto3.Session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name="us-east-1",
    )
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aws-auth", "namespace": "kube-system"},
        "data": {
            "mapRoles": yaml.safe_dump(
                [
                    {
                        "rolearn": f"arn:aws:iam::{ACCOUNT}:role/dev",
                        "username": "dev:{{SessionName}}",
                        "groups": ["d"],
                    }
                ]
            )
        },
    }
    auth = Authenticator("demo", AccessMapper(AccessModel(Cluster([KubeObject(cm)]))), sts_endpoint=moto.url)
    token, _ = make_token("demo", session=dev)
    t0 = time.perf_counter()
    first = auth.authenticate(token)
    sts_wall = time.perf_counter() - t0
    assert first.authenticated, first.status
    rules, hits = [], []
    for _ in range(n):
        a = time.process_time_ns()
        parse_token(token)
        b = time.process_time_ns()
        r = auth.authenticate(token)
        c2 = time.process_time_ns()
        assert r.authenticated
        rules.append((b - a) / 1e6)
        hits.append((c2 - b) / 1e6)
    return {
        "calls": n,
        "rules_only_ms": {"median": statistics.median(rules), "p99": pct(rules, 99)},
        "review_cache_hit_ms": {"median": statistics.median(hits), "p99": pct(hits, 99)},
        "first_review_with_sts_wall_ms": sts_wall * 1000,
        "sts_calls": auth.sts_calls,
    }


ASSOCIATIONS = {
    "associations": [
        {"namespace": "shop", "serviceAccount": "web", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/web"},
        {"namespace": "batch", "serviceAccount": "jobs", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/jobs"},
    ]
}


class AgentProcess:
    """`kubestrata identity agent` as a user runs it, in its own process (its CPU time read from /proc)."""

    def __init__(self, moto, key_file: Path, assoc_file: Path, pod_tags: bool) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "src"),
            "AWS_ACCESS_KEY_ID": "node",
            "AWS_SECRET_ACCESS_KEY": "node",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubestrata", "identity", "agent", "--cluster-name", "demo",
             "--associations", str(assoc_file), "--signing-key", str(key_file), "--host", "127.0.0.1",
             "--port", str(self.port), "--allowed-host", "127.0.0.1", "--sts-endpoint", moto.url,
             "--region", "us-east-1", "--rate-limit", "0", "--pod-tags" if pod_tags else "--no-pod-tags"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    c.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("agent did not start")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def roles(moto) -> None:
    iam = admin(moto).client("iam", endpoint_url=moto.url)
    for r in ("web", "jobs"):
        try:
            iam.create_role(RoleName=r, AssumeRolePolicyDocument="{}")
        except iam.exceptions.EntityAlreadyExistsException:
            pass


def bench_agent_rate(agent: AgentProcess, key, rate: int, seconds: float, pods: int) -> dict:
    tokens = [sa_token(key, "shop", "web", f"web-{i}") for i in range(pods)]
    c = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)

    def get(t: str) -> int:
        c.request("GET", "/v1/credentials", headers={"Authorization": t})
        r = c.getresponse()
        r.read()
        return r.status

    for t in tokens:  # warm: one STS session per pod, then every answer comes from the cache
        assert get(t) == 200
    lat: list[float] = []
    codes: dict[int, int] = {}
    total = int(rate * seconds)
    cpu0, start = agent.cpu_seconds(), time.perf_counter()
    for i in range(total):
        due = start + i / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        t0 = time.perf_counter()
        code = get(tokens[i % pods])
        lat.append((time.perf_counter() - t0) * 1000)
        codes[code] = codes.get(code, 0) + 1
    elapsed = time.perf_counter() - start
    cpu = agent.cpu_seconds() - cpu0
    c.close()
    return {
        "requests": len(lat),
        "pods": pods,
        "target_rate": rate,
        "achieved_rate": round(len(lat) / elapsed, 1),
        "codes": codes,
        "latency_wall_ms": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99), "max": max(lat)},
        "agent_cpu_per_request_ms": cpu / len(lat) * 1000,
    }


def bench_burst(moto, agent: AgentProcess, key, pods: int, pod_tags: bool) -> dict:
    tokens = [sa_token(key, "shop", "web", f"burst-{pod_tags}-{i}") for i in range(pods // 2)]
    tokens += [sa_token(key, "batch", "jobs", f"burst-{pod_tags}-{i}") for i in range(pods - pods // 2)]
    before = sum(1 for p in moto.sts.posts if p.get("Action") == "AssumeRole")

    async def one(t: str) -> int:
        # a bare HTTP/1.1 GET per pod on its own connection (httpx's pool is quadratic at 1,000 connections)
        reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
        writer.write(
            f"GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {t}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        await reader.read()
        writer.close()
        return status

    async def burst():
        return await asyncio.gather(*(one(t) for t in tokens))

    t0 = time.perf_counter()
    replies = asyncio.run(burst())
    wall = time.perf_counter() - t0
    on_wire = sum(1 for p in moto.sts.posts if p.get("Action") == "AssumeRole") - before
    return {
        "pods": pods,
        "associations": 2,
        "pod_tags": pod_tags,
        "ok": sum(code == 200 for code in replies),
        "sts_assume_role_calls": on_wire,
        "wall_s": round(wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--token-calls", type=int, default=5000)
    ap.add_argument("--burst", type=int, default=1000)
    args = ap.parse_args()
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(k, v)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = QueryAuthMotoServer()
    moto.start()
    key = signing_key()
    work = Path(tempfile.mkdtemp(prefix="kubestrata-bench-identity-"))
    (work / "sa.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (work / "assoc.yaml").write_text(yaml.safe_dump(ASSOCIATIONS))
    roles(moto)
    agents: list[AgentProcess] = []
    try:
        out = {
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
            "tokens": bench_tokens(moto, args.token_calls),
        }
        agents.append(AgentProcess(moto, work / "sa.pub", work / "assoc.yaml", pod_tags=True))
        out["agent_rate"] = bench_agent_rate(agents[-1], key, args.rate, args.seconds, args.pods)
        out["burst_per_pod_session"] = bench_burst(moto, agents[-1], key, args.burst, pod_tags=True)
        agents.append(AgentProcess(moto, work / "sa.pub", work / "assoc.yaml", pod_tags=False))
        out["burst_shared_session"] = bench_burst(moto, agents[-1], key, args.burst, pod_tags=False)
        out["machine"]["load_after"] = os.getloadavg()
    finally:
        for a in agents:
            a.stop()
        moto.stop()
    print(json.dumps(out, indent=2))
    d = REPO / "bench" / "out"
    d.mkdir(parents=True, exist_ok=True)
    (d / "identity.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
