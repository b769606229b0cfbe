"""Build a ServerState from the config: engines, admission handlers, namespace lookup, watchers."""

from __future__ import annotations

import logging
from typing import Any

from kubestrata.admission.builtin import add_cedar, add_checks, add_mutations, add_pss, add_pss_fixes
from kubestrata.admission.namespaces import (
    CombinedNamespaces,
    LiveNamespaces,
    NamespaceWatch,
    StaticNamespaces,
)
from kubestrata.admission.registry import AdmissionRegistry
from kubestrata.errors import KubestrataError
from kubestrata.scan import select_checks
from kubestrata.server.app import ServerState
from kubestrata.server.config import FileConfig
from kubestrata.server.engines import CedarEngines, load_audit, load_cedar, load_pss
from kubestrata.server.metrics import Metrics
from kubestrata.server.policyfiles import PolicyFileWatcher

log = logging.getLogger("kubestrata.server")

_UNSET: Any = object()


def build_state(
    cfg: FileConfig,
    *,
    metrics: Metrics | None = None,
    cedar: CedarEngines | None = _UNSET,
    pss: Any = _UNSET,
    audit: Any = _UNSET,
    registry: AdmissionRegistry | None = None,
    namespaces: Any = None,
) -> ServerState:
    """Engines default to the real ones; tests pass their own (or None to leave one out)."""
    sc = cfg.serve
    state = ServerState(config=sc, metrics=metrics or Metrics())
    m = state.metrics

    cl = sc.policies.cluster
    if cedar is _UNSET:
        cluster_tier = (0 if cl.tier == "first" else len(sc.policies.dirs)) if cl.enabled else None
        cedar = (
            load_cedar(sc.policies.dirs, cluster_tier, sc.policies.deny_on_error)
            if sc.policies.dirs or cl.enabled
            else None
        )
    if cedar is not None:
        state.authorizer = cedar.authorizer
        m.policies_loaded.set(cedar.count)
        if sc.policies.dirs and cedar.store is not None:
            watcher = PolicyFileWatcher(sc.policies.dirs, cedar.reload, m, settle=sc.policies.settle_seconds)
            state.background.append(lambda: watcher.watch(sc.policies.reload_interval))
            state.policy_watcher = watcher
    # Ready once the initial set is loaded: an invalid initial set is an error before we listen.
    state.policies_loaded = True
    if cedar is not None and cl.enabled and getattr(cedar.store, "cluster_tier", None) is not None:
        # not ready until the watcher's first list is in the store
        state.policies_loaded = False
        state.cluster_policy_watcher = cluster_watcher(cedar.store, m, state, cl)
        state.background.append(state.cluster_policy_watcher.serve)

    reg = registry if registry is not None else AdmissionRegistry()
    adm = sc.admission
    reg.exempt_namespaces = set(adm.exempt_namespaces)
    on_error = adm.on_error.value
    if registry is None:
        if cedar is not None and adm.cedar:
            add_cedar(reg, cedar.admission, on_error=on_error)
        if adm.pss.enabled:
            engine = load_pss(adm.pss) if pss is _UNSET else pss
            if engine is not None:
                add_pss(reg, engine, on_error=on_error)
            else:
                log.warning(
                    "PSS engine not available: Pod Security admission is off", extra={"event": "pss_missing"}
                )
        checks = None
        if adm.checks.enabled or adm.mutations.fixes:
            # The scan's PSS checks judge a namespace from the snapshot's Namespace objects; at
            # admission the pss handler does that with the real namespace labels, so they would
            # only repeat it (or contradict it, with a synthesized unlabelled namespace).
            checks = [
                c
                for c in select_checks(adm.checks.include, adm.checks.exclude)
                if not c.meta.id.startswith("KS-PSS-")
            ]
        if adm.checks.enabled and checks:
            add_checks(reg, checks, cfg.scan.to_config())
        if adm.mutations.fixes:
            all_checks = select_checks()
            unknown = sorted(set(adm.mutations.fixes) - {c.meta.id for c in all_checks})
            if unknown:
                raise KubestrataError(
                    f"serve.admission.mutations.fixes: unknown check id(s) {', '.join(unknown)}"
                )
            add_mutations(
                reg, all_checks, cfg.scan.to_config(), adm.mutations.fixes, adm.mutations.operations
            )
        if adm.mutations.pss_level:
            add_pss_fixes(reg, adm.mutations.pss_level, include_flagged=adm.mutations.pss_include_flagged)
    state.registry = reg
    from kubestrata.identity.config import attach_identity

    attach_identity(state, sc.identity, add_handlers=registry is None)

    if namespaces is None:
        nc = adm.namespaces
        static = StaticNamespaces.from_file(nc.file) if nc.file else None
        live = (
            LiveNamespaces(
                kubeconfig=str(nc.kubeconfig) if nc.kubeconfig else None,
                context=nc.context,
                cache_ttl=nc.cache_ttl,
                timeout=nc.lookup_timeout,
                max_entries=nc.max_entries,
            )
            if nc.live
            else None
        )
        if live is not None and nc.watch:
            ns_watch = NamespaceWatch(live)
            state.background.append(ns_watch.serve)
        namespaces = CombinedNamespaces(static, live)
    state.namespaces = namespaces

    state.audit = load_audit(sc.audit, m) if audit is _UNSET else audit
    flush_loop = getattr(state.audit, "flush_periodically", None)
    if flush_loop is not None:
        state.background.append(flush_loop)
    return state


def cluster_watcher(store: Any, metrics: Metrics, state: ServerState, cl: Any) -> Any:
    """The list + watch of Policy objects; credentials as the live scan reads them."""
    from kubestrata.kube.live import _api_client
    from kubestrata.server.clusterpolicies import ClusterPolicyWatcher

    # made now so missing or broken credentials stop `serve` with a clear error (exit 2)
    client = _api_client(str(cl.kubeconfig) if cl.kubeconfig else None, cl.context)

    def ready() -> None:
        state.policies_loaded = True

    return ClusterPolicyWatcher(
        store,
        metrics,
        api_client=lambda: client,
        on_ready=ready,
        watch_timeout=cl.watch_timeout,
    )
