"""CPU per detect finding, built and written: the hits of an audit log's events (all rules) built into
findings by FindingFactory, then their JSON lines (the stdout sink's encoding), GC paused, best of
three passes ("cold": every finding built after all events were read and run through the rules, so
each event's fields are out of the CPU's caches); and in place ("in the pipeline"): Pipeline.process_event
over the decoded events with a stdout-like sink, once reporting every finding and once with
--min-severity above every hit (no finding built), the difference per finding: building it, the dedup
window's admission and writing its JSON line, right after its event's rules, as a replay does them.
Works on older commits too (without kubestrata.detect.jsonlines it writes
orjson.dumps(finding.to_dict()), which is what they did).

    PYTHONPATH=src python bench/detect_finding.py bench/out/e2e/audit-heavy-50000.jsonl
"""

from __future__ import annotations

import gc
import os
import sys
import time

import orjson

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.factory import FindingFactory
from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.rules import safe_call
from kubestrata.detect.sinks import StreamSink

try:
    from kubestrata.detect.jsonlines import json_line
except ImportError:  # before the JSON lines from precomputed parts

    def json_line(f):  # type: ignore[no-untyped-def]
        return orjson.dumps(f.to_dict())


def main(path: str, repeat: int = 3) -> None:
    with open(path, "rb") as fh:
        events = [orjson.loads(line) for line in fh]
    config = DetectConfig()
    best_build = best_line = float("inf")
    n = 0
    for _ in range(repeat):
        evs = [AuditEvent(e, config.cluster) for e in events]
        pipe = Pipeline(config)
        hits = [(pipe.specs[h.rule_id], h, ev) for ev in evs
                for d in pipe.detectors if d.accepts(ev.stage, ev.verb, ev.resource, ev.subresource)
                for h in safe_call(d, ev, pipe) if h.rule_id in pipe.specs]  # fmt: skip
        n = len(hits)
        build = FindingFactory()
        gc.disable()
        c0 = time.process_time()
        findings = [build(spec, h, ev) for spec, h, ev in hits]
        c1 = time.process_time()
        for f in findings:
            json_line(f)
        c2 = time.process_time()
        gc.enable()
        best_build = min(best_build, (c1 - c0) / max(1, n) * 1e6)
        best_line = min(best_line, (c2 - c1) / max(1, n) * 1e6)
    print(f"{len(events)} events, {n} findings: built {best_build:.1f} µs, JSON line {best_line:.1f} µs, "
          f"together {best_build + best_line:.1f} µs CPU per finding (cold)")  # fmt: skip
    print(
        f"in the pipeline: {in_pipeline(events, repeat):.1f} µs CPU per finding, built, admitted and written"
    )


def in_pipeline(events: list[dict], repeat: int) -> float:
    """CPU per finding in Pipeline.process_event: all reported minus none built, best of ``repeat``."""
    best: dict[str, float] = {}
    found = 0
    for _ in range(repeat):
        for level in ("info", "off"):
            config = DetectConfig(min_severity="critical" if level == "off" else "info")
            evs = [AuditEvent(e, config.cluster) for e in events]
            with open(os.devnull, "wb") as null:
                sink = StreamSink(null, block=True)
                pipe = Pipeline(config, sinks=[sink])
                if level == "off":
                    pipe._min_rank = 1 << 30  # (above every severity: no hit becomes a finding)
                gc.disable()
                c0 = time.process_time()
                for ev in evs:
                    pipe.process_event(ev)
                sink.flush()
                dt = time.process_time() - c0
                gc.enable()
            best[level] = min(best.get(level, float("inf")), dt)
            if level == "info":
                found = pipe.stats.findings
    return (best["info"] - best["off"]) / max(1, found) * 1e6


if __name__ == "__main__":
    main(sys.argv[1])
