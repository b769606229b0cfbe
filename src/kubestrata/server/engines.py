"""Adapters from the engines of other packages (Cedar in kubestrata.authz, PSS in kubestrata.pss,
audit detection in kubestrata.detect) to what the server and admission handlers call. The server's
wiring to each engine lives here only."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubestrata.admission.review import ReviewError


class CedarAuthorizer:
    """`/authorize`: the SubjectAccessReview ``status`` from kubestrata.authz.Authorizer."""

    def __init__(self, authorizer: Any) -> None:
        self._authz = authorizer

    def review(self, sar: dict[str, Any]) -> dict[str, Any]:
        from kubestrata.authz import InvalidReview

        try:
            return self._authz.review(sar)["status"]
        except InvalidReview as e:
            raise ReviewError(str(e)) from None


class CedarAdmission:
    """Admission forbids: kubestrata.authz.AdmissionPolicyEvaluator (fails closed on erroring forbids)."""

    def __init__(self, evaluator: Any) -> None:
        self._eval = evaluator

    def evaluate(self, request: dict[str, Any]) -> Any:
        from kubestrata.authz import InvalidReview

        store = getattr(self._eval, "store", None)
        if store is not None and not getattr(store, "ready", True):
            # allow-by-default without the (cluster) forbids would fail open: an engine error, so
            # the handler's on_error (deny by default) decides
            raise RuntimeError("Cedar policies are not loaded yet")
        try:
            return self._eval.evaluate(request)
        except InvalidReview as e:
            raise ReviewError(str(e)) from None


@dataclass
class CedarEngines:
    """The policy store plus the SAR authorizer and the admission evaluator that share it."""

    store: Any
    authorizer: CedarAuthorizer
    admission: CedarAdmission

    @property
    def count(self) -> int:
        snap = self.store.snapshot if self.store is not None else None
        return len(snap) if snap is not None else 0

    def reload(self) -> int:
        """Reload every tier; raises PolicyLoadError (the previous set keeps serving)."""
        self.store.load()
        return self.count


def cedar_from_store(store: Any, deny_on_error: bool = False) -> CedarEngines:
    from kubestrata.authz import AdmissionPolicyEvaluator, Authorizer

    return CedarEngines(
        store,
        CedarAuthorizer(Authorizer(store, deny_on_error=deny_on_error)),
        CedarAdmission(AdmissionPolicyEvaluator(store)),
    )


def load_cedar(
    dirs: list[Path], cluster_tier: int | None = None, deny_on_error: bool = False
) -> CedarEngines:
    """Each directory is one tier, in order; ``cluster_tier`` places the cluster's Policy objects
    among them (filled later by the watcher). Raises PolicyLoadError (exit 2) when the initial files
    are invalid: the server never starts serving a partial or unvalidated policy set."""
    from kubestrata.authz import PolicyStore

    store = PolicyStore([[d] for d in dirs], cluster_tier=cluster_tier)
    store.load()
    return cedar_from_store(store, deny_on_error)


class PSSAdapter:
    """kubestrata.pss.evaluate_object under the namespace's labels, with the defaults and exemptions
    of an optional PodSecurityConfiguration file plus the serve config's exemption lists."""

    def __init__(self, config: Any) -> None:
        from kubestrata.pss import Exemptions, Policy, load_pod_security_configuration

        defaults, ex = Policy(), Exemptions()
        if config.configuration is not None:
            psc = load_pod_security_configuration(str(config.configuration))
            defaults, ex = psc.defaults, psc.exemptions
        self.defaults = defaults
        self.exemptions = Exemptions(
            usernames=ex.usernames | set(config.exempt_usernames),
            runtime_classes=ex.runtime_classes | set(config.exempt_runtime_classes),
            namespaces=ex.namespaces | set(config.exempt_namespaces),
        )

    def evaluate(self, obj: dict[str, Any], namespace_labels: dict[str, str], username: str) -> Any:
        from kubestrata.pss import NamespacePolicy, evaluate_object

        policy = NamespacePolicy.from_labels(namespace_labels, self.defaults)
        return evaluate_object(obj, policy, exemptions=self.exemptions, username=username)


def load_pss(config: Any) -> PSSAdapter | None:
    try:
        import kubestrata.pss  # noqa: F401
    except ImportError:
        return None
    return PSSAdapter(config)


log = logging.getLogger("kubestrata.server")

FLUSH_INTERVAL = 5.0


class AuditSinkAdapter:
    """/audit: kubestrata.detect.AuditWebhook (thread-safe, never raises) run in a worker thread, so
    a 400-event batch never delays an authorization decision on the event loop."""

    def __init__(self, hook: Any, metrics: Any) -> None:
        self.hook = hook
        self.metrics = metrics

    async def __call__(self, body: bytes) -> tuple[int, dict[str, Any]]:
        import asyncio

        code, doc = await asyncio.to_thread(self.hook.handle, body)
        if code == 200:
            m = self.metrics
            m.audit_events.labels("accepted").inc(doc.get("accepted", 0))
            m.audit_events.labels("bad").inc(doc.get("bad", 0))
            m.audit_events.labels("duplicate").inc(doc.get("duplicates", 0))
            m.audit_findings.inc(doc.get("findings", 0))
        return code, doc

    async def flush_periodically(self, interval: float = FLUSH_INTERVAL) -> None:
        """Write the detect pipeline's batched first-seen state and findings every few seconds: on a
        quiet API server a batch would otherwise wait in memory until shutdown (or a crash)."""
        import asyncio

        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.hook.pipeline.flush)
            except Exception as e:  # an unreachable database is retried by the next flush
                log.warning("audit state flush failed: %s", e, extra={"event": "audit_flush_failed"})

    def close(self) -> None:
        self.hook.pipeline.close()


def load_audit(config: Any, metrics: Any) -> AuditSinkAdapter | None:
    """The audit-webhook sink of kubestrata.detect, or None (then /audit answers 501)."""
    if not config.enabled:
        return None
    try:
        from kubestrata.detect import AuditWebhook, DetectConfig, Pipeline
        from kubestrata.detect.sinks import FileSink, StreamSink
    except ImportError:
        return None
    if getattr(config, "redis_url", None):
        # scale-out: publish to the partition streams; `kubestrata detect worker` detects
        from kubestrata.detect.streams import Layout, Publisher, check_layout, connect

        layout = Layout(config.redis_prefix, config.partitions)
        client = connect(config.redis_url)
        check_layout(client, layout)
        publisher = Publisher(client, layout, cluster=config.cluster)
        return AuditSinkAdapter(
            AuditWebhook(Pipeline(DetectConfig(cluster=config.cluster)), publisher=publisher), metrics
        )
    sink = FileSink(str(config.findings_file)) if config.findings_file else StreamSink()
    pipeline = Pipeline(DetectConfig(cluster=config.cluster, state_url=config.state_url), sinks=[sink])
    return AuditSinkAdapter(AuditWebhook(pipeline), metrics)
