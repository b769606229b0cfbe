"""Scale-out detection on a real Redis (Debian's redis-server, tests/detect/conftest.py) and a real
PostgreSQL: partitioning, shared windows, exactly-once findings, dead letters, claiming after a
worker dies."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import orjson
import pytest

from kubestrata.detect.pipeline import DetectConfig
from kubestrata.detect.sinks import MemorySink
from kubestrata.detect.streams import GROUP, Layout, Publisher, check_layout, connect, ensure_groups
from kubestrata.detect.worker import Worker
from kubestrata.errors import KubestrataError
from kubestrata.findings import Finding

from .helpers import event


class RecordSink(MemorySink):
    """Keeps each finding's JSON record, as a worker's stdout or webhook would carry it."""

    def write(self, finding: Finding) -> None:
        self.items.append(finding.to_dict())


PUBLIC_IP = "185.220.101.7"  # public (TEST-NET ranges are not: is_public)


def run_workers(
    url: str, layout: Layout, state: str, n: int = 3, publish: Any = None, **kw: Any
) -> tuple[list[Worker], list[MemorySink]]:
    """n workers on threads; ``publish()`` runs once every worker holds a lease (so the load is
    spread over all of them); they stop after 2 s without messages."""
    sinks = [RecordSink(block=True) for _ in range(n)]
    opts = {"lease_ttl": 3.0, "min_idle": 1.0, "tick": 0.1, "block_ms": 200, **kw}
    workers = [
        Worker(
            connect(url),
            layout,
            DetectConfig(cluster="prod", state_url=state),
            [sinks[i]],
            consumer=f"w{i}",
            **opts,
        )  # fmt: skip
        for i in range(n)
    ]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop, 2.5)) for w in workers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        owned = [len(w.leases.owned) for w in workers]
        if all(owned) and sum(owned) == layout.partitions:
            break
        time.sleep(0.05)
    else:
        stop.set()
        pytest.fail(f"leases never settled: {[sorted(w.leases.owned) for w in workers]}")
    if publish is not None:
        publish()
    for t in threads:
        t.join(60)
    return workers, sinks


def test_threshold_rules_fire_once_when_events_spread_over_three_workers(redis_url: str, pg_url: str) -> None:
    layout = Layout(partitions=9)
    client = connect(redis_url)
    pub = Publisher(client, layout, cluster="prod")

    def publish() -> None:
        # 25 denied secret reads by one identity (KS-AUD-N13, threshold 20 in 15 min), and 12 403s
        # from one public address by 12 different identities (KS-AUD-N18, threshold 10): those
        # identities hash to partitions owned by all three workers
        for i in range(25):
            pub.publish_line(
                orjson.dumps(event("get", "secrets", user="mallory", name=f"s{i}", code=403)), "t"
            )
            for u in range(4):
                pub.publish_line(orjson.dumps(event("get", "pods", user=f"sa-{i}-{u}", name="p")), "noise")
        for i in range(12):
            pub.publish_line(
                orjson.dumps(event("get", "pods", user=f"scanner-{i}", name="p", code=403, ips=[PUBLIC_IP])),
                "t",
            )
        pub.flush()

    workers, sinks = run_workers(redis_url, layout, pg_url, publish=publish)
    found = [f for s in sinks for f in s.items]
    rules = Counter(f["ruleId"] for f in found)
    assert rules["KS-AUD-N13"] == 1
    assert rules["KS-AUD-N18"] == 1
    # the N18 identities really were spread: each worker counted some of them
    scanners = {
        w.me: sum(1 for f in s.items if f["user"].startswith("scanner-"))
        for w, s in zip(workers, sinks, strict=True)
    }
    assert all(scanners.values()), scanners
    assert len({f["fingerprint"] for f in found}) == len(found)  # nothing emitted twice
    assert sum(w.stats.messages for w in workers) == 25 * 5 + 12
    assert client.xpending(layout.stream(0), GROUP)["pending"] == 0


def test_poison_is_parked_with_its_reason(redis_url: str, tmp_path: Any) -> None:
    layout = Layout(partitions=2)
    client = connect(redis_url)
    ensure_groups(client, layout)
    good = orjson.dumps(event("create", "pods", user="alice", name="p"))
    bad_event = orjson.dumps(event("get", "pods", user="alice", stage="NoSuchStage"))
    for data, kind in (
        (b"{broken", b"k8s-audit"),
        (bad_event, b"k8s-audit"),
        (good, b"tetragon-v9"),
        (good, b"k8s-audit"),
    ):
        client.xadd(
            layout.stream(0), {b"v": b"1", b"kind": kind, b"cluster": b"prod", b"origin": b"t", b"data": data}
        )
    workers, sinks = run_workers(redis_url, layout, str(tmp_path / "s.db"), n=1)
    dead = client.xrange(layout.dead)
    reasons = [f[b"reason"].decode() for _, f in dead]
    assert len(reasons) == 3
    assert reasons[0].startswith("undecodable")
    assert "stage" in reasons[1] and reasons[1].startswith("bad event")
    assert reasons[2] == "unknown message kind 'tetragon-v9'"
    assert dead[0][1][b"data"] == b"{broken" and dead[0][1][b"stream"] == layout.stream(0).encode()
    assert [f["ruleId"] for f in sinks[0].items] == ["KS-AUD-F01"]
    assert client.xpending(layout.stream(0), GROUP)["pending"] == 0  # acknowledged: never redelivered


def test_entry_redelivered_too_often_is_parked_without_running(redis_url: str, tmp_path: Any) -> None:
    layout = Layout(partitions=1)
    client = connect(redis_url)
    ensure_groups(client, layout)
    eid = client.xadd(layout.stream(0), {b"v": b"1", b"kind": b"k8s-audit", b"cluster": b"prod", b"origin": b"t",
                                         b"data": orjson.dumps(event("create", "pods", user="alice", name="p"))})  # fmt: skip
    client.xreadgroup(GROUP, "crashed-1", {layout.stream(0): ">"})
    for i in range(5):  # five more workers took it and died
        client.xclaim(layout.stream(0), GROUP, f"crashed-{i + 2}", 0, [eid])
    workers, sinks = run_workers(
        redis_url, layout, str(tmp_path / "s.db"), n=1, min_idle=0.0, max_deliveries=5
    )
    ((_, parked),) = client.xrange(layout.dead)
    assert parked[b"reason"].startswith(b"delivered 7 times")
    assert sinks[0].items == []
    assert client.xpending(layout.stream(0), GROUP)["pending"] == 0


def test_a_pending_entry_of_a_dead_worker_is_claimed(redis_url: str, tmp_path: Any) -> None:
    layout = Layout(partitions=1)
    client = connect(redis_url)
    ensure_groups(client, layout)
    client.xadd(layout.stream(0), {b"v": b"1", b"kind": b"k8s-audit", b"cluster": b"prod", b"origin": b"t",
                                   b"data": orjson.dumps(event("create", "pods", user="alice", name="p"))})  # fmt: skip
    client.xreadgroup(GROUP, "died-mid-batch", {layout.stream(0): ">"})  # read, never acknowledged
    workers, sinks = run_workers(redis_url, layout, str(tmp_path / "s.db"), n=1, min_idle=0.5)
    assert workers[0].stats.claimed == 1
    assert [f["ruleId"] for f in sinks[0].items] == ["KS-AUD-F01"]
    assert client.xpending(layout.stream(0), GROUP)["pending"] == 0


def test_redelivered_event_never_duplicates_a_finding(redis_url: str, pg_url: str) -> None:
    """The same event processed twice by different workers (a redelivery after a crash between the
    findings commit and XACK) emits its finding once: the shared table decides."""
    layout = Layout(partitions=1)
    client = connect(redis_url)
    ensure_groups(client, layout)
    data = orjson.dumps(event("create", "pods", user="alice", name="p"))
    for _ in range(2):
        client.xadd(layout.stream(0), {b"v": b"1", b"kind": b"k8s-audit", b"cluster": b"prod", b"origin": b"t",
                                       b"data": data})  # fmt: skip
    out = []
    for _ in range(2):  # two workers one after the other, each a fresh process state
        _, sinks = run_workers(redis_url, layout, pg_url, n=1)
        out += sinks[0].items
        client.xadd(layout.stream(0), {b"v": b"1", b"kind": b"k8s-audit", b"cluster": b"prod", b"origin": b"t",
                                       b"data": data})  # fmt: skip
    assert [f["ruleId"] for f in out] == ["KS-AUD-F01"]


def test_partition_count_is_fixed_per_prefix(redis_url: str) -> None:
    client = connect(redis_url)
    check_layout(client, Layout("ks:x", 8))
    with pytest.raises(KubestrataError, match="partitioned 8 ways"):
        check_layout(client, Layout("ks:x", 4))


def test_unreachable_redis_is_a_clear_error() -> None:
    with pytest.raises(KubestrataError, match="cannot reach Redis"):
        connect("redis://127.0.0.1:1/0")
    with pytest.raises(KubestrataError, match="redis://"):
        connect("http://127.0.0.1:6379")


def test_audit_webhook_can_publish_instead_of_detecting(redis_url: str) -> None:
    from kubestrata.detect import AuditWebhook, Pipeline

    layout = Layout(partitions=4)
    client = connect(redis_url)
    pub = Publisher(client, layout, cluster="prod")
    hook = AuditWebhook(Pipeline(), publisher=pub)
    body = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                         "items": [event("create", "pods", user=f"u{i}", name="p") for i in range(5)]})  # fmt: skip
    assert hook.handle(body) == (
        200,
        {"accepted": 5, "bad": 0, "duplicates": 0, "findings": 0, "published": 5},
    )
    assert sum(client.xlen(layout.stream(p)) for p in range(4)) == 5
    assert hook.pipeline.stats.events == 0  # nothing evaluated in the server
    assert hook.handle(b"{nope")[0] == 400
    # Redis gone: 503, so the API server sends the batch again (nothing was taken)
    import redis

    hook.publisher = Publisher(redis.Redis(port=1, socket_connect_timeout=2), layout, cluster="prod")
    code, doc = hook.handle(body)
    assert code == 503 and "retry" in doc["error"]


def test_the_fleet_example_scans_clean() -> None:
    from typer.testing import CliRunner

    from kubestrata.cli.main import app
    from tests.conftest import EXAMPLES

    r = CliRunner().invoke(app, ["scan", str(EXAMPLES / "detect-fleet"), "--fail-on", "info", "-q"])
    assert r.exit_code == 0, r.output
    assert "0 findings" in r.output


def test_a_window_moves_with_its_partition(redis_url: str, tmp_path: Any) -> None:
    """15 denied reads on one worker, which stops cleanly; 5 more on its successor: the threshold
    (20) is reached once, on the successor, because the open window was handed over."""
    layout = Layout(partitions=2)
    client = connect(redis_url)
    pub = Publisher(client, layout, cluster="prod")
    state = str(tmp_path / "s.db")

    def burst(start: int, n: int) -> None:
        for i in range(start, start + n):
            pub.publish_line(
                orjson.dumps(event("get", "secrets", user="mallory", name=f"s{i}", code=403)), "t"
            )
        pub.flush()

    _, first = run_workers(redis_url, layout, state, n=1, publish=lambda: burst(0, 15))
    _, second = run_workers(redis_url, layout, state, n=1, publish=lambda: burst(15, 5))
    assert [f["ruleId"] for f in first[0].items if f["ruleId"] == "KS-AUD-N13"] == []
    assert [f["ruleId"] for f in second[0].items if f["ruleId"] == "KS-AUD-N13"] == ["KS-AUD-N13"]


def test_publish_and_worker_commands(redis_url: str, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from kubestrata.cli.main import app

    runner = CliRunner()
    log = tmp_path / "audit.log"
    log.write_bytes(b"\n".join(orjson.dumps(event("create", "pods", user=f"u{i}", name="p")) for i in range(3))
                    + b"\n{truncated\n")  # fmt: skip
    r = runner.invoke(app, ["detect", "publish", str(log), "--redis", redis_url, "--cluster-name", "prod"])
    assert r.exit_code == 0, r.output
    assert "3 events published to 16 partitions of ks:events, 1 parked in ks:events:dead" in r.stderr
    ((_, parked),) = connect(redis_url).xrange("ks:events:dead")
    assert parked[b"reason"].startswith(b"undecodable") and parked[b"origin"] == f"{log}:4".encode()
    r = runner.invoke(app, ["detect", "worker", "--redis", redis_url, "--state", str(tmp_path / "s.db"),
                            "--idle-exit", "1", "--stats", str(tmp_path / "st.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert sorted(orjson.loads(x)["user"] for x in r.stdout.splitlines() if x.startswith("{")) == [
        "u0",
        "u1",
        "u2",
    ]
    assert orjson.loads((tmp_path / "st.json").read_bytes())["messages"] == 3
    # mistakes are named, never a traceback
    for args, msg in (
        (["detect", "publish", "--redis", redis_url], "exactly one"),
        (
            ["detect", "publish", str(log), str(log), "--follow", "--redis", redis_url],
            "--follow takes exactly one",
        ),
        (["detect", "publish", str(log), "--redis", redis_url, "--partitions", "4"], "partitioned 16 ways"),
        (["detect", "worker", "--redis", redis_url, "--state", ":memory:"], "shared --state"),
        (["detect", "worker", "--redis", "redis://127.0.0.1:1/0", "--state", "x.db"], "cannot reach Redis"),
    ):
        r = runner.invoke(app, args)
        assert r.exit_code != 0 and msg in r.output, (args, r.output)
        assert "Traceback" not in r.output
