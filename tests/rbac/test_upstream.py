"""The RBAC evaluator against upstream authorizer behaviour, ported as data (data/upstream_authorizer.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubestrata.rbac import Attributes, PolicyRule, RBACAuthorizer, UserInfo

DATA = yaml.safe_load((Path(__file__).parent / "data" / "upstream_authorizer.yaml").read_text())


def _attrs(d: dict) -> Attributes:
    user = UserInfo(d.get("u", ""), tuple(d.get("g", ())))
    if "path" in d:
        return Attributes(user, d["v"], resource_request=False, path=d["path"])
    return Attributes(
        user,
        d["v"],
        True,
        d.get("ns", ""),
        d.get("ag", ""),
        d.get("r", ""),
        d.get("s", ""),
        d.get("name", ""),
    )


AUTHZ = [
    (c["name"], c["objects"], req, want)
    for c in DATA["authorizer"]
    for want in ("pass", "fail")
    for req in c[want]
]


@pytest.mark.parametrize("name,objects,req,want", AUTHZ, ids=[f"{a[0]}:{a[3]}:{a[2]}" for a in AUTHZ])
def test_authorizer(name, objects, req, want):
    allowed = RBACAuthorizer(objects).authorize(_attrs(req)).allowed
    assert allowed is (want == "pass"), (name, req)


RULES = [(c["name"], c["rule"], req, exp) for c in DATA["rule_matches"] for req, exp in c["requests"]]


@pytest.mark.parametrize("name,rule,req,expected", RULES, ids=[f"{r[0]}:{r[2]}" for r in RULES])
def test_rule_matches(name, rule, req, expected):
    assert PolicyRule.from_dict(rule).matches(_attrs(req)) is expected


def test_case_counts():
    # guards against the data file silently losing cases
    assert len(AUTHZ) == 31
    assert len(RULES) == 79


def test_nested_aggregation_settles():
    objs = [
        {
            "kind": "ClusterRole",
            "metadata": {"name": "top"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-top": "true"}}]},
        },
        {
            "kind": "ClusterRole",
            "metadata": {"name": "mid", "labels": {"to-top": "true"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-mid": "true"}}]},
        },
        {
            "kind": "ClusterRole",
            "metadata": {"name": "leaf", "labels": {"to-mid": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        },
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "top"},
            "subjects": [{"kind": "User", "name": "u"}],
        },
    ]
    a = Attributes(UserInfo("u"), "get", True, "x", "", "secrets")
    assert RBACAuthorizer(objs).authorize(a).allowed
    # and in the reverse listing order
    assert RBACAuthorizer(list(reversed(objs))).authorize(a).allowed


def test_subject_index_api():
    objs = [
        {
            "kind": "Role",
            "metadata": {"name": "r", "namespace": "a"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
        {
            "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "a"},
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "s"}, {"kind": "Group", "name": "g"}],
        },
    ]
    authz = RBACAuthorizer(objs)
    (b,) = authz.subject_bindings("user", "system:serviceaccount:a:s")
    assert b.ref == "RoleBinding/a/b" and b.namespace == "a"
    assert authz.subject_bindings("group", "g") == [b]
    assert authz.subject_bindings("user", "nobody") == []
    assert [r.resources for r in authz.role_rules(b)] == [("pods",)]
