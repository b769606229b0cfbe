from __future__ import annotations

import http.server
import threading
import time

import orjson

from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.sinks import MemorySink, Sink, WebhookSink
from kubestrata.detect.webhook import AuditWebhook
from kubestrata.findings import Finding, Layer, Severity
from tests.detect.helpers import event


def _list(*items) -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(items)})


def test_webhook_accepts_eventlist_and_counts_bad() -> None:
    hook = AuditWebhook(Pipeline())
    ok = event("create", "namespaces", namespace=None, name="x", code=201)
    status, body = hook.handle(_list(ok, {"kind": "Event", "verb": []}, ok))
    assert status == 200
    assert (
        body == {"accepted": 2, "bad": 1, "duplicates": 1, "findings": body["findings"]}
        and body["findings"] >= 1
    )


def test_webhook_rejects_non_json_and_wrong_kinds_and_oversize() -> None:
    hook = AuditWebhook(Pipeline(), max_body_bytes=1000)
    assert hook.handle(b"\xff\xfe")[0] == 400
    assert hook.handle(b"{")[0] == 400
    assert hook.handle(b'{"kind":"Pod"}')[0] == 400
    assert hook.handle(b"[]")[0] == 400
    assert hook.handle(b"{" + b" " * 2000 + b"}")[0] == 413
    assert hook.handle(_list(event()))[0] == 200  # still serving


def test_webhook_skips_a_10mb_event_inside_a_batch() -> None:
    hook = AuditWebhook(Pipeline(DetectConfig(max_event_bytes=1024 * 1024)))
    huge = event("create", "configmaps", code=201, request_object={"data": {"k": "x" * (10 * 1024 * 1024)}})
    status, body = hook.handle(_list(huge, event("delete", "secrets", name="s")))
    assert status == 200 and body["accepted"] == 1 and body["bad"] == 1
    assert hook.pipeline.stats.bad["oversize"] == 1


def test_webhook_never_raises_even_if_the_pipeline_does() -> None:
    class Boom(Pipeline):
        def process_obj(self, obj, origin=""):
            raise RuntimeError("x")

    status, body = AuditWebhook(Boom()).handle(_list(event()))
    assert status == 500 and "error" in body


def test_webhook_is_thread_safe() -> None:
    hook = AuditWebhook(Pipeline())
    bodies = [_list(*[event("get", "pods", name=f"p{t}-{i}") for i in range(50)]) for t in range(8)]
    threads = [threading.Thread(target=hook.handle, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hook.pipeline.stats.events == 400 and hook.pipeline.stats.duplicates == 0


class SlowSink(Sink):
    name = "slow"

    def __init__(self, **kw):
        self.release = threading.Event()
        self.got = []
        super().__init__(**kw)

    def write(self, finding):
        self.release.wait(10)
        self.got.append(finding)


def test_slow_sink_never_blocks_ingestion_and_drops_are_counted() -> None:
    slow = SlowSink(capacity=5)
    pipe = Pipeline(sinks=[slow])
    t0 = time.perf_counter()
    for i in range(200):
        pipe.process_obj(event("create", "namespaces", namespace=None, name=f"n{i}", code=201))
    assert time.perf_counter() - t0 < 5  # ingestion did not wait for the sink
    assert slow.dropped > 0 and pipe.stats.findings >= 200
    slow.release.set()
    pipe.close()
    assert len(slow.got) + slow.dropped == pipe.stats.findings


def test_webhook_sink_posts_json_to_a_local_server() -> None:
    received = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(orjson.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        sink = WebhookSink(f"http://127.0.0.1:{srv.server_port}/hook/SECRET-TOKEN")
        mem = MemorySink()
        pipe = Pipeline(sinks=[sink, mem])
        pipe.process_obj(event("create", "namespaces", namespace=None, name="z", code=201))
        pipe.close()
        assert received and received[0]["ruleId"] == mem.items[0].rule_id
    finally:
        srv.shutdown()


def test_webhook_sink_failure_does_not_log_the_url(caplog) -> None:
    sink = WebhookSink("http://127.0.0.1:9/hook/SECRET-TOKEN", timeout=0.5)
    sink.submit(Finding("x", "t", Severity.LOW, Layer.CLUSTER, "m"))
    sink.close()
    assert sink.failed == 1
    assert "SECRET-TOKEN" not in caplog.text
