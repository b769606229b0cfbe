"""CPU of the attack-sequence correlator as a replay drives it: the findings each audit event hands
to ``DetectRouter._correlate`` during a replay of FILE are captured once (with their events), then
given, event by event, to ``_correlate`` of a router with a fresh Correlator, GC paused, best of
``--repeat`` passes. ``--passes 0`` captures only: under callgrind, the difference of the two runs'
instruction counts is the correlator's (signal per finding, store, chains) exactly.

    PYTHONPATH=src python bench/detect_correlator.py bench/out/e2e/audit-heavy-50000.jsonl
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from typing import Any

from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.router import DetectRouter, feed_file
from kubestrata.detect.sequences import Correlator


def capture(path: str) -> tuple[DetectRouter, list[tuple[list[Any], Any]]]:
    """The router of a replay of ``path`` and what its _correlate received, call by call."""
    router = DetectRouter(Pipeline(DetectConfig(), []))
    calls: list[tuple[list[Any], Any]] = []
    real = DetectRouter._correlate

    def spy(self: DetectRouter, findings: list[Any], event: Any = None) -> list[Any]:
        calls.append((list(findings), event))
        return findings

    DetectRouter._correlate = spy  # type: ignore[method-assign]
    try:
        feed_file(router, path)
    finally:
        DetectRouter._correlate = real  # type: ignore[method-assign]
    return router, calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--passes", type=int, default=None, help="passes without timing (callgrind): 0 or 1")
    a = ap.parse_args()
    router, calls = capture(a.file)
    chains = router.correlator.chains if router.correlator is not None else None
    n = sum(len(f) for f, _ in calls)
    correlate = router._correlate
    if a.passes is not None:
        for _ in range(a.passes):
            router.correlator = Correlator(chains, None, router.enabled)
            for found, ev in calls:
                correlate(found, ev)
        return
    best = float("inf")
    seqs = 0
    for _ in range(a.repeat):
        router.correlator = Correlator(chains, None, router.enabled)
        gc.disable()
        c0 = time.process_time()
        for found, ev in calls:
            correlate(found, ev)
        c1 = time.process_time()
        gc.enable()
        best = min(best, c1 - c0)
        seqs = router.correlator.sequences
    print(f"{os.path.basename(a.file)}: {len(calls)} calls, {n} findings, {seqs} sequences: "
          f"{best:.3f} s CPU, {best / max(1, n) * 1e6:.2f} µs per finding (best of {a.repeat})")  # fmt: skip


if __name__ == "__main__":
    main()
