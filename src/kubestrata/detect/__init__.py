"""Threat detection: GuardDuty- and Falco-equivalent findings from Kubernetes audit events, runtime
events (Tetragon, Falco) and EKS CloudTrail records, correlated into attack sequences, anywhere.

Webhook integration (for ``kubestrata serve``, mounted at ``/audit``)::

    from kubestrata.detect.pipeline import DetectConfig, Pipeline
    from kubestrata.detect.sinks import StreamSink
    from kubestrata.detect.webhook import AuditWebhook

    hook = AuditWebhook(Pipeline(DetectConfig(cluster="prod"), sinks=[StreamSink()]))
    status, body = hook.handle(request_body_bytes)   # never raises; thread-safe
    # 200 {"accepted", "bad", "duplicates", "findings"} | 400 {"error"} | 413 {"error"}
    # on shutdown: hook.pipeline.close()

The server answers with ``status`` and ``body`` as JSON. Bad events inside a batch are counted and
skipped (200), so the API server does not retry a batch that can never succeed; sinks are bounded
queues, so a slow alert destination never blocks the request.

Modules: ``event`` (the Event model), ``decode`` (EventList, CloudWatch, AKS, GKE shapes),
``rules/`` (a package: one module per rule family, each rule id's record beside its function,
Falco's lists as data, a firing example per id), ``catalogue`` (the records, by id), ``factory``
(kubestrata.findings.Finding from a rule's hit), ``pipeline`` (dedup, dispatch, findings),
``state`` (first-seen + findings store, SQLAlchemy), ``sources`` (files, follow, CloudWatch poller),
``sinks`` (stdout/file/webhook), ``webhook`` (the handler above), ``router`` (one entry for every
input: audit, ``runtime/`` (Tetragon, Falco), ``cloudtrail`` + ``cloudtrail_rules``, scan reports),
``sequences`` (attack-sequence correlation), ``streams`` + ``worker`` (scale-out on Redis Streams),
``kinesis``. Human output is rendered by kubestrata.report.detect.
"""

from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.webhook import AuditWebhook

__all__ = ["AuditWebhook", "DetectConfig", "Pipeline"]
