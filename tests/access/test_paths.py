"""Attack paths: each escalation edge on its own, multi-hop through IAM, and shortest-path choice."""

from __future__ import annotations

import pytest

from kubestrata.access.model import AccessModel
from kubestrata.access.paths import AttackGraph
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_objects

CA = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cluster-admin}
rules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}, {nonResourceURLs: ['*'], verbs: ['*']}]
"""


def grant(subject: str, rules: str, ns: str = "") -> str:
    kind, bkind = ("Role", "RoleBinding") if ns else ("ClusterRole", "ClusterRoleBinding")
    meta = f"{{name: g, namespace: {ns}}}" if ns else "{name: g}"
    return (
        f"---\napiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata: {meta}\nrules: {rules}\n"
        f"---\napiVersion: rbac.authorization.k8s.io/v1\nkind: {bkind}\nmetadata: {meta}\n"
        f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: g}}\nsubjects: [{subject}]\n"
    )


def path(text: str, src: str, target: str = "cluster-admin") -> list[str]:
    g = AttackGraph(AccessModel(Cluster(load_objects(text))))
    nxt = g.shortest_to(target)
    return [e.kind for e in g.path_from(src, nxt)] if src in nxt else []


EVE = "{kind: User, name: eve}"


@pytest.mark.parametrize(
    "rules,ns,want",
    [
        ("[{apiGroups: [''], resources: [groups], verbs: [impersonate]}]", "", ["impersonate"]),
        (
            "[{apiGroups: [''], resources: [groups], verbs: [impersonate], resourceNames: [developers]}]",
            "",
            [],
        ),
        (
            "[{apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings], verbs: [create]}, {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [cluster-admin]}]",
            "",
            ["bind-cluster-admin"],
        ),
        (
            "[{apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings], verbs: [create]}]",
            "",
            [],
        ),  # no bind/escalate
        (
            "[{apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings], verbs: [create]}, {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [escalate]}]",
            "",
            ["bind-cluster-admin"],
        ),
        (
            "[{apiGroups: [''], resources: [configmaps], resourceNames: [aws-auth], verbs: [update]}]",
            "kube-system",
            ["write-aws-auth"],
        ),
        # impersonating groups needs a ClusterRoleBinding: users and groups are cluster-scoped
        ("[{apiGroups: [''], resources: [groups], verbs: [impersonate]}]", "apps", []),
    ],
)
def test_single_edges_to_admin(rules, ns, want):
    assert path(CA + grant(EVE, rules, ns), "user:eve") == want


def test_run_pods_then_admin_service_account():
    text = (
        CA
        + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot, namespace: tools}\n"
        + grant(EVE, "[{apiGroups: [apps], resources: [deployments], verbs: [create]}]", "tools")
        + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bot}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: bot, namespace: tools}]\n"
    )
    assert path(text, "user:eve") == ["run-pods", "run-as-sa", "holds-admin"]


def test_token_request_and_legacy_secret():
    base = (
        CA
        + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot, namespace: tools}\n"
        + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bot}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: bot, namespace: tools}]\n"
    )
    tok = grant(EVE, "[{apiGroups: [''], resources: [serviceaccounts/token], verbs: [create]}]", "tools")
    assert path(base + tok, "user:eve") == ["create-token", "holds-admin"]
    sec = grant(EVE, "[{apiGroups: [''], resources: [secrets], verbs: [get, list]}]", "tools")
    assert path(base + sec, "user:eve") == []  # no legacy token secret in the snapshot
    legacy = "---\napiVersion: v1\nkind: Secret\ntype: kubernetes.io/service-account-token\nmetadata: {name: bot-token, namespace: tools, annotations: {kubernetes.io/service-account.name: bot}}\n"
    assert path(base + sec + legacy, "user:eve") == ["read-token-secret", "holds-admin"]


def test_irsa_to_iam_role_mapped_as_admin():
    text = (
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ci, namespace: build, annotations: {eks.amazonaws.com/role-arn: 'arn:aws:iam::1:role/ci'}}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: aws-auth, namespace: kube-system}\ndata:\n  mapRoles: |\n    - rolearn: arn:aws:iam::1:role/ci\n      username: ci\n      groups: [system:masters]\n"
    )
    assert path(text, "sa:build/ci") == ["irsa", "system:masters"]


def test_pod_identity_association_edge():
    text = (
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ci, namespace: build}\n"
        "---\napiVersion: kubestrata.io/v1alpha1\nkind: EKSClusterAccess\nmetadata: {name: c, namespace: kube-system}\n"
        "cluster: {accessConfig: {authenticationMode: API}}\n"
        "accessEntries: [{principalArn: 'arn:aws:iam::1:role/ci', associatedAccessPolicies: [{policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy', accessScope: {type: cluster}}]}]\n"
        "podIdentityAssociations: [{namespace: build, serviceAccount: ci, roleArn: 'arn:aws:iam::1:role/ci'}]\n"
    )
    assert path(text, "sa:build/ci") == ["pod-identity", "holds-admin"]


def test_exec_into_privileged_pod_reaches_node_root_and_its_sa():
    text = (
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ops, labels: {pod-security.kubernetes.io/enforce: restricted}}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: debug, namespace: ops}\n"
        "spec: {serviceAccountName: dbg, containers: [{name: c, image: x, securityContext: {privileged: true}}]}\n"
        + grant(EVE, "[{apiGroups: [''], resources: [pods/exec], verbs: [create]}]", "ops")
    )
    assert path(text, "user:eve", "node-root") == ["exec", "privileged-pod"]


def test_psa_enforced_namespace_blocks_privileged_pods():
    rules = "[{apiGroups: [''], resources: [pods], verbs: [create]}]"
    open_ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n" + grant(EVE, rules, "a")
    closed = (
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {pod-security.kubernetes.io/enforce: baseline}}\n"
        + grant(EVE, rules, "a")
    )
    assert path(open_ns, "user:eve", "node-root") == ["run-pods", "privileged-pod"]
    assert path(closed, "user:eve", "node-root") == []


def test_nodes_proxy():
    assert path(
        grant(EVE, "[{apiGroups: [''], resources: [nodes/proxy], verbs: [get]}]"), "user:eve", "node-root"
    ) == ["nodes-proxy"]


def test_kube_system_secrets():
    assert path(
        grant(EVE, "[{apiGroups: [''], resources: [secrets], verbs: [list]}]", "kube-system"),
        "user:eve",
        "kube-system-secrets",
    ) == ["read-secrets"]
    assert (
        path(
            grant(EVE, "[{apiGroups: [''], resources: [secrets], verbs: [list]}]", "apps"),
            "user:eve",
            "kube-system-secrets",
        )
        == []
    )


def test_shortest_path_wins():
    long_ = (
        CA
        + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot, namespace: tools}\n"
        + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bot}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: bot, namespace: tools}]\n"
        + grant(
            EVE,
            "[{apiGroups: [''], resources: [pods], verbs: [create]}, {apiGroups: [''], resources: [groups], verbs: [impersonate]}]",
        )
    )
    assert path(long_, "user:eve") == ["impersonate"]


def test_node_root_holds_daemonset_tokens_and_node_role():
    text = (
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: dev}\n"
        "---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: ops}\n"
        "spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {serviceAccountName: agent, containers: [{name: c, image: x}]}}}\n---"
        + CA
        + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: agent}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: agent, namespace: ops}]\n"
        + grant(EVE, "[{apiGroups: [''], resources: [pods], verbs: [create]}]", "dev")
    )
    assert path(text, "user:eve") == ["run-pods", "privileged-pod", "node-token", "holds-admin"]
    # a token the DaemonSet does not mount is not on the node
    no_token = text.replace(
        "serviceAccountName: agent,", "serviceAccountName: agent, automountServiceAccountToken: false,"
    )
    assert path(no_token, "user:eve") == []


def test_node_root_reads_node_role():
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: aws-auth, namespace: kube-system}\ndata:\n  mapRoles: |\n"
        "    - rolearn: arn:aws:iam::1:role/node\n      username: system:node:{{EC2PrivateDNSName}}\n      groups: [system:bootstrappers, system:nodes, system:masters]\n"
        + grant(EVE, "[{apiGroups: [''], resources: [nodes/proxy], verbs: [get]}]")
    )
    assert path(text, "user:eve") == ["nodes-proxy", "node-credentials", "system:masters"]
