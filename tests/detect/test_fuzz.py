"""Ingestion never raises, whatever the input: random bytes and random JSON shaped like events."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.detect.pipeline import Pipeline
from kubestrata.detect.webhook import AuditWebhook
from tests.detect.helpers import event

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = ["kind", "apiVersion", "auditID", "stage", "verb", "requestURI", "user", "sourceIPs", "userAgent",
        "objectRef", "responseStatus", "requestObject", "responseObject", "annotations", "properties",
        "protoPayload", "items", "logEvents", "messageType", "impersonatedUser", "stageTimestamp"]  # fmt: skip
SPEC_KEYS = ["containers", "initContainers", "volumes", "hostNetwork", "hostPID", "securityContext", "rules",
             "roleRef", "subjects", "spec", "data", "webhooks", "template", "type", "selector", "command"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    pipe = Pipeline()
    pipe.process_line(data, "fuzz")
    assert pipe.stats.events + pipe.stats.bad_total + pipe.stats.ignored <= max(1, pipe.stats.lines) * 64


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8))
def test_random_event_shapes_never_raise(doc: dict) -> None:
    Pipeline().process_obj(doc, "fuzz")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["create", "update", "get", "list", "delete", "patch"]),
    st.sampled_from(
        [
            "pods",
            "deployments",
            "cronjobs",
            "clusterroles",
            "rolebindings",
            "clusterrolebindings",
            "services",
            "configmaps",
            "secrets",
            "selfsubjectaccessreviews",
            "certificatesigningrequests",
            "mutatingwebhookconfigurations",
            "namespaces",
            "nodes",
            "serviceaccounts",
        ]
    ),  # fmt: skip
    st.sampled_from([None, "exec", "attach", "token", "ephemeralcontainers", "portforward"]),
    st.dictionaries(st.sampled_from(SPEC_KEYS), json_values, max_size=6),
)
def test_valid_events_with_random_request_objects_never_raise(verb, resource, sub, body) -> None:
    for stage in ("ResponseStarted", "ResponseComplete"):
        ev = event(verb, resource, subresource=sub, name="x", code=201, stage=stage, request_object=body)
        pipe = Pipeline()
        pipe.process_obj(ev, "fuzz")
        assert pipe.stats.events == 1


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_webhook_answers_every_body(value) -> None:
    status, body = AuditWebhook(Pipeline()).handle(orjson.dumps(value))
    assert status in (200, 400) and isinstance(body, dict)
