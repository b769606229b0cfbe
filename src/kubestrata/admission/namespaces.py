"""Namespace labels for admission (they select the Pod Security level).

Two sources, which combine: a static file of Namespace objects (read once at start and on reload;
for clusters whose namespace labels are managed in Git, and for tests), and a live lookup through the
official kubernetes client (in-cluster service account or a kubeconfig), cached for ``cache_ttl``
seconds. The static file wins when both know a namespace. A namespace neither knows gets only the
``kubernetes.io/metadata.name`` label the API server sets on every namespace (so no PSS labels:
the configured defaults apply); a live lookup that fails is an error, never "no labels".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from kubestrata.errors import InputError
from kubestrata.kube.cluster import NAMESPACE_NAME_LABEL
from kubestrata.kube.loader import load_paths
from kubestrata.kube.watch import ListWatch

log = logging.getLogger("kubestrata.admission.namespaces")


class NamespaceLookupError(RuntimeError):
    pass


class NamespaceLookup(Protocol):
    async def labels(self, namespace: str) -> dict[str, str]: ...


class StaticNamespaces:
    def __init__(self, namespaces: dict[str, dict[str, str]] | None = None) -> None:
        self._labels = dict(namespaces or {})

    @classmethod
    def from_file(cls, path: str | Path) -> StaticNamespaces:
        loaded = load_paths([str(path)])
        if loaded.errors:
            raise loaded.errors[0]
        out: dict[str, dict[str, str]] = {}
        for o in loaded.objects:
            if o.kind != "Namespace":
                continue
            if not o.name:
                raise InputError("Namespace without metadata.name", file=str(path), field="metadata.name")
            out[o.name] = {str(k): str(v) for k, v in o.labels.items()}
        return cls(out)

    def known(self, namespace: str) -> dict[str, str] | None:
        lab = self._labels.get(namespace)
        if lab is None:
            return None
        return {NAMESPACE_NAME_LABEL: namespace, **lab}

    async def labels(self, namespace: str) -> dict[str, str]:
        return self.known(namespace) or {NAMESPACE_NAME_LABEL: namespace}


class LiveNamespaces:
    """Reads namespaces through the kubernetes client in a worker thread, with a TTL cache bounded to
    ``max_entries`` (least recently used dropped first) and at most one GET in flight per namespace:
    concurrent reviews in one namespace share the answer, so a burst costs the API server one call."""

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        cache_ttl: float = 30.0,
        timeout: float = 2.0,
        max_entries: int = 4096,
        api: Any = None,
    ) -> None:
        self._ttl = cache_ttl
        self._timeout = timeout
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[dict[str, str]]] = {}
        self.gets = 0
        # filled by a NamespaceWatch: every namespace's labels, current while ``synced``
        self.watched: dict[str, dict[str, str]] = {}
        self.synced = False
        self._api = api if api is not None else self._client(kubeconfig, context)

    @staticmethod
    def _client(kubeconfig: str | None, context: str | None) -> Any:
        from kubernetes import client, config

        try:
            if kubeconfig or context:
                config.load_kube_config(config_file=kubeconfig, context=context)
            else:
                try:
                    config.load_incluster_config()
                except config.ConfigException:
                    config.load_kube_config()
        except Exception as e:  # noqa: BLE001 - kubernetes raises several types for bad configs
            raise InputError(
                f"cannot configure the namespace lookup: {e}", field="admission.namespaces"
            ) from None
        return client.CoreV1Api()

    def _read(self, namespace: str) -> dict[str, str] | None:
        from kubernetes.client.exceptions import ApiException

        self.gets += 1
        try:
            ns = self._api.read_namespace(namespace, _request_timeout=self._timeout)
        except ApiException as e:
            if e.status == 404:
                return None
            raise NamespaceLookupError(f"namespace {namespace!r}: API error {e.status}") from None
        except Exception as e:  # noqa: BLE001 - connection errors of every kind
            raise NamespaceLookupError(f"namespace {namespace!r}: {type(e).__name__}") from None
        labels = getattr(getattr(ns, "metadata", None), "labels", None) or {}
        return {str(k): str(v) for k, v in labels.items()}

    async def labels(self, namespace: str) -> dict[str, str]:
        if self.synced:  # the watch holds every namespace: no API call at all
            return {NAMESPACE_NAME_LABEL: namespace, **self.watched.get(namespace, {})}
        now = time.monotonic()
        hit = self._cache.get(namespace)
        if hit and now - hit[0] < self._ttl:
            self._cache.move_to_end(namespace)
            return hit[1]
        pending = self._inflight.get(namespace)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._inflight[namespace] = fut
        try:
            found = await asyncio.wait_for(asyncio.to_thread(self._read, namespace), self._timeout + 1)
            labels = {NAMESPACE_NAME_LABEL: namespace, **(found or {})}
            self._cache[namespace] = (now, labels)
            self._cache.move_to_end(namespace)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
            fut.set_result(labels)
            return labels
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: waiters get it, nobody else needs to
            raise
        finally:
            del self._inflight[namespace]


class CombinedNamespaces:
    def __init__(self, static: StaticNamespaces | None, live: LiveNamespaces | None) -> None:
        self.static = static
        self.live = live

    async def labels(self, namespace: str) -> dict[str, str]:
        if self.static is not None:
            known = self.static.known(namespace)
            if known is not None:
                return known
        if self.live is not None:
            return await self.live.labels(namespace)
        return {NAMESPACE_NAME_LABEL: namespace}


class NamespaceWatch(ListWatch):
    """Keeps ``LiveNamespaces.watched`` current with a list + watch of namespaces (labels only), so
    admission reads labels from memory. While the watch is healthy (``synced``) lookups make no API
    call; when it fails, lookups fall back to the bounded TTL cache and single GETs until a new list
    succeeds. A cluster with more namespaces than ``max_entries`` is not mirrored (the memory bound
    holds): the TTL cache serves it."""

    thread_name = "kubestrata-namespace-watch"

    def __init__(
        self, live: LiveNamespaces, *, watch_timeout: int = 300, backoff: tuple[float, float] = (0.5, 30)
    ):
        super().__init__(watch_timeout=watch_timeout, backoff=backoff)
        self.live = live
        self.events = 0

    @staticmethod
    def _labels(obj: Any) -> tuple[str | None, dict[str, str]]:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if not isinstance(meta, dict):
            return None, {}
        labels = meta.get("labels") or {}
        return meta.get("name"), {str(k): str(v) for k, v in labels.items()} if isinstance(
            labels, dict
        ) else {}

    def request(self, **kwargs: Any) -> Any:
        return self.live._api.list_namespace(**kwargs)

    def needs_list(self) -> bool:
        return self.resource_version is None or not self.live.synced

    def list_once(self) -> None:
        resp = self.request(_preload_content=False, _request_timeout=(10, 60))
        try:
            doc = json.loads(resp.data)
        finally:
            resp.release_conn()
        items = doc.get("items") or []
        if len(items) > self.live._max:
            self.live.synced = False
            raise RuntimeError(f"{len(items)} namespaces: over max_entries, not mirrored")
        watched = {}
        for it in items:
            name, labels = self._labels(it)
            if name:
                watched[name] = labels
        self.live.watched = watched
        self.resource_version = str((doc.get("metadata") or {}).get("resourceVersion") or "") or None
        self.live.synced = True

    def on_event(self, typ: Any, obj: Any) -> None:
        if typ == "ERROR":
            self.raise_error_event(obj)
        name, labels = self._labels(obj)
        self.events += 1
        if name and typ in ("ADDED", "MODIFIED"):
            if name not in self.live.watched and len(self.live.watched) >= self.live._max:
                self.live.synced = False  # over the bound: back to GETs after a relist
                raise RuntimeError("namespaces over max_entries")
            self.live.watched[name] = labels
        elif name and typ == "DELETED":
            self.live.watched.pop(name, None)

    def on_failure(self, error: Exception, status: int | None) -> None:
        self.live.synced = False
        if status is not None:
            log.warning("namespace watch failed", extra={"event": "namespace_watch_error", "status": status})
        else:
            log.warning(
                "namespace watch failed",
                extra={"event": "namespace_watch_error", "error_type": type(error).__name__},
            )

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.live.synced = False
        super().stop(timeout)
