"""List + watch of one collection in a background thread, as client-go's reflector does it: list, then
watch from the list's resourceVersion; a watch that ends (server timeout, dropped connection) resumes
from the last resourceVersion seen (bookmarks included); 410 Gone (history compacted, as a status or
as an ERROR event) lists again; any other failure backs off exponentially, with jitter so that many
replicas do not hammer a recovering API server in step.

A subclass says what to list and watch and what an event means; the loop, the stream and stopping
are here, shared by the namespace mirror (admission) and the Cedar Policy objects (serve)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from typing import Any


def resource_version(obj: Any) -> str | None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return str(rv) if rv else None


class ListWatch:
    """The reflector loop. Subclasses implement ``request`` (the list call, with watch arguments when
    watching), ``list_once`` (which sets ``resource_version``) and ``on_event``; they may override
    ``needs_list``, ``on_gone``, ``on_failure`` and ``connect``."""

    thread_name = "kubestrata-watch"

    def __init__(self, *, watch_timeout: int = 300, backoff: tuple[float, float] = (0.5, 30.0)) -> None:
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        self.resource_version: str | None = None
        self._stop = threading.Event()
        self._resp: Any = None
        self._thread: threading.Thread | None = None

    # --- what a subclass provides ------------------------------------------------------------
    def connect(self) -> None:
        """Build the API client when the loop first needs it (a failure here is retried with backoff)."""

    def request(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def list_once(self) -> None:
        raise NotImplementedError

    def on_event(self, typ: Any, obj: Any) -> None:
        raise NotImplementedError

    def needs_list(self) -> bool:
        return self.resource_version is None

    def on_gone(self) -> None:
        """410 Gone: the loop lists again."""

    def on_failure(self, error: Exception, status: int | None) -> None:
        """Any other failure (``status``: the API status, if any); the loop backs off and retries."""

    # --- the loop -----------------------------------------------------------------------------
    def watch_once(self) -> None:
        """One watch from the last resourceVersion until the server ends it; raises ApiException
        (410 when the version is too old) or connection errors."""
        from kubernetes.client.exceptions import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        kwargs: dict[str, Any] = {
            "watch": True,
            "allow_watch_bookmarks": True,
            "timeout_seconds": self.watch_timeout,
            # a silent connection is dead after the server's own timeout plus a margin
            "_request_timeout": (10, self.watch_timeout + 30),
            "_preload_content": False,
        }
        if self.resource_version:
            kwargs["resource_version"] = self.resource_version
        resp = self.request(**kwargs)
        self._resp = resp
        try:
            if self._stop.is_set():  # stop() ran before the response existed to shut down
                return
            if not 200 <= resp.status <= 299:
                raise ApiException(status=resp.status, reason=resp.data[:500].decode("utf-8", "replace"))
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                self.on_event(event.get("type"), event.get("object"))
                rv = resource_version(event.get("object"))
                if rv:  # BOOKMARK events carry only this
                    self.resource_version = rv
        finally:
            self._resp = None
            resp.release_conn()

    @staticmethod
    def raise_error_event(obj: Any) -> None:
        """The API server reports an expired resourceVersion as an ERROR event with a 410 Status."""
        from kubernetes.client.exceptions import ApiException

        st = obj if isinstance(obj, dict) else {}
        raise ApiException(status=int(st.get("code") or 500), reason=str(st.get("message") or st))

    def run(self) -> None:
        from kubernetes.client.exceptions import ApiException

        delay = self.backoff[0]
        while not self._stop.is_set():
            try:
                self.connect()
                if self.needs_list():
                    self.list_once()
                self.watch_once()
                delay = self.backoff[0]
                continue
            except ApiException as e:
                if e.status == 410:
                    self.resource_version = None
                    self.on_gone()
                    continue
                self.on_failure(e, e.status)
            except Exception as e:  # noqa: BLE001 - connection drops, credentials, anything: retry
                self.on_failure(e, None)
            self._stop.wait(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self.backoff[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()

    async def serve(self) -> None:
        """Background task for the server's lifespan: run the thread until the task is cancelled."""
        self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.stop(timeout=0.5)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop now: the open watch stream is shut down, a backoff wait ends."""
        self._stop.set()
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()  # wakes the thread blocked reading the stream
        if self._thread is not None:
            self._thread.join(timeout)
