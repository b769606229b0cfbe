"""A pull-only OCI distribution client: manifests and blobs, anonymous / Basic / Bearer-token auth
(distribution's token.md flow), ECR through ``ecr:GetAuthorizationToken``, retries on 429 and 5xx.

Why not oras-py (evaluated: oras 0.2.43): its ``get_manifest`` returns ``response.json()``, so the
exact manifest bytes are never hashed and ``Docker-Content-Digest`` is never checked; its
``download_blob`` writes blobs to a file on disk without verifying their digest; and its retry
decorator sleeps ``2 + 3**attempt`` seconds after any exception (a 404 included) and neither reads
``Retry-After`` nor treats 429 specially. Pulling only package databases from layers needs a stream
of the raw (still compressed) bytes that is hashed as it is read, which httpx's ``iter_raw`` gives.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from kubestrata.image.blobs import (
    MAX_MANIFEST_BYTES,
    DigestMismatch,
    ImageReadError,
    VerifyingReader,
    check_digest,
    digest_of,
    verify_bytes,
)
from kubestrata.image.reference import RegistryRef

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]*))')
_MAX_TOKEN_RESPONSE = 1 << 20


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class EcrAuth:
    """Credentials fetched from ECR on first use: ``GetAuthorizationToken`` gives base64 ``AWS:<password>``
    for Basic auth on the registry (valid 12 hours)."""

    region: str | None = None
    registry_id: str | None = None
    endpoint_url: str | None = None  # tests: moto


CredentialSpec = Credentials | EcrAuth
CredentialSource = CredentialSpec | Mapping[str, CredentialSpec] | None


def ecr_credentials(auth: EcrAuth) -> Credentials:
    import boto3

    kwargs: dict[str, Any] = {}
    if auth.region:
        kwargs["region_name"] = auth.region
    if auth.endpoint_url:
        kwargs["endpoint_url"] = auth.endpoint_url
    try:
        ecr = boto3.client("ecr", **kwargs)
        params = {"registryIds": [auth.registry_id]} if auth.registry_id else {}
        data = ecr.get_authorization_token(**params)["authorizationData"]
        user, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
    except Exception as e:  # botocore raises many kinds; one line says which
        raise ImageReadError(f"ECR GetAuthorizationToken failed: {type(e).__name__}: {e}") from None
    if not password:
        raise ImageReadError("ECR GetAuthorizationToken returned a token without a password")
    return Credentials(user, password)


def docker_config_credentials(path: str | None = None) -> dict[str, Credentials]:
    """host -> Credentials from ``docker login``'s ``auths`` (``$DOCKER_CONFIG/config.json`` or
    ``~/.docker/config.json``). Credential helpers (``credsStore``, ``credHelpers``) are not run."""
    import os

    path = path or os.path.join(
        os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json"
    )
    try:
        with open(path, "rb") as fh:
            doc = orjson.loads(fh.read(1 << 20))
    except (OSError, orjson.JSONDecodeError):
        return {}
    return parse_docker_config(doc)


def parse_docker_config(doc: Any) -> dict[str, Credentials]:
    """host -> Credentials from a Docker config document: ``config.json`` or a Kubernetes
    ``kubernetes.io/dockerconfigjson`` pull secret (``{"auths": {host: {"auth": base64(user:pw)}}}``;
    ``username``/``password`` members are taken too) or the older ``.dockercfg`` (hosts at the top)."""
    if not isinstance(doc, dict):
        return {}
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = doc
    out: dict[str, Credentials] = {}
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            continue
        user, password = entry.get("username"), entry.get("password")
        if isinstance(entry.get("auth"), str):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                continue
        host = re.sub(r"^https?://", "", str(key)).split("/", 1)[0]
        if host in ("index.docker.io", "docker.io"):
            host = "registry-1.docker.io"
        if isinstance(user, str) and isinstance(password, str) and user and password:
            out[host] = Credentials(user, password)
    return out


@dataclass(slots=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, for 429 / 5xx / connection errors
    backoff: float = 0.5  # seconds, doubled after each try
    max_wait: float = 20.0  # a Retry-After beyond this is cut to it
    sleep: Callable[[float], None] = time.sleep


@dataclass(slots=True)
class RegistryStats:
    manifest_gets: int = 0
    blob_gets: int = 0
    token_gets: int = 0
    retries: int = 0


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """One per run: it caches bearer tokens per (host, scope) and ECR credentials per host, and
    counts the requests it makes (``stats``)."""

    def __init__(
        self,
        credentials: CredentialSource = None,
        *,
        insecure: bool = False,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self._insecure = insecure
        self._retry = retry or RetryPolicy()
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,
            transport=transport,
            headers={"User-Agent": "kubestrata"},
        )
        self._tokens: dict[tuple[str, str], str] = {}
        self._resolved: dict[str, Credentials | None] = {}
        self._lock = threading.Lock()
        self.stats = RegistryStats()

    def close(self) -> None:
        self._http.close()

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    # --- manifests -----------------------------------------------------------------------------

    def get_manifest(self, ref: RegistryRef, reference: str | None = None) -> tuple[bytes, str, str]:
        """(exact bytes, media type, digest) of a manifest or index, verified: against the digest when
        asked for by digest, else against ``Docker-Content-Digest`` when the registry sends it."""
        reference = reference or ref.reference
        by_digest = reference.startswith(("sha256:", "sha512:"))
        if by_digest:
            check_digest(reference)
        what = f"{ref.registry}/{ref.repository} manifest {reference}"
        url = self._url(ref, f"manifests/{reference}")
        self._count("manifest_gets")
        with self._request(ref, url, {"Accept": ", ".join(MANIFEST_TYPES)}, what) as resp:
            body = _read_capped(resp, MAX_MANIFEST_BYTES, what)
            media_type = resp.headers.get("content-type", "").split(";")[0].strip()
            header_digest = resp.headers.get("docker-content-digest")
        if by_digest:
            verify_bytes(body, reference, what)
            digest = reference
        elif header_digest:
            verify_bytes(body, check_digest(header_digest), what + " (Docker-Content-Digest)")
            digest = header_digest
        else:
            digest = digest_of(body)
        return body, media_type, digest

    # --- blobs ---------------------------------------------------------------------------------

    @contextmanager
    def open_blob(
        self, ref: RegistryRef, digest: str, size: int | None = None, limit: int | None = None
    ) -> Iterator[VerifyingReader]:
        """A stream of the blob's raw bytes; reading it to the end verifies digest and size."""
        check_digest(digest)
        what = f"{ref.registry}/{ref.repository} blob {digest}"
        self._count("blob_gets")
        with self._request(ref, self._url(ref, f"blobs/{digest}"), {}, what) as resp:
            declared = resp.headers.get("content-length")
            if limit is not None and declared and declared.isdigit() and int(declared) > limit:
                raise ImageReadError(f"{what}: {declared} bytes, more than the {limit} allowed")
            yield VerifyingReader(resp.iter_raw(1 << 20), digest, what, size=size, limit=limit)

    # --- plumbing ------------------------------------------------------------------------------

    def _url(self, ref: RegistryRef, path: str) -> str:
        scheme = "https"
        if self._insecure:
            if not is_loopback(ref.registry):
                raise ImageReadError(
                    f"--insecure-registry is for loopback registries only; {ref.registry} needs https"
                )
            scheme = "http"
        return f"{scheme}://{ref.registry}/v2/{ref.repository}/{path}"

    @contextmanager
    def _request(
        self, ref: RegistryRef, url: str, headers: dict[str, str], what: str
    ) -> Iterator[httpx.Response]:
        scope = f"repository:{ref.repository}:pull"
        auth = self._cached_auth(ref.registry, scope)
        resp = self._send(url, {**headers, **auth}, what)
        if resp.status_code == 401:
            challenge = resp.headers.get("www-authenticate", "")
            resp.close()
            auth = self._authenticate(ref, challenge, scope, what)
            resp = self._send(url, {**headers, **auth}, what)
        try:
            if resp.status_code != 200:
                raise ImageReadError(_status_message(resp, what))
            yield resp
        finally:
            resp.close()

    def _send(self, url: str, headers: dict[str, str], what: str) -> httpx.Response:
        policy = self._retry
        delay = policy.backoff
        for attempt in range(1, policy.attempts + 1):
            last = attempt == policy.attempts
            try:
                resp = self._http.send(self._http.build_request("GET", url, headers=headers), stream=True)
            except httpx.HTTPError as e:
                if last:
                    raise ImageReadError(f"{what}: {type(e).__name__}: {e or 'connection failed'}") from None
                wait = delay
            else:
                if resp.status_code not in RETRY_STATUS or last:
                    return resp
                wait = _retry_after(resp.headers.get("retry-after"), delay)
                resp.close()
            self._count("retries")
            policy.sleep(min(wait, policy.max_wait))
            delay *= 2
        raise AssertionError("unreachable")

    def _cached_auth(self, host: str, scope: str) -> dict[str, str]:
        with self._lock:
            token = self._tokens.get((host, scope))
        if token:
            return {"Authorization": token}
        return {}

    def _credentials_for(self, host: str) -> Credentials | None:
        with self._lock:
            if host in self._resolved:
                return self._resolved[host]
        spec: CredentialSpec | None
        src = self._credentials
        if isinstance(src, Mapping):
            spec = src.get(host)
        else:
            spec = src
        m = _ECR_HOST.match(host)
        if spec is None and m:
            spec = EcrAuth(region=m.group(2), registry_id=m.group(1))
        creds = ecr_credentials(spec) if isinstance(spec, EcrAuth) else spec
        with self._lock:
            self._resolved[host] = creds
        return creds

    def _authenticate(self, ref: RegistryRef, challenge: str, scope: str, what: str) -> dict[str, str]:
        scheme, params = parse_challenge(challenge)
        creds = self._credentials_for(ref.registry)
        if scheme == "basic":
            if creds is None:
                raise ImageReadError(f"{what}: the registry requires a username and password (401)")
            value = "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        elif scheme == "bearer":
            value = "Bearer " + self._fetch_token(ref, params, scope, creds, what)
        elif not scheme:
            raise ImageReadError(f"{what}: unauthorised (401 without a WWW-Authenticate challenge)")
        else:
            raise ImageReadError(
                f"{what}: unauthorised (401 with an unsupported challenge {challenge[:80]!r})"
            )
        with self._lock:
            self._tokens[(ref.registry, scope)] = value
        return {"Authorization": value}

    def _fetch_token(
        self, ref: RegistryRef, params: dict[str, str], scope: str, creds: Credentials | None, what: str
    ) -> str:
        realm = params.get("realm", "")
        if not realm.startswith("https://") and not (
            realm.startswith("http://") and self._insecure and is_loopback(httpx.URL(realm).netloc.decode())
        ):
            raise ImageReadError(f"{what}: token realm {realm[:120]!r} is not an https URL")
        query = {"scope": params.get("scope") or scope}
        if "service" in params:
            query["service"] = params["service"]
        auth = (creds.username, creds.password) if creds else None
        self._count("token_gets")
        try:
            resp = self._http.get(realm, params=query, auth=auth)
        except httpx.HTTPError as e:
            raise ImageReadError(f"{what}: token server {realm}: {type(e).__name__}: {e}") from None
        if resp.status_code != 200:
            raise ImageReadError(f"{what}: token server answered {resp.status_code} (credentials rejected?)")
        try:
            doc = orjson.loads(resp.content[:_MAX_TOKEN_RESPONSE])
            token = doc.get("token") or doc.get("access_token")
        except (orjson.JSONDecodeError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ImageReadError(f"{what}: token server response has no token")
        return token


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """(scheme lower-cased, params) of a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


def _retry_after(value: str | None, default: float) -> float:
    if not value:
        return default
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def _read_capped(resp: httpx.Response, cap: int, what: str) -> bytes:
    out = bytearray()
    for chunk in resp.iter_raw(65536):
        out += chunk
        if len(out) > cap:
            raise ImageReadError(f"{what}: larger than {cap} bytes")
    return bytes(out)


def _status_message(resp: httpx.Response, what: str) -> str:
    code = resp.status_code
    detail = ""
    try:
        resp.read()
        errors = orjson.loads(resp.content[:65536]).get("errors") or []
        if errors and isinstance(errors[0], dict):
            detail = f" ({errors[0].get('code', '')}: {errors[0].get('message', '')})"
    except Exception:  # a non-JSON error page; the status says enough
        pass
    label = {
        401: "unauthorised (credentials missing or rejected)",
        403: "forbidden",
        404: "not found",
        429: "too many requests (gave up after retries)",
    }.get(code, f"HTTP {code}" + (" (gave up after retries)" if code in RETRY_STATUS else ""))
    return f"{what}: {label}{detail}"


__all__ = [
    "Credentials",
    "DigestMismatch",
    "EcrAuth",
    "RegistryClient",
    "RetryPolicy",
    "docker_config_credentials",
    "parse_docker_config",
    "ecr_credentials",
    "parse_challenge",
]
