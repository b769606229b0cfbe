"""EKS access policies as versioned package data (data/access-policies.yaml) and their evaluation.

Access policies are allow-only; an association has a scope: the whole cluster, or namespaces (names or
wildcard patterns such as ``dev-*``, never checked for existence by EKS). A namespace-scoped association
grants nothing on cluster-scoped resources or non-resource URLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from importlib import resources
from typing import Any

import yaml

from kubestrata.rbac import Attributes, PolicyRule

POLICY_ARN_PREFIX = "cluster-access-policy/"


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


def policy_name(name_or_arn: str) -> str:
    """``arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy`` -> ``AmazonEKSViewPolicy``."""
    if POLICY_ARN_PREFIX in name_or_arn:
        return name_or_arn.split(POLICY_ARN_PREFIX, 1)[1]
    return name_or_arn


def policy_arn(name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:eks::aws:{POLICY_ARN_PREFIX}{policy_name(name)}"


@cache
def catalog() -> PolicyCatalog:
    text = resources.files("kubestrata.access").joinpath("data/access-policies.yaml").read_text()
    doc: dict[str, Any] = yaml.safe_load(text)
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


@dataclass(frozen=True, slots=True)
class Scope:
    type: str  # "cluster" or "namespace"
    namespaces: tuple[str, ...] = ()

    def covers(self, namespace: str) -> bool:
        """Whether a request in ``namespace`` ("" = cluster-scoped or non-resource) is in scope."""
        if self.type == "cluster":
            return True
        return bool(namespace) and any(fnmatchcase(namespace, p) for p in self.namespaces)

    def __str__(self) -> str:
        return "cluster" if self.type == "cluster" else "namespaces " + ",".join(self.namespaces)


@dataclass(frozen=True, slots=True)
class Association:
    policy: str  # policy name
    scope: Scope
    field: str = ""  # where it came from, for evidence

    def allows(self, a: Attributes) -> bool | None:
        """True/False, or None when the policy's rules are not known."""
        if not self.scope.covers(a.namespace if a.resource_request else ""):
            return False
        pol = catalog().get(self.policy)
        if pol is None or pol.rules is None:
            return None
        return any(r.matches(a) for r in pol.rules)
