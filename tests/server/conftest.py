"""A real uvicorn HTTPS server on 127.0.0.1 (ephemeral port, generated certificates) in a thread,
and an httpx client that trusts only the generated CA."""

from __future__ import annotations

import asyncio
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
from kubestrata.server.run import build_server
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

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, verify=ssl.create_default_context(cafile=str(self.ca)), timeout=10, **kw
        )

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
) -> LiveServer:
    tls = ReloadingTLS(
        cert or certs.cert,
        key or certs.key,
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
        max_concurrency=None,
        shutdown_timeout=5,
        sock=sock,
    )

    def runner() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    t = threading.Thread(target=runner, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return LiveServer(f"https://127.0.0.1:{port}", port, state, tls, certs.ca_cert, server, t)


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
