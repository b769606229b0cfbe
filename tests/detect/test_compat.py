"""The detect JSON-lines schema stays backward compatible: the findings of the example audit logs
(examples/detect), Falco's trace files, Panther's labelled events, a real API server log and a
finding-heavy exec stream (with terminal escapes) are compared key by key and value by value with
tests/detect/golden/compat.jsonl.gz, recorded before the engine moved to kubestrata.findings.Finding.
``UPDATE_GOLDEN=1`` rewrites it (review the diff: a changed value is a schema change)."""

from __future__ import annotations

import gzip
import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

import orjson

from kubestrata.detect.pipeline import DetectConfig, IPList, IPLists, Pipeline
from tests.conftest import shared_dir

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "compat.jsonl.gz"  # gzip: 1 MB of JSON lines
ALL_ON = {
    "allowed_images": frozenset({"registry.k8s.io/pause"}),
    "full_admin_users": frozenset({"kubernetes-admin", "admin"}),
    "allowed_nodes": frozenset({"ip-10-0-1-1.ec2.internal"}),
}


def _heavy(n: int) -> list[bytes]:
    """bench/e2e.py's finding-heavy stream: interactive execs by people, 1 in 10 with an escape."""
    rng = random.Random(11)
    out = []
    for i in range(n):
        ns = rng.choice(["default", "kube-system", "payments"])
        user = rng.choice(["kubernetes-admin", "alice@example.com", "arn:aws:iam::123456789012:role/ci"])
        ev = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": str(uuid.UUID(int=rng.getrandbits(128))),
            "stage": "ResponseStarted",
            "requestURI": f"/api/v1/namespaces/{ns}/pods/api-{i:07d}/exec?command=sh&command=-c"
            "&command=cat%20/var/run/secrets/kubernetes.io/serviceaccount/token&container=app&stdin=true",
            "verb": "create",
            "user": {"username": user, "groups": ["system:authenticated"]},
            "sourceIPs": ["10.0.3.4", "185.220.101.7"] if i % 7 == 0 else ["10.0.3.4"],
            "userAgent": "kubectl/v1.29.2 (linux/amd64) \x1b[31mred\x1b[0m\u202e"
            if i % 10 == 0
            else "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
            "objectRef": {"resource": "pods", "namespace": ns, "name": f"api-{i:07d}", "subresource": "exec"},
            "responseStatus": {"code": 101},
            "requestReceivedTimestamp": f"2026-11-27T10:00:{i % 60:02d}.000000Z",
            "stageTimestamp": f"2026-11-27T10:00:{i % 60:02d}.000000Z",
        }
        out.append(orjson.dumps(ev))
    return out


def _run(pipe: Pipeline, lines: list[bytes], origin: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        out += pipe.process_line(line, f"{origin}:{n}")
    return [{"case": origin, **_plain(f)} for f in out]


def _plain(f: Any) -> dict[str, Any]:
    """A finding as its JSON line says it (whatever object the pipeline hands out)."""
    return orjson.loads(orjson.dumps(f.to_dict() if hasattr(f, "to_dict") else f))


def corpus() -> list[dict[str, Any]]:
    conf = shared_dir() / "conformance" / "audit"
    tor = IPList.load(str(REPO / "examples/detect/tor-exits.txt"))
    rows: list[dict[str, Any]] = []
    for log in ("attack.log", "real-audit.log"):
        lines = (REPO / "examples/detect" / log).read_bytes().splitlines()
        rows += _run(Pipeline(DetectConfig(cluster="prod", ip_lists=IPLists(tor=tor))), lines, log)
        rows += _run(
            Pipeline(DetectConfig(cluster="", ip_lists=IPLists(malicious=tor, custom=tor), **ALL_ON)),
            lines,
            log + "+all",
        )
    for trace in sorted((conf / "falco/events").iterdir()):
        pipe = Pipeline(DetectConfig(dedup_window=0, **ALL_ON))
        rows += _run(pipe, trace.read_bytes().splitlines(), "falco/" + trace.name)
    rows += _run(Pipeline(), (conf / "real/audit2rbac-demo.log").read_bytes().splitlines(), "real")
    for line in (conf / "panther/labelled.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        cfg = DetectConfig(thresholds={"KS-AUD-N13": 1, "KS-AUD-N14": 1, "KS-AUD-N18": 1})
        rows += _run(Pipeline(cfg), [orjson.dumps(r["log"])], f"panther/{r['rule']}/{r['test']}")
    heavy = Pipeline(DetectConfig(cluster="bench", ip_lists=IPLists(tor=tor)))
    rows += _run(heavy, _heavy(120), "heavy")
    return rows


def test_findings_match_the_recorded_schema_and_values() -> None:
    rows = corpus()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in rows), 9, mtime=0))
    want = [orjson.loads(line) for line in gzip.decompress(GOLDEN.read_bytes()).splitlines()]
    assert len(rows) == len(want)
    for got, exp in zip(rows, want, strict=True):
        assert list(got) == list(exp), (got["case"], list(got))  # same keys, same order
        assert got == exp, (got["case"], got["ruleId"])
    # the corpus exercises a good part of the catalogue (and escaping)
    assert len({r["ruleId"] for r in rows}) >= 60
    assert any("\\x1b" in r["userAgent"] or "\\u" in r["userAgent"] for r in rows)
