"""Service-account tokens as the kube-apiserver mints them (pod-bound, projected) and the agent on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from kubestrata.identity import jwt

ISSUER = "https://oidc.example.test/id/DEMO"


def signing_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sa_token(
    key: Any,
    namespace: str,
    service_account: str,
    pod: str = "web-0",
    *,
    pod_uid: str | None = None,
    audience: str | list[str] = "pods.eks.amazonaws.com",
    lifetime: int = 86400,
    issued: float | None = None,
    issuer: str = ISSUER,
) -> str:
    now = int(issued if issued is not None else time.time())
    return jwt.sign(
        {
            "aud": [audience] if isinstance(audience, str) else audience,
            "exp": now + lifetime,
            "iat": now,
            "nbf": now,
            "iss": issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {
                    "name": pod,
                    "uid": pod_uid or str(uuid.uuid5(uuid.NAMESPACE_DNS, namespace + "/" + pod)),
                },
                "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
            },
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
        },
        key,
    )


class Running:
    def __init__(self, server: Any, thread: threading.Thread, port: int) -> None:
        self.server, self.thread, self.port = server, thread, port
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _socket() -> tuple[socket.socket, int]:
    sock = socket.socket(
        socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )  # so asyncio sets TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


class _AgentServer:
    """The agent's own HTTP server on a thread's event loop (stop() ends it)."""

    def __init__(self, agent: Any, sock: socket.socket) -> None:
        from kubestrata.identity.agent import AgentHTTP

        self.http, self.sock = AgentHTTP(agent), sock
        self.started = False
        self.should_exit = False

    async def serve(self) -> None:
        server = await asyncio.start_server(self.http.handle, sock=self.sock, limit=16 * 1024)
        self.started = True
        async with server:
            while not self.should_exit:
                await asyncio.sleep(0.05)


def _start(server: Any, target: Any, port: int) -> Running:
    t = threading.Thread(target=target, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return Running(server, t, port)


def run_agent(agent: Any) -> Running:
    """The Pod Identity agent's HTTP server on loopback."""
    sock, port = _socket()
    server = _AgentServer(agent, sock)
    return _start(server, lambda: asyncio.run(server.serve()), port)


def run_app(app: Any) -> Running:
    """An ASGI app (the OIDC documents) on uvicorn on loopback."""
    import uvicorn

    sock, port = _socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    return _start(server, lambda: asyncio.run(server.serve(sockets=[sock])), port)
