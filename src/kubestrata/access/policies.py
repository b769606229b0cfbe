"""EKS access policies as versioned package data (data/access-policies.yaml) and their evaluation.

Access policies are allow-only; an association has a scope: the whole cluster, or namespaces (names or
wildcard patterns such as ``dev-*``, never checked for existence by EKS). A namespace-scoped association
grants nothing on cluster-scoped resources or non-resource URLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from kubestrata.eks.model import Association, policy_name
from kubestrata.packagedata import load_yaml
from kubestrata.rbac import Attributes, PolicyRule


@dataclass(frozen=True)
class AccessPolicy:
    name: str
    description: str
    rules: tuple[PolicyRule, ...] | None  # None: name known, rules not published
    system: bool = False


@dataclass(frozen=True)
class PolicyCatalog:
    version: str
    source: str
    policies: dict[str, AccessPolicy] = field(default_factory=dict)

    def get(self, name_or_arn: str) -> AccessPolicy | None:
        return self.policies.get(policy_name(name_or_arn))


@cache
def catalog() -> PolicyCatalog:
    doc: dict[str, Any] = load_yaml("kubestrata.access", "data/access-policies.yaml")
    out: dict[str, AccessPolicy] = {}
    for name, p in doc["policies"].items():
        rules = p.get("rules")
        out[name] = AccessPolicy(
            name,
            str(p.get("description") or ""),
            None if rules is None else tuple(PolicyRule.from_dict(r) for r in rules),
            bool(p.get("system")),
        )
    return PolicyCatalog(str(doc["version"]), str(doc["source"]), out)


def association_allows(assoc: Association, a: Attributes) -> bool | None:
    """Whether an association grants the request: True/False, or None when the policy's rules are
    not known."""
    if not assoc.scope.covers(a.namespace if a.resource_request else ""):
        return False
    pol = catalog().get(assoc.policy)
    if pol is None or pol.rules is None:
        return None
    return any(r.matches(a) for r in pol.rules)
