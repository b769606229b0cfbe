"""Objects under a namespace policy, as admission/admission.go treats them.

Pods: exempt namespace, exempt user, exempt runtimeClass, then enforce (allow or deny), audit
(annotation) and warn (only when allowed). The eight controller kinds: audit and warn only, never
denied; we also report whether the pods they create would be denied by enforce, which is what
breaks a rollout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from kubestrata.errors import InputError
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import WORKLOAD_KINDS, template_node
from kubestrata.pss.api import Level, LevelVersion, NamespacePolicy, Policy, Version
from kubestrata.pss.config import Exemptions
from kubestrata.pss.registry import PSSResult, as_level_version, effective_minor, run_checks
from kubestrata.pss.view import PodView, build_view

ENFORCE_POLICY_ANNOTATION = "pod-security.kubernetes.io/enforce-policy"
AUDIT_VIOLATIONS_ANNOTATION = "pod-security.kubernetes.io/audit-violations"
EXEMPT_ANNOTATION = "pod-security.kubernetes.io/exempt"


def content_key(raw: dict[str, Any], memo: Memo | None = None) -> bytes | None:
    """What PSA's checks (and the fix patches' paths) can depend on in a workload object: the pod
    template's place in the kind, its annotations and its spec, serialised with types exact (1 and
    1.0 and True differ) and key order kept. Replicas of one template share it; None when the
    object is not plain JSON data (then nothing is shared). With a memo, a spec dict seen before
    (the loader's skim shares one between replicas) is serialised once: the same bytes."""
    try:
        found = template_node(raw)
    except InputError:
        return None
    if found is None:
        return None
    node, prefix = found
    meta = node.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else meta
    spec = node.get("spec")
    try:
        if memo is None or type(spec) is not dict:
            # a copy of exact size: the bytes orjson returns keep the larger buffer it wrote into
            # alive (measured: 33 MB more peak RSS for the 10,771 keys of the 50,000-object scan)
            return bytes(memoryview(orjson.dumps([prefix, meta is None, annotations, spec])))
        specs = memo.specs
        got = specs.get(id(spec))
        if got is None or got[0] is not spec:
            if len(specs) >= _SPECS_HELD:
                specs.clear()
            got = specs[id(spec)] = (spec, orjson.dumps(spec))
        # orjson.dumps([prefix, meta is None, annotations, spec]) without serialising spec again
        # (join builds bytes of exact size)
        return b"".join(
            (b"[", orjson.dumps(prefix), b",false," if meta is not None else b",true,",
             orjson.dumps(annotations), b",", got[1], b"]")
        )  # fmt: skip
    except TypeError:  # a YAML timestamp key or another non-JSON value: evaluate on its own
        return None


_SPECS_HELD = 4096  # Memo.specs: recent spec dicts (held, so that their ids stay theirs)


_NO_EXEMPTIONS = Exemptions()


class Memo:
    """Results shared by objects with the same content_key during one bulk run (replicas of one
    template are evaluated, rendered and remediated once). Hold one per run, not per process."""

    __slots__ = ("entries", "specs")

    def __init__(self) -> None:
        self.entries: dict[bytes, dict[Any, Any]] = {}
        # id(spec) -> (spec, its JSON): objects are not modified during a bulk run, and the spec
        # is held so that its id is not reused
        self.specs: dict[int, tuple[dict[str, Any], bytes]] = {}


def pod_view(obj: KubeObject | dict[str, Any] | PodView | tuple[Any, Any], *, typed: bool = False) -> PodView:
    """The PodView of a Pod, of a controller's pod template, or a PodView as is. InputError when
    the kind has no pod template or a field has the wrong type (``typed``: see build_view)."""
    if isinstance(obj, PodView):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2:  # (metadata, spec), as an admission webhook has them
        return build_view(obj[0], obj[1])
    raw = obj.raw if isinstance(obj, KubeObject) else obj
    if not isinstance(raw, dict):
        raise InputError("expected an object")
    found = template_node(raw if raw.get("kind") else {**raw, "kind": "Pod"})
    if found is None:
        raise InputError(f"kind {raw.get('kind')!r} has no pod template", field="kind")
    node, prefix = found
    spec_path = f"{prefix}.spec" if prefix else "spec"
    meta_path = f"{prefix}.metadata" if prefix else "metadata"
    return build_view(node.get("metadata"), node.get("spec"), spec_path, meta_path, typed=typed)


def evaluate_pod(
    pod: KubeObject | dict[str, Any] | PodView | tuple[Any, Any],
    level: Level | str,
    version: Version | str = "latest",
) -> PSSResult:
    """Evaluate a pod (or a controller's pod template) at one level and version.

    Never raises for bad input: a pod whose fields have the wrong type gives allowed=False and
    ``error`` naming the field.
    """
    lv = as_level_version(level, version)
    try:
        view = pod_view(pod)
    except InputError as e:
        return PSSResult(False, lv, [], None, e)
    return run_checks(view, lv)


@dataclass
class ObjectResult:
    """One workload object under its namespace policy."""

    obj: KubeObject
    policy: NamespacePolicy
    allowed: bool  # the object itself is admitted (controllers always are)
    pods_allowed: bool  # its pods pass the enforce policy
    enforce: PSSResult | None = None  # the enforce-level evaluation (None when exempt or privileged)
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)
    exempt: str | None = None  # namespace, user or runtimeClass
    error: InputError | None = None
    shared: dict[Any, Any] | None = field(default=None, repr=False, compare=False)  # Memo entry

    @property
    def is_controller(self) -> bool:
        return self.obj.kind != "Pod"

    @property
    def message(self) -> str:
        """PSA's text: the denial for a pod; for a controller, the warning its enforce level gives."""
        if self.error is not None:
            return f"invalid pod spec: {self.error}"
        if self.enforce is None or self.enforce.allowed:
            return ""
        return self.enforce.warning if self.is_controller else self.enforce.message

    def summary(self) -> str:
        """One line for people: what is denied, where, and why."""
        o = self.obj
        if self.error is not None:
            return f"{o.kind} {o.name} in namespace {o.namespace}: invalid pod spec: {self.error}"
        if self.pods_allowed:
            return ""
        if self.is_controller:
            return (
                f"pods of {o.kind} {o.name} would be denied in namespace {o.namespace}: "
                f"{self.enforce.message if self.enforce else ''}"
            )
        return f"pod {o.name} would be denied in namespace {o.namespace}: {self.message}"

    def remediation(self) -> Any:
        """The combined fix patch for every violation at the enforce level (see fixes.remediate)."""
        from kubestrata.pss.fixes import remediate

        lv = self.enforce.level_version if self.enforce else self.policy.enforce
        return remediate(self.obj.raw, lv)

    def _violation_dicts(self) -> list[dict[str, Any]]:
        if self.enforce is None:
            return []
        sh = self.shared
        key = ("violations", self.enforce.level_version)
        if sh is not None and key in sh:
            return sh[key]
        out = [v.to_dict() for v in self.enforce.violations]
        if sh is not None:
            sh[key] = out
        return out

    def _fix_dict(self) -> dict[str, Any] | None:
        if not self.enforce or self.enforce.allowed:
            return None
        sh = self.shared
        key = ("fix", self.enforce.level_version)
        if sh is not None and key in sh:
            return sh[key]
        out = self.remediation().to_dict()
        if sh is not None:
            sh[key] = out
        return out

    def to_dict(self, fixes: bool = True) -> dict[str, Any]:
        """The JSON form. ``fix`` (the combined patch of fixes.remediate) costs a re-evaluation per
        violation: fixes=False leaves it out (each violation still carries its own ``fix``)."""
        o = self.obj
        doc = {
            "source": str(o.source),
            "kind": o.kind,
            "namespace": o.namespace,
            "name": o.name,
            "allowed": self.allowed,
            "podsAllowed": self.pods_allowed,
            "policy": str(self.policy.enforce),
            "message": self.message,
            "violations": self._violation_dicts(),
            "fix": self._fix_dict() if fixes else None,
            "warnings": self.warnings,
            "auditAnnotations": self.audit_annotations,
            "exempt": self.exempt,
            "error": str(self.error) if self.error is not None else None,
            "labelErrors": [str(e) for e in self.policy.errors],
        }
        if not fixes:
            del doc["fix"]
        return doc


def evaluate_object(
    obj: KubeObject | dict[str, Any],
    policy: NamespacePolicy | Policy | LevelVersion,
    *,
    exemptions: Exemptions | None = None,
    username: str | None = None,
    view: PodView | None = None,
    memo: Memo | None = None,
) -> ObjectResult | None:
    """Evaluate a Pod or one of the eight controller kinds under a namespace policy (None for other
    kinds). A bare LevelVersion means enforce, audit and warn all at that level-version. With a
    memo, objects whose pod templates are equal (content_key) share the decoded view and results."""
    if not isinstance(obj, KubeObject):
        obj = KubeObject(obj)
    kind = obj.kind
    if kind not in WORKLOAD_KINDS:
        return None
    if isinstance(policy, LevelVersion):
        policy = NamespacePolicy(Policy(policy, policy, policy))
    elif isinstance(policy, Policy):
        policy = NamespacePolicy(policy)
    ex = exemptions or _NO_EXEMPTIONS
    is_pod = kind == "Pod"
    shared: dict[Any, Any] | None = None
    ckey = content_key(obj.raw, memo) if memo is not None else None
    if ckey is not None and memo is not None:
        shared = memo.entries.get(ckey)
    if shared is not None:
        view = shared["view"]
    else:
        try:
            view = view if view is not None else pod_view(obj)  # a caller that decoded it already
        except InputError as e:
            return ObjectResult(obj, policy, not is_pod, False, error=e)
        if ckey is not None and memo is not None:
            shared = memo.entries[ckey] = {"view": view, "results": {}}
    if ex.namespaces and ex.namespace(obj.namespace):
        return ObjectResult(obj, policy, True, True, exempt="namespace")
    if ex.usernames and ex.user(username):
        return ObjectResult(obj, policy, True, True, exempt="user")
    if shared is None:
        return ObjectResult(obj, policy, *_decide(view, policy, ex, is_pod, {}))
    # the rest depends on the template, the policy, the kind and the runtimeClass exemptions only:
    # replicas of one template take the first one's decision
    okey = ("object", id(policy), is_pod, ex)
    hit = shared.get(okey)
    if hit is None or hit[0] is not policy:  # an id reused by another policy is a miss
        hit = shared[okey] = (policy, _decide(view, policy, ex, is_pod, shared["results"]))
    allowed, pods_allowed, enforce, warnings, annotations, exempt = hit[1]
    return ObjectResult(
        obj, policy, allowed, pods_allowed, enforce, list(warnings), dict(annotations), exempt, shared=shared
    )


Decision = tuple[bool, bool, PSSResult | None, list[str], dict[str, str], str | None]


def _decide(
    view: PodView,
    policy: NamespacePolicy,
    ex: Exemptions,
    is_pod: bool,
    cache: dict[tuple[Level, int], PSSResult],
) -> Decision:
    """admission.go after the namespace and user exemptions: (allowed, pods allowed, the enforce
    result, warnings, audit annotations, exemption)."""
    p = policy.policy
    if (
        not policy.errors
        and (
            p.fully_privileged
            if is_pod
            else (p.warn.level is Level.PRIVILEGED and p.audit.level is Level.PRIVILEGED)
        )
        and p.enforce.level is Level.PRIVILEGED
    ):
        return True, True, None, [], {}, None
    if ex.runtime_class(view.runtime_class):
        return True, True, None, [], {}, "runtimeClass"

    def result(lv: LevelVersion) -> PSSResult:
        key = (lv.level, effective_minor(lv.version))
        r = cache.get(key)
        if r is None:
            r = cache[key] = run_checks(view, lv)
        # the message names the level-version as labelled, not as clamped
        return r if r.level_version == lv else r.relabelled(lv)

    enforce = result(p.enforce)
    annotations: dict[str, str] = {}
    if policy.errors:
        annotations["error"] = "Failed to parse policy: " + ", ".join(str(e) for e in policy.errors)
    if is_pod:
        annotations[ENFORCE_POLICY_ANNOTATION] = str(p.enforce)
    audit = result(p.audit)
    if not audit.allowed:
        annotations[AUDIT_VIOLATIONS_ANNOTATION] = audit.warning
    allowed = enforce.allowed or not is_pod
    warnings = []
    if allowed:
        warn = result(p.warn)
        if not warn.allowed:
            warnings.append(warn.warning)
    return allowed, enforce.allowed, enforce, warnings, annotations, None
