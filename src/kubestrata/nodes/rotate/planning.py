"""The rotation plan from a cluster's Nodes, Pods, PodDisruptionBudgets and Karpenter NodePools
(pure: no I/O)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from kubestrata.errors import InputError, KubestrataError
from kubestrata.kube.objects import parse_time
from kubestrata.kube.selectors import LabelSelector
from kubestrata.nodes.rotate.model import (
    ANNOTATION,
    AUTO_MODE_LABEL,
    GROUP_LABELS,
    ZONE_LABEL,
    Budget,
    NodeStep,
    RotationPlan,
    evictable,
    labels_of,
    meta_of,
    node_group,
    node_ready,
    node_schedulable,
    pod_ready,
)


def parse_age(text: str) -> dt.timedelta:
    """``21d``, ``36h``, ``90m``, ``2w``, or a combination (``1d12h``)."""
    m = re.fullmatch(r"\s*((?:\d+(?:\.\d+)?[wdhms]\s*)+)\s*", text or "")
    if not m:
        raise KubestrataError(f"--max-age {text!r}: expected a duration such as 21d, 36h or 1d12h")
    unit = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    seconds = sum(float(n) * unit[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([wdhms])", m.group(1)))
    if seconds <= 0:
        raise KubestrataError(f"--max-age {text!r}: must be positive")
    return dt.timedelta(seconds=seconds)


def budgets(
    pdbs: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]]
) -> tuple[list[Budget], dict[str, list[Budget]]]:
    """Budgets with their pods and current health, and pod "ns/name" -> budgets covering it. Pods with
    the same namespace and labels share one selector evaluation (replicas of one workload)."""
    by_ns: dict[str, list[Budget]] = defaultdict(list)
    out: list[Budget] = []
    for p in pdbs:
        meta, spec = meta_of(p), p.get("spec") or {}
        sel = spec.get("selector")
        try:
            parsed = LabelSelector.parse(sel)
        except InputError:  # a malformed selector matches nothing, as the API server would reject it
            parsed = LabelSelector.parse(None)
        b = Budget(
            str(meta.get("namespace") or "default"),
            str(meta.get("name") or ""),
            parsed,
            spec.get("minAvailable"),
            spec.get("maxUnavailable"),
        )
        by_ns[b.namespace].append(b)
        out.append(b)
    of_pod: dict[str, list[Budget]] = {}
    cache: dict[tuple[str, frozenset[tuple[str, str]]], list[Budget]] = {}
    for pod in pods:
        meta = meta_of(pod)
        ns = str(meta.get("namespace") or "default")
        if ns not in by_ns or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        labels = labels_of(pod)
        key = (ns, frozenset(labels.items()))
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = [b for b in by_ns[ns] if b.selector.matches(labels)]
        if not hit:
            continue
        ref = f"{ns}/{meta.get('name')}"
        of_pod[ref] = hit
        ready = pod_ready(pod)
        for b in hit:
            b.pods.append(ref)
            if ready:
                b.healthy += 1
    return out, of_pod


def karpenter_expiry(nodepools: Iterable[dict[str, Any]]) -> dict[str, str]:
    """NodePool name -> expireAfter, for NodePools that expire their nodes (not "Never")."""
    out = {}
    for np in nodepools:
        spec = ((np.get("spec") or {}).get("template") or {}).get("spec") or {}
        exp = spec.get("expireAfter")
        if exp is None:
            exp = (np.get("spec") or {}).get("disruption", {}).get("expireAfter")  # v1beta1
        if isinstance(exp, str) and exp and exp != "Never":
            out[str(meta_of(np).get("name"))] = exp
    return out


def plan(
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    pdbs: list[dict[str, Any]],
    max_age: dt.timedelta,
    now: dt.datetime,
    nodepools: Iterable[dict[str, Any]] = (),
    min_healthy: dict[str, int] | None = None,
) -> RotationPlan:
    """The rotation plan. ``min_healthy``: group -> minimum Ready nodes (default: the group's Ready
    count minus one, a managed node group's default maxUnavailable of 1)."""
    expiring = karpenter_expiry(nodepools)
    skipped: list[dict[str, str]] = []
    ready: dict[str, int] = defaultdict(int)
    candidates: list[tuple[dt.datetime, dict[str, Any]]] = []
    ungrouped: list[str] = []
    for n in nodes:
        name = str(meta_of(n).get("name"))
        lab = labels_of(n)
        g = node_group(n)
        if g and node_ready(n) and node_schedulable(n):
            ready[g] += 1
        if lab.get(AUTO_MODE_LABEL) == "auto":
            skipped.append({"node": name, "reason": "EKS Auto Mode rotates its nodes (21 days at most)"})
            continue
        pool = lab.get("karpenter.sh/nodepool")
        if pool and pool in expiring:
            skipped.append(
                {
                    "node": name,
                    "reason": f"Karpenter NodePool {pool} expires nodes (expireAfter {expiring[pool]})",
                }
            )
            continue
        created = parse_time(meta_of(n).get("creationTimestamp"))
        ann = (meta_of(n).get("annotations") or {}).get(ANNOTATION)
        if created is None:
            skipped.append({"node": name, "reason": "no creationTimestamp"})
            continue
        if now - created <= max_age and not ann:
            continue
        if g is None:
            ungrouped.append(name)
        candidates.append((created, n))
    if ungrouped:
        raise KubestrataError(
            f"cannot tell the node group of {len(ungrouped)} node(s) ({', '.join(sorted(ungrouped)[:5])}): no "
            f"{' / '.join(GROUP_LABELS)} label; refusing to rotate without knowing each group's minimum"
        )

    on_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pods:
        nn = (p.get("spec") or {}).get("nodeName")
        if nn:
            on_node[str(nn)].append(p)
    wanted = {str(meta_of(n).get("name")) for _, n in candidates}
    _, of_pod = budgets(pdbs, pods)

    mins = dict(min_healthy or {})
    groups = {g: {"ready": c, "minHealthy": mins.get(g, max(0, c - 1))} for g, c in ready.items()}

    def step(created: dt.datetime, n: dict[str, Any]) -> NodeStep:
        name = str(meta_of(n).get("name"))
        lab = labels_of(n)
        ann = (meta_of(n).get("annotations") or {}).get(ANNOTATION)
        phase = None
        if ann:
            try:
                phase = json.loads(ann).get("phase")
            except (ValueError, AttributeError):
                phase = "unknown"
        s = NodeStep(
            name,
            node_group(n) or "?",
            lab.get(ZONE_LABEL, "?"),
            (now - created).total_seconds() / 86400,
            created.isoformat().replace("+00:00", "Z"),
            resume=phase,
            provider_id=str((n.get("spec") or {}).get("providerID") or ""),
            karpenter="karpenter.sh/nodepool" in lab,
        )
        per_budget: dict[str, int] = defaultdict(int)
        seen: dict[str, Budget] = {}
        for p in on_node.get(name, []):
            if not evictable(p):
                continue
            ref = f"{meta_of(p).get('namespace') or 'default'}/{meta_of(p).get('name')}"
            s.evict.append(ref)
            for b in of_pod.get(ref, []):
                per_budget[b.ref] += 1
                seen[b.ref] = b
        for ref, count in sorted(per_budget.items()):
            b = seen[ref]
            if b.never_allows():
                s.blocked.append(
                    f"PodDisruptionBudget {ref} needs {b.desired_healthy()} of its {len(b.pods)} pods healthy: "
                    "no eviction can pass"
                )
            elif count > b.allowed():
                s.waits.append(
                    f"PodDisruptionBudget {ref} allows {b.allowed()} disruption(s) now; {count} of its pods run here"
                )
        return s

    # batches of (group, zone), ordered by their oldest node; nodes already in progress first
    batches: dict[tuple[str, str], list[tuple[dt.datetime, dict[str, Any]]]] = defaultdict(list)
    for created, n in candidates:
        batches[(node_group(n) or "?", labels_of(n).get(ZONE_LABEL, "?"))].append((created, n))
    order = sorted(
        batches.values(),
        key=lambda b: (
            not any((meta_of(n).get("annotations") or {}).get(ANNOTATION) for _, n in b),
            min(c for c, _ in b),
        ),
    )
    steps: list[NodeStep] = []
    for b in order:
        b.sort(key=lambda cn: (not (meta_of(cn[1]).get("annotations") or {}).get(ANNOTATION), cn[0]))
        steps.extend(step(c, n) for c, n in b)
    notes = []
    if wanted and not pdbs:
        notes.append("no PodDisruptionBudgets in the cluster: evictions are limited by nothing")
    return RotationPlan(max_age, steps, skipped, groups, notes)
