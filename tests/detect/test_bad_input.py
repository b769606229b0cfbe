"""Bad input is counted and skipped with a sample logged; ingestion never stops."""

from __future__ import annotations

import io
import logging

import orjson

from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.sources import Oversize, read_lines
from tests.detect.helpers import event


def _good(i: int) -> bytes:
    return orjson.dumps(event("create", "namespaces", namespace=None, name=f"ns{i}", code=201))


def test_mixed_stream_keeps_going(caplog) -> None:
    big = orjson.dumps(
        event("create", "configmaps", code=201, request_object={"data": {"k": "x" * (10 * 1024 * 1024)}})
    )
    assert len(big) > 10 * 1024 * 1024
    lines = [
        _good(1),
        _good(2)[:-30],  # truncated
        b'{"kind":"Event","verb":"get","user":{"username":"\xff\xfe"}}',  # invalid UTF-8
        orjson.dumps(dict(event(), sourceIPs="1.2.3.4")),  # wrong type
        big,  # 10 MB event
        b"[1,2,3]",
        b"",
        _good(3),
    ]
    data = b"\n".join(lines) + b"\n"
    pipe = Pipeline(DetectConfig(max_event_bytes=1024 * 1024))
    caplog.set_level(logging.WARNING, logger="kubestrata.detect")
    for n, line in enumerate(read_lines(io.BytesIO(data), pipe.config.max_event_bytes), 1):
        if isinstance(line, Oversize):
            pipe.stats.lines += 1
            pipe.bad("oversize", f"mem:{n}", f"{line.length} bytes")
        else:
            pipe.process_line(line, f"mem:{n}")
    st = pipe.stats
    assert st.events == 2  # the first line and the last one, after all the bad
    assert st.bad == {"invalid-json": 1, "invalid-utf8": 1, "bad-event": 2, "oversize": 1}
    assert st.findings >= 2  # both namespace creations were still evaluated
    assert any("skipped bad input" in r.message for r in caplog.records)
    assert any(s["reason"] == "invalid-utf8" for s in st.samples)


def test_oversize_line_not_held_in_memory() -> None:
    data = b"{" + b"a" * (3 * 1024 * 1024) + b"}\n" + _good(1) + b"\n"
    out = list(read_lines(io.BytesIO(data), 4096))
    assert isinstance(out[0], Oversize) and out[0].length > 3 * 1024 * 1024
    assert orjson.loads(out[1])["verb"] == "create"


def test_oversize_in_process_line_counted() -> None:
    pipe = Pipeline(DetectConfig(max_event_bytes=2048))
    assert pipe.process_line(b"{" + b" " * 5000 + b"}") == []
    assert pipe.stats.bad["oversize"] == 1


def test_bad_item_inside_eventlist_does_not_drop_the_rest() -> None:
    body = {
        "kind": "EventList",
        "items": [{"kind": "Event", "verb": 1}, event("delete", "secrets", name="s")],
    }
    pipe = Pipeline()
    findings = pipe.process_obj(body)
    assert pipe.stats.bad_total == 1 and pipe.stats.events == 1
    assert "KS-AUD-F49" in {f.rule_id for f in findings}


def test_malformed_request_object_is_a_rule_error_not_a_crash() -> None:
    ev = event("create", "pods", code=201, request_object={"kind": "Pod", "spec": {"containers": "oops"}})
    pipe = Pipeline()
    pipe.process_obj(ev)
    pipe.process_obj(event("create", "namespaces", namespace=None, name="after", code=201))
    assert pipe.stats.events == 2 and sum(pipe.stats.rule_errors.values()) >= 1
