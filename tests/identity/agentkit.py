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


def run_app(app: Any) -> Running:
    from kubestrata.identity.agent import build_server

    sock = socket.socket(
        socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )  # so asyncio sets TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = build_server(app, "127.0.0.1", port)
    t = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("agent did not start")
        time.sleep(0.02)
    return Running(server, t, port)
