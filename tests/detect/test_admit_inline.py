"""Pipeline.process_event admits a new fingerprint into the in-memory findings store inline; what it
emits, suppresses and remembers is what FindingsStore.admit gives (a subclass of the store is not
inlined: the reference)."""

from __future__ import annotations

import random

import pytest

from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.state import FindingsStore
from kubestrata.findings import Finding
from tests.detect.helpers import event


class PlainStore(FindingsStore):
    """FindingsStore as it is: every admission through admit."""


class PlainPipeline(Pipeline):
    def make_store(self, engine):  # type: ignore[no-untyped-def]
        return PlainStore(engine, self.config.dedup_window)


def _events(seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(300):
        minute = rng.choice([0, 1, 30, 61, 125]) if rng.random() < 0.8 else rng.randrange(0, 300)
        ts = f"2026-11-27T{10 + minute // 60:02d}:{minute % 60:02d}:00Z"
        e = event(
            verb="create",
            resource="pods",
            subresource="exec",
            namespace=rng.choice(["kube-system", "default", "payments"]),
            name=f"api-{rng.randrange(4)}",
            user=rng.choice(["bob", "alice", "system:anonymous"]),
            uri=f"/api/v1/namespaces/x/pods/api/exec?command={rng.choice(['sh', 'id', 'cat'])}",
            code=101,
        )
        e["auditID"] = f"id-{i}"
        e["stageTimestamp"] = ts
        out.append(e)
    return out


def _run(pipe: Pipeline, events: list[dict], cap: int) -> tuple[object, ...]:
    pipe.store.MAX_CACHE = cap
    emitted: list[Finding] = []
    for e in events:
        emitted.extend(pipe.process_obj(e))
    return (
        [f.fingerprint for f in emitted],
        pipe.stats.findings,
        pipe.stats.suppressed,
        pipe.store.suppressed,
        pipe.store._last,
        pipe.store._complete,
    )


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("cap", [3, 40, 200_000])
def test_inline_admission_is_admit(seed: int, cap: int) -> None:
    events = _events(seed)
    window = [0.0, 60.0, 3600.0][seed % 3]
    inline = Pipeline(DetectConfig(dedup_window=window))
    plain = PlainPipeline(DetectConfig(dedup_window=window))
    assert type(inline.store) is FindingsStore and type(plain.store) is PlainStore
    got, want = _run(inline, events, cap), _run(plain, events, cap)
    assert got == want
    assert want[1] > 20  # (findings, and where a window holds them, repeats suppressed)
    assert want[2] > 0 or window == 0 or cap == 3
