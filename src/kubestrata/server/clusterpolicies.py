"""Cedar policies from ``cedar.k8s.aws/v1alpha1`` Policy objects in a live cluster, kept current by
list + watch with the official ``kubernetes`` client.

A thread lists ``policies.cedar.k8s.aws`` (cluster-scoped, as the reference project's CRD), hands the
set to the store's cluster tier, then watches from the list's resourceVersion. ADDED/MODIFIED/DELETED
events update the set and swap a new snapshot in atomically; a watch that ends (server timeout,
dropped connection) resumes from the last resourceVersion seen; a 410 Gone (history compacted) makes
it list again; any other error backs off exponentially (with jitter) and retries.

Each object is validated on its own when it arrives: one that does not parse or validate (or has no
``spec.content`` string) is rejected with an error naming the object, its resourceVersion and the
policy index, and the object's last good version (or nothing, for a new object) keeps serving. So a
broken edit never removes a working forbid, and one broken object never blocks changes to others.
``spec.validation`` is ignored: kubestrata always validates strictly against its schema.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kubestrata.authz.store import PolicyLoadError, PolicySource, PolicyStore
from kubestrata.kube.watch import ListWatch, resource_version
from kubestrata.server.metrics import Metrics

log = logging.getLogger("kubestrata.server.clusterpolicies")

GROUP, VERSION, PLURAL = "cedar.k8s.aws", "v1alpha1", "policies"


def _name(obj: Any) -> str | None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else None


class ClusterPolicyWatcher(ListWatch):
    """Keeps ``store``'s cluster tier equal to the Policy objects in the cluster (their last valid
    versions). ``on_ready`` is called once, after the first list has been applied."""

    def __init__(
        self,
        store: PolicyStore,
        metrics: Metrics,
        *,
        api_client: Callable[[], Any],
        on_ready: Callable[[], None] | None = None,
        watch_timeout: int = 300,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        super().__init__(watch_timeout=watch_timeout, backoff=backoff)
        self.store = store
        self.metrics = metrics
        self._api_client = api_client
        self._api: Any = None
        self._on_ready = on_ready
        self.good: dict[str, PolicySource] = {}
        self.ready = False
        self.rejected: dict[str, list[str]] = {}  # object name -> problems of its latest version

    # --- one object ---------------------------------------------------------------------------
    def _source(self, obj: dict[str, Any], name: str) -> tuple[PolicySource | None, list[str]]:
        origin = f"Policy/{name} (cluster, resourceVersion {resource_version(obj) or '?'})"
        spec = obj.get("spec")
        content = spec.get("content") if isinstance(spec, dict) else None
        if not isinstance(content, str):
            return None, [f"{origin}: spec.content must be a string of Cedar policies"]
        src = PolicySource(f"Policy/{name}", origin, content)
        problems = self.store.check_cluster_source(src)
        return (None, problems) if problems else (src, [])

    def _accept(self, obj: dict[str, Any], good: dict[str, PolicySource]) -> bool:
        """Validate one object into ``good``; a rejected one leaves its previous version there."""
        name = _name(obj)
        if name is None:
            self._reject("<unnamed>", ["a Policy object without metadata.name was skipped"])
            return False
        src, problems = self._source(obj, name)
        if src is None:
            self._reject(name, problems)
            return False
        self.rejected.pop(name, None)
        good[name] = src
        return True

    def _reject(self, name: str, problems: list[str]) -> None:
        self.rejected[name] = problems
        self.metrics.policy_reloads.labels("rejected").inc()
        log.error(
            "Policy object rejected; its previous version (if any) keeps serving",
            extra={"event": "policy_object_rejected", "policy": name, "error": "\n".join(problems)[:2000]},
        )

    def _apply(self, good: dict[str, PolicySource]) -> bool:
        try:
            self.store.set_cluster_sources([good[n] for n in sorted(good)])
        except PolicyLoadError as e:
            self.metrics.policy_reloads.labels("rejected").inc()
            log.error(
                "cluster policy set rejected; the previous set keeps serving",
                extra={"event": "policy_reload_rejected", "error": str(e)[:2000]},
            )
            return False
        self.good = good
        snap = self.store.snapshot
        self.metrics.policy_reloads.labels("applied").inc()
        self.metrics.policies_loaded.set(len(snap) if snap is not None else 0)
        log.info(
            "cluster policies applied",
            extra={"event": "policy_reloaded", "policies": len(snap) if snap else 0, "objects": len(good)},
        )
        return True

    # --- list and watch -----------------------------------------------------------------------
    thread_name = "kubestrata-policy-watch"

    def connect(self) -> None:
        if self._api is None:
            from kubernetes import client

            self._api = client.CustomObjectsApi(self._api_client())

    def request(self, **kwargs: Any) -> Any:
        return self._api.list_cluster_custom_object(GROUP, VERSION, PLURAL, **kwargs)

    def needs_list(self) -> bool:
        return self.resource_version is None or not self.ready

    def list_once(self) -> None:
        """List every Policy and replace the cluster tier with the valid ones."""
        resp = self.request(_request_timeout=(10, 60))
        good: dict[str, PolicySource] = {}
        names = set()
        for item in resp.get("items") or []:
            name = _name(item)
            if name is not None:
                names.add(name)
                if name in self.good:  # its last good version stands if the listed one is rejected
                    good[name] = self.good[name]
            self._accept(item, good)
        for gone in set(self.rejected) - names:
            self.rejected.pop(gone, None)
        if not self._apply(good):
            # each object passed on its own, so this is unexpected; never ready (or watching) on a
            # set that is not in the store: back off and list again
            raise RuntimeError("the listed cluster policy set was rejected")
        self.resource_version = str((resp.get("metadata") or {}).get("resourceVersion") or "") or None
        if not self.ready:
            self.ready = True
            if self._on_ready is not None:
                self._on_ready()

    def on_event(self, typ: Any, obj: Any) -> None:
        self.metrics.policy_watch_events.labels(str(typ)).inc()
        if typ == "ERROR":
            self.raise_error_event(obj)
        if not isinstance(obj, dict):
            return
        if typ in ("ADDED", "MODIFIED"):
            good = dict(self.good)
            if self._accept(obj, good):
                self._apply(good)
        elif typ == "DELETED":
            name = _name(obj)
            self.rejected.pop(name or "", None)
            if name in self.good:
                good = dict(self.good)
                del good[name]
                self._apply(good)

    def on_gone(self) -> None:
        self.metrics.policy_watch_restarts.labels("gone").inc()
        log.info("policy watch expired (410 Gone): listing again", extra={"event": "policy_relist"})

    def on_failure(self, error: Exception, status: int | None) -> None:
        self.metrics.policy_watch_restarts.labels("error").inc()
        if status is not None:
            reason = getattr(error, "reason", error)
            log.warning(
                "policy list/watch failed",
                extra={"event": "policy_watch_error", "status": status, "error": str(reason)[:500]},
            )
        else:
            log.warning(
                "policy list/watch failed",
                extra={
                    "event": "policy_watch_error",
                    "error_type": type(error).__name__,
                    "error": str(error)[:500],
                },
            )
