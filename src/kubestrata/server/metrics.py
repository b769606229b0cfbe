"""Prometheus metrics of one server instance (own registry: tests and several apps never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Webhook answers are sub-millisecond to a few milliseconds; the API server times out at 1-30 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "kubestrata_http_requests",
            "HTTP requests by route and status code.",
            ["route", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "kubestrata_http_request_duration_seconds",
            "Time from request start to response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "kubestrata_decisions",
            "Webhook decisions by webhook (authorize, admit, mutate) and outcome "
            "(allowed, denied, no_opinion, error, patched, unchanged).",
            ["webhook", "outcome"],
            registry=r,
        )
        self.evaluation_errors = Counter(
            "kubestrata_evaluation_errors",
            "Errors while evaluating a review, by webhook and engine (cedar, pss, checks, mutations).",
            ["webhook", "engine"],
            registry=r,
        )
        self.policy_reloads = Counter(
            "kubestrata_policy_reloads",
            "Policy set reloads by result (applied, rejected).",
            ["result"],
            registry=r,
        )
        self.policy_watch_events = Counter(
            "kubestrata_policy_watch_events",
            "Policy object watch events received from the cluster, by type (ADDED, MODIFIED, DELETED, BOOKMARK).",
            ["type"],
            registry=r,
        )
        self.policy_watch_restarts = Counter(
            "kubestrata_policy_watch_restarts",
            "Policy list/watch restarts by reason (gone: 410, listed again; error: backed off and retried).",
            ["reason"],
            registry=r,
        )
        self.policies_loaded = Gauge("kubestrata_policies_loaded", "Policies in the serving set.", registry=r)
        self.tls_reloads = Counter(
            "kubestrata_tls_reloads",
            "Certificate reloads by result (applied, rejected).",
            ["result"],
            registry=r,
        )
        self.bad_requests = Counter(
            "kubestrata_bad_requests",
            "Requests refused before evaluation, by reason (json, envelope, too_large, timeout, not_ready, "
            "unauthenticated, field_too_large, http, not_found).",
            ["route", "reason"],
            registry=r,
        )

        self.connections_closed = Counter(
            "kubestrata_connections_closed",
            "Webhook-port connections closed or refused by the server's connection limit, by reason "
            "(evicted_idle: oldest idle closed to make room; refused: every connection busy; "
            "handshake_failed: TLS handshake failed, timed out or the client left before finishing).",
            ["reason"],
            registry=r,
        )
        self.open_connections = Gauge(
            "kubestrata_open_connections",
            "Open webhook-port connections (TLS handshakes included).",
            registry=r,
        )

        self.audit_events = Counter(
            "kubestrata_audit_events",
            "Audit events received on /audit by result (accepted, bad, duplicate).",
            ["result"],
            registry=r,
        )
        self.audit_findings = Counter(
            "kubestrata_audit_findings", "Findings raised from /audit events.", registry=r
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
