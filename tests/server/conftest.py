"""A real uvicorn HTTPS server on 127.0.0.1 (ephemeral port, generated certificates, client
certificates required unless ``mtls=False``) in a thread on the server's own event loop, its plain-HTTP
operations port, and httpx clients that trust only the generated CA and present the generated client
certificate."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubestrata.server.app import ServerState, create_app
from kubestrata.server.certs import CertPaths, generate_certs
from kubestrata.server.run import build_server, run
from kubestrata.server.tls import ReloadingTLS


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    return generate_certs(tmp_path_factory.mktemp("certs"), ["localhost", "127.0.0.1"])


@dataclass
class LiveServer:
    url: str
    port: int
    state: ServerState
    tls: ReloadingTLS
    ca: Path
    server: Any
    thread: threading.Thread
    certs: CertPaths

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.server.ops.port}"

    def ssl_context(self, client_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if client_cert:
            ctx.load_cert_chain(str(self.certs.client_cert), str(self.certs.client_key))
        return ctx

    def client(self, client_cert: bool = True, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.ssl_context(client_cert), timeout=10, **kw)

    def ops(self) -> httpx.Client:
        return httpx.Client(base_url=self.ops_url, timeout=10)

    def get(self, path: str) -> httpx.Response:
        """GET on the operations port (/healthz, /readyz, /metrics)."""
        return httpx.get(self.ops_url + path, timeout=10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def start_server(
    state: ServerState,
    certs: CertPaths,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    header_timeout: float = 10.0,
    mtls: bool = True,
    client_names: list[str] | None = None,
    max_connections: int | None = None,
    reserve: int = 0,
    drain_seconds: float = 0.0,
) -> LiveServer:
    if mtls:
        state.config.tls.client_ca = certs.ca_cert
        state.config.tls.client_names = list(client_names or [])
    else:
        state.config.tls.client_ca = None
        state.config.tls.insecure_no_client_auth = True
    tls = ReloadingTLS(
        cert or certs.cert,
        key or certs.key,
        client_ca=state.config.tls.client_ca,
        on_reload=lambda ok: state.metrics.tls_reloads.labels("applied" if ok else "rejected").inc(),
    )
    state.tls = tls
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = build_server(
        create_app(state),
        tls,
        host="127.0.0.1",
        port=port,
        header_timeout=header_timeout,
        keep_alive=state.config.limits.keep_alive,
        shutdown_timeout=5,
        state=state,
        max_connections=max_connections,
        reserve=reserve,
        handshake_timeout=state.config.tls.handshake_timeout,
        client_names=client_names,
        drain_seconds=drain_seconds,
        ops_host="127.0.0.1",
        ops_port=0,
        sock=sock,
    )

    def runner() -> None:
        run(server)

    t = threading.Thread(target=runner, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return LiveServer(f"https://127.0.0.1:{port}", port, state, tls, certs.ca_cert, server, t, certs)


@pytest.fixture
def live_server_factory(certs: CertPaths) -> Iterator[Any]:
    started: list[LiveServer] = []

    def make(state: ServerState, **kw: Any) -> LiveServer:
        srv = start_server(state, certs, **kw)
        started.append(srv)
        return srv

    yield make
    for s in started:
        s.stop()
