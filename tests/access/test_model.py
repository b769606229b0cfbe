"""Effective permissions: precedence, authentication modes, access-policy scopes, who-can and can-i."""

import pytest

from kubestrata.access.model import parse_request
from kubestrata.access.policies import association_allows as allows
from kubestrata.access.policies import catalog
from kubestrata.eks.model import Association, Scope
from kubestrata.rbac import Attributes, UserInfo

AWS_AUTH = """
apiVersion: v1
kind: ConfigMap
metadata: {name: aws-auth, namespace: kube-system}
data:
  mapRoles: |
    - rolearn: arn:aws:iam::1:role/ops
      username: ops-from-configmap
      groups: [system:masters]
    - rolearn: arn:aws:iam::1:role/dev
      username: dev:{{SessionName}}
      groups: [devs]
"""


def eks(mode: str, entries: str = "[]", extra: str = "") -> str:
    return f"""
---
apiVersion: kubestrata.io/v1alpha1
kind: EKSClusterAccess
metadata: {{name: c, namespace: kube-system}}
cluster: {{name: c, accessConfig: {{authenticationMode: {mode}}}}}
accessEntries: {entries}
{extra}
"""


OPS_ENTRY = """
  - principalArn: arn:aws:iam::1:role/ops
    kubernetesGroups: [viewers]
    associatedAccessPolicies:
      - {policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy', accessScope: {type: namespace, namespaces: ['dev-*']}}
"""


def test_access_entry_beats_aws_auth(model_of):
    m = model_of(AWS_AUTH + eks("API_AND_CONFIG_MAP", OPS_ENTRY))
    ident = m.resolve("arn:aws:sts::1:assumed-role/ops/alice")
    assert ident.source == "access-entry"
    assert "system:masters" not in ident.groups
    assert ident.username == "arn:aws:sts::1:assumed-role/ops/alice"  # generated default, rendered
    shadowed = [i for i in m.identities() if i.shadows is not None]
    assert [i.arn for i in shadowed] == ["arn:aws:iam::1:role/ops"]
    # the other aws-auth mapping still applies in API_AND_CONFIG_MAP
    assert m.resolve("arn:aws:sts::1:assumed-role/dev/bob").username == "dev:bob"


def test_api_mode_ignores_aws_auth(model_of):
    m = model_of(AWS_AUTH + eks("API", OPS_ENTRY))
    assert m.resolve("arn:aws:sts::1:assumed-role/dev/bob") is None


def test_config_map_mode_ignores_entries(model_of):
    m = model_of(AWS_AUTH + eks("CONFIG_MAP", OPS_ENTRY))
    assert m.resolve("arn:aws:sts::1:assumed-role/ops/a").source == "aws-auth"


def test_entry_with_path_matches_session(model_of):
    entry = "\n  - {principalArn: 'arn:aws:iam::1:role/team/ci', kubernetesGroups: [ci]}\n"
    m = model_of(eks("API", entry))
    ident = m.resolve("arn:aws:sts::1:assumed-role/ci/run-7")
    assert ident is not None and ident.groups == ("ci",)
    assert ident.username == "arn:aws:sts::1:assumed-role/ci/run-7"


def test_creator_is_invisible_admin_in_config_map_mode(model_of):
    m = model_of(eks("CONFIG_MAP", extra="creatorArn: arn:aws:iam::1:role/creator"))
    ident = m.resolve("arn:aws:sts::1:assumed-role/creator/x")
    assert ident.source == "creator" and "system:masters" in ident.groups


@pytest.mark.parametrize(
    "ns,verb,resource,want",
    [
        ("dev-api", "create", "pods/exec", True),  # Edit: exec
        ("dev-api", "get", "secrets", True),
        ("dev-api", "create", "rolebindings", False),  # Edit has no RBAC
        ("prod", "get", "pods", False),  # outside the wildcard scope
        ("", "list", "nodes", False),  # namespace scope never grants cluster-scoped resources
    ],
)
def test_policy_scope(model_of, ns, verb, resource, want):
    m = model_of(eks("API", OPS_ENTRY))
    ident = m.resolve("arn:aws:iam::1:role/ops")
    allowed, grants, _ = m.check(parse_request(verb, resource), ident.user_info, ns, ident.associations)
    assert allowed is want
    if want:
        assert grants[0].via == "access-policy"


def test_cluster_admin_policy_covers_non_resource_urls():
    a = Association("AmazonEKSClusterAdminPolicy", Scope("cluster"))
    assert allows(a, Attributes(UserInfo("x"), "get", resource_request=False, path="/metrics"))
    assert not allows(
        Association("AmazonEKSClusterAdminPolicy", Scope("namespace", ("a",))),
        Attributes(UserInfo("x"), "get", resource_request=False, path="/metrics"),
    )


def test_view_has_no_secrets_admin_view_has():
    get_secret = Attributes(UserInfo("x"), "get", True, "a", "", "secrets")
    assert not allows(Association("AmazonEKSViewPolicy", Scope("cluster")), get_secret)
    assert allows(Association("AmazonEKSAdminViewPolicy", Scope("cluster")), get_secret)
    assert allows(
        Association("AmazonEKSAdminPolicy", Scope("cluster")),
        Attributes(UserInfo("x"), "create", True, "a", "rbac.authorization.k8s.io", "rolebindings"),
    )


def test_system_policies_are_an_open_set():
    a = Association("AmazonEKSAutoNodePolicy", Scope("cluster"))
    assert allows(a, Attributes(UserInfo("x"), "get", True, "a", "", "pods")) is None
    assert (
        allows(Association("AmazonEKSBrandNewPolicy", Scope("cluster")), Attributes(UserInfo("x"), "get"))
        is None
    )
    assert (
        catalog().get("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy").name
        == "AmazonEKSViewPolicy"
    )


def test_who_can_includes_policy_grants_and_templated_users(model_of):
    rbac = """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: dev-api}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [delete]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: dev-api}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects: [{kind: User, name: "dev:carol"}]
"""
    m = model_of(AWS_AUTH + eks("API_AND_CONFIG_MAP", OPS_ENTRY) + rbac)
    rows = m.who_can(parse_request("delete", "configmaps"), "dev-api")
    subjects = {r.subject: r for r in rows}
    assert "IAM arn:aws:iam::1:role/ops" in subjects  # via AmazonEKSEditPolicy, invisible to kubectl
    assert "access policy AmazonEKSEditPolicy" in subjects["IAM arn:aws:iam::1:role/ops"].via
    dev = subjects["IAM arn:aws:iam::1:role/dev"]
    assert dev.condition == "when the username renders to dev:carol"
    assert "User dev:carol" in subjects


def test_parse_request():
    r = parse_request("get", "deploy/scale")
    assert (r.resource, r.api_group, r.subresource) == ("deployments", "apps", "scale")
    assert parse_request("get", "/healthz").path == "/healthz"
    assert parse_request("create", "widgets.example.com").api_group == "example.com"


def test_user_entry_with_path_matches_the_user_arn(model_of):
    entry = "\n  - {principalArn: 'arn:aws:iam::1:user/eng/carol', kubernetesGroups: [eng]}\n"
    m = model_of(eks("API", entry))
    assert m.resolve("arn:aws:iam::1:user/eng/carol").groups == ("eng",)
    assert m.resolve("arn:aws:iam::1:user/carol") is None


def test_shadowed_mapping_is_not_reported_as_session_template(model_of):
    from kubestrata.scan import run_scan, select_checks

    text = AWS_AUTH.replace("username: ops-from-configmap", "username: 'ops:{{SessionName}}'") + eks(
        "API_AND_CONFIG_MAP", OPS_ENTRY
    )
    m = model_of(text)
    res = run_scan(m.cluster, checks=select_checks(["KS-ACC-012"]))
    assert [f.evidence[0].path for f in res.findings] == ["data.mapRoles[1].username"]  # dev only, not ops


def test_who_can_counts_system_authenticated(model_of):
    rbac = """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: discover}
rules: [{nonResourceURLs: [/version], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: discover}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: discover}
subjects: [{kind: Group, name: system:authenticated}]
"""
    m = model_of(AWS_AUTH + rbac)
    subjects = {r.subject for r in m.who_can(parse_request("get", "/version"))}
    assert {"IAM arn:aws:iam::1:role/dev", "Group system:authenticated"} <= subjects
