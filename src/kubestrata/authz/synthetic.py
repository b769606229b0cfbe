"""Synthetic but realistic policy sets and reviews, for the slicing benchmark and equivalence tests.

The mix resembles a converted RBAC estate plus hand-written rules: per-team and per-user permits on
resource kinds (most), label-selector and ownership forbids, non-resource URL permits, admission
forbids, and a few policies whose first condition is not indexable (they land in every slice).
"""

from __future__ import annotations

import random
from typing import Any

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
GROUPS = {
    "": ["pods", "configmaps", "secrets", "services", "serviceaccounts", "events", "nodes"],
    "apps": ["deployments", "statefulsets", "daemonsets", "replicasets"],
    "batch": ["jobs", "cronjobs"],
    "networking.k8s.io": ["ingresses", "networkpolicies"],
    "rbac.authorization.k8s.io": ["roles", "rolebindings"],
}
NAMESPACES = [f"ns{i}" for i in range(20)]


def _q(s: str) -> str:
    return '"' + s + '"'


def policy_set(n: int, seed: int = 1, *, teams: int = 50, users: int = 200) -> str:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        roll = rnd.random()
        api = rnd.choice(list(GROUPS))
        res = rnd.sample(GROUPS[api], k=min(len(GROUPS[api]), rnd.randint(1, 2)))
        verbs = ", ".join(f"k8s::Action::{_q(v)}" for v in rnd.sample(VERBS, k=rnd.randint(1, 4)))
        ns = rnd.choice(NAMESPACES)
        if roll < 0.45:
            out.append(
                f'@id("team-{i}")\npermit (principal in k8s::Group::"team-{rnd.randrange(teams)}", '
                f"action in [{verbs}], resource is k8s::Resource) when {{ resource.apiGroup == {_q(api)} && "
                f"[{', '.join(map(_q, res))}].contains(resource.resource) && resource has namespace && "
                f"resource.namespace == {_q(ns)} }};"
            )
        elif roll < 0.80:
            out.append(
                f'@id("user-{i}")\npermit (principal is k8s::User, action in [{verbs}], resource is k8s::Resource) '
                f'when {{ principal.name == "user-{rnd.randrange(users)}" && resource.apiGroup == {_q(api)} && '
                f"resource.resource == {_q(res[0])} }};"
            )
        elif roll < 0.88:
            out.append(
                f'@id("selector-{i}")\nforbid (principal is k8s::User in k8s::Group::"team-{rnd.randrange(teams)}", '
                f'action in [k8s::Action::"list", k8s::Action::"watch"], resource is k8s::Resource) when {{ '
                f"resource.resource == {_q(res[0])} }} unless {{ resource has labelSelector && "
                f'resource.labelSelector.contains({{"key": "owner", "operator": "in", "values": [principal.name]}}) }};'
            )
        elif roll < 0.93:
            out.append(
                f'@id("url-{i}")\npermit (principal in k8s::Group::"team-{rnd.randrange(teams)}", '
                f'action == k8s::Action::"get", resource is k8s::NonResourceURL) when {{ '
                f'resource.path like "/metrics{i}*" }};'
            )
        elif roll < 0.98:
            out.append(
                f'@id("admission-{i}")\nforbid (principal in k8s::Group::"team-{rnd.randrange(teams)}", '
                f'action in k8s::admission::Action::"all", resource is core::v1::ConfigMap) unless {{ '
                f"resource has metadata && resource.metadata has labels && "
                f'resource.metadata.labels.contains({{"key": "owner", "value": principal.name}}) }};'
            )
        else:
            out.append(
                f'@id("namespace-guard-{i}")\nforbid (principal, action, resource is k8s::Resource) when {{ '
                f'resource has namespace && resource.namespace == "kube-system-{i}" }};'
            )
    return "\n\n".join(out) + "\n"


def review(rnd: random.Random, *, teams: int = 50, users: int = 200) -> dict[str, Any]:
    """A SubjectAccessReview drawn from the same vocabulary as ``policy_set``."""
    spec: dict[str, Any] = {
        "user": f"user-{rnd.randrange(users)}",
        "groups": [f"team-{rnd.randrange(teams)}" for _ in range(rnd.randint(0, 3))]
        + ["system:authenticated"],
    }
    if rnd.random() < 0.05:
        spec["nonResourceAttributes"] = {"verb": "get", "path": f"/metrics{rnd.randrange(1000)}/x"}
    else:
        api = rnd.choice(list(GROUPS))
        ra: dict[str, Any] = {
            "verb": rnd.choice(VERBS),
            "group": api,
            "version": "v1",
            "resource": rnd.choice(GROUPS[api]),
            "namespace": rnd.choice(NAMESPACES),
        }
        if ra["verb"] in ("get", "update", "patch", "delete"):
            ra["name"] = f"obj-{rnd.randrange(50)}"
        if ra["verb"] in ("list", "watch") and rnd.random() < 0.5:
            ra["labelSelector"] = {
                "requirements": [{"key": "owner", "operator": "In", "values": [spec["user"]]}]
            }
        spec["resourceAttributes"] = ra
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
