"""Built-in (bootstrap) ClusterRoles are known data: a binding to cluster-admin, admin, edit, view or a
system: role grants what the API server's own role grants, even when the role is not in the input; a
role neither in the input nor known is "not evaluated" (issue 11)."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from kubestrata.access.model import AccessModel, kubernetes_user
from kubestrata.cli.main import app
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_text
from kubestrata.rbac import Attributes, RBACAuthorizer, UserInfo, service_account_user
from kubestrata.rbac.builtin import builtin_cluster_roles, source, table_version, versions
from kubestrata.scan import run_scan

RUN = CliRunner()


def crb(name: str, role: str, subject: dict, kind: str = "ClusterRoleBinding", ns: str = "") -> dict:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [subject],
    }


SA_CI = {"kind": "ServiceAccount", "name": "ci", "namespace": "build"}


def _cluster(*docs: dict) -> Cluster:
    return Cluster(load_text(yaml.safe_dump_all(docs), "in.yaml").objects)


def test_data_has_source_and_the_supported_versions():
    assert "kubernetes/kubernetes" in source() and "cluster-roles.yaml" in source()
    assert versions()[0] == "1.29" and "1.35" in versions()
    assert table_version("1.20") == "1.29" and table_version("1.99") == versions()[-1]
    roles = builtin_cluster_roles()
    for name in ("cluster-admin", "admin", "edit", "view", "system:node", "system:discovery"):
        assert name in roles


def test_cluster_admin_binding_to_service_account_is_a_finding():
    # the reproduction: a ClusterRoleBinding of cluster-admin to a ServiceAccount, nothing else
    result = run_scan(_cluster(crb("ci-admin", "cluster-admin", SA_CI)))
    hits = [f for f in result.findings if f.rule_id == "KS-RBAC-001"]
    assert hits and "build/ci" in hits[0].message and "cluster-admin" in hits[0].message


def test_cluster_admin_binding_through_cli_exits_non_zero(tmp_path):
    p = tmp_path / "crb.yaml"
    p.write_text(yaml.safe_dump(crb("ci-admin", "cluster-admin", SA_CI)))
    r = RUN.invoke(app, ["scan", str(p)])
    assert r.exit_code == 1, r.output
    assert "KS-RBAC-001" in r.output


def test_aggregated_builtin_roles_resolve_like_the_controller():
    sa = service_account_user("app", "web")
    rb = crb("e", "edit", {"kind": "ServiceAccount", "name": "web"}, "RoleBinding", "app")
    z = RBACAuthorizer([rb])
    # edit aggregates system:aggregate-to-edit and (through view) system:aggregate-to-view
    assert z.authorize(Attributes(sa, "create", True, "app", "", "pods", "exec")).allowed
    assert z.authorize(Attributes(sa, "list", True, "app", "apps", "deployments")).allowed
    assert not z.authorize(
        Attributes(sa, "create", True, "app", "rbac.authorization.k8s.io", "rolebindings")
    ).allowed
    assert not z.authorize(Attributes(sa, "get", True, "other", "", "secrets")).allowed
    v = RBACAuthorizer([crb("v", "view", {"kind": "ServiceAccount", "name": "web", "namespace": "app"})])
    assert v.authorize(Attributes(sa, "list", True, "x", "", "pods")).allowed
    assert not v.authorize(Attributes(sa, "get", True, "x", "", "secrets")).allowed
    # admin = admin's own aggregate + edit + view
    a = RBACAuthorizer([crb("a", "admin", {"kind": "User", "name": "al"})])
    al = UserInfo("al", ("system:authenticated",))
    assert a.authorize(
        Attributes(al, "create", True, "x", "rbac.authorization.k8s.io", "rolebindings")
    ).allowed
    assert a.authorize(Attributes(al, "get", True, "x", "", "secrets")).allowed


def test_input_role_wins_and_input_aggregates_into_builtin():
    narrowed = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "view"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    }
    u = UserInfo("u", ("system:authenticated",))
    z = RBACAuthorizer([narrowed, crb("v", "view", {"kind": "User", "name": "u"})])
    assert not z.authorize(Attributes(u, "list", True, "x", "", "pods")).allowed
    assert z.role_source(z.bindings[0]) == "input"
    extra = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "crd-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}],
    }
    z = RBACAuthorizer([extra, crb("e", "edit", {"kind": "User", "name": "u"})])
    assert z.role_source(z.bindings[0]) == "built-in"
    assert z.authorize(Attributes(u, "get", True, "x", "example.com", "widgets")).allowed
    # the old behaviour is still there for callers that model exactly the input
    z = RBACAuthorizer([crb("e", "edit", {"kind": "User", "name": "u"})], builtin=False)
    assert not z.authorize(Attributes(u, "list", True, "x", "", "pods")).allowed


def test_unknown_role_is_not_evaluated_never_silent():
    docs = [
        crb("custom", "my-custom", {"kind": "User", "name": "bob"}, "RoleBinding", "app"),
        crb("eks", "eks:addon-manager", {"kind": "User", "name": "eks:addon-manager"}),
        crb("ctl", "system:controller:deployment-controller", {"kind": "User", "name": "x"}),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "r", "namespace": "app"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "missing"},
            "subjects": [{"kind": "User", "name": "bob"}],
        },
    ]
    result = run_scan(_cluster(*docs))
    gaps = {g.subject.split(" ")[0]: g for g in result.coverage.gaps}
    assert set(gaps) == {
        "RoleBinding/app/custom",
        "ClusterRoleBinding/eks",
        "ClusterRoleBinding/ctl",
        "RoleBinding/app/r",
    }
    assert "EKS-managed" in gaps["ClusterRoleBinding/eks"].detail
    assert "not evaluated" in gaps["RoleBinding/app/custom"].detail
    assert "Role app/missing is not in the input" in gaps["RoleBinding/app/r"].detail
    # a known role gives no gap
    assert not run_scan(_cluster(crb("v", "view", {"kind": "User", "name": "u"}))).coverage.gaps


def test_access_model_who_can_and_paths_see_builtin_roles():
    model = AccessModel(_cluster(crb("ci-admin", "cluster-admin", SA_CI)))
    from kubestrata.access.model import parse_request

    rows = model.who_can(parse_request("delete", "nodes"))
    assert any(r.subject == "ServiceAccount build/ci" for r in rows)
    ok, _, _ = model.check(
        parse_request("delete", "nodes"), kubernetes_user("system:serviceaccount:build:ci")
    )
    assert ok


def test_can_i_notes_unknown_role_of_the_user(tmp_path):
    p = tmp_path / "rb.yaml"
    p.write_text(
        yaml.safe_dump(crb("custom", "my-custom", {"kind": "User", "name": "bob"}, "RoleBinding", "app"))
    )
    r = RUN.invoke(app, ["access", "can-i", "get", "pods", "-n", "app", "--as", "bob", "-m", str(p)])
    assert r.exit_code == 1 and "not evaluated: RoleBinding/app/custom" in r.output


def test_cluster_admin_to_a_population_is_critical_not_a_system_identity():
    # system:authenticated starts with "system:" but is everyone: no prefix may exempt it
    for kind, name in [
        ("Group", "system:authenticated"),
        ("Group", "system:unauthenticated"),
        ("User", "system:anonymous"),
        ("Group", "system:serviceaccounts"),
        ("Group", "system:serviceaccounts:build"),
    ]:
        res = run_scan(_cluster(crb("everyone", "cluster-admin", {"kind": kind, "name": name})))
        hits = [f for f in res.findings if f.rule_id == "KS-RBAC-001"]
        assert hits and hits[0].severity.value == "critical", (kind, name)
    # the bootstrap binding of system:masters is the platform's own
    res = run_scan(
        _cluster(crb("cluster-admin", "cluster-admin", {"kind": "Group", "name": "system:masters"}))
    )
    assert not [f for f in res.findings if f.rule_id == "KS-RBAC-001"]


def test_escalation_from_a_population_is_a_path():
    docs = [
        crb("sa-admin", "cluster-admin", {"kind": "ServiceAccount", "name": "boss", "namespace": "ops"}),
        crb("edit-all", "edit", {"kind": "Group", "name": "system:authenticated"}, "RoleBinding", "ops"),
    ]
    res = run_scan(_cluster(*docs))
    paths = [f for f in res.findings if f.rule_id == "KS-RBAC-002"]
    assert any(f.message.startswith("group:system:authenticated") for f in paths), [f.message for f in paths]
