from __future__ import annotations

from typing import Any


def sar(
    user: str,
    verb: str = "get",
    resource: str = "configmaps",
    *,
    groups: list[str] | None = None,
    namespace: str = "default",
    group: str = "",
    name: str = "",
    subresource: str = "",
    labels: list[dict[str, Any]] | None = None,
    fields: list[dict[str, Any]] | None = None,
    version: str = "v1",
) -> dict[str, Any]:
    ra: dict[str, Any] = {
        "verb": verb,
        "resource": resource,
        "namespace": namespace,
        "group": group,
        "version": "v1",
    }
    if name:
        ra["name"] = name
    if subresource:
        ra["subresource"] = subresource
    if labels is not None:
        ra["labelSelector"] = {"requirements": labels}
    if fields is not None:
        ra["fieldSelector"] = {"requirements": fields}
    spec: dict[str, Any] = {"user": user, "resourceAttributes": ra}
    spec["groups" if version == "v1" else "group"] = groups or []
    return {"apiVersion": f"authorization.k8s.io/{version}", "kind": "SubjectAccessReview", "spec": spec}
