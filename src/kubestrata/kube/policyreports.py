"""Write PolicyReports to a live cluster: server-side apply under the ``kubestrata`` field manager, then
delete the reports kubestrata owns (label ``app.kubernetes.io/managed-by=kubestrata``) that this scan did
not write, so a namespace that became clean or disappeared does not keep an old report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from kubestrata.errors import KubestrataError
from kubestrata.kube.live import _api_client, _status_message, _why
from kubestrata.kube.objects import MANAGED_BY, MANAGED_BY_LABEL

FIELD_MANAGER = "kubestrata"
GROUP_PATH = "/apis/wgpolicyk8s.io/v1alpha2"


@dataclass
class WriteSummary:
    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _request(
    api: Any,
    method: str,
    path: str,
    deadline: float,
    query: list[tuple[str, Any]] | None = None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, bytes]:
    import urllib3

    left = deadline - time.monotonic()
    if left <= 0:
        raise KubestrataError("timed out writing PolicyReports (raise --timeout)")
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    m, url, hdrs, _b, _p = api.param_serialize(
        method, path, query_params=query or [], header_params=headers, auth_settings=["BearerToken"]
    )
    try:
        resp = api.call_api(m, url, header_params=hdrs, body=body, _request_timeout=(min(left, 10.0), left))
        return resp.status, resp.read()
    except urllib3.exceptions.HTTPError as e:
        raise KubestrataError(f"cannot reach the API server {api.configuration.host}: {_why(e)}") from None
    except Exception as e:
        raise KubestrataError(f"cannot talk to the API server: {getattr(e, 'reason', None) or e}") from None


def _path(kind: str, namespace: str, name: str = "") -> str:
    if kind == "PolicyReport":
        base = (
            f"{GROUP_PATH}/namespaces/{quote(namespace, safe='')}/policyreports"
            if namespace
            else (f"{GROUP_PATH}/policyreports")
        )
    else:
        base = f"{GROUP_PATH}/clusterpolicyreports"
    return f"{base}/{quote(name, safe='')}" if name else base


def _check(status: int, body: bytes, what: str) -> None:
    if status == 404:
        raise KubestrataError(
            f"cannot {what}: the PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed in the cluster "
            f"({_status_message(body) or 'not found'})"
        )
    if status >= 300:
        raise KubestrataError(f"cannot {what}: HTTP {status}: {_status_message(body) or 'no message'}")


def write_reports(
    reports: list[dict[str, Any]],
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    timeout: float = 60.0,
) -> WriteSummary:
    """Apply every report; delete owned reports not among them (only in ``namespace`` when given)."""
    api = _api_client(kubeconfig, context)
    deadline = time.monotonic() + timeout
    out = WriteSummary()
    written: set[tuple[str, str, str]] = set()
    for r in reports:
        kind, meta = r["kind"], r["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        label = f"{kind}/{ns + '/' if ns else ''}{name}"
        status, body = _request(
            api,
            "PATCH",
            _path(kind, ns, name),
            deadline,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=orjson.dumps(r),
            content_type="application/apply-patch+yaml",
        )
        _check(status, body, f"apply {label}")
        written.add((kind, ns, name))
        out.applied.append(label)
    selector = [("labelSelector", f"{MANAGED_BY_LABEL}={MANAGED_BY}")]
    for kind in ("PolicyReport", "ClusterPolicyReport"):
        status, body = _request(api, "GET", _path(kind, namespace or ""), deadline, query=selector)
        _check(status, body, f"list {kind}s")
        for item in orjson.loads(body).get("items") or []:
            meta = item.get("metadata") or {}
            ns, name = meta.get("namespace", "") if kind == "PolicyReport" else "", meta.get("name", "")
            if (kind, ns, name) in written or (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY:
                continue
            status, body = _request(api, "DELETE", _path(kind, ns, name), deadline)
            if status == 404:  # deleted meanwhile
                continue
            _check(status, body, f"delete {kind} {ns + '/' if ns else ''}{name}")
            out.deleted.append(f"{kind}/{ns + '/' if ns else ''}{name}")
    return out
