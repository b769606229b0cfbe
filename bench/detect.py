"""Benchmark: audit events/s through the full rule set, from a JSONL file, and memory under
sustained load.

    python bench/detect.py                 # 300k events, writes bench/out/detect-audit.jsonl
    python bench/detect.py --events 1000000 --sustain 3000000
    python bench/detect.py --engine --events 100000 --sustain 0 --repeat 5
        # also the engine alone (rule evaluation + finding creation on decoded events, no JSON
        # decoding or output) on the real-shaped and on a finding-heavy stream, and the cost of
        # building one finding
    python bench/detect.py --input bench/out/e2e/audit-heavy-200000.jsonl --sustain 0
        # the pipeline in-process over a given JSONL file (e.g. bench/e2e.py's inputs) instead of
        # the generated one

The generated mix imitates a busy cluster's audit log: ~95% reads (get/list/watch by controllers,
kubelets and a few humans; Metadata level, ~0.7-1.2 KB), ~5% writes (lease updates, event
creates, pod creates/deletes, deployment patches, configmap updates, the odd exec and RBAC change;
Request level, mostly < 2.5 KB), both stages of long-running requests, a few 403s.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kubestrata.detect.pipeline import DetectConfig, Pipeline  # noqa: E402
from kubestrata.detect.sources import Oversize, read_lines  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"

CONTROLLERS = [
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:serviceaccount:kube-system:coredns",
    "system:serviceaccount:kube-system:aws-node",
    "system:serviceaccount:kube-system:kube-proxy",
    "system:serviceaccount:monitoring:prometheus",
    "system:serviceaccount:argocd:argocd-application-controller",
    "eks:node-manager",
]
NODES = [f"system:node:ip-10-0-{i}-{j}.ec2.internal" for i in range(4) for j in range(10, 30)]
HUMANS = ["kubernetes-admin", "alice@example.com", "bob@example.com", "arn:aws:iam::123456789012:role/ci"]
NAMESPACES = ["default", "kube-system", "monitoring", "payments", "web", "argocd", "data"]
READ_RESOURCES = [
    ("pods", ""), ("configmaps", ""), ("secrets", ""), ("endpoints", ""), ("endpointslices", "discovery.k8s.io"),
    ("services", ""), ("nodes", ""), ("deployments", "apps"), ("replicasets", "apps"), ("leases", "coordination.k8s.io"),
    ("namespaces", ""), ("serviceaccounts", ""), ("events", ""), ("persistentvolumeclaims", ""),
]  # fmt: skip
UAS = [
    "kube-controller-manager/v1.29.3 (linux/amd64) kubernetes/6813625/system:serviceaccount:kube-system:replicaset-controller",
    "kubelet/v1.29.3 (linux/amd64) kubernetes/6813625",
    "kubectl/v1.29.2 (darwin/arm64) kubernetes/4b8e819",
    "Go-http-client/2.0",
    "prometheus/2.51.0",
]


def base(
    rng: random.Random, verb: str, user: str, resource: str, group: str, ns: str | None, name: str | None
):
    path = f"/apis/{group}/v1" if group else "/api/v1"
    if ns:
        path += f"/namespaces/{ns}"
    path += f"/{resource}" + (f"/{name}" if name else "")
    ref = {"resource": resource, "apiVersion": "v1"}
    if group:
        ref["apiGroup"] = group
    if ns:
        ref["namespace"] = ns
    if name:
        ref["name"] = name
    ts = f"2026-11-27T10:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}Z"
    ev = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "",
        "stage": "ResponseComplete",
        "requestURI": path + ("?resourceVersion=0&limit=500" if verb == "list" else ""),
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": [f"10.0.{rng.randrange(4)}.{rng.randrange(2, 250)}"],
        "userAgent": rng.choice(UAS),
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": f'RBAC: allowed by ClusterRoleBinding "{user[:40]}" of ClusterRole "view"',
        },
    }
    if user.startswith("arn:") or "@" in user:
        ev["user"]["extra"] = {
            "accessKeyId": ["ASIAEXAMPLEKEYID0001"],
            "arn": ["arn:aws:sts::123456789012:assumed-role/DevAdministrator/session"],
            "canonicalArn": ["arn:aws:iam::123456789012:role/DevAdministrator"],
            "sessionName": ["session"],
        }
    return ev


def read_event(rng: random.Random) -> dict:
    r = rng.random()
    user = rng.choice(CONTROLLERS) if r < 0.55 else rng.choice(NODES) if r < 0.93 else rng.choice(HUMANS)
    res, group = rng.choice(READ_RESOURCES)
    verb = rng.choices(["get", "list", "watch"], [0.6, 0.25, 0.15])[0]
    ns = None if res in ("nodes", "namespaces") else rng.choice(NAMESPACES)
    name = f"{res[:-1]}-{rng.randrange(500)}" if verb == "get" else None
    ev = base(rng, verb, user, res, group, ns, name)
    if verb == "watch" and rng.random() < 0.5:
        ev["stage"] = "ResponseStarted"
    if rng.random() < 0.01:
        ev["responseStatus"] = {"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403}
        ev["annotations"] = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
    return ev


def pod_object(rng: random.Random, ns: str, privileged: bool) -> dict:
    c = {
        "name": "app",
        "image": rng.choice(["nginx:1.25", "ghcr.io/acme/api:2.3.1", "public.ecr.aws/acme/worker:7"]),
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"privileged": True} if privileged else {"runAsNonRoot": True},
        "env": [{"name": "MODE", "value": "prod"}],
    }
    if rng.random() < 0.4:  # some real pod specs are long: many env vars, probes, mounts
        c["env"] += [
            {"name": f"SETTING_{i}", "value": "x" * rng.randrange(20, 80)}
            for i in range(rng.randrange(10, 40))
        ]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "generateName": "api-7d9f-",
            "namespace": ns,
            "labels": {"app": "api", "pod-template-hash": "7d9f"},
        },
        "spec": {"containers": [c], "serviceAccountName": "api", "restartPolicy": "Always"},
    }


def write_event(rng: random.Random) -> dict:
    kind = rng.choices(
        ["lease", "event", "pod", "poddel", "deploy", "cm", "exec", "rbac", "secretcreate"],
        [0.45, 0.25, 0.08, 0.06, 0.06, 0.05, 0.02, 0.02, 0.01],
    )[0]
    ns = rng.choice(NAMESPACES)
    if kind == "lease":
        ev = base(
            rng, "update", rng.choice(NODES), "leases", "coordination.k8s.io", "kube-node-lease", "node-1"
        )
        ev["level"] = "Request"
        ev["requestObject"] = {
            "kind": "Lease",
            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40},
        }
    elif kind == "event":
        ev = base(rng, "create", "system:kube-scheduler", "events", "events.k8s.io", ns, None)
        ev["responseStatus"]["code"] = 201
    elif kind == "pod":
        ev = base(
            rng, "create", "system:serviceaccount:kube-system:replicaset-controller", "pods", "", ns, None
        )
        ev["level"] = "Request"
        ev["responseStatus"]["code"] = 201
        ev["requestObject"] = pod_object(rng, ns, privileged=rng.random() < 0.02)
    elif kind == "poddel":
        ev = base(
            rng, "delete", "system:serviceaccount:kube-system:replicaset-controller", "pods", "", ns, "api-x"
        )
    elif kind == "deploy":
        ev = base(rng, "patch", rng.choice(HUMANS + CONTROLLERS), "deployments", "apps", ns, "api")
        ev["level"] = "Request"
        ev["requestObject"] = {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}
    elif kind == "cm":
        ev = base(rng, "update", rng.choice(CONTROLLERS), "configmaps", "", ns, "settings")
        ev["level"] = "Request"
        ev["requestObject"] = {"kind": "ConfigMap", "data": {"mode": "prod", "replicas": "3"}}
    elif kind == "exec":
        ev = base(rng, "create", rng.choice(HUMANS), "pods", "", ns, "api-7d9f-abcde")
        ev["objectRef"]["subresource"] = "exec"
        ev["stage"] = "ResponseStarted"
        ev["responseStatus"]["code"] = 101
        ev["requestURI"] += "/exec?command=sh&command=-c&command=ls%20-la&container=app&stdin=true&tty=true"
    elif kind == "rbac":
        ev = base(rng, "create", rng.choice(HUMANS), "rolebindings", "rbac.authorization.k8s.io", ns, "rb")
        ev["level"] = "Request"
        ev["responseStatus"]["code"] = 201
        ev["requestObject"] = {
            "kind": "RoleBinding",
            "roleRef": {"kind": "ClusterRole", "name": rng.choice(["view", "edit", "admin"])},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
        }
    else:
        ev = base(rng, "create", rng.choice(HUMANS), "secrets", "", ns, "s")
        ev["responseStatus"]["code"] = 201
    return ev


def generate(path: Path, n: int, seed: int = 5) -> tuple[int, list[int]]:
    rng = random.Random(seed)
    sizes = []
    with path.open("wb") as fh:
        for _ in range(n):
            ev = read_event(rng) if rng.random() < 0.95 else write_event(rng)
            ev["auditID"] = str(uuid.UUID(int=rng.getrandbits(128)))
            line = orjson.dumps(ev)
            sizes.append(len(line))
            fh.write(line + b"\n")
    return path.stat().st_size, sizes


def heavy_event(rng: random.Random, i: int) -> dict:
    """bench/e2e.py's finding-heavy stream: an interactive exec by a person into a distinct pod,
    1 in 100 with a terminal escape in the user agent (about 1.15 findings each)."""
    ev = base(rng, "create", rng.choice(HUMANS), "pods", "", rng.choice(NAMESPACES), f"api-{i:07d}")
    ev["objectRef"]["subresource"] = "exec"
    ev["stage"] = "ResponseStarted"
    ev["responseStatus"]["code"] = 101
    ev["requestURI"] += "/exec?command=sh&command=-c&command=id%0A&container=app&stdin=true&tty=true"
    if i % 100 == 0:
        ev["userAgent"] = "kubectl/v1.29.2 (linux/amd64) \x1b[31mred\x1b[0m"
    ev["auditID"] = str(uuid.UUID(int=rng.getrandbits(128)))
    return ev


def engine_pass(events: list[dict], config: DetectConfig, repeat: int) -> tuple[float, int, float]:
    """Best CPU seconds over `repeat` passes of Pipeline.process_event over decoded events (GC
    paused, as the decoded input is held in memory), the findings of a pass, and the best CPU
    microseconds to build one finding from its hit (FindingFactory, over every hit of a pass)."""
    import gc

    from kubestrata.detect.event import AuditEvent
    from kubestrata.detect.factory import FindingFactory
    from kubestrata.detect.rules import safe_call

    best, best_build, findings = float("inf"), float("inf"), 0
    for _ in range(repeat):
        evs = [AuditEvent(e, config.cluster) for e in events]
        pipe = Pipeline(config)
        gc.disable()
        c0 = time.process_time()
        findings = sum(len(pipe.process_event(ev)) for ev in evs)
        best = min(best, time.process_time() - c0)
        gc.enable()
        # the hits of a fresh pass, then only the building of their findings
        evs = [AuditEvent(e, config.cluster) for e in events]
        pipe = Pipeline(config)
        hits = [(pipe.specs[h.rule_id], h, ev) for ev in evs
                for d in pipe.detectors if d.accepts(ev.stage, ev.verb, ev.resource, ev.subresource)
                for h in safe_call(d, ev, pipe) if h.rule_id in pipe.specs]  # fmt: skip
        build = FindingFactory()
        gc.disable()
        c0 = time.process_time()
        for spec, h, ev in hits:
            build(spec, h, ev)
        best_build = min(best_build, (time.process_time() - c0) / max(1, len(hits)) * 1e6)
        gc.enable()
    return best, findings, best_build


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_file(path: Path, config: DetectConfig) -> tuple[float, float, Pipeline]:
    """Wall seconds and CPU seconds of this (single-threaded) process for one pass."""
    pipe = Pipeline(config)
    t0, c0 = time.perf_counter(), time.process_time()
    with path.open("rb") as fh:
        for line in read_lines(fh, config.max_event_bytes):
            if not isinstance(line, Oversize):
                pipe.process_line(line)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    pipe.close()
    return dt, dc, pipe


def sustain(path: Path, total: int, config: DetectConfig) -> list[tuple[int, float]]:
    """Replay the file over and over with fresh auditIDs until `total` events; RSS samples."""
    pipe = Pipeline(config)
    lines = path.read_bytes().splitlines()
    samples = [(0, rss_mib())]  # the input held in memory for replay: the baseline
    n = 0
    rnd = random.Random(9)
    while n < total:
        for line in lines:
            # a fresh auditID (same length) so dedup state keeps growing to its cap
            i = line.find(b'"auditID":"') + 11
            line = line[:i] + str(uuid.UUID(int=rnd.getrandbits(128))).encode() + line[i + 36 :]
            pipe.process_line(line)
            n += 1
            if n % 250_000 == 0:
                samples.append((n, rss_mib()))
            if n >= total:
                break
    pipe.close()
    return samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--sustain", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--state", action="store_true", help="also measure with a SQLite state database")
    ap.add_argument(
        "--state-url", help="also measure with this state database URL (its ks_* tables are dropped first)"
    )
    ap.add_argument("--engine", action="store_true", help="also measure the engine alone (see above)")
    ap.add_argument("--input", type=Path, help="an audit JSONL file to read instead of the generated one")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.input:
        path = args.input
        lines = path.read_bytes().splitlines()
        args.events, size, sizes = (
            len(lines),
            sum(len(line) + 1 for line in lines),
            [len(line) for line in lines],
        )
    else:
        path = OUT / "detect-audit.jsonl"
        size, sizes = generate(path, args.events)
    sizes.sort()
    print(f"input: {args.events} events, {size / 2**20:.1f} MiB, median {sizes[len(sizes) // 2]} B, "
          f"p95 {sizes[int(len(sizes) * 0.95)]} B, max {sizes[-1]} B; "
          f"{sum(s < 2560 for s in sizes) / len(sizes):.1%} under 2.5 KB")  # fmt: skip
    config = DetectConfig(cluster="bench")
    best = 0.0
    for i in range(args.repeat):
        dt, dc, pipe = run_file(path, config)
        # per core = per CPU-second of this single-threaded process: the box is shared, wall
        # time includes waiting for a core
        rate = args.events / dc
        best = max(best, rate)
        st = pipe.stats
        print(f"run {i + 1}: wall {dt:.2f}s ({args.events / dt:,.0f} events/s), CPU {dc:.2f}s "
              f"({rate:,.0f} events/s per core); evaluated {st.evaluated}, findings {st.findings}, "
              f"suppressed {st.suppressed}, bad {st.bad_total}, rules enabled {len(pipe.specs)}")  # fmt: skip
    print(f"best: {best:,.0f} events per CPU-second (one core, single thread, pid {os.getpid()})")
    if args.engine:
        real = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        rng = random.Random(11)
        heavy = [heavy_event(rng, i) for i in range(len(real) // 2)]
        for label, events in (("real-shaped", real), ("finding-heavy", heavy)):
            dc, nf, per = engine_pass(events, config, args.repeat)
            print(f"engine, {label}: {len(events)} events, {nf} findings; best CPU {dc:.2f}s = "
                  f"{len(events) / dc:,.0f} events per CPU-second; one finding built in {per:.1f} µs CPU")  # fmt: skip
    if args.state:
        db = OUT / "detect-state.db"
        for f in OUT.glob("detect-state.db*"):
            f.unlink()
        dt, dc, pipe = run_file(path, DetectConfig(cluster="bench", state_url=str(db)))
        print(f"with SQLite state ({db.name}): wall {dt:.2f}s, CPU {dc:.2f}s "
              f"({args.events / dc:,.0f} events/s per core); findings stored {pipe.stats.findings}")  # fmt: skip
    if args.state_url:
        from kubestrata.detect.statedb import make_engine, metadata

        engine = make_engine(args.state_url)
        metadata.drop_all(engine)  # a fresh baseline: every first sighting is new, as in the SQLite run
        engine.dispose()
        dt, dc, pipe = run_file(path, DetectConfig(cluster="bench", state_url=args.state_url))
        # client CPU only: the database server's own work runs in other processes
        print(f"with {pipe.engine.dialect.name} state: wall {dt:.2f}s ({args.events / dt:,.0f} events/s), "
              f"CPU {dc:.2f}s ({args.events / dc:,.0f} events/s per core); findings stored {pipe.stats.findings}")  # fmt: skip
    if args.sustain:
        samples = sustain(path, args.sustain, config)
        print(
            "sustained load, RSS MiB by events processed (0 = input loaded, pipeline not yet started): "
            + ", ".join(f"{n:,}: {m:.0f}" for n, m in samples)
        )


if __name__ == "__main__":
    main()
