"""The rotation plan (a step per node) and what planning and execution read of Nodes, Pods and
PodDisruptionBudgets: node group, readiness, evictability, and a budget's allowed disruptions (the
disruption controller's arithmetic)."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

from kubestrata.kube.selectors import LabelSelector

ANNOTATION = "kubestrata.io/rotation"
GROUP_LABELS = ("eks.amazonaws.com/nodegroup", "karpenter.sh/nodepool", "alpha.eksctl.io/nodegroup-name")
ZONE_LABEL = "topology.kubernetes.io/zone"
AUTO_MODE_LABEL = "eks.amazonaws.com/compute-type"


def meta_of(o: dict[str, Any]) -> dict[str, Any]:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def labels_of(o: dict[str, Any]) -> dict[str, str]:
    lab = meta_of(o).get("labels")
    return {str(k): str(v) for k, v in lab.items()} if isinstance(lab, dict) else {}


def node_group(node: dict[str, Any]) -> str | None:
    lab = labels_of(node)
    for key in GROUP_LABELS:
        if lab.get(key):
            return f"{key.split('/')[0].split('.')[0]}:{lab[key]}"
    return None


def node_ready(node: dict[str, Any]) -> bool:
    conds = (node.get("status") or {}).get("conditions") or []
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def node_schedulable(node: dict[str, Any]) -> bool:
    return not (node.get("spec") or {}).get("unschedulable")


def pod_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def evictable(pod: dict[str, Any]) -> bool:
    """What ``kubectl drain`` evicts: not a DaemonSet pod, not a mirror (static) pod, not finished."""
    meta = meta_of(pod)
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return False
    if any(isinstance(o, dict) and o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


@dataclass
class Budget:
    namespace: str
    name: str
    selector: LabelSelector
    min_available: Any = None
    max_unavailable: Any = None
    pods: list[str] = field(default_factory=list)  # "ns/name" of matching pods
    healthy: int = 0

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def desired_healthy(self, expected: int | None = None) -> int:
        """The disruption controller's desiredHealthy (pkg/controller/disruption): minAvailable (an int
        or a percentage of expected pods, rounded up), else expected - maxUnavailable (a percentage
        rounded up); expected = the matching pods."""
        n = len(self.pods) if expected is None else expected
        if self.min_available is not None:
            return _scaled(self.min_available, n)
        if self.max_unavailable is not None:
            return max(0, n - _scaled(self.max_unavailable, n))
        return n  # neither set: the API rejects it; be conservative

    def allowed(self) -> int:
        return max(0, self.healthy - self.desired_healthy())

    def never_allows(self) -> bool:
        """No eviction can ever pass: desiredHealthy is every pod it selects."""
        return bool(self.pods) and self.desired_healthy() >= len(self.pods)


def _scaled(value: Any, n: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        try:
            return math.ceil(float(value[:-1]) * n / 100)
        except ValueError:
            return n
    try:
        return int(value)
    except (TypeError, ValueError):
        return n


@dataclass
class NodeStep:
    node: str
    group: str
    zone: str
    age_days: float
    created: str
    evict: list[str] = field(default_factory=list)
    waits: list[str] = field(default_factory=list)  # budgets that will make evictions wait
    blocked: list[str] = field(default_factory=list)  # budgets that never allow an eviction
    resume: str | None = None  # phase found in the node's annotation
    provider_id: str = ""  # spec.providerID (aws:///ZONE/i-...)
    karpenter: bool = False  # Karpenter terminates the instance itself when the Node is deleted

    @property
    def instance_id(self) -> str | None:
        m = re.match(r"^aws:///[^/]*/(i-[0-9a-f]+)$", self.provider_id)
        return m.group(1) if m else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "group": self.group,
            "zone": self.zone,
            "ageDays": round(self.age_days, 1),
            "created": self.created,
            "evict": self.evict,
            "waits": self.waits,
            "blocked": self.blocked,
            "resume": self.resume,
        }


@dataclass
class RotationPlan:
    max_age: dt.timedelta
    steps: list[NodeStep]
    skipped: list[dict[str, str]]  # already rotated by Karpenter / Auto Mode, or too young
    groups: dict[str, dict[str, int]]  # group -> {"ready": n, "minHealthy": m}
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "maxAgeDays": round(self.max_age.total_seconds() / 86400, 3),
            "steps": [s.to_dict() for s in self.steps],
            "skipped": self.skipped,
            "groups": self.groups,
            "notes": self.notes,
        }
