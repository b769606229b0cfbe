import pytest

from kubestrata.rbac import Attributes, RBACAuthorizer, UserInfo, service_account_user

OBJECTS = [
    {
        "kind": "ClusterRole",
        "metadata": {"name": "agg", "labels": {}},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]},
    },
    {
        "kind": "ClusterRole",
        "metadata": {"name": "part", "labels": {"agg": "true"}},
        "rules": [{"apiGroups": ["apps"], "resources": ["deployments", "*/scale"], "verbs": ["get"]}],
    },
    {
        "kind": "ClusterRole",
        "metadata": {"name": "urls"},
        "rules": [{"nonResourceURLs": ["/healthz", "/logs/*"], "verbs": ["get"]}],
    },
    {
        "kind": "Role",
        "metadata": {"name": "named", "namespace": "a"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cm1"], "verbs": ["*"]}],
    },
    {
        "kind": "RoleBinding",
        "metadata": {"name": "rb", "namespace": "a"},
        "roleRef": {"kind": "Role", "name": "named"},
        "subjects": [{"kind": "User", "name": "u"}],
    },
    {
        "kind": "RoleBinding",
        "metadata": {"name": "rb2", "namespace": "a"},
        "roleRef": {"kind": "ClusterRole", "name": "urls"},
        "subjects": [{"kind": "User", "name": "u"}],
    },
    {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "crb"},
        "roleRef": {"kind": "ClusterRole", "name": "agg"},
        "subjects": [{"kind": "Group", "name": "g"}],
    },
    {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "crb-urls"},
        "roleRef": {"kind": "ClusterRole", "name": "urls"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "a"}],
    },
]
R = RBACAuthorizer(OBJECTS)
U = UserInfo("u")
G = UserInfo("x", ("g",))
SA = service_account_user("a", "sa")


@pytest.mark.parametrize(
    "attrs,want",
    [
        (Attributes(U, "get", namespace="a", resource="configmaps", name="cm1"), True),
        (Attributes(U, "get", namespace="a", resource="configmaps", name="cm2"), False),
        (
            Attributes(U, "list", namespace="a", resource="configmaps"),
            False,
        ),  # resourceNames never match list
        (Attributes(U, "get", namespace="b", resource="configmaps", name="cm1"), False),
        (
            Attributes(U, "get", resource_request=False, path="/healthz"),
            False,
        ),  # URLs only via ClusterRoleBinding
        (Attributes(SA, "get", resource_request=False, path="/logs/kube"), True),
        (Attributes(SA, "get", resource_request=False, path="/logsx"), False),
        (Attributes(G, "get", namespace="z", api_group="apps", resource="deployments"), True),
        (
            Attributes(
                G, "get", namespace="z", api_group="apps", resource="statefulsets", subresource="scale"
            ),
            True,
        ),
        (Attributes(G, "get", namespace="z", api_group="apps", resource="statefulsets"), False),
        (Attributes(G, "get", namespace="z", api_group="", resource="deployments"), False),
        (Attributes(UserInfo("root", ("system:masters",)), "delete", resource="nodes"), True),
    ],
)
def test_authorize(attrs, want):
    assert R.authorize(attrs).allowed is want


def test_binding_with_non_mapping_role_ref_grants_nothing():
    authz = RBACAuthorizer(
        [
            {
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "bad"},
                "roleRef": "cluster-admin",
                "subjects": [{"kind": "User", "name": "mallory"}],
            },
            {"kind": "ClusterRole", "metadata": {"name": "cluster-admin"}, "rules": [{"verbs": ["*"]}]},
        ]
    )
    assert authz.authorize(Attributes(UserInfo("mallory"), "get", resource="pods")).allowed is False
