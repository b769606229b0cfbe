"""The work a detect finding costs, for an instruction count: run under callgrind once with "on" and
once with "off" and divide the difference by the findings printed.

cold: every hit of the log (all rules) computed, then, with "on", built by FindingFactory and written
as its JSON line. in-place: Pipeline.process_event over the decoded events with a stream sink to
/dev/null, every finding reported ("on") or none built ("off"), as bench/detect_finding.py times it.

    PY=$(pyenv which python); F=bench/out/e2e/audit-heavy-5000.jsonl
    for m in on off; do PYTHONHASHSEED=0 PYTHONPATH=src valgrind --tool=callgrind \\
        --callgrind-out-file=/dev/null $PY bench/detect_finding_count.py cold $m $F 2>&1 | grep Collected; done
"""

from __future__ import annotations

import gc
import os
import sys

import orjson

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.factory import FindingFactory
from kubestrata.detect.jsonlines import json_line
from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.rules import safe_call
from kubestrata.detect.sinks import StreamSink


def cold(events: list[AuditEvent], on: bool) -> int:
    pipe = Pipeline(DetectConfig())
    hits = [(pipe.specs[h.rule_id], h, ev) for ev in events
            for d in pipe.detectors if d.accepts(ev.stage, ev.verb, ev.resource, ev.subresource)
            for h in safe_call(d, ev, pipe) if h.rule_id in pipe.specs]  # fmt: skip
    if on:
        build = FindingFactory()
        for spec, h, ev in hits:
            json_line(build(spec, h, ev))
    return len(hits)


def in_place(events: list[AuditEvent], on: bool) -> int:
    with open(os.devnull, "wb") as null:
        sink = StreamSink(null, block=True)
        pipe = Pipeline(DetectConfig(), sinks=[sink])
        if not on:
            pipe._min_rank = 1 << 30  # (above every severity: no hit becomes a finding)
        for ev in events:
            pipe.process_event(ev)
        sink.flush()
    return pipe.stats.findings


def main(kind: str, mode: str, path: str) -> None:
    with open(path, "rb") as fh:
        events = [AuditEvent(orjson.loads(line), DetectConfig().cluster) for line in fh]
    gc.disable()
    n = (cold if kind == "cold" else in_place)(events, mode == "on")
    print(f"{kind} {mode}: {n} findings" if mode == "on" else f"{kind} {mode}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
