"""An inline sink's one-call delivery (StreamSink._deliver_line, CountingSink._deliver_count) does
what Sink._deliver with the class's write does: the same bytes out, counters, failures and log."""

from __future__ import annotations

import io
import logging
import random
from typing import Any

import pytest

from kubestrata.detect.sinks import CountingSink, FileSink, MemorySink, Sink, StreamSink
from kubestrata.findings import EventRef, Finding, Layer, Severity


class Stream(io.BytesIO):
    """A stream whose reader goes away (BrokenPipeError) or that fails (OSError) at a given write."""

    def __init__(self, broken_at: int | None, failing_at: int | None) -> None:
        super().__init__()
        self.writes = 0
        self.broken_at, self.failing_at = broken_at, failing_at

    def write(self, data: Any) -> int:
        self.writes += 1
        if self.writes == self.broken_at:
            raise BrokenPipeError
        if self.writes == self.failing_at:
            raise OSError("disk full")
        return super().write(data)


def _findings(rng: random.Random, n: int) -> list[Any]:
    out: list[Any] = []
    for i in range(n):
        ref = EventRef("k8saudit", f"id-{i}", "ResponseComplete", user=rng.choice(["a", "b\x1b"]))
        f = Finding(
            f"KS-AUD-{rng.randrange(5)}",
            "t",
            rng.choice(list(Severity)),
            Layer.CLUSTER,
            "m" * rng.randrange(300),
        )
        f.event = ref
        f.time = "2026-01-01T00:00:00Z"
        r = rng.random()
        if r < 0.05:
            f.severity = None  # type: ignore[assignment]  # (no .value: the delivery fails)
        elif r < 0.1:
            f.message = object()  # type: ignore[assignment]  # (not JSON: the encoder fails)
        out.append(f)
    return out


def _run(kind: str, fused: bool, findings: list[Any], seed: int, caplog: Any) -> tuple[Any, ...]:
    rng = random.Random(seed)
    stream = Stream(rng.choice([None, 1, 2, 3]), rng.choice([None, 2, 4]))
    sink: Sink
    if kind == "count":
        sink = CountingSink(block=True)
    else:
        sink = StreamSink(stream, block=True)
        sink.BUFFER_BYTES = rng.choice([1, 200, 5000])  # type: ignore[misc]
    assert sink.submit == (sink._deliver_count if kind == "count" else sink._deliver_line)  # type: ignore[attr-defined]
    if not fused:
        sink.submit = sink._deliver  # type: ignore[method-assign]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kubestrata.detect.sinks"):
        for f in findings:
            sink.submit(f)
        if rng.random() < 0.5:
            sink.flush()
    logged = [r.getMessage() for r in caplog.records]
    counts = getattr(sink, "by_severity", None)
    return stream.getvalue(), sink.stats(), counts, logged, getattr(sink, "broken", None)


@pytest.mark.parametrize("kind", ["stream", "count"])
def test_one_call_delivery_is_deliver_and_write(kind: str, caplog: Any) -> None:
    for seed in range(60):
        findings = _findings(random.Random(seed), random.Random(seed).randrange(1, 40))
        assert _run(kind, True, findings, seed, caplog) == _run(kind, False, findings, seed, caplog), seed


def test_one_call_delivery_only_where_the_class_writes_as_its_base(tmp_path: Any) -> None:
    class OwnWrite(StreamSink):
        def write(self, finding: Finding) -> None:
            pass

    class OwnDeliver(CountingSink):
        def _deliver(self, item: Finding) -> None:
            pass

    class OwnEncode(StreamSink):
        def encode(self, finding: Finding) -> bytes:
            return b"x"

    out = io.BytesIO()
    assert OwnWrite(out, block=True).submit.__func__ is Sink._deliver  # type: ignore[attr-defined]
    assert OwnDeliver(block=True).submit.__func__ is OwnDeliver._deliver  # type: ignore[attr-defined]
    sink = OwnEncode(out, block=True)
    assert sink.submit.__func__ is StreamSink._deliver_line  # type: ignore[attr-defined]
    sink.submit(Finding("r", "t", Severity.LOW, Layer.CLUSTER, "m"))
    sink.flush()
    assert out.getvalue() == b"x\n"
    file_sink = FileSink(str(tmp_path / "f.jsonl"), block=True)
    assert file_sink.submit.__func__ is StreamSink._deliver_line  # type: ignore[attr-defined]
    file_sink.close()
    assert MemorySink(block=True).submit.__func__ is Sink._deliver  # type: ignore[attr-defined]
    queued = StreamSink(out)  # (not inline: a queue and its thread)
    assert queued.submit.__func__ is Sink.submit and not queued.inline  # type: ignore[attr-defined]
    queued.close()
