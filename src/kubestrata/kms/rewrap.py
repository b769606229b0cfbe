"""Rewrite every Secret so the API server stores it under the current key (after a KMS rotation).

This is the documented ``kubectl get secrets --all-namespaces -o json | kubectl replace -f -``: read
each Secret and PUT it back unchanged with its resourceVersion. The API server re-encrypts data
whose key_id is stale even when the object is unchanged. A 409 Conflict means another writer
replaced the Secret after we read it, which already re-encrypted it; a 404 means it was deleted.
Anything else (forbidden, server errors) is left over, listed by name, and a second run retries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from kubestrata.errors import KubestrataError

PAGE_SIZE = 500
WORKERS = 4


@dataclass
class RewrapReport:
    total: int = 0
    rewritten: int = 0
    changed_meanwhile: int = 0  # 409: another writer re-encrypted it
    gone: int = 0  # 404: deleted since listed
    left: list[tuple[str, str]] = field(default_factory=list)  # (namespace/name, why)
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.rewritten + self.changed_meanwhile + self.gone

    def to_doc(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "rewritten": self.rewritten,
            "changedMeanwhile": self.changed_meanwhile,
            "gone": self.gone,
            "left": [{"secret": n, "reason": r} for n, r in self.left],
            "seconds": round(self.seconds, 3),
        }


def _call(
    api: Any, method: str, path: str, query: list[tuple[str, Any]], body: Any = None
) -> tuple[int, bytes]:
    import urllib3

    m, url, headers, _body, _post = api.param_serialize(
        method,
        path,
        query_params=query,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    try:
        resp = api.call_api(m, url, header_params=headers, body=_body, _request_timeout=(10.0, 60.0))
        data = resp.read()
    except urllib3.exceptions.HTTPError as e:
        raise KubestrataError(f"cannot reach the API server: {e}") from None
    except Exception as e:  # ApiException(status=0) for TLS errors and the like
        raise KubestrataError(f"cannot talk to the API server: {getattr(e, 'reason', None) or e}") from None
    return resp.status, data


def _message(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip()
    return doc.get("message", "") if isinstance(doc, dict) else ""


def list_secrets(api: Any, namespace: str | None = None) -> list[dict[str, Any]]:
    """Every Secret (or those of one namespace), page by page, as the API server returns them."""
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets" if namespace else "/api/v1/secrets"
    items: list[dict[str, Any]] = []
    token = None
    while True:
        query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)] + ([("continue", token)] if token else [])
        status, body = _call(api, "GET", path, query)
        if status in (401, 403):
            raise KubestrataError(f"cannot list secrets (HTTP {status}): {_message(body)}")
        if status == 410 and token:
            items, token = [], None  # continue token expired: start over
            continue
        if status != 200:
            raise KubestrataError(f"listing secrets failed (HTTP {status}): {_message(body)}")
        doc = orjson.loads(body)
        for item in doc.get("items") or []:
            items.append({"apiVersion": "v1", "kind": "Secret", **item})
        token = (doc.get("metadata") or {}).get("continue")
        if not token:
            return items


def rewrap_secrets(
    api: Any,
    namespace: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int = WORKERS,
) -> RewrapReport:
    """Replace every Secret with itself; report what was done and what is left."""
    t0 = time.monotonic()
    secrets = list_secrets(api, namespace)
    report = RewrapReport(total=len(secrets))

    def replace(obj: dict[str, Any]) -> tuple[str, int, str]:
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace", "default"), meta.get("name", "")
        path = f"/api/v1/namespaces/{quote(ns, safe='')}/secrets/{quote(name, safe='')}"
        status, body = _call(api, "PUT", path, [], obj)
        return f"{ns}/{name}", status, "" if status == 200 else _message(body)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for n, (ref, status, message) in enumerate(pool.map(replace, secrets), 1):
            if status == 200:
                report.rewritten += 1
            elif status == 409:
                report.changed_meanwhile += 1
            elif status == 404:
                report.gone += 1
            else:
                report.left.append((ref, f"HTTP {status}: {message}".rstrip(": ")))
            if progress:
                progress(n, report.total)
    report.seconds = time.monotonic() - t0
    return report
