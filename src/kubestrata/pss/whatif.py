"""What would break: a proposed enforce label, a rollout across namespaces, a version bump.

PSA's own dry run (``kubectl label --dry-run=server ns ... enforce=...``) checks at most 3,000
pods for at most one second and names one pod per distinct reason list. Here every pod and every
top-level controller template is evaluated, offline, and results are grouped by owner (a pod's
controller, rolled up ReplicaSet -> Deployment and Job -> CronJob) so a team sees which workloads
to fix. The PSA warning text is reproduced as well (``psa_warnings``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from kubestrata.errors import InputError
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import CONTROLLER_KINDS
from kubestrata.pss.api import Level, LevelVersion, NamespacePolicy, Policy, Version
from kubestrata.pss.config import PodSecurityConfig
from kubestrata.pss.evaluate import pod_view
from kubestrata.pss.registry import PSSResult, bulk, effective_minor, run_checks
from kubestrata.pss.view import PodView


def _controller_ref(obj: KubeObject) -> tuple[str, str] | None:
    for ref in obj.metadata.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") and ref.get("kind") and ref.get("name"):
            return str(ref["kind"]), str(ref["name"])
    return None


def owner_of(obj: KubeObject, cluster: Cluster) -> tuple[str, str]:
    """(kind, name) of the top-level controller that owns obj, or obj itself.

    Follows controller ownerReferences through objects in the snapshot; a ReplicaSet that is not
    in the snapshot but is named <deployment>-<pod-template-hash> is attributed to that Deployment.
    """
    kind, name = obj.kind, obj.name
    current: KubeObject | None = obj
    for _ in range(4):  # Pod -> ReplicaSet -> Deployment; Pod -> Job -> CronJob
        ref = _controller_ref(current) if current is not None else None
        if ref is None:
            break
        kind, name = ref
        nxt = cluster.get(kind, obj.namespace, name)
        if nxt is None:
            h = current.labels.get("pod-template-hash") if current is not None else None
            if kind == "ReplicaSet" and isinstance(h, str) and name.endswith("-" + h):
                kind, name = "Deployment", name[: -len(h) - 1]
            break
        current = nxt
    return kind, name


@dataclass
class Entity:
    """A pod or a top-level controller, decoded once and evaluated at any level-version.

    Replicas of one workload have the same spec, so entities with the same PSS-relevant content
    (spec, AppArmor and seccomp annotations, spec path) share one decoded view and one result per
    level-version through ``shared``.
    """

    obj: KubeObject
    owner: tuple[str, str]
    view: PodView | None
    error: InputError | None = None
    shared: dict[tuple[Level, int], PSSResult] | None = None

    def evaluate(self, lv: LevelVersion) -> PSSResult:
        if self.view is None:
            return PSSResult(False, lv, [], None, self.error)
        if self.shared is None:
            return run_checks(self.view, lv)
        key = (lv.level, effective_minor(lv.version))
        r = self.shared.get(key)
        if r is None:
            r = self.shared[key] = run_checks(self.view, lv)
        return r if r.level_version == lv else r.relabelled(lv)


_RELEVANT_ANNOTATION_PREFIXES = (
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
)
_MAX_VARIANTS = 4  # distinct specs remembered per owner (a rollout in progress has two)


def _relevant(view: PodView) -> tuple[Any, ...]:
    """What PSS reads of a pod: its AppArmor and seccomp annotations and its spec."""
    ann = {k: v for k, v in view.annotations.items() if k.startswith(_RELEVANT_ANNOTATION_PREFIXES)}
    return (view.spec_path, ann, view.spec)


def _share_hint(obj: KubeObject) -> Any:
    """Pods of one controller usually share a spec: the controller identifies the candidates."""
    for ref in obj.metadata.get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return (obj.namespace, ref.get("uid") or "", ref.get("kind"), ref.get("name"))
    return None


def collect_entities(
    cluster: Cluster, namespace: str | None = None, config: PodSecurityConfig | None = None
) -> list[Entity]:
    """Pods, and controllers no other input controller owns; pods with an exempt runtimeClass are
    left out as PSA's namespace dry run leaves them out."""
    ex = config.exemptions if config else None
    out = []
    # per owner: (relevant content, shared results) of the distinct specs seen so far. Every pod
    # is still decoded and type-checked; equal content (deep ==) on top of exact types means the
    # checks would give the same answers, so replicas reuse them.
    variants: dict[Any, list[tuple[tuple[Any, ...], dict[tuple[Level, int], PSSResult]]]] = {}
    kinds = ("Pod", *sorted(CONTROLLER_KINDS))
    for kind in kinds:
        objs = cluster.of_kind(kind) if namespace is None else cluster.in_namespace(kind, namespace)
        for o in objs:
            if kind != "Pod":
                ref = _controller_ref(o)
                if ref is not None and cluster.get(ref[0], o.namespace, ref[1]) is not None:
                    continue  # judged through its owner
            try:
                view = pod_view(o)
            except InputError as e:
                out.append(Entity(o, owner_of(o, cluster), None, e))
                continue
            if ex is not None and ex.runtime_class(view.runtime_class):
                continue
            shared: dict[tuple[Level, int], PSSResult] | None = None
            hint = _share_hint(o)
            if hint is not None:
                content = _relevant(view)
                known = variants.setdefault(hint, [])
                for c, results in known:
                    if c == content:
                        shared = results
                        break
                else:
                    shared = {}
                    if len(known) < _MAX_VARIANTS:
                        known.append((content, shared))
            out.append(Entity(o, owner_of(o, cluster), view, None, shared))
    return out


@dataclass
class OwnerGroup:
    namespace: str
    kind: str
    name: str
    pods: list[str] = field(default_factory=list)  # denied pods
    template_denied: bool = False  # the controller's own pod template is denied
    reasons: dict[str, int] = field(default_factory=dict)  # forbidden reason list -> count
    example: str = ""  # one full PSA denial message
    fixes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "deniedPods": len(self.pods),
            "pods": sorted(self.pods),
            "templateDenied": self.template_denied,
            "reasons": self.reasons,
            "message": self.example,
        }


@dataclass
class NamespaceWhatIf:
    namespace: str
    level_version: LevelVersion
    exempt: bool
    pods: int
    pods_denied: int
    controllers: int
    controllers_denied: int
    groups: list[OwnerGroup]
    psa_warnings: list[str]
    invalid: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "policy": str(self.level_version),
            "exempt": self.exempt,
            "pods": self.pods,
            "podsDenied": self.pods_denied,
            "controllers": self.controllers,
            "controllersDenied": self.controllers_denied,
            "owners": [g.to_dict() for g in self.groups],
            "psaWarnings": self.psa_warnings,
            "invalid": self.invalid,
        }


def psa_namespace_warnings(
    namespace: str, lv: LevelVersion, denied: list[tuple[str, PSSResult]]
) -> list[str]:
    """admission.go EvaluatePodsInNamespace's warnings, without its 3,000-pod and 1 s limits."""
    if not denied:
        return []
    first: dict[str, tuple[str, int]] = {}
    for name, r in denied:
        w = r.forbidden_reason
        n, c = first.get(w, (name, 0))
        first[w] = (min(n, name), c + 1)
    lines = []
    for w, (name, count) in first.items():
        if count == 1:
            lines.append(f"{name}: {w}")
        elif count == 2:
            lines.append(f"{name} (and 1 other pod): {w}")
        else:
            lines.append(f"{name} (and {count - 1} other pods): {w}")
    lines.sort()
    return [
        f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level "{lv}"',
        *lines,
    ]


def what_if_namespace(
    namespace: str,
    entities: list[Entity],
    lv: LevelVersion,
    config: PodSecurityConfig | None = None,
    with_fixes: bool = False,
) -> NamespaceWhatIf:
    exempt = bool(config and config.exemptions.namespace(namespace))
    groups: dict[tuple[str, str], OwnerGroup] = {}
    denied_pods: list[tuple[str, PSSResult]] = []
    pods = pods_denied = ctrls = ctrls_denied = 0
    invalid = []
    for e in entities:
        is_pod = e.obj.kind == "Pod"
        if is_pod:
            pods += 1
        else:
            ctrls += 1
        if exempt:
            continue
        if e.view is None:
            invalid.append(f"{e.obj.kind}/{e.obj.name}: {e.error}")
            continue
        if lv.level is Level.PRIVILEGED:
            continue
        r = e.evaluate(lv)
        if r.allowed:
            continue
        g = groups.get(e.owner)
        if g is None:
            g = groups[e.owner] = OwnerGroup(namespace, e.owner[0], e.owner[1])
        g.reasons[r.forbidden_reason] = g.reasons.get(r.forbidden_reason, 0) + 1
        if not g.example:
            g.example = r.message
            if with_fixes:
                g.fixes = [v.to_dict() for v in r.violations]
        if is_pod:
            pods_denied += 1
            g.pods.append(e.obj.name)
            denied_pods.append((e.obj.name, r))
        else:
            ctrls_denied += 1
            g.template_denied = True
    ordered = sorted(groups.values(), key=lambda g: (-len(g.pods) - g.template_denied, g.kind, g.name))
    warnings = psa_namespace_warnings(namespace, lv, denied_pods)
    if exempt and lv.level is not Level.PRIVILEGED and (config is None or config.defaults.enforce != lv):
        # admission.go exemptNamespaceWarning, for the enforce label being proposed
        warnings = [
            f'namespace "{namespace}" is exempt from Pod Security, and the policy (enforce={lv}) will be ignored'
        ]
    return NamespaceWhatIf(
        namespace,
        lv,
        exempt,
        pods,
        pods_denied,
        ctrls,
        ctrls_denied,
        ordered,
        warnings,
        invalid,
    )


@bulk()
def what_if_label(
    cluster: Cluster,
    lv: LevelVersion,
    namespace: str | None = None,
    config: PodSecurityConfig | None = None,
    with_fixes: bool = False,
) -> list[NamespaceWhatIf]:
    """The proposed enforce label ``lv`` on one namespace, or on every namespace when None."""
    groups = by_namespace(collect_entities(cluster, namespace, config))
    names = [namespace] if namespace else sorted(set(groups) | set(cluster.namespaces))
    return [what_if_namespace(ns, groups.get(ns, []), lv, config, with_fixes) for ns in names]


def by_namespace(entities: list[Entity]) -> dict[str, list[Entity]]:
    out: dict[str, list[Entity]] = defaultdict(list)
    for e in entities:
        out[e.obj.namespace].append(e)
    return out


@dataclass
class RolloutRow:
    namespace: str
    current: Policy
    exempt: bool
    pods: int
    controllers: int
    baseline_denied: int
    restricted_denied: int
    label_errors: list[str]

    @property
    def recommendation(self) -> str:
        if self.exempt:
            return "exempt"
        # advice is the next step up from what the namespace enforces now, never a step back to it
        now = self.current.enforce.level
        if now is Level.RESTRICTED:
            return "already restricted" if self.restricted_denied == 0 else "fix workloads first"
        if now is Level.BASELINE and self.baseline_denied == 0:
            return "ready for restricted" if self.restricted_denied == 0 else "fix workloads for restricted"
        if self.restricted_denied == 0:
            return "ready for restricted"
        if self.baseline_denied == 0:
            return "ready for baseline"
        return "fix workloads first"

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "currentEnforce": str(self.current.enforce),
            "exempt": self.exempt,
            "pods": self.pods,
            "controllers": self.controllers,
            "baselineDenied": self.baseline_denied,
            "restrictedDenied": self.restricted_denied,
            "recommendation": self.recommendation,
            "labelErrors": self.label_errors,
        }


@bulk()
def rollout(
    cluster: Cluster, version: Version, config: PodSecurityConfig | None = None, namespace: str | None = None
) -> list[RolloutRow]:
    """Per namespace: how many pods and controller templates would be denied at baseline and at
    restricted (each pod decoded once, checked twice)."""
    defaults = config.defaults if config else None
    ents = by_namespace(collect_entities(cluster, namespace, config))
    names = sorted(set(ents) | ({namespace} if namespace else set(cluster.namespaces)))
    base, restr = LevelVersion(Level.BASELINE, version), LevelVersion(Level.RESTRICTED, version)
    rows = []
    for ns in names:
        pol = NamespacePolicy.from_labels(cluster.namespace_labels(ns), defaults)
        exempt = bool(config and config.exemptions.namespace(ns))
        items = ents.get(ns, [])
        b = r = 0
        if not exempt:
            for e in items:
                if e.view is None:
                    b += 1
                    r += 1
                    continue
                # evaluated separately: restricted is not a superset of baseline for Windows pods
                # (from v1.25 it exempts them from the checks that override baseline ones)
                if not e.evaluate(base).allowed:
                    b += 1
                if not e.evaluate(restr).allowed:
                    r += 1
        rows.append(
            RolloutRow(
                ns,
                pol.policy,
                exempt,
                sum(1 for e in items if e.obj.kind == "Pod"),
                sum(1 for e in items if e.obj.kind != "Pod"),
                b,
                r,
                [str(x) for x in pol.errors],
            )
        )
    return rows


@dataclass
class BumpChange:
    namespace: str
    kind: str
    name: str
    owner: tuple[str, str]
    level: Level
    newly_denied: bool  # allowed at --from, denied at --to
    new_checks: list[str]  # checks failing at --to but not at --from
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "owner": f"{self.owner[0]}/{self.owner[1]}",
            "level": self.level.value,
            "newlyDenied": self.newly_denied,
            "newChecks": self.new_checks,
            "message": self.message,
        }


@bulk()
def version_bump(
    cluster: Cluster,
    old: Version,
    new: Version,
    level: Level | None = None,
    config: PodSecurityConfig | None = None,
    namespace: str | None = None,
) -> list[BumpChange]:
    """What newly fails when the policy version moves from ``old`` to ``new``: at ``level``, or at
    each namespace's current enforce level when no level is given."""
    defaults = config.defaults if config else None
    changes = []
    for ns, items in sorted(by_namespace(collect_entities(cluster, namespace, config)).items()):
        if config and config.exemptions.namespace(ns):
            continue
        lvl = level or NamespacePolicy.from_labels(cluster.namespace_labels(ns), defaults).enforce.level
        if lvl is Level.PRIVILEGED:
            continue
        for e in items:
            if e.view is None:
                continue
            a, b = e.evaluate(LevelVersion(lvl, old)), e.evaluate(LevelVersion(lvl, new))
            before = {f.check for f in a.failures}
            added = [f.check for f in b.failures if f.check not in before]
            if added:
                changes.append(
                    BumpChange(
                        ns,
                        e.obj.kind,
                        e.obj.name,
                        e.owner,
                        lvl,
                        a.allowed and not b.allowed,
                        added,
                        b.message,
                    )
                )
    return changes
