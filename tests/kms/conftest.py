"""A KMS v2 plugin on a real Unix socket in a background thread, and a client stub built from the
same proto, as kube-apiserver talks to it."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kubestrata.kms import keyring as kr
from kubestrata.kms.apis.v2 import api_pb2, api_pb2_grpc
from kubestrata.kms.backends import LocalBackend
from kubestrata.kms.service import KeyManagementService, start_server


class Plugin:
    """The service bound to ``socket`` in its own event loop thread."""

    def __init__(self, service: KeyManagementService, socket: Path) -> None:
        self.service, self.socket = service, socket
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Plugin:
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            start_server(self.service, str(self.socket)), self.loop
        ).result(10)
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        self.stub = api_pb2_grpc.KeyManagementServiceStub(self.channel)
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    # the calls kube-apiserver makes
    def status(self) -> api_pb2.StatusResponse:
        return self.stub.Status(api_pb2.StatusRequest(), timeout=10)

    def encrypt(self, plaintext: bytes) -> api_pb2.EncryptResponse:
        return self.stub.Encrypt(
            api_pb2.EncryptRequest(plaintext=plaintext, uid=str(uuid.uuid4())), timeout=10
        )

    def decrypt(self, ciphertext: bytes, key_id: str, annotations: dict[str, bytes] | None = None) -> bytes:
        req = api_pb2.DecryptRequest(
            ciphertext=ciphertext, uid=str(uuid.uuid4()), key_id=key_id, annotations=annotations or {}
        )
        return self.stub.Decrypt(req, timeout=10).plaintext


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes: pytest's tmp_path can be longer
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ks-kms-", dir="/tmp") as d:
        yield Path(d)


@pytest.fixture
def keyring(tmp_path: Path) -> Path:
    path = tmp_path / "keyring.json"
    kr.init(path)
    return path


@pytest.fixture
def plugin(keyring: Path, sock_dir: Path) -> Iterator[Plugin]:
    backend = LocalBackend(keyring, recheck_seconds=0.0)
    with Plugin(KeyManagementService(backend), sock_dir / "kms.sock") as p:
        yield p


def rpc_error(fn, *args) -> grpc.RpcError:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as ei:
        fn(*args)
    return ei.value


__all__ = ["Plugin", "rpc_error", "os"]
