"""The ASGI app of the webhook port: /authorize, /authenticate, /admit, /mutate, /audit (/healthz, /readyz and
/metrics are on the operations port, kubestrata.server.ops).

Callers: with ``tls.client_ca`` the TLS layer has verified a client certificate before a request
arrives, and every route here also requires its CN or a SAN to be in ``tls.client_names`` (when
given): 403 otherwise. Without client certificates (``insecure_no_client_auth``) the decision routes
answer anyone who reaches the port, and /audit refuses every caller: forged events must never seed
the detection state.

Failure modes (each route's answer when something goes wrong; docs/serve.md has the cluster side):
- any route, malformed JSON / wrong apiVersion or kind / missing uid: 400 with the reason;
  body over ``limits.max_body_bytes``: 413; body not received within ``limits.body_timeout``: 408.
- a field over ``limits.fields`` (user, groups, extra, names, labels, selectors): /admit and
  /mutate 400; /authorize 200 denied with the reason (fails closed, as the API server's failure
  policy would, and the API server does not cache it for long: unauthorizedTTL).
- /authorize, engine error: 200 with no opinion and ``evaluationError`` (the next authorizer decides;
  the API server caches it for the unauthorized TTL only); policies not loaded: 503 so the
  AuthorizationConfiguration's ``failurePolicy`` applies.
- /admit: a handler error denies when that handler fails closed (Cedar, PSS: ``on_error: deny``) and
  warns when it fails open (checks); any other internal error: 500 so ``failurePolicy`` applies.
- /mutate: a fix that errors or does not apply is skipped; the request proceeds unpatched.
- /audit without the detect engine: 501.
- /authenticate (TokenReview, kubestrata.identity.authenticator): 403 + authenticated=false with the
  reason for a bad token, an STS error or an unmapped identity, 429 when STS throttles; 501 when off.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kubestrata.admission.namespaces import NamespaceLookup, StaticNamespaces
from kubestrata.admission.registry import AdmissionContext, AdmissionRegistry
from kubestrata.admission.review import ReviewError, parse_admission_review
from kubestrata.server.config import ServeConfig
from kubestrata.server.metrics import Metrics
from kubestrata.server.reviews import (
    check_sar,
    outcome_of,
    oversized_admission_field,
    oversized_sar_field,
    sar_response,
)

log = logging.getLogger("kubestrata.server")


class AuthorizerEngine(Protocol):
    def review(self, sar: dict[str, Any]) -> dict[str, Any]:
        """The SubjectAccessReview ``status`` for a checked review."""
        ...


class AuditSink(Protocol):
    async def __call__(self, body: bytes) -> tuple[int, dict[str, Any]]: ...


class HTTPError(Exception):
    def __init__(self, code: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


@dataclass
class ServerState:
    config: ServeConfig
    metrics: Metrics = field(default_factory=Metrics)
    authorizer: AuthorizerEngine | None = None
    registry: AdmissionRegistry = field(default_factory=AdmissionRegistry)
    namespaces: NamespaceLookup = field(default_factory=StaticNamespaces)
    audit: AuditSink | None = None
    policies_loaded: bool = False
    shutting_down: bool = False
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    policy_watcher: Any = None
    cluster_policy_watcher: Any = None
    tls: Any = None
    authenticator: Any = None  # kubestrata.identity.authenticator.Authenticator

    @property
    def ready(self) -> bool:
        return self.policies_loaded and not self.shutting_down


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _error(e: HTTPError) -> Response:
    # A Kubernetes Status object: what kubectl and the API server's logs understand.
    return _json(
        {"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": e.message, "code": e.code},
        e.code,
    )


async def read_body(request: Request, state: ServerState) -> bytes:
    """The body, refused early when Content-Length is over the limit and cut off when a chunked body
    grows past it or arrives too slowly (a slow client holds one task, never the server)."""
    limits = state.config.limits
    cl = request.headers.get("content-length")
    if cl is not None:
        try:
            declared = int(cl)
        except ValueError:
            raise HTTPError(400, "invalid Content-Length", "envelope") from None
        if declared > limits.max_body_bytes:
            raise HTTPError(413, f"request body over {limits.max_body_bytes} bytes", "too_large")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise HTTPError(413, f"request body over {limits.max_body_bytes} bytes", "too_large")
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPError(
            408, f"request body not received within {limits.body_timeout:g}s", "timeout"
        ) from None
    return b"".join(chunks)


async def read_json(request: Request, state: ServerState) -> Any:
    body = await read_body(request, state)
    if not body:
        raise HTTPError(400, "empty request body: expected a JSON review", "json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HTTPError(400, f"request body is not valid JSON: {e}", "json") from None


def check_caller(request: Request, state: ServerState, route: str) -> None:
    """Raise 403 unless the caller is authenticated as the configuration requires (module docstring)."""
    tls = state.config.tls
    st = request.scope.get("state") or {}
    if tls.client_ca is not None:
        if not st.get("peer"):
            raise HTTPError(403, "a client certificate is required", "unauthenticated")
        if not st.get("peer_allowed"):
            raise HTTPError(
                403,
                "client certificate not allowed: its CN and SANs name none of serve.tls.client_names",
                "unauthenticated",
            )
    elif route == "audit":
        raise HTTPError(
            403,
            "/audit accepts events only from an authenticated caller: start the server with --client-ca",
            "unauthenticated",
        )


def _instrument(
    state: ServerState, route: str, fn: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    m = state.metrics
    latency = m.latency.labels(route)

    async def endpoint(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            check_caller(request, state, route)
            resp = await fn(request)
        except ReviewError as e:
            m.bad_requests.labels(route, "envelope").inc()
            log.info(
                "request refused",
                extra={"event": "bad_request", "route": route, "code": 400, "detail": str(e)},
            )
            resp = _error(HTTPError(400, str(e), "envelope"))
        except HTTPError as e:
            m.bad_requests.labels(route, e.reason).inc()
            log.info(
                "request refused",
                extra={
                    "event": "bad_request",
                    "route": route,
                    "code": e.code,
                    "reason": e.reason,
                    "detail": e.message,
                },
            )
            resp = _error(e)
        except Exception as e:  # noqa: BLE001 - answer 500 and keep serving
            log.error(
                "internal error",
                extra={"event": "internal_error", "route": route, "error_type": type(e).__name__},
            )
            resp = _error(HTTPError(500, f"internal error ({type(e).__name__})", "internal"))
        latency.observe(time.perf_counter() - t0)
        return resp

    return endpoint


class _Children:
    """A labelled metric's children by label values, each looked up once: prometheus_client's
    ``labels()`` checks its arguments and takes a lock on every call, and the values here come from
    small fixed sets (routes, status codes, outcomes)."""

    __slots__ = ("metric", "got")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.got: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.got.get(values)
        if child is None:
            child = self.got[values] = self.metric.labels(*values)
        return child


ROUTES = {"/authorize": "authorize", "/admit": "admit", "/mutate": "mutate", "/audit": "audit"}


class CountResponses:
    """Counts every response by route and status code, the router's own 404/405 included, and says
    ``Connection: close`` while the server drains (the API server then opens its next connection to
    another replica)."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app = app
        self.state = state
        self.requests = _Children(state.metrics.requests)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = ROUTES.get(scope["path"], "other")
        m = self.state.metrics
        requests = self.requests

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                requests(route, str(message["status"])).inc()
                if message["status"] in (404, 405):
                    m.bad_requests.labels(route, "not_found").inc()
                if self.state.shutting_down:
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, counted)


def create_app(state: ServerState) -> Starlette:
    m = state.metrics
    decisions = _Children(m.decisions)

    async def authorize(request: Request) -> Response:
        doc = check_sar(await read_json(request, state))
        too_big = oversized_sar_field(doc, state.config.limits.fields)
        if too_big:
            # fail closed with the reason (a no-opinion would let RBAC allow what a forbid denies);
            # the value itself never reaches Cedar, the logs or a cache
            m.bad_requests.labels("authorize", "field_too_large").inc()
            m.decisions.labels("authorize", "denied").inc()
            log.info(
                "request refused",
                extra={"event": "bad_request", "route": "authorize", "code": 200, "detail": too_big},
            )
            return _json(
                sar_response(doc, {"allowed": False, "denied": True, "reason": f"kubestrata: {too_big}"})
            )
        if state.authorizer is None:
            raise HTTPError(
                503, "authorization is not configured: start the server with --policies", "not_ready"
            )
        if not state.policies_loaded:
            raise HTTPError(503, "policies are not loaded yet", "not_ready")
        spec = doc["spec"]
        try:
            status = state.authorizer.review(doc)
        except ReviewError as e:
            raise HTTPError(400, str(e), "envelope") from None
        except Exception as e:  # noqa: BLE001 - documented: no opinion with evaluationError
            log.error("authorization error", extra={"event": "authz_error", "error_type": type(e).__name__})
            status = {
                "allowed": False,
                "evaluationError": f"kubestrata: evaluation failed ({type(e).__name__})",
            }
        if status.get("evaluationError"):
            m.evaluation_errors.labels("authorize", "cedar").inc()
        outcome = outcome_of(status)
        decisions("authorize", outcome).inc()
        attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
        # who, what and the verdict; never spec.extra (it can carry credentials) nor selectors' values
        log.info(
            "authorization",
            extra={
                "event": "authorize",
                "user": spec.get("user"),
                "verb": attrs.get("verb"),
                "resource": attrs.get("resource") or attrs.get("path"),
                "namespace": attrs.get("namespace"),
                "decision": outcome,
                "reason": (status.get("reason") or "")[:512] or None,
            },
        )
        return _json(sar_response(doc, status))

    async def _admission(request: Request, mutating: bool) -> Response:
        webhook = "mutate" if mutating else "admit"
        req = parse_admission_review(await read_json(request, state))
        too_big = oversized_admission_field(req, state.config.limits.fields)
        if too_big:
            raise HTTPError(400, too_big, "field_too_large")
        reg = state.registry
        handlers = reg.selected(req, mutating)
        ctx = AdmissionContext(req)
        if req.namespace and any(h.needs_namespace for h in handlers):
            try:
                ctx.namespace_labels = await state.namespaces.labels(req.namespace)
            except Exception as e:  # noqa: BLE001 - lookup failures are handler errors (on_error)
                log.warning(
                    "namespace lookup failed",
                    extra={
                        "event": "namespace_lookup_error",
                        "namespace": req.namespace,
                        "error_type": type(e).__name__,
                    },
                )
                m.evaluation_errors.labels(webhook, "namespaces").inc()
                ctx.state["namespace_error"] = type(e).__name__
                # handlers that need the labels then raise and their on_error decides
                ctx.namespace_labels = None
        out = reg.run(ctx, handlers)
        for engine in out.errors:
            m.evaluation_errors.labels(webhook, engine).inc()
        if mutating:
            resp = reg.mutation_response(req, out)
            outcome = "patched" if "patch" in resp["response"] else "unchanged"
        else:
            resp = reg.validation_response(req, out)
            outcome = "allowed" if out.allowed else "denied"
        m.decisions.labels(webhook, outcome).inc()
        log.info(
            "admission",
            extra={
                "event": webhook,
                "uid": req.uid,
                "operation": req.operation,
                "kind": req.kind.get("kind"),
                "namespace": req.namespace or None,
                "object_name": req.name or None,
                "user": req.user.name,
                "dry_run": req.dry_run,
                "decision": outcome,
                "denied_by": [d.handler for d in out.denials] or None,
                "policies": [p for d in out.denials for p in d.policies] or None,
                "warnings": len(out.warnings),
            },
        )
        return _json(resp)

    async def admit(request: Request) -> Response:
        return await _admission(request, False)

    async def mutate(request: Request) -> Response:
        return await _admission(request, True)

    async def audit(request: Request) -> Response:
        if state.audit is None:
            raise HTTPError(
                501, "audit ingestion is not available in this build (kubestrata detect)", "not_implemented"
            )
        code, result = await state.audit(await read_body(request, state))
        return _json(result, code)

    async def authenticate(request: Request) -> Response:
        if state.authenticator is None:
            raise HTTPError(
                501, "authentication off: set serve.identity.authenticate.cluster_id", "not_implemented"
            )
        doc = await read_json(request, state)
        code, body = await run_in_threadpool(state.authenticator.review, doc)  # STS is a blocking call
        return _json(body, code)

    routes = [
        Route("/authorize", _instrument(state, "authorize", authorize), methods=["POST"]),
        Route("/authenticate", _instrument(state, "authenticate", authenticate), methods=["POST"]),
        Route("/admit", _instrument(state, "admit", admit), methods=["POST"]),
        Route("/mutate", _instrument(state, "mutate", mutate), methods=["POST"]),
        Route("/audit", _instrument(state, "audit", audit), methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(fn()) for fn in state.background]
        # Everything loaded so far (engines, schemas, check tables: ~70k objects) lives as long as
        # the process: move it out of the collector's view so a full collection, which would walk
        # it all (~20 ms), never lands in the middle of a review.
        gc.freeze()
        try:
            yield
        finally:
            state.shutting_down = True
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            close = getattr(state.audit, "close", None)
            if close is not None:
                close()  # flush the detect pipeline's sinks

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(CountResponses, state=state)
    return app
