"""The KMS v2 gRPC service (k8s.io/kms/apis/v2 ``v2.KeyManagementService``) over a Unix socket.

What the API server requires of a plugin (k8s.io/kms apis/v2/api.proto and the KMS provider guide):
Status answers ``version: v2``, ``healthz: ok`` (anything else is failing and shown in the API
server's /healthz/kms-providers) and the current write ``key_id``; key_id and ciphertext are
non-empty and "less than 1 kB"; annotation keys are fully qualified domain names and keys plus
values stay under 32 kB. The plugin must refuse an unknown key_id. Every refusal here is a gRPC
error whose message says what was wrong; nothing the API server sends is echoed unescaped.

Two readings of the limits: what this plugin *returns* keeps the proto's strict "less than";
what it *accepts* mirrors the API server's own check (k8s.io/apiserver envelope/kmsv2
validateEncryptedObject: rejected only when the size *exceeds* 1 kB / 32 kB, and
IsFullyQualifiedDomainName allows a trailing dot), so nothing the API server would store is
refused here for its size alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import time
from dataclasses import dataclass
from typing import Any

import grpc

from kubestrata.errors import KubestrataError
from kubestrata.kms.apis.v2 import api_pb2, api_pb2_grpc
from kubestrata.kms.backends import Backend, KMSError
from kubestrata.textsafe import printable

log = logging.getLogger("kubestrata.kms")

API_VERSION = "v2"
MAX_KEY_ID = 1024  # bytes: returned < this, accepted <= this (the API server's check)
MAX_CIPHERTEXT = 1024  # bytes: returned < this, accepted <= this
MAX_ANNOTATIONS = 32 * 1024  # bytes of keys + values: returned < this, accepted <= this
# the API server sends a 32-byte DEK seed; anything near 1 kB cannot produce a ciphertext under 1 kB
MAX_PLAINTEXT = 1024
# the largest well-formed request is a Decrypt with < 1 kB ciphertext and key_id and < 32 kB of
# annotations; grpc refuses anything beyond this before it is parsed (RESOURCE_EXHAUSTED)
MAX_MESSAGE = 64 * 1024
HEALTH_PROBE = b"kubestrata kms v2 healthz probe"
BLOCKING_WORKERS = 32  # KMS calls in flight at once for a network backend (boto3 pool sized to match)

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_FQDN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})+$")


class RequestError(KMSError):
    def __init__(self, message: str) -> None:
        super().__init__("INVALID_ARGUMENT", message)


def check_key_id(key_id: str, what: str = "key_id", returned: bool = False) -> None:
    if not key_id:
        raise RequestError(f"{what} is empty")
    n = len(key_id.encode())
    if n > MAX_KEY_ID or (returned and n == MAX_KEY_ID):
        raise RequestError(f"{what} is {n} bytes, over the KMS v2 limit of {MAX_KEY_ID}")


def _fqdn(key: str) -> bool:
    """apimachinery IsFullyQualifiedDomainName: a DNS-1123 subdomain (one trailing dot allowed) of at
    least two labels."""
    name = key[:-1] if key.endswith(".") else key
    return len(name) <= 253 and bool(_FQDN.match(name)) and all(len(x) <= 63 for x in name.split("."))


def check_annotations(
    annotations: dict[str, bytes], what: str = "annotations", returned: bool = False
) -> None:
    """Keys are fully qualified domain names; keys plus values total at most 32 kB (under 32 kB for
    what the plugin returns)."""
    total = 0
    for k, v in annotations.items():
        if not _fqdn(k):
            raise RequestError(f"{what} key {printable(k[:100])!r} is not a fully qualified domain name")
        total += len(k.encode()) + len(v)
    if total > MAX_ANNOTATIONS or (returned and total == MAX_ANNOTATIONS):
        raise RequestError(
            f"{what} total {total} bytes (keys plus values), over the KMS v2 limit of {MAX_ANNOTATIONS}"
        )


def check_encrypt_request(plaintext: bytes) -> None:
    if not plaintext:
        raise RequestError("plaintext is empty")
    if len(plaintext) > MAX_PLAINTEXT:
        raise RequestError(
            f"plaintext is {len(plaintext)} bytes; the plugin wraps at most {MAX_PLAINTEXT} "
            f"(the ciphertext must stay under {MAX_CIPHERTEXT} bytes)"
        )


def check_decrypt_request(ciphertext: bytes, key_id: str, annotations: dict[str, bytes]) -> None:
    if not ciphertext:
        raise RequestError("ciphertext is empty")
    if len(ciphertext) > MAX_CIPHERTEXT:
        raise RequestError(
            f"ciphertext is {len(ciphertext)} bytes, over the KMS v2 limit of {MAX_CIPHERTEXT}"
        )
    check_key_id(key_id)
    check_annotations(annotations)


@dataclass
class HealthState:
    ok: bool
    message: str
    at: float


class Health:
    """Status's healthz: an Encrypt/Decrypt round trip through the backend, cached. A failure marked
    transient (throttling, a KMS outage) does not turn a recent success into "unhealthy", so the API
    server does not see the plugin flap; a lasting or a real failure (access denied, disabled key,
    bad keyring) is reported at once."""

    def __init__(
        self, backend: Backend, ok_ttl: float = 30.0, fail_ttl: float = 5.0, grace: float = 300.0
    ) -> None:
        self.backend = backend
        self.ok_ttl, self.fail_ttl, self.grace = ok_ttl, fail_ttl, grace
        self.state: HealthState | None = None
        self.last_ok: float | None = None
        self.probes = 0

    def _probe(self) -> HealthState:
        self.probes += 1
        now = time.monotonic()
        problem = self.backend.health_problem()
        if problem:
            return HealthState(False, problem, now)
        try:
            enc = self.backend.encrypt(HEALTH_PROBE)
            back = self.backend.decrypt(enc.ciphertext, enc.key_id, dict(enc.annotations))
        except KMSError as e:
            if e.transient and self.last_ok is not None and now - self.last_ok < self.grace:
                log.warning("healthz probe: transient failure, still reporting ok: %s", e.message)
                return HealthState(True, "ok", now)
            return HealthState(False, f"encrypt/decrypt round trip failed: {e.message}", now)
        if back != HEALTH_PROBE:
            return HealthState(False, "encrypt/decrypt round trip returned different data", now)
        if enc.key_id != self.backend.current_key_id():
            return HealthState(False, "encrypt used a key_id other than the current one", now)
        self.last_ok = now
        return HealthState(True, "ok", now)

    def check(self) -> HealthState:
        now = time.monotonic()
        s = self.state
        if s is not None and now - s.at < (self.ok_ttl if s.ok else self.fail_ttl):
            return s
        self.state = self._probe()
        return self.state


def _abort_code(code: str) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, code, grpc.StatusCode.INTERNAL)


class KeyManagementService(api_pb2_grpc.KeyManagementServiceServicer):
    """The servicer. ``blocking`` backends (network calls) run in a worker thread."""

    def __init__(self, backend: Backend, health: Health | None = None, blocking: bool | None = None) -> None:
        self.backend = backend
        self.health = health or Health(backend)
        self.blocking = backend.name != "local" if blocking is None else blocking
        self._health_lock = asyncio.Lock()
        self._pool: Any = None  # worker threads for a blocking (network) backend
        self.counts = {"Status": 0, "Encrypt": 0, "Decrypt": 0, "errors": 0}

    async def _run(self, fn: Any, *args: Any) -> Any:
        if not self.blocking:
            return fn(*args)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=BLOCKING_WORKERS, thread_name_prefix="kms-backend")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _fail(self, context: grpc.aio.ServicerContext, method: str, uid: str, e: KMSError) -> None:
        self.counts["errors"] += 1
        log.warning("%s uid=%s refused: %s: %s", method, printable(uid[:64]), e.code, e.message)
        await context.abort(_abort_code(e.code), e.message)

    async def Status(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        self.counts["Status"] += 1
        async with self._health_lock:  # one probe at a time; others wait for its cached answer
            state = await self._run(self.health.check)
        key_id = self.backend.current_key_id()
        return api_pb2.StatusResponse(version=API_VERSION, healthz=state.message, key_id=key_id)

    async def Encrypt(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        self.counts["Encrypt"] += 1
        try:
            check_encrypt_request(request.plaintext)
            enc = await self._run(self.backend.encrypt, request.plaintext)
            if len(enc.ciphertext) >= MAX_CIPHERTEXT:
                raise RequestError(
                    f"plaintext of {len(request.plaintext)} bytes gives a {len(enc.ciphertext)}-byte "
                    f"ciphertext; the API server accepts under {MAX_CIPHERTEXT}"
                )
            check_key_id(enc.key_id, "backend key_id", returned=True)
            check_annotations(enc.annotations, "backend annotations", returned=True)
        except KMSError as e:
            await self._fail(context, "Encrypt", request.uid, e)
            raise AssertionError("unreachable") from None  # context.abort raises
        return api_pb2.EncryptResponse(
            ciphertext=enc.ciphertext, key_id=enc.key_id, annotations=enc.annotations
        )

    async def Decrypt(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        self.counts["Decrypt"] += 1
        annotations = dict(request.annotations)
        try:
            check_decrypt_request(request.ciphertext, request.key_id, annotations)
            plaintext = await self._run(self.backend.decrypt, request.ciphertext, request.key_id, annotations)
        except KMSError as e:
            await self._fail(context, "Decrypt", request.uid, e)
            raise AssertionError("unreachable") from None
        return api_pb2.DecryptResponse(plaintext=plaintext)


def parse_socket(endpoint: str) -> str:
    """``unix:///path/to/socket`` (or ``unix:///@abstract``) -> the address to bind, as the API
    server's endpoint parser reads it."""
    if not endpoint.startswith("unix://"):
        raise KubestrataError(f"--socket {endpoint!r}: must be unix:///PATH (the only scheme KMS v2 allows)")
    path = endpoint[len("unix://") :]
    if not path.startswith("/") or path == "/":
        raise KubestrataError(f"--socket {endpoint!r}: must be an absolute path, unix:///PATH")
    if path.startswith("/@"):
        return path[1:]  # abstract namespace
    return path


def _prepare_socket_path(path: str) -> None:
    if path.startswith("@"):
        return
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise KubestrataError(f"socket directory {parent} does not exist")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise KubestrataError(f"{path} exists and is not a socket; refusing to replace it")
    os.unlink(path)  # a stale socket of a previous run


def grpc_address(path: str) -> str:
    return f"unix-abstract:{path[1:]}" if path.startswith("@") else f"unix://{path}"


async def start_server(
    service: KeyManagementService, socket_path: str, *, max_message: int = MAX_MESSAGE
) -> grpc.aio.Server:
    """Bind the service on the Unix socket (mode 0600: only the API server's user may connect)."""
    _prepare_socket_path(socket_path)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message),
            ("grpc.max_send_message_length", max_message),
        ]
    )
    api_pb2_grpc.add_KeyManagementServiceServicer_to_server(service, server)
    old = os.umask(0o177)
    try:
        bound = server.add_insecure_port(grpc_address(socket_path))
    finally:
        os.umask(old)
    if not bound and not socket_path.startswith("@"):
        raise KubestrataError(f"cannot listen on {socket_path}")
    await server.start()
    return server


async def serve_forever(service: KeyManagementService, socket_path: str, ready: Any = None) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight calls (graceful stop) and remove the socket."""
    import signal

    server = await start_server(service, socket_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready()
    await stop.wait()
    await server.stop(grace=5)
    if not socket_path.startswith("@"):
        try:
            os.unlink(socket_path)
        except FileNotFoundError:
            pass
