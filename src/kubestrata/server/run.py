"""Run the app on uvicorn over HTTPS only, with mutual TLS, bounded connections, header timeouts,
certificate rotation, a separate operations port and a draining shutdown.

Connections (``ConnectionTable``): every accepted socket is counted from the moment it is accepted,
TLS handshake included. Connections that are not yet authenticated (in the handshake; or, without
client certificates, before their first request) may hold at most ``max_connections - reserve``
slots; when that class is full the oldest of its idle connections is closed to make room, so a
flood of idle or half-open connections only ever competes with itself. Authenticated connections
(the API server's keep-alive pool) use the rest; when everything is full the oldest idle connection
of all is closed, and a new connection is refused only when every open one is busy.

Memory per connection: asyncio's TLS protocol allocates a 256 KiB receive buffer per connection
(``SSLProtocol.max_size``); ``FrugalSSLProtocol`` hands every connection one shared buffer instead
(the event loop copies each read out of it before the next), which is most of an idle TLS
connection's cost (docs/performance.md has the figures).

Shutdown (SIGTERM, SIGINT): /readyz answers 503 at once and for ``drain_seconds`` the server keeps
serving, closing idle keep-alive connections and answering with ``Connection: close``, so the API
server moves to other replicas while the endpoint leaves the Service; then the listener closes and
in-flight requests get ``shutdown_timeout``. A second signal skips the drain.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from asyncio import selector_events, sslproto
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from kubestrata.server.tls import ReloadingTLS


class _Entry:
    __slots__ = ("ssl", "app", "busy", "trusted", "gone")

    def __init__(self, ssl_protocol: Any) -> None:
        self.ssl = ssl_protocol
        self.app: Any = None
        self.busy = False
        self.trusted = False
        self.gone = False


class ConnectionTable:
    """Open connections of one listener, oldest first in each class (see the module docstring)."""

    def __init__(
        self,
        max_connections: int,
        reserve: int,
        on_close: Callable[[str], None] | None = None,
    ) -> None:
        self.max = max_connections
        self.untrusted_max = max(1, max_connections - reserve)
        self.untrusted: collections.OrderedDict[int, _Entry] = collections.OrderedDict()
        self.trusted: collections.OrderedDict[int, _Entry] = collections.OrderedDict()
        self._on_close = on_close or (lambda reason: None)

    def __len__(self) -> int:
        return len(self.untrusted) + len(self.trusted)

    def admit(self, ssl_protocol: Any) -> _Entry | None:
        """A new connection: its entry, or None when it must be refused (everything busy)."""
        if len(self.untrusted) >= self.untrusted_max and not self._evict(self.untrusted):
            self._on_close("refused")
            return None
        if len(self) >= self.max and not (self._evict(self.untrusted) or self._evict(self.trusted)):
            self._on_close("refused")
            return None
        e = _Entry(ssl_protocol)
        self.untrusted[id(e)] = e
        return e

    def _evict(self, pool: collections.OrderedDict[int, _Entry]) -> bool:
        for key, e in pool.items():
            if not e.busy:
                del pool[key]
                e.gone = True
                self._on_close("evicted_idle")
                _close(e)
                return True
        return False

    def trust(self, e: _Entry) -> None:
        if e.gone or e.trusted:
            return
        self.untrusted.pop(id(e), None)
        e.trusted = True
        self.trusted[id(e)] = e

    def busy(self, e: _Entry, busy: bool) -> None:
        e.busy = busy
        if not busy and e.trusted and not e.gone:
            self.trusted.move_to_end(id(e))  # most recently used last: eviction takes the oldest

    def remove(self, e: _Entry) -> None:
        if not e.gone:
            e.gone = True
            (self.trusted if e.trusted else self.untrusted).pop(id(e), None)

    def close_idle(self) -> int:
        n = 0
        for pool in (self.untrusted, self.trusted):
            for key, e in list(pool.items()):
                if not e.busy:
                    del pool[key]
                    e.gone = True
                    _close(e)
                    n += 1
        return n


def _close(e: _Entry) -> None:
    if e.app is not None:
        # an HTTP connection between requests: close it the way the keep-alive timeout does
        try:
            e.app.timeout_keep_alive_handler()
        except h11.LocalProtocolError:
            e.app.transport.close()
    else:
        e.ssl._abort()  # still in the TLS handshake


class FrugalSSLProtocol(sslproto.SSLProtocol):
    """asyncio's TLS protocol with one receive buffer shared by every connection of its event loop
    (one per loop, never across threads), and an entry in the loop's ConnectionTable."""

    max_size = 64 * 1024  # bytes read from the TLS object per call
    kentry: _Entry | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop, *args: Any, **kw: Any) -> None:
        # the base class allocates bytearray(max_size) per connection: nothing (typeshed declares
        # max_size a ClassVar; the instance attribute shadows it only during __init__)
        self.max_size = 0  # type: ignore[misc]
        super().__init__(loop, *args, **kw)
        del self.max_size
        view = getattr(loop, "kubestrata_read_buffer", None)
        if view is None:
            view = memoryview(bytearray(256 * 1024))
            loop.kubestrata_read_buffer = view  # type: ignore[attr-defined]
        self._ssl_buffer_view = view
        self._ssl_buffer = view.obj  # type: ignore[assignment]

    def get_buffer(self, n: int) -> memoryview:
        # the socket is read into this buffer and buffer_updated() copies it into the TLS object's
        # memory BIO before the loop runs anything else, so one buffer serves every connection of
        # the loop (the loop is single-threaded; each loop has its own)
        return self._ssl_buffer_view

    def connection_lost(self, exc: BaseException | None) -> None:
        e, table = self.kentry, getattr(self._loop, "kubestrata_connections", None)
        if e is not None and table is not None:
            if not e.gone and e.app is None:
                table._on_close("handshake_failed")
            table.remove(e)
        super().connection_lost(exc)


class WebhookLoop(asyncio.SelectorEventLoop):
    """The event loop `serve` runs on: TLS connections get FrugalSSLProtocol, the configured
    handshake timeout and a ConnectionTable entry (or are refused)."""

    kubestrata_connections: ConnectionTable | None = None
    kubestrata_handshake_timeout: float | None = None

    def _make_ssl_transport(  # type: ignore[override]
        self,
        rawsock: socket.socket,
        protocol: Any,
        sslcontext: Any,
        waiter: Any = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: Any = None,
        server: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> Any:
        ssl_protocol = FrugalSSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=self.kubestrata_handshake_timeout or ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        table = self.kubestrata_connections
        if table is not None and server_side:
            entry = table.admit(ssl_protocol)
            if entry is None:
                rawsock.close()
                # swallowed by the loop's accept path (logged in debug mode only)
                raise ConnectionRefusedError("connection limit: every connection is busy")
            ssl_protocol.kentry = entry
        # a private asyncio class (what the base method builds too), absent from typeshed
        selector_events._SelectorSocketTransport(  # type: ignore[attr-defined]
            self, rawsock, ssl_protocol, extra=extra, server=server
        )
        return ssl_protocol._app_transport


def peer_names(transport: Any) -> tuple[str, ...] | None:
    """The verified client certificate's subject CN and SAN values, or None without a certificate."""
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    names: list[str] = []
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                names.append(v)
    for _kind, v in cert.get("subjectAltName", ()):
        names.append(v)
    return tuple(names)


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
    """uvicorn's h11 protocol plus a deadline for each request's headers (a client that opens a
    connection, or keeps one alive, and trickles header bytes is disconnected after
    ``header_timeout`` seconds; body slowness is bounded by the app), the caller's certificate
    identity in the request scope (``scope["state"]["peer"]``), and the connection's place in the
    ConnectionTable (busy while a request runs; trusted once authenticated)."""

    header_timeout: float = 10.0
    mtls: bool = False
    client_names: frozenset[str] = frozenset()
    on_refused: Callable[[int, str], None] = staticmethod(lambda code, reason: None)  # type: ignore[assignment]
    _header_timer: asyncio.TimerHandle | None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        names = peer_names(transport)
        allowed = names is not None and (not self.client_names or bool(self.client_names & set(names)))
        self.app_state = {**self.app_state, "peer": names, "peer_allowed": allowed}
        ssl_protocol = getattr(transport, "_ssl_protocol", None)
        self._kentry = getattr(ssl_protocol, "kentry", None)
        self._ktable = getattr(self.loop, "kubestrata_connections", None)
        if self._kentry is not None:
            self._kentry.app = self
            if self.mtls and allowed and self._ktable is not None:
                self._ktable.trust(self._kentry)
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
            if self.conn.trailing_data[0]:
                self.on_refused(408, "timeout")  # part of a request had arrived: count it
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
        if self._kentry is not None and self._ktable is not None and self.cycle is not None:
            if not self.cycle.response_complete and not self._kentry.busy:
                self._ktable.busy(self._kentry, True)

    def on_response_complete(self) -> None:
        if self._kentry is not None and self._ktable is not None:
            if not self.mtls:
                # without client certificates, a connection that completed a request is the best
                # sign of a real client there is: it leaves the handshake/idle-flood class
                self._ktable.trust(self._kentry)
            self._ktable.busy(self._kentry, False)
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self.on_refused(400, "http")
        super().send_400_response(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def protocol_class(
    header_timeout: float,
    *,
    mtls: bool = False,
    client_names: list[str] | tuple[str, ...] = (),
    on_refused: Callable[[int, str], None] | None = None,
) -> type[TimedH11Protocol]:
    attrs: dict[str, Any] = {
        "header_timeout": header_timeout,
        "mtls": mtls,
        "client_names": frozenset(client_names),
    }
    if on_refused is not None:
        attrs["on_refused"] = staticmethod(on_refused)
    return type("TimedH11Protocol", (TimedH11Protocol,), attrs)


class WebhookServer(uvicorn.Server):
    """uvicorn's server with the operations port beside it and a draining first signal."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        state: Any = None,
        table: ConnectionTable | None = None,
        handshake_timeout: float | None = None,
        drain_seconds: float = 0.0,
        ops_host: str | None = None,
        ops_port: int | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        super().__init__(config)
        self.state = state
        self.table = table
        self.handshake_timeout = handshake_timeout
        self.drain_seconds = drain_seconds
        self.ops_host, self.ops_port = ops_host, ops_port
        self.sock = sock
        self.ops: Any = None
        self.draining_since: float | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.draining_since is None and self.drain_seconds > 0 and not self.should_exit:
            self._captured_signals.append(sig)
            self.begin_drain()
        else:
            super().handle_exit(sig, frame)

    def begin_drain(self) -> None:
        """/readyz answers 503 from now on; idle connections are closed at the next tick and every
        response says ``Connection: close``; the listener closes after ``drain_seconds``."""
        self.draining_since = time.monotonic()
        if self.state is not None:
            self.state.shutting_down = True

    async def on_tick(self, counter: int) -> bool:
        if self.draining_since is not None:
            if self.table is not None:
                self.table.close_idle()
            if time.monotonic() - self.draining_since >= self.drain_seconds:
                self.should_exit = True
        return await super().on_tick(counter)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(loop, WebhookLoop):
            loop.kubestrata_connections = self.table
            loop.kubestrata_handshake_timeout = self.handshake_timeout
        if self.state is not None and self.ops_port is not None:
            from kubestrata.server.ops import OpsServer

            self.ops = OpsServer(self.state)
            await self.ops.start(self.ops_host or "127.0.0.1", self.ops_port)
        try:
            await super().serve(sockets=sockets or ([self.sock] if self.sock is not None else None))
        finally:
            if self.ops is not None:
                self.ops.close()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.state is not None:
            self.state.shutting_down = True
        await super().shutdown(sockets)


def build_server(
    app: Any,
    tls: ReloadingTLS,
    *,
    host: str,
    port: int,
    header_timeout: float,
    keep_alive: float,
    shutdown_timeout: float,
    state: Any = None,
    max_connections: int | None = None,
    reserve: int = 0,
    handshake_timeout: float | None = None,
    client_names: list[str] | None = None,
    drain_seconds: float = 0.0,
    ops_host: str | None = None,
    ops_port: int | None = None,
    sock: socket.socket | None = None,
) -> WebhookServer:
    m = getattr(state, "metrics", None)

    def refused(code: int, reason: str) -> None:
        if m is not None:
            m.requests.labels("other", str(code)).inc()
            m.bad_requests.labels("other", reason).inc()

    def closed(reason: str) -> None:
        if m is not None:
            m.connections_closed.labels(reason).inc()

    table = ConnectionTable(max_connections, reserve, closed) if max_connections else None
    if m is not None and table is not None:
        m.open_connections.set_function(lambda: len(table))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(
            header_timeout,
            mtls=tls.client_ca is not None,
            client_names=client_names or (),
            on_refused=refused,
        ),
        ws="none",
        lifespan="on",
        # HTTPS only: the context is ours (rotation); uvicorn never serves plain HTTP here
        ssl_context_factory=lambda _cfg, _default: tls.listening,
        timeout_keep_alive=int(max(1, keep_alive)),
        limit_concurrency=None,  # the ConnectionTable bounds connections (uvicorn's limit 503s probes)
        timeout_graceful_shutdown=int(shutdown_timeout) if shutdown_timeout else None,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    return WebhookServer(
        config,
        state=state,
        table=table,
        handshake_timeout=handshake_timeout,
        drain_seconds=drain_seconds,
        ops_host=ops_host,
        ops_port=ops_port,
        sock=sock,
    )


def run(server: uvicorn.Server) -> None:
    """Run the server to completion on a WebhookLoop (in the calling thread)."""
    with asyncio.Runner(loop_factory=WebhookLoop) as runner:
        runner.run(server.serve())
