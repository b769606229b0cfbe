"""Run the app on uvicorn over HTTPS only, with header timeouts, certificate rotation and graceful
shutdown (SIGTERM/SIGINT: stop accepting, finish in-flight requests for ``shutdown_timeout``)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from kubestrata.server.tls import ReloadingTLS


class CoalescingTransport:
    """Gathers the writes one event-loop step makes (uvicorn writes a response's head and its body
    separately) and hands them to the TLS transport as one write: one TLS record and one send(2) per
    response instead of two, which halves the per-response syscall and wake-up cost on loopback."""

    __slots__ = ("_t", "_buf", "_scheduled", "_loop")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._t = transport
        self._buf: list[bytes] = []
        self._scheduled = False
        self._loop = loop

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._buf.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            if not self._t.is_closing():
                self._t.write(data)

    def close(self) -> None:
        self.flush()
        self._t.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request's headers: a client that opens a
    connection (or keeps one alive) and trickles header bytes is disconnected after
    ``header_timeout`` seconds instead of holding the connection forever. Body slowness is bounded
    by the app (``limits.body_timeout``)."""

    header_timeout: float = 10.0

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        t = getattr(self, "_header_timer", None)
        if t is not None:
            t.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        # still waiting for (the rest of) a request line and headers
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            # h11 cannot send a response before a request exists, so write the bytes directly
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
            )
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        # a new request starts on an idle keep-alive connection: its headers get the deadline too
        # (idle connections themselves are closed by uvicorn's keep-alive timeout, silently)
        if self.conn.their_state is h11.IDLE and getattr(self, "_header_timer", None) is None:
            self._arm_header_timer()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def protocol_class(header_timeout: float) -> type[TimedH11Protocol]:
    return type("TimedH11Protocol", (TimedH11Protocol,), {"header_timeout": header_timeout})


def build_server(
    app: Any,
    tls: ReloadingTLS,
    *,
    host: str,
    port: int,
    header_timeout: float,
    keep_alive: float,
    max_concurrency: int | None,
    shutdown_timeout: float,
    sock: socket.socket | None = None,
) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(header_timeout),
        ws="none",
        lifespan="on",
        # HTTPS only: the context is ours (rotation); uvicorn never serves plain HTTP here
        ssl_context_factory=lambda _cfg, _default: tls.listening,
        timeout_keep_alive=int(max(1, keep_alive)),
        limit_concurrency=max_concurrency,
        timeout_graceful_shutdown=int(shutdown_timeout) if shutdown_timeout else None,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    server._kubestrata_sock = sock  # type: ignore[attr-defined]
    return server


async def serve_forever(server: uvicorn.Server) -> None:
    sock = getattr(server, "_kubestrata_sock", None)
    await server.serve(sockets=[sock] if sock is not None else None)


def run(server: uvicorn.Server) -> None:
    asyncio.run(serve_forever(server))
