"""The Pod Identity agent for any cluster: the container-credentials endpoint the AWS SDKs call when
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` are set.

Protocol (aws/eks-pod-identity-agent): ``GET /v1/credentials`` with ``Authorization: <the pod's projected
service-account token>`` (audience ``pods.eks.amazonaws.com``); the reply is
``{"AccessKeyId", "SecretAccessKey", "Token", "AccountId", "Expiration"}``. Where EKS calls
``eks-auth:AssumeRoleForPodIdentity``, this agent does that service's work itself: it verifies the token
(offline against the issuer's JWKS, or by TokenReview against the cluster), finds the association of the
pod's service account and calls ``sts:AssumeRole`` + ``sts:TagSession`` with the six session tags EKS sets
(transitive), chaining to ``targetRoleArn`` when the association has one.

Status codes, as the upstream agent answers (internal/validation/request.go, pkg/errors/errors.go, and
the EKS Auth error codes it passes through): wrong Host header 403; token missing, unparseable, expired
or not yet valid 400; token not trusted (signature, audience, issuer) 400 InvalidTokenException; no
association 404 ResourceNotFoundException; STS throttling 429 ThrottlingException; STS access denied 400
AccessDeniedException; STS unreachable 503 ServiceUnavailableException; over the request rate 429. Bodies
are one line of text; a credential is only ever sent with 200.

Caching: verified tokens until they expire; credentials per association (per association and pod when
the pod-level session tags are on, since each pod's session carries its own name and uid) until
``refresh_before`` seconds before they expire; concurrent requests for the same key share one STS call;
on a transient STS error a cached credential with at least 15 s left is served, on AccessDenied it is
dropped (upstream's refreshing cache).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from kubestrata.eks.arn import parse_arn
from kubestrata.eks.model import PodIdentityAssociation
from kubestrata.identity.associations import Associations
from kubestrata.identity.jwt import JWTError, KeySet, check_time, parse_unverified, verify

AUDIENCE = "pods.eks.amazonaws.com"
DEFAULT_HOSTS = ("169.254.170.23", "fd00:ec2::23")
CREDENTIALS_URI = "http://169.254.170.23/v1/credentials"
TOKEN_DIR = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
TOKEN_FILE = f"{TOKEN_DIR}/eks-pod-identity-token"
SESSION_TAGS = (
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
)
MIN_CREDENTIAL_TTL = 15.0  # upstream keeps nothing with less left
IRRECOVERABLE = frozenset(
    {"ResourceNotFoundException", "ExpiredTokenException", "InvalidTokenException", "AccessDeniedException"}
)


class AgentError(Exception):
    def __init__(self, status: int, message: str, code: str = "") -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(self.body)

    @property
    def body(self) -> str:
        if self.code:
            fault = "server" if self.status >= 500 else "client"
            return f"({self.code}): {self.message}, fault: {fault}"
        return self.message

    @property
    def irrecoverable(self) -> bool:
        return self.code in IRRECOVERABLE


@dataclass(frozen=True, slots=True)
class PodSubject:
    namespace: str
    service_account: str
    pod_name: str
    pod_uid: str
    expires: float


def check_host(host: str, allowed: tuple[str, ...]) -> None:
    """validateRequestTargetHost: port and IPv6 brackets stripped, then an exact match."""
    h = host
    m = re.fullmatch(r"\[([^\]]*)\](?::\d*)?|([^:]*):\d*", host)
    if m:
        h = m.group(1) if m.group(1) is not None else m.group(2)
    elif len(h) > 1 and h[0] == "[" and h[-1] == "]":
        h = h[1:-1]
    if h not in allowed:
        raise AgentError(
            403,
            f"Access Denied. Called agent through invalid address, please use either [{' '.join(allowed)}] "
            f"address not {h}",
        )


def subject_from_claims(claims: dict[str, Any]) -> PodSubject:
    k8s = claims.get("kubernetes.io")
    if not isinstance(k8s, dict):
        raise AgentError(400, "token is not a Kubernetes service account token", "InvalidTokenException")
    pod = k8s.get("pod")
    if not isinstance(pod, dict):
        pod = {}
    sa = k8s.get("serviceaccount")
    if not isinstance(sa, dict):
        sa = {}
    ns, name = k8s.get("namespace"), sa.get("name")
    if not isinstance(ns, str) or not isinstance(name, str) or not ns or not name:
        raise AgentError(400, "token names no namespace and service account", "InvalidTokenException")
    if claims.get("sub") != f"system:serviceaccount:{ns}:{name}":
        raise AgentError(400, "token subject does not match its service account", "InvalidTokenException")
    if not pod.get("name") or not pod.get("uid"):
        raise AgentError(400, "token is not bound to a pod", "InvalidTokenException")
    return PodSubject(ns, name, str(pod["name"]), str(pod["uid"]), float(claims.get("exp", 0)))


def basic_validation(token: str, now: float | None = None) -> None:
    """validateToken: present, parseable without verification, exp/nbf valid (400 otherwise)."""
    if not token:
        raise AgentError(400, "Service account token cannot be empty")
    try:
        _, claims, _, _ = parse_unverified(token)
    except JWTError as e:
        raise AgentError(400, f"Service account token cannot be parsed: {e}") from None
    try:
        check_time(claims, now)
    except JWTError as e:
        raise AgentError(400, f"Service account token failed basic claim validations: {e}") from None


class TokenVerifier(Protocol):
    blocking: bool

    def verify(self, token: str) -> PodSubject: ...

    def cached(self, token: str) -> PodSubject | None:
        """The subject of a token verified before and not expired since (no parsing), else None."""
        ...


class JWKSVerifier:
    """Offline: the token's signature against the issuer's keys, its audience and issuer."""

    blocking = False

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str | None = None,
        audience: str = AUDIENCE,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        self.keys, self.issuer, self.audience, self.clock = keys, issuer, audience, clock
        self.cache_size = cache_size
        self._cache: OrderedDict[str, PodSubject] = OrderedDict()

    def cached(self, token: str) -> PodSubject | None:
        hit = self._cache.get(token)
        return hit if hit is not None and self.clock() <= hit.expires else None

    def verify(self, token: str) -> PodSubject:
        now = self.clock()
        hit = self._cache.get(token)
        if hit is not None:
            if now <= hit.expires:
                return hit
            del self._cache[token]
        try:
            claims = verify(token, self.keys, audience=self.audience, issuer=self.issuer, now=now)
        except JWTError as e:
            code = "ExpiredTokenException" if "expired" in str(e) else "InvalidTokenException"
            raise AgentError(400, str(e), code) from None
        subject = subject_from_claims(claims)
        self._cache[token] = subject
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return subject


class TokenReviewVerifier:
    """Online: a TokenReview with audience pods.eks.amazonaws.com against the cluster's API server."""

    blocking = True

    def __init__(
        self, api_client: Any, *, audience: str = AUDIENCE, clock: Callable[[], float] = time.time
    ) -> None:
        self.api_client, self.audience, self.clock = api_client, audience, clock
        self._cache: dict[str, PodSubject] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> PodSubject | None:
        with self._lock:
            hit = self._cache.get(token)
        return hit if hit is not None and self.clock() <= hit.expires else None

    def verify(self, token: str) -> PodSubject:
        from kubernetes import client

        now = self.clock()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and now <= hit.expires:
            return hit
        body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=[self.audience]))
        try:
            status = client.AuthenticationV1Api(self.api_client).create_token_review(body).status
        except Exception as e:  # noqa: BLE001 - the API server's failure is a 503, never a crash
            raise AgentError(
                503, f"TokenReview failed: {type(e).__name__}", "ServiceUnavailableException"
            ) from None
        if not status or not status.authenticated:
            raise AgentError(
                400,
                (status.error if status else "") or "token rejected by TokenReview",
                "InvalidTokenException",
            )
        if self.audience not in (status.audiences or [self.audience]):
            raise AgentError(400, f"token audience is not {self.audience}", "InvalidTokenException")
        user = status.user  # None only from a broken API server: then no pod is named either
        m = re.fullmatch(r"system:serviceaccount:([^:]+):([^:]+)", (user.username if user else "") or "")
        extra = (user.extra if user else None) or {}
        pod_name = (extra.get("authentication.kubernetes.io/pod-name") or [""])[0]
        pod_uid = (extra.get("authentication.kubernetes.io/pod-uid") or [""])[0]
        if not m or not pod_name or not pod_uid:
            raise AgentError(400, "token is not a pod-bound service account token", "InvalidTokenException")
        _, claims, _, _ = parse_unverified(token)
        subject = PodSubject(m.group(1), m.group(2), pod_name, pod_uid, float(claims.get("exp", now)))
        with self._lock:
            self._cache[token] = subject
        return subject


# -- credentials ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsCredentials:
    """The AWS credentials the agent serves a pod (the Pod Identity agent's response); not a registry login."""

    access_key_id: str
    secret_access_key: str
    token: str
    expiration: dt.datetime
    assumed_role_arn: str

    @property
    def account_id(self) -> str:
        return parse_arn(self.assumed_role_arn).account

    def reply(self) -> dict[str, str]:
        """pkg/credentials/model.go EksCredentialsResponse (Expiration as RFC 3339 with nanoseconds)."""
        exp = self.expiration.astimezone(dt.UTC)
        frac = f".{exp.microsecond:06d}".rstrip("0").rstrip(".")
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.token,
            "AccountId": self.account_id,
            "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z",
        }


def session_tags(
    cluster_arn: str, cluster_name: str, s: PodSubject, pod_tags: bool = True
) -> list[dict[str, str]]:
    values = (cluster_arn, cluster_name, s.namespace, s.service_account, s.pod_name, s.pod_uid)
    tags = [{"Key": k, "Value": v[:256]} for k, v in zip(SESSION_TAGS, values, strict=True)]
    return tags if pod_tags else tags[:4]


def session_name(cluster_name: str, pod_name: str) -> str:
    """``eks-<cluster>-<pod>-<uuid>`` (EKS Auth API reference), cut to STS's 64 characters."""
    raw = re.sub(r"[^\w+=,.@-]", "-", f"eks-{cluster_name}-{pod_name}")[:27]
    return f"{raw}-{uuid.uuid4()}"[:64]


class STSAssumer:
    """sts:AssumeRole (+ TagSession) for an association, with the agent's own AWS credentials."""

    def __init__(
        self,
        cluster_name: str,
        cluster_arn: str,
        *,
        session: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        duration: int = 3600,
        timeout: float = 5.0,
    ) -> None:
        import boto3
        from botocore.config import Config

        session = session or boto3.session.Session()
        self.client = session.client(
            "sts",
            endpoint_url=endpoint_url,
            region_name=region or session.region_name or "us-east-1",
            config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
        )
        self.cluster_name, self.cluster_arn, self.duration = cluster_name, cluster_arn, duration
        self.calls = 0
        self._lock = threading.Lock()

    def assume(
        self, assoc: PodIdentityAssociation, subject: PodSubject, pod_tags: bool = True
    ) -> AwsCredentials:
        import botocore.exceptions

        with self._lock:
            self.calls += 1
        name = session_name(self.cluster_name, subject.pod_name)
        kw: dict[str, Any] = {
            "RoleArn": assoc.role_arn,
            "RoleSessionName": name,
            "DurationSeconds": self.duration,
        }
        if not assoc.disable_session_tags:
            tags = session_tags(self.cluster_arn, self.cluster_name, subject, pod_tags)
            kw["Tags"] = tags
            kw["TransitiveTagKeys"] = [t["Key"] for t in tags]
        try:
            out = self.client.assume_role(**kw)
            if assoc.target_role_arn:
                c = out["Credentials"]
                import boto3

                chained = boto3.session.Session(
                    aws_access_key_id=c["AccessKeyId"],
                    aws_secret_access_key=c["SecretAccessKey"],
                    aws_session_token=c["SessionToken"],
                ).client(
                    "sts",
                    endpoint_url=self.client.meta.endpoint_url,
                    region_name=self.client.meta.region_name,
                    config=self.client.meta.config,
                )
                kw2: dict[str, Any] = {"RoleArn": assoc.target_role_arn, "RoleSessionName": name}
                if assoc.external_id:
                    kw2["ExternalId"] = assoc.external_id
                out = chained.assume_role(**kw2)
        except botocore.exceptions.ClientError as e:
            err = e.response.get("Error", {})
            code, msg = str(err.get("Code", "")), str(err.get("Message", ""))[:300]
            if "Throttl" in code or code == "RequestLimitExceeded":
                raise AgentError(429, msg or "Rate exceeded", "ThrottlingException") from None
            if code in ("AccessDenied", "AccessDeniedException"):
                raise AgentError(400, msg, "AccessDeniedException") from None
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
            if status >= 500:
                raise AgentError(503, f"{code}: {msg}", "ServiceUnavailableException") from None
            raise AgentError(400, f"{code}: {msg}", "InvalidRequestException") from None
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise AgentError(
                503, f"STS unreachable ({type(e).__name__})", "ServiceUnavailableException"
            ) from None
        c = out["Credentials"]
        return AwsCredentials(
            c["AccessKeyId"],
            c["SecretAccessKey"],
            c["SessionToken"],
            c["Expiration"],
            out["AssumedRoleUser"]["Arn"],
        )


class CredentialCache:
    """Credentials by key, refreshed ``refresh_before`` seconds ahead of expiry; one fetch per key at a time."""

    def __init__(
        self, *, refresh_before: float = 300.0, max_size: int = 2000, clock: Callable[[], float] = time.time
    ) -> None:
        self.refresh_before, self.max_size, self.clock = refresh_before, max_size, clock
        self.entries: OrderedDict[Any, AwsCredentials] = OrderedDict()
        self._inflight: dict[Any, asyncio.Future[AwsCredentials]] = {}
        self.fetches = 0

    def _left(self, c: AwsCredentials) -> float:
        return c.expiration.timestamp() - self.clock()

    async def get(self, key: Any, fetch: Callable[[], Awaitable[AwsCredentials]]) -> AwsCredentials:
        cached = self.entries.get(key)
        if cached is not None and self._left(cached) > self.refresh_before:
            return cached
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[AwsCredentials] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: never logged as lost
        self._inflight[key] = fut
        try:
            self.fetches += 1
            try:
                creds = await fetch()
            except AgentError as e:
                if cached is not None and e.irrecoverable:
                    self.entries.pop(key, None)
                elif cached is not None and self._left(cached) > MIN_CREDENTIAL_TTL:
                    fut.set_result(cached)  # keep serving what still works through a transient error
                    return cached
                fut.set_exception(e)
                raise
            except BaseException as e:
                fut.set_exception(
                    AgentError(500, f"internal error ({type(e).__name__})", "InternalServerException")
                )
                raise
            if self._left(creds) > MIN_CREDENTIAL_TTL:
                self.entries[key] = creds
                self.entries.move_to_end(key)
                while len(self.entries) > self.max_size:
                    self.entries.popitem(last=False)
            fut.set_result(creds)
            return creds
        finally:
            self._inflight.pop(key, None)


class RateLimiter:
    """A token bucket: ``rate`` per second, bursts of rate/2 (upstream's limiter)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, max(1.0, rate / 2), clock
        self.tokens, self.last = self.burst, clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Agent:
    def __init__(
        self,
        associations: Associations,
        verifier: TokenVerifier,
        assumer: STSAssumer | Any,
        *,
        allowed_hosts: tuple[str, ...] = DEFAULT_HOSTS,
        pod_tags: bool = True,
        cache: CredentialCache | None = None,
        rate_limit: float | None = 1000.0,
    ) -> None:
        self.associations, self.verifier, self.assumer = associations, verifier, assumer
        self.allowed_hosts, self.pod_tags = allowed_hosts, pod_tags
        self.cache = cache or CredentialCache()
        self.limiter = RateLimiter(rate_limit) if rate_limit else None

    async def credentials(self, host: str, authorization: str) -> AwsCredentials:
        if self.limiter is not None and not self.limiter.allow():
            raise AgentError(429, "Too Many Requests")
        check_host(host, self.allowed_hosts)
        subject = self.verifier.cached(authorization)  # a pod asks again: nothing to parse
        if subject is None:
            basic_validation(authorization)
            if self.verifier.blocking:
                subject = await run_in_threadpool(self.verifier.verify, authorization)
            else:
                subject = self.verifier.verify(authorization)
        assoc = self.associations.get(subject.namespace, subject.service_account)
        if assoc is None:
            raise AgentError(
                404,
                f"no Pod Identity association for service account {subject.namespace}/{subject.service_account}",
                "ResourceNotFoundException",
            )
        per_pod = self.pod_tags and not assoc.disable_session_tags
        key = (assoc.namespace, assoc.service_account, subject.pod_uid if per_pod else "")
        return await self.cache.get(
            key, lambda: run_in_threadpool(self.assumer.assume, assoc, subject, self.pod_tags)
        )


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip
MAX_HEAD = 16 * 1024
IDLE_TIMEOUT = 30.0  # upstream's read/write timeout


def _response(status: int, body: bytes, ctype: bytes, close: bool) -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "Error").encode()),
            b"Content-Type: " + ctype + b"\r\n",
            b"Content-Length: %d\r\n" % len(body),
            b"X-Content-Type-Options: nosniff\r\n",
            b"Connection: close\r\n" if close else b"",
            b"\r\n",
            body,
        )
    )


class AgentHTTP:
    """The agent's HTTP/1.1 server: GET /v1/credentials and GET /healthz on keep-alive connections.

    A small asyncio server rather than an ASGI stack: the endpoint is two GETs without bodies, and the
    general-purpose stack cost ~4x the CPU per cached answer (docs/performance.md). Requests on one
    connection are answered in order; heads over 16 KiB get 431, bodies 400, idle connections close
    after 30 s (upstream's timeouts)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    writer.write(
                        _response(431, b"request header too large\n", b"text/plain; charset=utf-8", True)
                    )
                    return
                out, close = await self.respond(head)
                writer.write(out)
                await writer.drain()
                if close:
                    return
        except ConnectionError:
            return
        finally:
            writer.close()

    async def respond(self, head: bytes) -> tuple[bytes, bool]:
        text = b"text/plain; charset=utf-8"
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return _response(400, b"malformed request line\n", text, True), True
        method, target, version = parts
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
                return _response(400, b"malformed header\n", text, True), True
            key = name.lower()
            if key in headers and key in (b"host", b"authorization", b"content-length"):
                return _response(400, b"duplicate " + key + b" header\n", text, True), True
            headers[key] = value.strip()
        conn = headers.get(b"connection", b"").lower()
        close = conn == b"close" or (version == b"HTTP/1.0" and conn != b"keep-alive")
        if headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers:
            return _response(400, b"request body not supported\n", text, True), True
        path = target.split(b"?", 1)[0]
        if path == b"/healthz":
            return _response(200, b"ok", text, close), close
        if path != b"/v1/credentials":
            return _response(404, b"404 page not found\n", text, close), close
        if method != b"GET":
            return _response(405, b"Method Not Allowed\n", text, close), close
        try:
            creds = await self.agent.credentials(
                headers.get(b"host", b"").decode("latin-1"),
                headers.get(b"authorization", b"").decode("latin-1"),
            )
        except AgentError as e:
            return _response(e.status, (e.body + "\n").encode(), text, close), close
        except Exception as e:  # noqa: BLE001 - one request's bug is a 500, never a dead agent
            msg = f"(InternalServerException): {type(e).__name__}, fault: server\n".encode()
            return _response(500, msg, text, close), close
        import orjson

        return _response(200, orjson.dumps(creds.reply()), b"application/json", close), close

    async def serve(self, sock: Any) -> None:
        server = await asyncio.start_server(self.handle, sock=sock, limit=MAX_HEAD)
        async with server:
            await server.serve_forever()
