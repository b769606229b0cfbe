"""Every lock-out / misconfiguration rule (reference §2.4) with its own positive and negative cases,
run through the real scan engine."""

from __future__ import annotations

import pytest

from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_objects
from kubestrata.scan import run_scan, select_checks


def fired(text: str, rule: str) -> list:
    res = run_scan(Cluster(load_objects(text)), checks=select_checks([rule]))
    assert not res.coverage.gaps, res.coverage.gaps
    return [f for f in res.findings if f.rule_id == rule]


def cm(roles: str = "", users: str = "", accounts: str | None = None) -> str:
    out = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: aws-auth, namespace: kube-system}\ndata:\n"
    if roles:
        out += "  mapRoles: |\n" + "".join("    " + line + "\n" for line in roles.strip("\n").splitlines())
    if users:
        out += "  mapUsers: |\n" + "".join("    " + line + "\n" for line in users.strip("\n").splitlines())
    if accounts is not None:
        out += f"  mapAccounts: {accounts!r}\n"
    return out


def eks(cluster: str, body: str = "") -> str:
    return (
        "---\napiVersion: kubestrata.io/v1alpha1\nkind: EKSClusterAccess\nmetadata: {name: c, namespace: kube-system}\n"
        f"cluster: {cluster}\n{body}\n"
    )


ADMIN = "- rolearn: arn:aws:iam::1:role/admin\n  username: admin\n  groups: [system:masters]\n"
NODE = "- rolearn: arn:aws:iam::1:role/node\n  username: system:node:{{EC2PrivateDNSName}}\n  groups: [system:bootstrappers, system:nodes]\n"


@pytest.mark.parametrize(
    "roles,n",
    [
        ("- rolearn: arn:aws:iam::1:role/team/dev\n  username: dev\n", 1),
        (
            "- rolearn: arn:aws:iam::1:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_A_1\n  username: a\n",
            1,
        ),
        ("- rolearn: arn:aws:iam::1:role/dev\n  username: dev\n", 0),
    ],
)
def test_rolearn_path(roles, n):
    assert len(fired(cm(roles), "KS-ACC-001")) == n


@pytest.mark.parametrize(
    "data,n",
    [
        (cm(NODE + ADMIN).replace("  groups: [system:masters]", "\tgroups: [system:masters]"), 1),  # tab
        (cm(NODE + ADMIN).replace("      username: admin", "     username: admin"), 1),  # indentation
        (cm(users="userarn: arn:aws:iam::1:user/a\n"), 1),  # a mapping, not a list
        (cm(NODE + ADMIN), 0),
        (cm(NODE, users="[]"), 0),
    ],
)
def test_key_dropped(data, n):
    assert len(fired(data, "KS-ACC-002")) == n


def test_key_dropped_message_names_consequence():
    f = fired(
        cm(NODE + ADMIN).replace("  groups: [system:masters]", "\tgroups: [system:masters]"), "KS-ACC-002"
    )[0]
    assert f.evidence[0].path == "data.mapRoles" and "drops every mapRoles entry" in f.message


@pytest.mark.parametrize(
    "roles,users,n",
    [
        (ADMIN + "- username: orphan\n", "", 1),
        ("", "- userarn: ''\n  username: x\n", 1),
        ("", "- userarn: arn:aws:iam::1:user/a\n  groups: system:masters\n", 1),  # kept, groups emptied
        (ADMIN, "- userarn: arn:aws:iam::1:user/a\n  username: a\n", 0),
    ],
)
def test_entry_dropped(roles, users, n):
    assert len(fired(cm(roles, users), "KS-ACC-003")) == n


@pytest.mark.parametrize(
    "roles,n",
    [
        (
            "- rolearn: arn:aws:iam::1:role/node\n  username: system:node:{{EC2PrivateDNSName}}\n  groups: [system:nodes]\n",
            1,
        ),
        (
            "- rolearn: arn:aws:iam::1:role/node\n  username: node\n  groups: [system:bootstrappers, system:nodes]\n",
            1,
        ),
        ("- rolearn: arn:aws:iam::1:role/node\n  username: system:node:x\n  groups: [system:nodes]\n", 2),
        (NODE, 0),
    ],
)
def test_node_mapping(roles, n):
    assert len(fired(cm(roles), "KS-ACC-004")) == n


def test_fargate_role_needs_session_name_username():
    body = "nodeRoles: [{roleArn: 'arn:aws:iam::1:role/node', source: fargateprofile/p, type: FARGATE_LINUX}]"
    f = fired(cm(NODE) + eks("{accessConfig: {authenticationMode: CONFIG_MAP}}", body), "KS-ACC-004")
    assert len(f) == 1 and f[0].evidence[0].expected == "system:node:{{SessionName}}"


@pytest.mark.parametrize(
    "text,n",
    [
        (
            eks(
                "{accessConfig: {authenticationMode: API}}",
                "nodeRoles: [{roleArn: 'arn:aws:iam::1:role/node', source: nodegroup/a}]",
            ),
            1,
        ),
        # mapped in aws-auth, but API mode does not read aws-auth
        (
            cm(NODE)
            + eks(
                "{accessConfig: {authenticationMode: API}}",
                "nodeRoles: [{roleArn: 'arn:aws:iam::1:role/node', source: nodegroup/a}]",
            ),
            1,
        ),
        (
            cm(NODE)
            + eks(
                "{accessConfig: {authenticationMode: API_AND_CONFIG_MAP}}",
                "nodeRoles: [{roleArn: 'arn:aws:iam::1:role/node', source: nodegroup/a}]",
            ),
            0,
        ),
        # the aws-auth key holding it is broken: the node is not mapped
        (
            cm(NODE).replace("  groups:", "\tgroups:")
            + eks(
                "{accessConfig: {authenticationMode: CONFIG_MAP}}",
                "nodeRoles: [{roleArn: 'arn:aws:iam::1:role/node', source: nodegroup/a}]",
            ),
            1,
        ),
    ],
)
def test_node_role_unmapped(text, n):
    assert len(fired(text, "KS-ACC-005")) == n


@pytest.mark.parametrize(
    "text,n",
    [
        (cm(NODE), 1),
        (cm(NODE, users="- userarn: arn:aws:iam::1:user/a\n  username: a\n  groups: [system:masters]\n"), 0),
        # an admin mapping lost to a YAML error does not count
        (cm(NODE + ADMIN).replace("  groups: [system:masters]", "\tgroups: [system:masters]"), 1),
        # admin through RBAC cluster-admin binding of a mapped group
        (
            cm(NODE + "- rolearn: arn:aws:iam::1:role/ops\n  username: ops\n  groups: [ops]\n")
            + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cluster-admin}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n"
            + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: ops}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: Group, name: ops}]\n",
            0,
        ),
        # API_AND_CONFIG_MAP: the CONFIG_MAP-only rule does not apply
        (cm(NODE) + eks("{accessConfig: {authenticationMode: API_AND_CONFIG_MAP}}"), 0),
    ],
)
def test_creator_only_admin(text, n):
    assert len(fired(text, "KS-ACC-006")) == n


ADMIN_ENTRY = "accessEntries: [{principalArn: 'arn:aws:iam::1:role/bg', associatedAccessPolicies: [{policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy', accessScope: {type: cluster}}]}]"


@pytest.mark.parametrize(
    "text,n",
    [
        (
            eks(
                "{accessConfig: {authenticationMode: API, bootstrapClusterCreatorAdminPermissions: false}}",
                "accessEntries: []",
            ),
            1,
        ),
        (eks("{accessConfig: {authenticationMode: API}}", ADMIN_ENTRY), 0),
        # a namespace-scoped ClusterAdmin association is not cluster administration
        (
            eks(
                "{accessConfig: {authenticationMode: API}}",
                ADMIN_ENTRY.replace("{type: cluster}", "{type: namespace, namespaces: [a]}"),
            ),
            1,
        ),
        # API_AND_CONFIG_MAP with an aws-auth admin is fine
        (cm(ADMIN) + eks("{accessConfig: {authenticationMode: API_AND_CONFIG_MAP}}", "accessEntries: []"), 0),
        # ... but in API mode aws-auth does not count
        (cm(ADMIN) + eks("{accessConfig: {authenticationMode: API}}", "accessEntries: []"), 1),
    ],
)
def test_no_admin_entry(text, n):
    assert len(fired(text, "KS-ACC-007")) == n


@pytest.mark.parametrize(
    "entry_created,principal,n",
    [
        (
            "2024-01-01T00:00:00+00:00",
            "{Arn: 'arn:aws:iam::1:role/r', PrincipalId: AROA1, CreateDate: '2025-01-01T00:00:00+00:00'}",
            1,
        ),
        (
            "2025-06-01T00:00:00+00:00",
            "{Arn: 'arn:aws:iam::1:role/r', PrincipalId: AROA1, CreateDate: '2025-01-01T00:00:00+00:00'}",
            0,
        ),
        ("2025-06-01T00:00:00+00:00", "{Arn: 'arn:aws:iam::1:role/other', PrincipalId: AROA2}", 1),  # deleted
    ],
)
def test_stale_entry(entry_created, principal, n):
    body = f"accessEntries: [{{principalArn: 'arn:aws:iam::1:role/r', createdAt: '{entry_created}'}}]\niamPrincipals: [{principal}]"
    assert len(fired(eks("{accessConfig: {authenticationMode: API}}", body), "KS-ACC-008")) == n


def test_stale_entry_needs_iam_data():
    # no verdict without iam get-role/get-user output: a coverage gap, not a silent pass
    body = "accessEntries: [{principalArn: 'arn:aws:iam::1:role/r'}]"
    text = eks("{accessConfig: {authenticationMode: API}}", body)
    res = run_scan(Cluster(load_objects(text)), checks=select_checks(["KS-ACC-008"]))
    assert res.findings == []
    assert [(g.subject, g.reason.value) for g in res.coverage.gaps] == [
        ("IAM principals of 1 access entries", "missing-input")
    ]


@pytest.mark.parametrize("patterns,n", [("[prod]", 1), ("[dev-*]", 0), ("[dev-a, prdo]", 1), ("['*']", 0)])
def test_scope_missing_namespace(patterns, n):
    ns = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: dev-a}\n"
    body = f"accessEntries: [{{principalArn: 'arn:aws:iam::1:role/r', associatedAccessPolicies: [{{policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy', accessScope: {{type: namespace, namespaces: {patterns}}}}}]}}]"
    assert len(fired(ns + eks("{accessConfig: {authenticationMode: API}}", body), "KS-ACC-009")) == n


@pytest.mark.parametrize(
    "mode,principal,n",
    [
        ("API_AND_CONFIG_MAP", "admin", 1),
        ("API_AND_CONFIG_MAP", "other", 0),
        ("API", "other", 1),
        ("CONFIG_MAP", "admin", 0),
    ],
)
def test_shadowed(mode, principal, n):
    body = f"accessEntries: [{{principalArn: 'arn:aws:iam::1:role/{principal}'}}]"
    assert (
        len(fired(cm(ADMIN) + eks(f"{{accessConfig: {{authenticationMode: {mode}}}}}", body), "KS-ACC-010"))
        == n
    )


@pytest.mark.parametrize("accounts,n", [("- '444455556666'\n", 1), ("[]", 0), ("", 0)])
def test_map_accounts(accounts, n):
    assert len(fired(cm(ADMIN, accounts=accounts), "KS-ACC-011")) == n


def test_session_template_severity_rises_when_it_can_pose_as_a_bound_user():
    roles = "- rolearn: arn:aws:iam::1:role/s\n  username: '{{SessionName}}'\n  groups: [support]\n"
    plain = fired(cm(roles), "KS-ACC-012")
    assert [f.severity.value for f in plain] == ["medium"]
    rb = "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}\nsubjects: [{kind: User, name: root-user}]\n"
    posed = fired(cm(roles) + rb, "KS-ACC-012")
    assert [f.severity.value for f in posed] == ["high"] and "root-user" in posed[0].message
    assert fired(cm(NODE), "KS-ACC-012") == []  # node usernames are not caller-chosen names


def test_duplicates():
    roles = (
        "- rolearn: arn:aws:iam::1:role/A\n  username: a\n- rolearn: arn:aws:iam::1:role/a\n  username: b\n"
    )
    assert len(fired(cm(roles), "KS-ACC-013")) == 1
    users = (
        "- userarn: arn:aws:iam::1:user/U\n  username: u\n- userarn: arn:aws:iam::1:user/u\n  username: v\n"
    )
    assert len(fired(cm(users=users), "KS-ACC-013")) == 1
    assert fired(cm(ADMIN + NODE), "KS-ACC-013") == []


def _writer(ns: str, names: str, subject: str) -> str:
    kind, bkind = ("Role", "RoleBinding") if ns else ("ClusterRole", "ClusterRoleBinding")
    meta = f"{{name: w, namespace: {ns}}}" if ns else "{name: w}"
    return (
        f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata: {meta}\n"
        f"rules: [{{apiGroups: [''], resources: [configmaps], resourceNames: {names}, verbs: [patch]}}]\n---\n"
        f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {bkind}\nmetadata: {meta}\n"
        f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: w}}\nsubjects: [{subject}]\n"
    )


@pytest.mark.parametrize(
    "text,n",
    [
        (_writer("kube-system", "[aws-auth]", "{kind: User, name: eve}"), 1),
        (_writer("", "[]", "{kind: Group, name: ops}"), 1),
        (_writer("default", "[]", "{kind: User, name: eve}"), 0),  # another namespace
        (_writer("kube-system", "[coredns]", "{kind: User, name: eve}"), 0),
        (
            _writer("kube-system", "[]", "{kind: ServiceAccount, name: x, namespace: kube-system}"),
            0,
        ),  # system component
    ],
)
def test_aws_auth_writers(text, n):
    # one aws-auth write permission is one finding (issue 11): KS-ACC-014 (critical) names the binding,
    # and KS-RBAC-002 does not report the same one-step path again
    res = run_scan(Cluster(load_objects(text)), checks=select_checks(["KS-ACC-014", "KS-RBAC-002"]))
    hits = [(f.rule_id, f.severity.value) for f in res.findings if f.rule_id in ("KS-ACC-014", "KS-RBAC-002")]
    assert hits == [("KS-ACC-014", "critical")] * n


def unknown(text: str, rules: list[str]) -> list[tuple[str, str]]:
    """No finding from ``rules``; the coverage gaps they recorded instead."""
    res = run_scan(Cluster(load_objects(text)), checks=select_checks(rules))
    assert [f.rule_id for f in res.findings if f.rule_id in rules] == []
    return [(g.subject, g.reason.value) for g in res.coverage.gaps]


def test_no_admin_entry_unknown_without_aws_auth_in_mixed_mode():
    text = eks("{accessConfig: {authenticationMode: API_AND_CONFIG_MAP}}", "accessEntries: []")
    assert unknown(text, ["KS-ACC-007"]) == [("ConfigMap kube-system/aws-auth", "missing-input")]


def test_node_role_unknown_without_aws_auth_in_config_map_modes():
    body = "nodeRoles: [{roleArn: 'arn:aws:iam::1:role/node', source: nodegroup/a}]"
    text = eks("{accessConfig: {authenticationMode: CONFIG_MAP}}", body)
    assert unknown(text, ["KS-ACC-005"]) == [("ConfigMap kube-system/aws-auth", "missing-input")]


def test_missing_aws_auth_is_one_gap_for_both_checks():
    body = "nodeRoles: [{roleArn: 'arn:aws:iam::1:role/node', source: nodegroup/a}]"
    text = eks("{accessConfig: {authenticationMode: API_AND_CONFIG_MAP}}", body)
    assert unknown(text, ["KS-ACC-005", "KS-ACC-007"]) == [
        ("ConfigMap kube-system/aws-auth", "missing-input")
    ]
