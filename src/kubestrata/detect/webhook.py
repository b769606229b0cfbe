"""The audit webhook backend handler: what ``kubestrata serve`` mounts at ``/audit``.

The API server's webhook backend (``--audit-webhook-config-file``) POSTs an
``audit.k8s.io/v1`` EventList (batch <= 400 events by default). ``AuditWebhook.handle`` is a pure
function of the body: it never raises, never blocks on alert delivery (sinks are bounded queues),
and answers

- 200 ``{"accepted": n, "bad": b, "duplicates": d, "findings": f}`` when the body was JSON: bad
  events inside a batch are counted and skipped, not rejected, because a 4xx makes the API server
  retry the whole batch and a retry cannot fix a malformed event;
- 400 ``{"error": ...}`` when the body is not JSON, not an object, or not an Event/EventList;
- 413 when the body exceeds ``max_body_bytes``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kubestrata.detect.decode import loads
from kubestrata.detect.escape import clean
from kubestrata.detect.event import BadEvent
from kubestrata.detect.pipeline import Pipeline

log = logging.getLogger("kubestrata.detect.webhook")

# The apiserver's batch is at most 400 events; with 100 KiB truncation that is ~40 MiB worst case.
DEFAULT_MAX_BODY_BYTES = 48 * 1024 * 1024


class AuditWebhook:
    """Thread-safe wrapper of a Pipeline for concurrent webhook requests."""

    def __init__(
        self, pipeline: Pipeline, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, publisher: Any = None
    ) -> None:
        self.pipeline = pipeline
        self.max_body_bytes = max_body_bytes
        # scale-out (streams.Publisher): events go to the partition streams for `detect worker`
        # instead of being evaluated here
        self.publisher = publisher
        self._lock = threading.Lock()
        self.requests = 0
        self.rejected = 0

    def handle(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            return self._handle(body)
        except Exception as e:  # the contract is "never raises": a server must keep serving
            log.exception("audit webhook: unexpected error")
            self.rejected += 1
            return 500, {"error": f"internal error: {clean(type(e).__name__, 80)}"}

    def _handle(self, body: bytes) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        if len(body) > self.max_body_bytes:
            self.rejected += 1
            return 413, {"error": f"body of {len(body)} bytes exceeds {self.max_body_bytes}"}
        try:
            obj = loads(body)
        except BadEvent as e:
            self.rejected += 1
            return 400, {"error": f"body is not JSON: {clean(e.reason, 200)}"}
        if not isinstance(obj, dict) or obj.get("kind") not in ("EventList", "Event"):
            self.rejected += 1
            kind = obj.get("kind") if isinstance(obj, dict) else type(obj).__name__
            return 400, {"error": f"expected an audit.k8s.io EventList, got kind {clean(str(kind), 80)!r}"}
        if self.publisher is not None:
            return self._publish(obj)
        st = self.pipeline.stats
        with self._lock:
            before = (st.events, st.bad_total, st.duplicates, st.findings)
            self.pipeline.process_obj(
                obj, "webhook", check_size=len(body) > self.pipeline.config.max_event_bytes
            )
            after = (st.events, st.bad_total, st.duplicates, st.findings)
        events, bad, dups, findings = (a - b for a, b in zip(after, before, strict=True))
        return 200, {"accepted": events, "bad": bad, "duplicates": dups, "findings": findings}

    def _publish(self, obj: Any) -> tuple[int, dict[str, Any]]:
        pub = self.publisher
        with self._lock:
            before = (pub.stats.events, pub.stats.bad)
            try:
                pub.publish_obj(obj, "webhook")
                pub.flush()
            except Exception as e:  # Redis unreachable: 503, so the API server sends the batch again
                pub.discard()
                self.rejected += 1
                log.warning("audit webhook: publishing failed: %s", clean(str(e), 200))
                return 503, {"error": "event stream unavailable; retry"}
            events, bad = pub.stats.events - before[0], pub.stats.bad - before[1]
        return 200, {"accepted": events, "bad": bad, "duplicates": 0, "findings": 0, "published": events}
