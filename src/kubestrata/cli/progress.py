"""Progress for local work: a spinner on stderr that appears only when a stage takes more than ~2 s, never
with -q, and never when stderr is not a terminal (pipes and CI logs get no control sequences)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubestrata.cli.common import err_console

DELAY = 2.0


class Stage:
    def __init__(self, description: str) -> None:
        self.description = description
        self._status: Any = None
        self._lock = threading.Lock()
        self._done = False

    def start(self) -> None:
        with self._lock:
            if self._done:
                return
            self._status = err_console.status(self.description)
            self._status.start()

    def update(self, description: str) -> None:
        self.description = description
        with self._lock:
            if self._status is not None:
                self._status.update(description)

    def stop(self) -> None:
        with self._lock:
            self._done = True
            if self._status is not None:
                self._status.stop()


@contextmanager
def stage(description: str, *, quiet: bool = False, delay: float = DELAY) -> Iterator[Stage]:
    """``with stage("evaluating 51 checks", quiet=q): ...``"""
    s = Stage(description)
    if quiet or not err_console.is_terminal:
        yield s
        return
    timer = threading.Timer(delay, s.start)
    timer.daemon = True
    timer.start()
    try:
        yield s
    finally:
        timer.cancel()
        s.stop()
