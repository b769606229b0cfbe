"""The TokenReview webhook for ``k8s-aws-v1.`` tokens: rules, STS, the access model, the review status.

Mapping goes through :class:`kubestrata.access.model.AccessModel`, the model ``kubestrata access`` uses:
access entries in ``API``/``API_AND_CONFIG_MAP`` mode (an entry beats an aws-auth mapping of the same
principal), then aws-auth exactly as the authenticator parses it, ``mapAccounts``, and the invisible
creator in ``CONFIG_MAP`` clusters. Templates are rendered by ``kubestrata.access.awsauth.render_template``.

Failure modes (pkg/server/server.go authenticateEndpoint): a token that breaks a rule, an STS error or an
unmapped identity answers **403** with ``authenticated: false``; STS throttling answers **429**; a body
that is not a TokenReview answers 400. ``status.error`` carries the reason (upstream leaves it empty; the
API server logs it). Identities proven by STS are cached until the token expires (15 minutes after
``X-Amz-Date``); every rule, expiry included, is re-checked on each request, so no cached allow outlives
its token, and STS failures are never cached.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubestrata.access.awsauth import Caller, TemplateError, render_template
from kubestrata.access.model import AccessModel
from kubestrata.admission.review import ReviewError
from kubestrata.identity.token import (
    CallerIdentity,
    Presigned,
    STSError,
    TokenError,
    call_sts,
    parse_token,
)

log = logging.getLogger("kubestrata.identity")
TOKENREVIEW_VERSIONS = ("authentication.k8s.io/v1", "authentication.k8s.io/v1beta1")
UID_PREFIX = "aws-iam-authenticator"


class MappingError(Exception):
    """A verified caller that no access entry, aws-auth mapping or account maps."""

    rule = "unmapped"
    kind = "mapping"


@dataclass(frozen=True)
class Mapped:
    username: str
    groups: tuple[str, ...]
    source: str  # access-entry | aws-auth | aws-auth-account | creator


class AccessMapper:
    """Caller -> (username, groups) through the one access model."""

    def __init__(
        self,
        model: AccessModel,
        *,
        private_dns_names: dict[str, str] | None = None,
        reserved_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self.private_dns_names = private_dns_names or {}
        self.reserved_prefixes = reserved_prefixes

    def map(self, ident: CallerIdentity) -> Mapped:
        # the canonical ARN carries no session, so the identity comes back with its templates unrendered
        found = self.model.resolve(ident.canonical_arn)
        if found is None:
            raise MappingError(f"ARN is not mapped: {ident.canonical_arn}")
        caller = Caller(
            ident.arn,
            ident.session_name,
            ident.access_key_id,
            self.private_dns_names.get(ident.session_name, ""),
        )
        try:
            username = render_template(found.username, caller)
            groups = tuple(render_template(g, caller) for g in found.groups)
        except TemplateError as e:
            raise MappingError(f"{found.source} renderTemplates error: {e}") from None
        for p in self.reserved_prefixes:
            if p and username.startswith(p):
                raise MappingError(f"invalid username {username!r} for mapping: reserved prefix {p!r}")
        return Mapped(username, groups, found.source)


@dataclass
class Review:
    """One decision: the HTTP status, the TokenReview status, and the rule for logs and metrics."""

    code: int
    status: dict[str, Any]
    rule: str = ""
    identity: CallerIdentity | None = None

    @property
    def authenticated(self) -> bool:
        return bool(self.status.get("authenticated"))


class Authenticator:
    def __init__(
        self,
        cluster_id: str,
        mapper: AccessMapper | Callable[[CallerIdentity], Mapped],
        *,
        partition: str = "aws",
        region: str = "",
        sts_endpoint: str | None = None,
        timeout: float = 10.0,
        cache_size: int = 10_000,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if not cluster_id:
            raise ValueError("the authenticator needs a cluster id")
        self.cluster_id = cluster_id
        self._map = mapper.map if isinstance(mapper, AccessMapper) else mapper
        self.partition, self.region = partition, region
        self.sts_endpoint, self.timeout = sts_endpoint, timeout
        self.cache_size = cache_size
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._cache: OrderedDict[str, tuple[CallerIdentity, dt.datetime]] = OrderedDict()
        self._lock = threading.Lock()
        self.sts_calls = 0

    # -- verification ---------------------------------------------------------------------------------

    def verify(self, token: str) -> CallerIdentity:
        """The caller a token proves, or TokenError / STSError. Cached until the token expires."""
        now = self.clock()
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None:
                # the same string passed every rule before; only the clock can have changed its verdict
                if now <= hit[1]:
                    self._cache.move_to_end(token)
                    return hit[0]
                del self._cache[token]
        p = parse_token(token, partition=self.partition, region=self.region, now=now)
        ident = self._sts(p)
        with self._lock:
            self._cache[token] = (ident, p.expires_at)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return ident

    def _sts(self, p: Presigned) -> CallerIdentity:
        self.sts_calls += 1
        return call_sts(p, self.cluster_id, endpoint=self.sts_endpoint, timeout=self.timeout)

    def purge_expired(self) -> int:
        now = self.clock()
        with self._lock:
            stale = [t for t, (_, exp) in self._cache.items() if now > exp]
            for t in stale:
                del self._cache[t]
        return len(stale)

    # -- the review -----------------------------------------------------------------------------------

    def authenticate(self, token: str) -> Review:
        try:
            ident = self.verify(token)
        except TokenError as e:
            return Review(403, _denied(e, e.rule), e.rule)
        except STSError as e:
            return Review(429 if e.throttled else 403, _denied(e, e.rule), e.rule)
        try:
            m = self._map(ident)
        except MappingError as e:
            return Review(403, _denied(e, e.rule), e.rule, ident)
        return Review(200, {"authenticated": True, "user": user_info(ident, m)}, "", ident)

    def review(self, doc: Any) -> tuple[int, dict[str, Any]]:
        """A TokenReview in, (HTTP status, TokenReview out); ReviewError (400) for a malformed review."""
        api_version, token = check_token_review(doc)
        r = self.authenticate(token)
        # who and why, never the token (it is a bearer credential for 15 minutes)
        log.info(
            "authentication",
            extra={
                "event": "authenticate",
                "authenticated": r.authenticated,
                "rule": r.rule or None,
                "arn": r.identity.arn if r.identity else None,
                "user": (r.status.get("user") or {}).get("username"),
            },
        )
        return r.code, {"apiVersion": api_version, "kind": "TokenReview", "status": r.status}


def _denied(e: Exception, rule: str) -> dict[str, Any]:
    """authenticated=false with upstream's message, then the rule that decided (docs/identity.md)."""
    return {"authenticated": False, "error": f"{e} [rule: {rule}]"}


def user_info(ident: CallerIdentity, m: Mapped) -> dict[str, Any]:
    """The TokenReview user as aws-iam-authenticator fills it (uid from account and principal id)."""
    return {
        "username": m.username,
        "uid": f"{UID_PREFIX}:{ident.account}:{ident.user_id}",
        "groups": list(m.groups),
        "extra": {
            "arn": [ident.arn],
            "canonicalArn": [ident.canonical_arn],
            "sessionName": [ident.session_name],
            "accessKeyId": [ident.access_key_id],
            "principalId": [ident.user_id],
            "sigs.k8s.io/aws-iam-authenticator/principalId": [ident.user_id],
        },
    }


def check_token_review(doc: Any) -> tuple[str, str]:
    if not isinstance(doc, dict):
        raise ReviewError("a TokenReview must be a JSON object")
    if doc.get("kind") != "TokenReview":
        raise ReviewError(f"kind must be TokenReview, got {doc.get('kind')!r}"[:120])
    api_version = doc.get("apiVersion")
    if api_version not in TOKENREVIEW_VERSIONS:
        raise ReviewError(
            f"apiVersion must be one of {', '.join(TOKENREVIEW_VERSIONS)}, got {api_version!r}"[:160]
        )
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise ReviewError("spec is required and must be an object")
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise ReviewError("spec.token is required and must be a string")
    return str(api_version), token


def load_access_model(paths: list[str], eks_files: list[str] | None = None) -> AccessModel:
    """The access model from manifests (aws-auth ConfigMap, RBAC, EKSClusterAccess snapshots) and AWS CLI
    JSON, read the way ``kubestrata access`` reads them; errors name the file."""
    from kubestrata.eks.awsjson import read_aws_json_files
    from kubestrata.errors import KubestrataError
    from kubestrata.kube.cluster import Cluster
    from kubestrata.kube.loader import load_paths

    loaded = load_paths(paths) if paths else None
    objects = loaded.objects if loaded is not None else []
    if loaded is not None and loaded.errors:
        raise loaded.errors[0]
    if paths and not objects and not eks_files:
        raise KubestrataError(f"no Kubernetes objects found in {', '.join(paths)}")
    eks = read_aws_json_files(eks_files) if eks_files else None
    model = AccessModel(Cluster(objects), eks)
    if model.errors:
        raise model.errors[0]
    return model
