"""Objects with equal pod templates share one evaluation (pss check's Memo): sharing must never
change a result, its JSON or its fix patch."""

from __future__ import annotations

import copy

import orjson

from kubestrata.pss.api import LevelVersion, NamespacePolicy, Policy
from kubestrata.pss.evaluate import Memo, content_key, evaluate_object


def _pod(name: str, spec: dict, annotations: dict | None = None, kind: str = "Pod") -> dict:
    meta: dict = {"name": name, "namespace": "ns", "uid": name}
    if annotations is not None:
        meta["annotations"] = annotations
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"template": {"metadata": {"annotations": annotations or {}}, "spec": spec}},
    }


ROOT = {"containers": [{"name": "a", "image": "i", "securityContext": {"runAsUser": 0}}]}
HOST = {
    "hostNetwork": True,
    "containers": [{"name": "a", "image": "i", "securityContext": {"privileged": True}}],
}
OK = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "a",
            "image": "i",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
    ],
}
APPARMOR = {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}


def _objects() -> list[dict]:
    objs = []
    for i in range(3):
        objs.append(_pod(f"root-{i}", copy.deepcopy(ROOT)))
        objs.append(_pod(f"host-{i}", copy.deepcopy(HOST)))
        objs.append(_pod(f"ok-{i}", copy.deepcopy(OK)))
        objs.append(_pod(f"aa-{i}", copy.deepcopy(OK), APPARMOR))  # same spec, other annotations
        objs.append(_pod(f"dep-{i}", copy.deepcopy(ROOT), kind="Deployment"))  # same spec, other path
        objs.append(_pod(f"cj-{i}", copy.deepcopy(ROOT), kind="StatefulSet"))
    # the same values with other types must not share: 0 vs 0.0 vs False
    objs.append(
        _pod("float", {"containers": [{"name": "a", "image": "i", "securityContext": {"runAsUser": 0.0}}]})
    )
    objs.append(_pod("bad", {"containers": [{"name": "a", "securityContext": "x"}]}))
    return objs


def test_shared_evaluation_equals_separate_evaluation() -> None:
    pol = NamespacePolicy(Policy(*(LevelVersion.parse(s) for s in ("restricted", "baseline", "restricted"))))
    memo = Memo()
    for obj in _objects():
        alone = evaluate_object(obj, pol)
        shared = evaluate_object(obj, pol, memo=memo)
        assert alone is not None and shared is not None
        assert orjson.dumps(shared.to_dict()) == orjson.dumps(alone.to_dict()), obj["metadata"]["name"]
        assert shared.to_dict(fixes=False) == {k: v for k, v in alone.to_dict().items() if k != "fix"}
    # 5 templates: root pod, host pod, ok pod, ok+apparmor pod, and one for the Deployments and
    # StatefulSets (same template path); the float runAsUser and the bad pod are invalid (never memoised)
    assert len(memo.entries) == 5


def test_content_key_distinguishes_types_and_places() -> None:
    a = _pod("a", {"containers": [{"name": "a", "image": "i", "securityContext": {"runAsUser": 0}}]})
    b = _pod("b", {"containers": [{"name": "a", "image": "i", "securityContext": {"runAsUser": False}}]})
    assert content_key(a) != content_key(b)
    assert content_key(a) == content_key(_pod("c", copy.deepcopy(a["spec"])))
    assert content_key(a) != content_key(_pod("d", copy.deepcopy(a["spec"]), kind="Deployment"))
    assert content_key({"kind": "ConfigMap"}) is None
