"""Real registries for the image tests: Debian's docker-registry (CNCF distribution 2.8) on a free
loopback port with a temporary config and filesystem storage; once without auth, once with token
auth (a token server here issues RS256 JWTs with an x5c header whose self-signed certificate is the
registry's rootcertbundle, per distribution's docs/spec/auth/token.md and registry/auth/token), and
once with htpasswd (bcrypt) basic auth."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
SERVICE, ISSUER = "kubestrata-test-registry", "kubestrata-test-issuer"
USER, PASSWORD = "alice", "s3cret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    host: str  # 127.0.0.1:port
    log: Path
    token_requests: list | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def blob_gets(self) -> int:
        """GETs of /v2/<name>/blobs/ in the registry's access log."""
        text = self.log.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if '"GET /v2/' in line and "/blobs/sha256:" in line)


def _start(tmp: Path, auth: dict | None) -> tuple[subprocess.Popen, str, Path]:
    if not os.path.exists(REGISTRY_BIN):
        if os.environ.get("CI") == "true":
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        pytest.skip("docker-registry is not installed")
    port = free_port()
    cfg = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(tmp / "storage")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if auth:
        cfg["auth"] = auth
    (tmp / "config.yml").write_text(json.dumps(cfg))  # JSON is YAML
    log = tmp / "registry.log"
    proc = subprocess.Popen(
        [REGISTRY_BIN, "serve", str(tmp / "config.yml")], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
            if r.status_code in (200, 401):
                return proc, f"127.0.0.1:{port}", log
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("docker-registry did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry."""
    proc, host, log = _start(tmp_path_factory.mktemp("registry"), None)
    try:
        yield Registry(host, log)
    finally:
        _stop(proc)


# --- token auth ------------------------------------------------------------------------------------


def _signing_material(tmp: Path) -> tuple[object, str]:
    """An RSA key and a self-signed certificate (written as the registry's rootcertbundle); returns
    (key, base64 DER of the certificate for the JWT x5c header)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubestrata test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp / "root.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(key: object, x5c: str, subject: str, access: list[dict]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": base64.b16encode(os.urandom(8)).decode(),
        "access": access,
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[attr-defined]
    return f"{signing_input}.{_b64url(sig)}"


class _TokenHandler(BaseHTTPRequestHandler):
    server: _TokenServer  # type: ignore[assignment]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlparse(self.path)
        q = parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if (u, p) != (USER, PASSWORD):
                self.send_response(401)
                self.end_headers()
                return
            user = u
        self.server.requests.append({"service": q.get("service"), "scope": q.get("scope"), "user": user})
        access = []
        for scope in q.get("scope", []):
            typ, name, actions = scope.split(":", 2)
            granted = (
                actions.split(",")
                if user
                else [a for a in actions.split(",") if a == "pull" and name.startswith("public/")]
            )
            if granted:
                access.append({"type": typ, "name": name, "actions": granted})
        token = make_jwt(self.server.key, self.server.x5c, user or "", access)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _TokenServer(ThreadingHTTPServer):
    key: object
    x5c: str
    requests: list


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with token auth: alice/s3cret-pass may pull and push anything; anonymous clients
    may pull repositories under public/."""
    tmp = tmp_path_factory.mktemp("token-registry")
    key, x5c = _signing_material(tmp)
    server = _TokenServer(("127.0.0.1", 0), _TokenHandler)
    server.key, server.x5c, server.requests = key, x5c, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    auth = {
        "token": {
            "realm": realm,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(tmp / "root.pem"),
        }
    }
    proc, host, log = _start(tmp, auth)
    try:
        yield Registry(host, log, server.requests)
    finally:
        _stop(proc)
        server.shutdown()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with htpasswd basic auth (bcrypt via the C library's crypt)."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # removed in Python 3.13

        hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    except (ImportError, AttributeError, OSError):
        pytest.skip("no bcrypt implementation to write an htpasswd file")
    if not hashed or not hashed.startswith("$2"):
        pytest.skip("the C library's crypt has no bcrypt")
    tmp = tmp_path_factory.mktemp("basic-registry")
    (tmp / "htpasswd").write_text(f"{USER}:{hashed}\n")
    proc, host, log = _start(tmp, {"htpasswd": {"realm": "basic-realm", "path": str(tmp / "htpasswd")}})
    try:
        yield Registry(host, log)
    finally:
        _stop(proc)
