"""Alert sinks: stdout, file, HTTP webhook. Each runs behind a bounded queue on its own thread;
``submit`` never blocks ingestion: when the queue is full the finding is dropped and counted
(``dropped``), like the API server's own audit buffer does (reference §6).

Batch work (``detect replay``) asks for ``block=True`` instead: there the output is the product
and waiting for a slow consumer is the right thing.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import urllib.error
import urllib.parse
from collections.abc import Callable
from typing import IO, Any

from kubestrata.detect.jsonlines import json_line
from kubestrata.findings import Finding, Severity

log = logging.getLogger("kubestrata.detect.sinks")

_STOP = object()
_SEVERITY_VALUES = {s: s.value for s in Severity}


class Sink:
    """Base: a writer called on the sink's own thread."""

    name = "sink"

    # a local writer (memory, stream, file) in blocking mode writes in the caller's thread: the
    # queue and thread hand-off would only add a lock round trip and a GIL switch per finding
    inline_when_blocking = False

    def __init__(self, capacity: int = 10_000, block: bool = False) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self.block = block
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        self.inline = block and self.inline_when_blocking
        self._thread = threading.Thread(target=self._run, name=f"kubestrata-{self.name}", daemon=True)
        if not self.inline:
            self._thread.start()
        elif type(self).submit is Sink.submit:
            # submit of an inline sink is its delivery: one call per finding instead of two, or
            # one instead of three where the class writes in its delivery (_delivery)
            self.submit = self._delivery()  # type: ignore[method-assign, assignment]

    def submit(self, finding: Finding) -> None:
        if self.inline:
            self._deliver(finding)
            return
        if self.block:
            self.queue.put(finding)
            return
        try:
            self.queue.put_nowait(finding)
        except queue.Full:
            self.dropped += 1
            if self.dropped in (1, 100, 10_000) or self.dropped % 100_000 == 0:
                log.warning("%s sink: queue full, %d findings dropped so far", self.name, self.dropped)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                self.flush()
                return
            self._deliver(item)
            if self.queue.empty():
                self.flush()  # a buffering writer: nothing more is coming right now, so write it out

    def _deliver(self, item: Finding) -> None:
        try:
            self.write(item)
            self.delivered += 1
        except Exception as e:  # a broken sink must not kill its thread
            self._failed(e)

    def _failed(self, e: Exception) -> None:
        """A delivery failed (every delivery's one failure path: counted, the first three logged)."""
        self.failed += 1
        if self.failed <= 3:
            log.warning("%s sink: delivery failed: %s", self.name, e)

    def _delivery(self) -> Callable[[Finding], None]:
        """What an inline sink's submit calls: _deliver, or a subclass's _deliver and write in one
        function (the same counters, log and failures; tests/detect/test_sink_delivery.py), when
        the instance's class writes and delivers as that subclass does."""
        return self._deliver

    def write(self, finding: Finding) -> None:
        raise NotImplementedError

    def encode(self, finding: Finding) -> bytes:
        """The finding as the sink sends it: its JSON line (docs/json-schema.md, detect)."""
        return json_line(finding)

    def flush(self) -> None:
        pass

    def close(self, timeout: float = 30.0) -> None:
        if self.inline:
            self.flush()
            return
        try:
            self.queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        return {"delivered": self.delivered, "dropped": self.dropped, "failed": self.failed}


class StreamSink(Sink):
    """JSON lines to a stream (stdout by default). Values are already escaped by the pipeline.

    Lines are gathered in the sink's own buffer and written in chunks of about BUFFER_BYTES (and on
    every flush: the end of a worker batch, an idle queue, close): with PYTHONUNBUFFERED=1, common in
    container images, sys.stdout.buffer is the raw file and each finding would cost a system call."""

    name = "stdout"
    inline_when_blocking = True
    BUFFER_BYTES = 1 << 16

    def __init__(self, stream: IO[bytes] | None = None, **kw: Any) -> None:
        self.stream = stream if stream is not None else sys.stdout.buffer
        self._buf: list[bytes] = []
        self._buffered = 0
        # the encoder, looked up once: a subclass's own (falco_output) or the JSON line itself
        self._encode = json_line if type(self).encode is Sink.encode else self.encode
        super().__init__(**kw)

    broken = False

    def write(self, finding: Finding) -> None:
        if self.broken:
            self.dropped += 1
            return
        line = self._encode(finding)
        self._buf.append(line)  # the newlines are added when the buffer is joined
        self._buffered += len(line) + 1
        if self._buffered >= self.BUFFER_BYTES:
            self._write_out()

    def _delivery(self) -> Callable[[Finding], None]:
        cls = type(self)
        if cls.write is StreamSink.write and cls._deliver is Sink._deliver:
            return self._deliver_line
        return self._deliver

    def _deliver_line(self, finding: Finding) -> None:
        """_deliver(finding) with StreamSink.write inline."""
        try:
            if self.broken:
                self.dropped += 1
            else:
                line = self._encode(finding)
                self._buf.append(line)
                self._buffered += len(line) + 1
                if self._buffered >= self.BUFFER_BYTES:
                    self._write_out()
            self.delivered += 1
        except Exception as e:  # (Sink._deliver's)
            self._failed(e)

    def _write_out(self) -> None:
        if not self._buf:
            return
        n = len(self._buf)
        self._buf.append(b"")
        data = b"\n".join(self._buf)
        self._buf, self._buffered = [], 0
        try:
            self.stream.write(data)
        except BrokenPipeError:
            self.broken = True  # the reader went away (| head): stop writing, keep ingesting
            self.dropped += n

    def flush(self) -> None:
        self._write_out()
        try:
            self.stream.flush()
        except BrokenPipeError:
            self.broken = True
        except (OSError, ValueError):
            pass


class FileSink(StreamSink):
    name = "file"

    def __init__(self, path: str, **kw: Any) -> None:
        self.path = path
        super().__init__(open(path, "ab"), **kw)  # noqa: SIM115 - closed by the sink thread

    def flush(self) -> None:
        super().flush()

    def close(self, timeout: float = 30.0) -> None:
        super().close(timeout)
        self.stream.close()


class WebhookSink(Sink):
    """POST each finding as JSON to an HTTP(S) endpoint (Slack-style incoming webhooks, SOAR)."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 5.0, headers: dict[str, str] | None = None, **kw: Any):
        if not url.startswith(("https://", "http://")):
            raise ValueError("webhook URL must start with https:// or http://")
        self.url = url
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        super().__init__(**kw)

    def write(self, finding: Finding) -> None:
        from urllib.request import Request, urlopen  # (here: ~20 ms of every detect start-up)

        req = Request(self.url, data=self.encode(finding), headers=self.headers, method="POST")
        try:
            with urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - scheme checked
                resp.read()
        except urllib.error.URLError as e:
            # the URL path often carries a token (Slack, Teams): name the host only
            raise OSError(f"POST to {urllib.parse.urlsplit(self.url).netloc}: {e.reason}") from None


class MemorySink(Sink):
    """Collects findings (tests, the summary table)."""

    name = "memory"
    inline_when_blocking = True

    def __init__(self, **kw: Any) -> None:
        self.items: list[Finding] = []
        super().__init__(**kw)

    def write(self, finding: Finding) -> None:
        self.items.append(finding)


class CountingSink(Sink):
    """Counts findings by severity and keeps nothing (``replay -o jsonl``: the --fail-on gate needs
    only the counts, and holding every finding would grow memory and the collector's work)."""

    name = "count"
    inline_when_blocking = True

    def __init__(self, **kw: Any) -> None:
        self.by_severity: dict[str, int] = {}
        super().__init__(**kw)

    def write(self, finding: Finding) -> None:
        sev = finding.severity
        # (a member's .value is a Python-level property; the table is a dict lookup)
        key = _SEVERITY_VALUES[sev] if type(sev) is Severity else sev.value
        self.by_severity[key] = self.by_severity.get(key, 0) + 1

    def _delivery(self) -> Callable[[Finding], None]:
        cls = type(self)
        if cls.write is CountingSink.write and cls._deliver is Sink._deliver:
            return self._deliver_count
        return self._deliver

    def _deliver_count(self, finding: Finding) -> None:
        """_deliver(finding) with CountingSink.write inline."""
        try:
            sev = finding.severity
            key = _SEVERITY_VALUES[sev] if type(sev) is Severity else sev.value
            by_severity = self.by_severity
            by_severity[key] = by_severity.get(key, 0) + 1
            self.delivered += 1
        except Exception as e:  # (Sink._deliver's)
            self._failed(e)
