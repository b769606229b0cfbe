from __future__ import annotations

import orjson
import pytest

from kubestrata.detect.decode import gke_to_event
from kubestrata.detect.event import AuditEvent, BadEvent
from kubestrata.detect.pipeline import Pipeline
from tests.detect.helpers import event, rule_ids


def test_v1_and_v1beta1_events_parse() -> None:
    for api in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
        ev = AuditEvent(event("create", "pods", api_version=api, code=201, name="x"))
        assert (ev.verb, ev.resource, ev.namespace, ev.name, ev.code, ev.success) == (
            "create",
            "pods",
            "default",
            "x",
            201,
            True,
        )


@pytest.mark.parametrize(
    "mutate, field",
    [
        ({"kind": 0}, "kind"),
        ({"apiVersion": "audit.k8s.io/v2"}, "apiVersion"),
        ({"verb": 5}, "verb"),
        ({"user": "alice"}, "user"),
        ({"user": {"username": ["a"]}}, "user.username"),
        ({"user": {"username": "a", "groups": "g"}}, "user.groups"),
        ({"sourceIPs": [1]}, "sourceIPs[0]"),
        ({"objectRef": {"resource": 3}}, "objectRef.resource"),
        ({"responseStatus": {"code": "200"}}, "responseStatus.code"),
        ({"stage": "Sometime"}, "stage"),
        ({"requestObject": []}, "requestObject"),
    ],
)
def test_wrong_field_types_are_named(mutate: dict, field: str) -> None:
    raw = event()
    raw.update(mutate)
    with pytest.raises(BadEvent) as ei:
        AuditEvent(raw)
    assert ei.value.field == field


def test_eventlist_and_dedup_on_auditid_and_stage() -> None:
    a = event("create", "pods", subresource="exec", name="p", stage="ResponseStarted", code=101)
    b = dict(a, stage="ResponseComplete")
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [a, a, b, b]}
    pipe = Pipeline()
    findings = pipe.process_obj(body)
    assert pipe.stats.events == 4 and pipe.stats.duplicates == 2
    # exec rules fire at ResponseStarted only: once, not once per stage
    assert sum(f.rule_id == "KS-AUD-F11" for f in findings) == 1
    assert [f.event.stage for f in findings if f.rule_id == "KS-AUD-F11"] == ["ResponseStarted"]


def test_most_rules_only_at_response_complete() -> None:
    pipe = Pipeline()
    ro = {"kind": "ClusterRoleBinding", "roleRef": {"name": "cluster-admin"}, "subjects": []}
    started = event(
        "create", "clusterrolebindings", namespace=None, stage="RequestReceived", request_object=ro
    )
    assert "KS-AUD-F18" not in rule_ids(pipe.process_obj(started))
    complete = dict(started, stage="ResponseComplete")
    assert "KS-AUD-F18" in rule_ids(pipe.process_obj(complete))


def test_exec_command_decoded_from_request_uri() -> None:
    uri = "/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&command=cat%20%2Fetc%2Fshadow&stdout=true"
    ev = AuditEvent(
        event("create", "pods", subresource="exec", name="p", uri=uri, stage="ResponseStarted", code=101)
    )
    assert ev.exec_command() == ["sh", "-c", "cat /etc/shadow"]
    findings = Pipeline().process_obj(ev.raw)
    n08 = [f for f in findings if f.rule_id == "KS-AUD-N08"]
    assert n08 and n08[0].evidence[0].observed == ["sh", "-c", "cat /etc/shadow"]


def test_gke_resource_names() -> None:
    ev = gke_to_event(
        {
            "protoPayload": {
                "serviceName": "k8s.io",
                "methodName": "io.k8s.core.v1.pods.exec.create",
                "resourceName": "core/v1/namespaces/prod/pods/db/exec",
                "authenticationInfo": {"principalEmail": "me@example.com"},
                "requestMetadata": {"callerIP": "8.8.8.8"},
                "status": {"code": 7},
            },
            "operation": {"id": "abc"},
        }
    )
    assert ev["verb"] == "create" and ev["responseStatus"]["code"] == 403 and ev["auditID"] == "abc"
    assert ev["objectRef"] == {
        "apiGroup": "",
        "apiVersion": "v1",
        "namespace": "prod",
        "resource": "pods",
        "name": "db",
        "subresource": "exec",
    }


def test_aks_wrapper_and_records() -> None:
    inner = event("create", "daemonsets", code=201, name="d")
    rec = {"category": "kube-audit", "properties": {"log": orjson.dumps(inner).decode()}}
    pipe = Pipeline()
    assert "KS-AUD-N05" in rule_ids(pipe.process_obj({"records": [rec]}))


def test_gcp_non_k8s_entries_are_ignored_not_bad() -> None:
    pipe = Pipeline()
    pipe.process_obj({"protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "x"}})
    assert pipe.stats.ignored == 1 and pipe.stats.bad_total == 0
