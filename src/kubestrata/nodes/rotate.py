"""Age-based node rotation: the plan (pure) and its execution against a live API server.

Plan: nodes older than ``--max-age``, oldest first, one (node group, zone) batch at a time and one node
in flight, never taking a group below its minimum healthy count. Nodes that Karpenter NodePools with
``expireAfter`` or EKS Auto Mode already rotate are reported and left alone. For every node the plan lists
the pods to evict (DaemonSet and mirror pods stay, as ``kubectl drain`` leaves them) and the
PodDisruptionBudgets that govern them, with how many disruptions each allows now; a budget that can
never allow one (``minAvailable`` equal to its pods, ``maxUnavailable: 0``) blocks the node.

Execution, per node: annotate and cordon; evict each pod through the Eviction API (policy/v1) -- a 429
(the budget does not allow it yet) waits and retries, other errors retry too, and a pod that cannot be
evicted within the eviction timeout stops the run there (it never skips ahead, never deletes a pod);
wait until the evicted pods are gone; delete the Node object; wait until the group has its ready count
back (replacement capacity). Progress lives on the nodes themselves (annotation
``kubestrata.io/rotation``), so a rerun resumes nodes already cordoned or drained before starting others.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from kubestrata.errors import InputError, KubestrataError
from kubestrata.kube.selectors import LabelSelector

ANNOTATION = "kubestrata.io/rotation"
GROUP_LABELS = ("eks.amazonaws.com/nodegroup", "karpenter.sh/nodepool", "alpha.eksctl.io/nodegroup-name")
ZONE_LABEL = "topology.kubernetes.io/zone"
AUTO_MODE_LABEL = "eks.amazonaws.com/compute-type"


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


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _meta(o: dict[str, Any]) -> dict[str, Any]:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def _labels(o: dict[str, Any]) -> dict[str, str]:
    lab = _meta(o).get("labels")
    return {str(k): str(v) for k, v in lab.items()} if isinstance(lab, dict) else {}


def node_group(node: dict[str, Any]) -> str | None:
    lab = _labels(node)
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
    meta = _meta(pod)
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return False
    if any(isinstance(o, dict) and o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


# --- PodDisruptionBudgets -------------------------------------------------------------------------
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


def budgets(
    pdbs: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]]
) -> tuple[list[Budget], dict[str, list[Budget]]]:
    """Budgets with their pods and current health, and pod "ns/name" -> budgets covering it. Pods with
    the same namespace and labels share one selector evaluation (replicas of one workload)."""
    by_ns: dict[str, list[Budget]] = defaultdict(list)
    out: list[Budget] = []
    for p in pdbs:
        meta, spec = _meta(p), p.get("spec") or {}
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
        meta = _meta(pod)
        ns = str(meta.get("namespace") or "default")
        if ns not in by_ns or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        labels = _labels(pod)
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


# --- the plan -------------------------------------------------------------------------------------
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
class Plan:
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

    def render(self) -> str:
        lines = [
            f"rotation plan: {len(self.steps)} node(s) older than {self.max_age.total_seconds() / 86400:g} days, "
            "oldest first, one node group and zone at a time"
        ]
        for g, c in sorted(self.groups.items()):
            lines.append(f"  group {g}: {c['ready']} ready, keep at least {c['minHealthy']}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        for i, s in enumerate(self.steps, 1):
            inst = f", instance {s.instance_id}" if s.instance_id else ""
            head = f"{i}. node {s.node} (group {s.group}, zone {s.zone}{inst}, {s.age_days:.0f} days old)"
            if s.resume:
                head += f" -- resuming: already {s.resume}"
            lines.append(head)
            lines.append(f"   annotate {ANNOTATION} and cordon {s.node}")
            for p in s.evict:
                lines.append(f"   evict pod {p} (Eviction API; 429 = wait for its budget and retry)")
            for w in s.waits:
                lines.append(f"   will wait: {w}")
            for b in s.blocked:
                lines.append(f"   BLOCKED: {b}")
            lines.append(f"   wait until the evicted pods are gone, then delete node {s.node}")
            lines.append(f"   wait for a replacement node in group {s.group} to be Ready")
        for sk in self.skipped:
            lines.append(f"skip {sk['node']}: {sk['reason']}")
        return "\n".join(lines) + "\n"


def karpenter_expiry(nodepools: Iterable[dict[str, Any]]) -> dict[str, str]:
    """NodePool name -> expireAfter, for NodePools that expire their nodes (not "Never")."""
    out = {}
    for np in nodepools:
        spec = ((np.get("spec") or {}).get("template") or {}).get("spec") or {}
        exp = spec.get("expireAfter")
        if exp is None:
            exp = (np.get("spec") or {}).get("disruption", {}).get("expireAfter")  # v1beta1
        if isinstance(exp, str) and exp and exp != "Never":
            out[str(_meta(np).get("name"))] = exp
    return out


def plan(
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    pdbs: list[dict[str, Any]],
    max_age: dt.timedelta,
    now: dt.datetime,
    nodepools: Iterable[dict[str, Any]] = (),
    min_healthy: dict[str, int] | None = None,
) -> Plan:
    """The rotation plan. ``min_healthy``: group -> minimum Ready nodes (default: the group's Ready
    count minus one, a managed node group's default maxUnavailable of 1)."""
    expiring = karpenter_expiry(nodepools)
    skipped: list[dict[str, str]] = []
    ready: dict[str, int] = defaultdict(int)
    candidates: list[tuple[dt.datetime, dict[str, Any]]] = []
    ungrouped: list[str] = []
    for n in nodes:
        name = str(_meta(n).get("name"))
        lab = _labels(n)
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
        created = _time(_meta(n).get("creationTimestamp"))
        ann = (_meta(n).get("annotations") or {}).get(ANNOTATION)
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
    wanted = {str(_meta(n).get("name")) for _, n in candidates}
    _, of_pod = budgets(pdbs, pods)

    mins = dict(min_healthy or {})
    groups = {g: {"ready": c, "minHealthy": mins.get(g, max(0, c - 1))} for g, c in ready.items()}

    def step(created: dt.datetime, n: dict[str, Any]) -> NodeStep:
        name = str(_meta(n).get("name"))
        lab = _labels(n)
        ann = (_meta(n).get("annotations") or {}).get(ANNOTATION)
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
            ref = f"{_meta(p).get('namespace') or 'default'}/{_meta(p).get('name')}"
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
        batches[(node_group(n) or "?", _labels(n).get(ZONE_LABEL, "?"))].append((created, n))
    order = sorted(
        batches.values(),
        key=lambda b: (
            not any((_meta(n).get("annotations") or {}).get(ANNOTATION) for _, n in b),
            min(c for c, _ in b),
        ),
    )
    steps: list[NodeStep] = []
    for b in order:
        b.sort(key=lambda cn: (not (_meta(cn[1]).get("annotations") or {}).get(ANNOTATION), cn[0]))
        steps.extend(step(c, n) for c, n in b)
    notes = []
    if wanted and not pdbs:
        notes.append("no PodDisruptionBudgets in the cluster: evictions are limited by nothing")
    return Plan(max_age, steps, skipped, groups, notes)


# --- execution ------------------------------------------------------------------------------------
class RotationError(KubestrataError):
    """The run stopped: what happened, at which node; rerunning resumes from the node annotations."""


@dataclass
class Response:
    status: int
    body: Any


# A REST call: (method, path, query, body) -> Response
Requester = Callable[[str, str, list[tuple[str, str]] | None, Any], Response]


@dataclass
class Timing:
    poll: float = 2.0
    eviction_timeout: float = 600.0
    drain_timeout: float = 900.0
    replacement_timeout: float = 1200.0


@dataclass
class ClusterState:
    nodes: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    pdbs: list[dict[str, Any]]
    nodepools: list[dict[str, Any]]
    notes: list[str]


def _status_message(r: Response) -> str:
    if isinstance(r.body, dict):
        return str(r.body.get("message") or r.body.get("reason") or "")
    return str(r.body)[:200]


def _list(
    req: Requester, path: str, what: str, query: list[tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        q = list(query or []) + [("limit", "500")] + ([("continue", token)] if token else [])
        r = req("GET", path, q, None)
        if r.status != 200 or not isinstance(r.body, dict):
            raise RotationError(
                f"cannot list {what} (HTTP {r.status}: {_status_message(r)}); refusing to rotate without them"
            )
        items.extend(i for i in r.body.get("items") or [] if isinstance(i, dict))
        token = (r.body.get("metadata") or {}).get("continue")
        if not token:
            return items


def read_state(req: Requester) -> ClusterState:
    """Nodes, pods and PDBs (all required), and Karpenter NodePools (optional)."""
    nodes = _list(req, "/api/v1/nodes", "nodes")
    pods = _list(req, "/api/v1/pods", "pods")
    pdbs = _list(req, "/apis/policy/v1/poddisruptionbudgets", "PodDisruptionBudgets")
    notes = []
    r = req("GET", "/apis/karpenter.sh/v1/nodepools", None, None)
    if r.status == 200 and isinstance(r.body, dict):
        nodepools = [i for i in r.body.get("items") or [] if isinstance(i, dict)]
    else:
        nodepools = []
        if r.status != 404:
            notes.append(f"Karpenter NodePools not readable (HTTP {r.status}): expireAfter not detected")
    return ClusterState(nodes, pods, pdbs, nodepools, notes)


class Rotator:
    """Executes a plan step by step against the API server (``req``), logging each action."""

    def __init__(
        self,
        req: Requester,
        log: Callable[[str], None],
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        run_id: str | None = None,
        terminate: Callable[[str], str] | None = None,
    ) -> None:
        self.req = req
        self.log = log
        self.t = timing or Timing()
        self.clock = clock
        self.sleep = sleep
        self.run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.terminate = terminate  # instance id -> what happened; for Auto Scaling group nodes

    # -- node operations
    def _annotate(self, node: str, phase: str, cordon: bool | None = None) -> None:
        value = json.dumps({"phase": phase, "run": self.run_id}, separators=(",", ":"))
        patch: dict[str, Any] = {"metadata": {"annotations": {ANNOTATION: value}}}
        if cordon is not None:
            patch["spec"] = {"unschedulable": cordon}
        r = self.req("PATCH", f"/api/v1/nodes/{quote(node, safe='')}", None, patch)
        if r.status != 200:
            raise RotationError(f"cannot mark node {node} {phase} (HTTP {r.status}: {_status_message(r)})")

    def _pods_on(self, node: str) -> list[dict[str, Any]]:
        return _list(
            req=self.req,
            path="/api/v1/pods",
            what=f"pods on {node}",
            query=[("fieldSelector", f"spec.nodeName={node}")],
        )

    def _evict(self, ns: str, name: str, node: str) -> None:
        deadline = self.clock() + self.t.eviction_timeout
        attempts = 0
        last = ""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": ns},
        }
        while True:
            attempts += 1
            r = self.req(
                "POST",
                f"/api/v1/namespaces/{quote(ns, safe='')}/pods/{quote(name, safe='')}/eviction",
                None,
                body,
            )
            if r.status in (200, 201):
                self.log(f"evicted pod {ns}/{name} from {node}")
                return
            if r.status == 404:
                self.log(f"pod {ns}/{name} is already gone")
                return
            last = f"HTTP {r.status}: {_status_message(r)}"
            if r.status == 429:
                if attempts == 1:
                    self.log(
                        f"eviction of {ns}/{name} must wait for its disruption budget ({_status_message(r)})"
                    )
            else:
                self.log(f"eviction of {ns}/{name} failed ({last}); retrying")
            if self.clock() >= deadline:
                raise RotationError(
                    f"stopped at node {node}: pod {ns}/{name} could not be evicted in "
                    f"{self.t.eviction_timeout:g}s ({attempts} attempts; last: {last}). The node stays cordoned; "
                    "fix the budget or the workload and rerun to resume"
                )
            self.sleep(self.t.poll)

    def _wait(self, what: str, done: Callable[[], bool], timeout: float, node: str) -> None:
        deadline = self.clock() + timeout
        while not done():
            if self.clock() >= deadline:
                raise RotationError(
                    f"stopped at node {node}: {what} did not happen within {timeout:g}s; rerun to resume"
                )
            self.sleep(self.t.poll)

    def _group_ready(self, group: str, exclude: str | None = None) -> int:
        nodes = _list(self.req, "/api/v1/nodes", "nodes")
        return sum(
            1
            for n in nodes
            if node_group(n) == group
            and node_ready(n)
            and node_schedulable(n)
            and _meta(n).get("name") != exclude
            and not (_meta(n).get("annotations") or {}).get(ANNOTATION)
        )

    # -- one node
    def rotate_node(self, step: NodeStep, min_healthy: int, baseline: int) -> None:
        node = step.node
        if step.resume not in ("cordoned", "drained"):
            others = self._group_ready(step.group, exclude=node)
            if others < min_healthy:
                self.log(
                    f"group {step.group} has {others} other ready node(s), below its minimum {min_healthy}: waiting"
                )
                self._wait(
                    f"group {step.group} reaching {min_healthy} other ready nodes",
                    lambda: self._group_ready(step.group, exclude=node) >= min_healthy,
                    self.t.replacement_timeout,
                    node,
                )
            self._annotate(node, "cordoned", cordon=True)
            self.log(f"cordoned node {node}")
        if step.resume != "drained":
            for p in self._pods_on(node):
                if evictable(p):
                    m = _meta(p)
                    self._evict(str(m.get("namespace") or "default"), str(m.get("name")), node)
            self._wait(
                f"pods leaving node {node}",
                lambda: not any(evictable(p) for p in self._pods_on(node)),
                self.t.drain_timeout,
                node,
            )
            self._annotate(node, "drained")
            self.log(f"drained node {node}")
        if self.terminate is not None and not step.karpenter:
            iid = step.instance_id
            if iid is None:
                raise RotationError(
                    f"stopped at node {node}: no EC2 instance id in its providerID {step.provider_id!r} "
                    "to terminate; the node stays cordoned and drained"
                )
            self.log(f"terminating instance {iid} of node {node}: {self.terminate(iid)}")
        r = self.req("DELETE", f"/api/v1/nodes/{quote(node, safe='')}", None, None)
        if r.status not in (200, 202, 404):
            raise RotationError(f"cannot delete node {node} (HTTP {r.status}: {_status_message(r)})")
        self.log(f"deleted node {node}")
        self._wait(
            f"a replacement node in group {step.group} becoming Ready",
            lambda: self._group_ready(step.group) >= baseline,
            self.t.replacement_timeout,
            node,
        )
        self.log(f"group {step.group} is back to {baseline} ready node(s)")

    def run(self, p: Plan) -> list[str]:
        """Rotate every step in order; stop at the first that fails. Returns the nodes rotated."""
        done = []
        for s in p.steps:
            if s.blocked:
                raise RotationError(f"stopped at node {s.node}: {s.blocked[0]}")
            g = p.groups.get(s.group, {"ready": 0, "minHealthy": 0})
            self.log(f"rotating node {s.node} (group {s.group}, zone {s.zone}, {s.age_days:.0f} days old)")
            # a node resumed while cordoned was not counted ready at planning time: its replacement is
            self.rotate_node(s, g["minHealthy"], baseline=g["ready"] + (1 if s.resume else 0))
            done.append(s.node)
        return done


def api_requester(
    kubeconfig: str | None, context: str | None, timeout: float = 30.0
) -> tuple[Requester, Any]:
    """A Requester over the official client's ApiClient (kubeconfig, exec plugins, in-cluster)."""
    import orjson
    import urllib3

    from kubestrata.kube.live import _api_client

    api = _api_client(kubeconfig, context)

    def req(method: str, path: str, query: list[tuple[str, str]] | None, body: Any) -> Response:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = (
                "application/merge-patch+json" if method == "PATCH" else "application/json"
            )
        m, url, hdrs, b, _ = api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            resp = api.call_api(m, url, header_params=hdrs, body=b, _request_timeout=(10.0, timeout))
            raw = resp.read()
        except urllib3.exceptions.HTTPError as e:
            raise RotationError(f"cannot reach the API server: {e}") from None
        except Exception as e:  # ApiException(status=0) for TLS errors and the like
            raise RotationError(f"cannot talk to the API server: {getattr(e, 'reason', None) or e}") from None
        try:
            doc = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            doc = raw.decode("utf-8", "replace")
        return Response(resp.status, doc)

    return req, api


def asg_terminator(region: str | None, profile: str | None, endpoint_url: str | None) -> Callable[[str], str]:
    """Terminate an instance in its Auto Scaling group without decrementing the desired capacity, so the
    group launches a replacement (what a managed node group does on its own updates)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.Session(profile_name=profile, region_name=region).client(
        "autoscaling", endpoint_url=endpoint_url
    )

    def terminate(instance_id: str) -> str:
        try:
            r = client.terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=False
            )
        except (BotoCoreError, ClientError) as e:
            raise RotationError(
                f"cannot terminate instance {instance_id} in its Auto Scaling group: {e}"
            ) from None
        act = r.get("Activity") or {}
        return str(act.get("Description") or act.get("StatusCode") or "terminating")

    return terminate
