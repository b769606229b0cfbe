"""Keeps the Cedar policy set current: polls the policy directories and asks the store to reload
when anything in them changes. The store swaps its pre-parsed set atomically and rejects a set that
fails to parse or validate, so the previous set keeps serving; both outcomes are counted."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from kubestrata.server.metrics import Metrics

log = logging.getLogger("kubestrata.server.policies")


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


class PolicyWatcher:
    """``reload`` returns the number of policies now serving, or raises with a clear message when the
    new set is rejected (the store keeps the previous one)."""

    def __init__(self, dirs: list[Path], reload: Callable[[], int], metrics: Metrics) -> None:
        self.dirs = dirs
        self._reload = reload
        self.metrics = metrics
        self._sig = tree_signature(dirs)

    def check(self) -> bool | None:
        sig = tree_signature(self.dirs)
        if sig == self._sig:
            return None
        self._sig = sig
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
