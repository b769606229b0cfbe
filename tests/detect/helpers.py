"""Small builders for audit events in tests."""

from __future__ import annotations

import itertools
from typing import Any

from kubestrata.findings import Finding

_ids = itertools.count(1)


def event(
    verb: str = "get",
    resource: str = "pods",
    *,
    user: str = "alice@example.com",
    namespace: str | None = "default",
    name: str | None = None,
    subresource: str | None = None,
    code: int = 200,
    stage: str = "ResponseComplete",
    ips: list[str] | None = None,
    uri: str | None = None,
    request_object: dict[str, Any] | None = None,
    response_object: dict[str, Any] | None = None,
    decision: str = "allow",
    user_agent: str = "kubectl/v1.29.2 (linux/amd64) kubernetes/abc",
    groups: list[str] | None = None,
    api_version: str = "audit.k8s.io/v1",
    **extra: Any,
) -> dict[str, Any]:
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if subresource:
        ref["subresource"] = subresource
    path = (
        "/api/v1"
        + (f"/namespaces/{namespace}" if namespace else "")
        + f"/{resource}"
        + (f"/{name}" if name else "")
    )
    if subresource:
        path += f"/{subresource}"
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": api_version,
        "level": "Request",
        "auditID": f"00000000-0000-0000-0000-{next(_ids):012d}",
        "stage": stage,
        "requestURI": uri if uri is not None else path,
        "verb": verb,
        "user": {"username": user, "groups": groups or ["system:authenticated"]},
        "sourceIPs": ips if ips is not None else ["10.0.0.5"],
        "userAgent": user_agent,
        "objectRef": ref,
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": "2026-11-27T10:00:00.000000Z",
        "stageTimestamp": "2026-11-27T10:00:00.100000Z",
        "annotations": {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": ""},
    }
    if request_object is not None:
        ev["requestObject"] = request_object
    if response_object is not None:
        ev["responseObject"] = response_object
    ev.update(extra)
    return ev


def pod(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "p"},
        "spec": {"containers": containers, **spec},
    }


def rule_ids(findings: list[Finding]) -> set[str]:
    return {f.rule_id for f in findings}


def records(findings: list[Finding]) -> list[dict[str, Any]]:
    """Findings as their JSON lines say them."""
    return [f.to_dict() for f in findings]
