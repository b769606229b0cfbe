"""The operations port: /healthz, /readyz and /metrics over plain HTTP on their own address.

Kept apart from the webhook port so that probes and scrapes never compete with the API server's
connections (a flood there cannot fail a probe), never need a client certificate, and can be bound
to a different address (loopback by default). A deliberately small HTTP/1.1 server: one GET per
connection, headers within 8 KiB and 5 s, at most ``MAX_CONNECTIONS`` open at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

HEAD_LIMIT = 8192
HEAD_TIMEOUT = 5.0
MAX_CONNECTIONS = 64

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    503: b"Unavailable",
}


class OpsServer:
    def __init__(self, state: Any) -> None:
        self.state = state
        self.server: asyncio.Server | None = None
        self.open = 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port, limit=HEAD_LIMIT)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def answer(self, method: str, path: str) -> tuple[int, bytes, bytes]:
        st = self.state
        if path not in ("/healthz", "/readyz", "/metrics"):
            return 404, b"not found", b"text/plain"
        if method not in ("GET", "HEAD"):
            return 405, b"GET only", b"text/plain"
        if path == "/healthz":
            return 200, b"ok", b"text/plain"
        if path == "/readyz":
            if st.ready:
                return 200, b"ok", b"text/plain"
            why = b"shutting down" if st.shutting_down else b"policies not loaded"
            return 503, why, b"text/plain"
        body, ctype = st.metrics.render()
        return 200, body, ctype.encode()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            if self.open > MAX_CONNECTIONS:
                return
            try:
                async with asyncio.timeout(HEAD_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
                code, body, ctype = 400, b"bad request line", b"text/plain"
                method = "GET"
            else:
                method = parts[0].decode("latin-1")
                path = parts[1].split(b"?", 1)[0].decode("latin-1")
                code, body, ctype = self.answer(method, path)
            writer.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                % (code, _REASONS.get(code, b""), ctype, len(body))
            )
            if method != "HEAD":
                writer.write(body)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            self.open -= 1
            writer.close()
