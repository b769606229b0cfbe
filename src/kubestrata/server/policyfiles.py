"""Keeps the Cedar policy set current: polls the policy directories and asks the store to reload
when anything in them changes. The store swaps its pre-parsed set atomically and rejects a set that
fails to parse or validate, so the previous set keeps serving; both outcomes are counted.

A change is loaded only once the files are complete: when every file's mtime is at least
``settle`` seconds old, or the same change is seen again ``settle`` seconds later. A file written in
place in several steps (an editor, `cp` of a large file, a script) is otherwise caught half-written,
and a truncation at a policy boundary still parses: some forbids would silently be missing. The
reliable way to update is to write elsewhere and rename into place (ConfigMap volumes do this).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from kubestrata.server.metrics import Metrics

log = logging.getLogger("kubestrata.server.policyfiles")


def tree_signature(dirs: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime, size) of every file under the directories: any edit, add, remove or rename shows."""
    out: list[tuple[str, int, int]] = []
    for d in dirs:
        if d.is_file():
            st = d.stat()
            out.append((str(d), st.st_mtime_ns, st.st_size))
            continue
        for root, subdirs, files in os.walk(d, followlinks=True):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            for f in sorted(files):
                if f.startswith("."):
                    continue  # editors' swap files, ConfigMap ..data internals
                p = os.path.join(root, f)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                out.append((p, st.st_mtime_ns, st.st_size))
    return tuple(out)


class PolicyFileWatcher:
    """``reload`` returns the number of policies now serving, or raises with a clear message when the
    new set is rejected (the store keeps the previous one)."""

    def __init__(
        self, dirs: list[Path], reload: Callable[[], int], metrics: Metrics, settle: float = 2.0
    ) -> None:
        self.dirs = dirs
        self._reload = reload
        self.metrics = metrics
        self.settle = settle
        self._sig = tree_signature(dirs)
        self._pending: tuple[tuple[str, int, int], ...] | None = None
        self._pending_at = 0.0

    def _settled(self, sig: tuple[tuple[str, int, int], ...]) -> bool:
        if self.settle <= 0:
            return True
        now = time.monotonic()
        newest = max((mtime for _, mtime, _ in sig), default=0) / 1e9
        quiet = time.time() - newest >= self.settle  # nothing touched for `settle` seconds
        if sig != self._pending:
            self._pending, self._pending_at = sig, now
            return quiet
        return quiet or now - self._pending_at >= self.settle

    def check(self) -> bool | None:
        """True reloaded, False rejected (previous set kept), None unchanged or still settling."""
        sig = tree_signature(self.dirs)
        if sig == self._sig:
            self._pending = None
            return None
        if not self._settled(sig):
            log.info("policy files changed; waiting for them to settle", extra={"event": "policy_settling"})
            return None
        self._sig = sig
        self._pending = None
        try:
            n = self._reload()
        except Exception as e:  # noqa: BLE001 - any rejection keeps the previous set
            self.metrics.policy_reloads.labels("rejected").inc()
            log.error(
                "policy reload rejected; the previous policy set keeps serving",
                extra={"event": "policy_reload_rejected", "error": str(e)[:2000]},
            )
            return False
        self.metrics.policy_reloads.labels("applied").inc()
        self.metrics.policies_loaded.set(n)
        log.info("policies reloaded", extra={"event": "policy_reloaded", "policies": n})
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            # parsing and validating a large set takes a while: off the event loop; the store's swap
            # is one reference assignment, so requests see the old or the new set, never a mix
            await asyncio.to_thread(self.check)
