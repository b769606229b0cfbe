"""The /audit sink writes its batched detect state while the server runs, not only at shutdown."""

from __future__ import annotations

import asyncio

from kubestrata.server.engines import AuditSinkAdapter


class _Pipeline:
    def __init__(self, fail: bool = False) -> None:
        self.flushes = 0
        self.fail = fail

    def flush(self) -> None:
        self.flushes += 1
        if self.fail:
            raise RuntimeError("database unreachable")


class _Hook:
    def __init__(self, pipeline: _Pipeline) -> None:
        self.pipeline = pipeline


async def _run_for(adapter: AuditSinkAdapter, seconds: float) -> None:
    task = asyncio.create_task(adapter.flush_periodically(interval=0.01))
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_flushes_periodically_and_survives_failures():
    ok, failing = _Pipeline(), _Pipeline(fail=True)
    asyncio.run(_run_for(AuditSinkAdapter(_Hook(ok), metrics=None), 0.2))
    asyncio.run(_run_for(AuditSinkAdapter(_Hook(failing), metrics=None), 0.2))
    assert ok.flushes >= 3
    assert failing.flushes >= 3  # a failed flush does not end the loop
