"""Bad input is counted and skipped with a sample logged; ingestion never stops."""

from __future__ import annotations

import io
import logging

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _read_lines_by_readline(fh, max_bytes: int):
    """The reader before block reads (readline per line): the reference for read_lines."""
    while True:
        line = fh.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and not line.endswith(b"\n"):
            n = len(line)
            while True:
                chunk = fh.readline(7)
                n += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield Oversize(n)
            continue
        yield line.rstrip(b"\r\n")


class _Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes a read (a pipe: blocks end anywhere)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        n = min(len(b), self.step, len(self.data))
        b[:n], self.data = self.data[:n], self.data[n:]
        return n


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")) | st.sampled_from([b"", b"\r", b"ab\r\r"]),
             max_size=12),
    st.booleans(), st.integers(0, 30), st.integers(1, 50),
)  # fmt: skip
def test_block_reader_equals_reading_line_by_line(lines, final_newline, max_bytes, step) -> None:
    from kubestrata.detect import sources

    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    want = list(_read_lines_by_readline(io.BytesIO(data), max_bytes))
    old = sources.READ_BLOCK
    try:
        sources.READ_BLOCK = step  # blocks that end inside lines, inside oversize lines, on newlines
        assert list(read_lines(io.BytesIO(data), max_bytes)) == want
        assert list(read_lines(io.BufferedReader(_Trickle(data, step)), max_bytes)) == want
    finally:
        sources.READ_BLOCK = old
