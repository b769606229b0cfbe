"""Check semantics and exact messages (expected strings from upstream's check_*_test.go), versions,
overrides, clamping, and the cases the fixtures lack."""

from __future__ import annotations

import copy

import pytest

from kubestrata.pss import CHECKS, MAX_MINOR, Level, Version, checks_for, evaluate_pod
from kubestrata.pss.api import LevelVersion
from kubestrata.pss.checks import go_quote
from kubestrata.pss.evaluate import pod_view
from kubestrata.pss.registry import run_checks
from tests.pss.helpers import RESTRICTED_CONTAINER_SC, pod


def detail(spec, check_id, version="latest", level="restricted", annotations=None):
    """(reason, detail) the named check gives for a pod with this spec (None when it passes)."""
    r = evaluate_pod(
        {"kind": "Pod", "metadata": {"annotations": annotations or {}}, "spec": spec}, level, version
    )
    assert r.error is None, r.error
    for f in r.failures:
        if f.check == check_id:
            return f.reason, f.detail
    return None


def c(name, **sc):
    out = {"name": name, "image": "x"}
    if sc:
        out["securityContext"] = sc
    return out


# --- upstream unit-test expectations -----------------------------------------------------------


def test_apparmor_messages():
    assert detail(
        {"containers": [c("a")], "securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
        "appArmorProfile",
    ) == (
        "forbidden AppArmor profile",
        'pod must not set AppArmor profile type to "Unconfined"',
    )
    spec = {
        "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
        "containers": [c("foo")],
        "initContainers": [c("bar", appArmorProfile={"type": "Unconfined"})],
    }
    assert detail(spec, "appArmorProfile") == (
        "forbidden AppArmor profile",
        'container "bar" must not set AppArmor profile type to "Unconfined"',
    )
    ann = {
        "container.apparmor.security.beta.kubernetes.io/": "bogus",
        "container.apparmor.security.beta.kubernetes.io/a": "",
        "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
        "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
        "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
        "container.apparmor.security.beta.kubernetes.io/f": "unknown",
    }
    assert detail({"containers": [c("a")]}, "appArmorProfile", annotations=ann) == (
        "forbidden AppArmor profiles",
        "annotations must not set AppArmor profile type to "
        '"container.apparmor.security.beta.kubernetes.io/="bogus"", '
        '"container.apparmor.security.beta.kubernetes.io/e="unconfined"", '
        '"container.apparmor.security.beta.kubernetes.io/f="unknown""',
    )
    # allowed: Localhost and RuntimeDefault fields, unrelated annotations
    ok = {
        "containers": [c("a", appArmorProfile={"type": "Localhost", "localhostProfile": "p"})],
        "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
    }
    assert detail(ok, "appArmorProfile", annotations={"env": "prod"}) is None


def test_host_probes_messages():
    spec = {
        "containers": [
            {"name": "valid", "image": "x"},
            {"name": "invalid1", "image": "x", "livenessProbe": {"httpGet": {"host": "a.com", "port": 1}}},
            {
                "name": "invalid2",
                "image": "x",
                "lifecycle": {"preStop": {"tcpSocket": {"host": "b.com", "port": 1}}},
                "startupProbe": {"httpGet": {"host": "a.com", "port": 1}},
            },
        ]
    }
    assert detail(spec, "hostProbesAndHostLifecycle", "v1.34", "baseline") == (
        "probe or lifecycle host",
        'containers "invalid1", "invalid2" use probe or lifecycle hosts "a.com", "b.com"',
    )
    one = {
        "containers": [
            {
                "name": "a",
                "image": "x",
                "livenessProbe": {"httpGet": {"host": "127.0.0.1"}},
                "readinessProbe": {"tcpSocket": {"host": "::1"}},
                "startupProbe": {"httpGet": {"host": "localhost"}},
            }
        ]
    }
    assert detail(one, "hostProbesAndHostLifecycle", "v1.34", "baseline")[1] == (
        'container "a" uses probe or lifecycle hosts "127.0.0.1", "::1", "localhost"'
    )
    # not before its first version, even though the field existed
    assert evaluate_pod({"spec": one}, "baseline", "v1.33").allowed
    unset = {"containers": [{"name": "a", "image": "x", "livenessProbe": {"httpGet": {"port": 80}}}]}
    assert evaluate_pod({"spec": unset}, "baseline", "latest").allowed


def test_restricted_volumes_message():
    allowed = [
        "emptyDir",
        "secret",
        "persistentVolumeClaim",
        "downwardAPI",
        "configMap",
        "projected",
        "csi",
        "ephemeral",
        "image",
    ]
    restricted = [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ]
    vols = [{"name": f"a{i + 1}", s: {}} for i, s in enumerate(allowed)]
    vols += [{"name": f"b{i + 1}", s: {}} for i, s in enumerate(restricted)]
    got = detail({"containers": [c("x")], "volumes": vols}, "restrictedVolumes")
    names = ", ".join(f'"b{i}"' for i in range(1, 22))
    types = ", ".join(f'"{t}"' for t in sorted(restricted))
    assert got == ("restricted volume types", f"volumes {names} use restricted volume types {types}")
    # a volume without a source is defaulted to emptyDir by the API server before PSA sees it
    assert detail({"containers": [c("x")], "volumes": [{"name": "c1"}]}, "restrictedVolumes") is None
    assert detail({"containers": [c("x")], "volumes": [{"name": "v", "nfs": {}}]}, "restrictedVolumes") == (
        "restricted volume types",
        'volume "v" uses restricted volume type "nfs"',
    )


def test_host_namespaces_and_ports():
    spec = {"hostIPC": True, "hostNetwork": True, "hostPID": True, "containers": [c("a")]}
    assert detail(spec, "hostNamespaces", level="baseline") == (
        "host namespaces",
        "hostNetwork=true, hostPID=true, hostIPC=true",
    )
    spec = {
        "containers": [
            {
                "name": "a",
                "image": "x",
                "ports": [{"containerPort": 1, "hostPort": 8080}, {"containerPort": 2, "hostPort": 10}],
            },
            {"name": "b", "image": "x", "ports": [{"containerPort": 3, "hostPort": 9}]},
        ]
    }
    # upstream sorts the ports as strings
    assert detail(spec, "hostPorts", level="baseline") == (
        "hostPort",
        'containers "a", "b" use hostPorts 10, 8080, 9',
    )
    # the API server defaults hostPort to containerPort on host-network pods
    spec = {
        "hostNetwork": True,
        "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}],
    }
    assert detail(spec, "hostPorts", level="baseline") == ("hostPort", 'container "a" uses hostPort 80')
    # ... but no longer in pod templates, so PSA's warning on a Deployment does not list it
    deploy = {"kind": "Deployment", "spec": {"template": {"spec": spec}}}
    assert [f.check for f in evaluate_pod(deploy, "baseline").failures] == ["hostNamespaces"]


def test_run_as_non_root_and_user_messages():
    spec = {
        "securityContext": {"runAsNonRoot": False},
        "containers": [c("a", runAsNonRoot=False), c("b", runAsNonRoot=True), c("d")],
    }
    assert detail(spec, "runAsNonRoot") == (
        "runAsNonRoot != true",
        'pod and container "a" must not set securityContext.runAsNonRoot=false',
    )
    spec = {
        "containers": [c("a"), c("b", runAsNonRoot=True), {"name": "e", "image": "x", "securityContext": {}}]
    }
    assert detail(spec, "runAsNonRoot") == (
        "runAsNonRoot != true",
        'pod or containers "a", "e" must set securityContext.runAsNonRoot=true',
    )
    spec = {"securityContext": {"runAsUser": 0}, "containers": [c("a", runAsUser=0), c("b", runAsUser=1000)]}
    assert detail(spec, "runAsUser") == ("runAsUser=0", 'pod and container "a" must not set runAsUser=0')


def test_selinux_messages():
    spec = {
        "securityContext": {"seLinuxOptions": {"user": "u"}},
        "containers": [c("a", seLinuxOptions={"type": "spc_t", "role": "r"})],
    }
    assert detail(spec, "seLinuxOptions", level="baseline") == (
        "seLinuxOptions",
        'pod and container "a" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set; role may not be set',
    )
    engine = {"containers": [c("a", seLinuxOptions={"type": "container_engine_t"})]}
    assert detail(engine, "seLinuxOptions", "v1.30", "baseline") is not None
    assert detail(engine, "seLinuxOptions", "v1.31", "baseline") is None


def test_capabilities_messages():
    spec = {
        "containers": [
            c("a", capabilities={"add": ["NET_RAW", "CHOWN", "SYS_ADMIN"]}),
            c("b", capabilities={"drop": ["all"]}),
        ]
    }
    assert detail(spec, "capabilities_baseline", level="baseline") == (
        "non-default capabilities",
        'container "a" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add',
    )
    assert detail(spec, "capabilities_restricted") == (
        "unrestricted capabilities",
        'containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; '
        'container "a" must not include "CHOWN", "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add',
    )
    # overridden at restricted from v1.22: only one capabilities reason
    r = evaluate_pod({"spec": spec}, "restricted", "v1.22")
    assert [f.check for f in r.failures].count("capabilities_baseline") == 0
    r = evaluate_pod({"spec": spec}, "restricted", "v1.21")
    assert "capabilities_baseline" in [f.check for f in r.failures]


def test_seccomp_messages():
    spec = {
        "securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [c("a"), c("b", seccompProfile={"type": "RuntimeDefault"})],
    }
    assert detail(spec, "seccompProfile_restricted") == (
        "seccompProfile",
        'pod must not set securityContext.seccompProfile.type to "Unconfined"',
    )
    spec = {"containers": [c("a"), c("b", seccompProfile={"type": "RuntimeDefault"})]}
    assert detail(spec, "seccompProfile_restricted") == (
        "seccompProfile",
        'pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
    )
    # below v1.19 only the annotations count, and they are checked for existing containers only
    ann = {
        "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/a": "localhost/x",
        "container.seccomp.security.alpha.kubernetes.io/b": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/ghost": "unconfined",
    }
    assert detail({"containers": [c("a"), c("b")]}, "seccompProfile_baseline", "v1.18", "baseline", ann) == (
        "seccompProfile",
        'forbidden annotations container.seccomp.security.alpha.kubernetes.io/b="unconfined", '
        'seccomp.security.alpha.kubernetes.io/pod="unconfined"',
    )
    assert (
        detail({"containers": [c("a"), c("b")]}, "seccompProfile_baseline", "v1.19", "baseline", ann) is None
    )


# --- versions, overrides, clamping --------------------------------------------------------------


def test_table_shape_and_order():
    assert MAX_MINOR == 37
    ids = [cid for cid, _ in checks_for(Level.RESTRICTED, Version(37))]
    assert ids == [
        "appArmorProfile",
        "hostNamespaces",
        "hostPorts",
        "hostProbesAndHostLifecycle",
        "privileged",
        "seLinuxOptions",
        "sysctls",
        "windowsHostProcess",
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "procMount_restricted",
        "restrictedVolumes",
        "runAsNonRoot",
        "runAsUser",
        "seccompProfile_restricted",
    ]
    assert [cid for cid, _ in checks_for(Level.BASELINE, Version(0))] == [
        "appArmorProfile",
        "capabilities_baseline",
        "hostNamespaces",
        "hostPathVolumes",
        "hostPorts",
        "privileged",
        "procMount",
        "seLinuxOptions",
        "seccompProfile_baseline",
        "sysctls",
        "windowsHostProcess",
    ]
    # restricted below v1.8 is baseline + runAsNonRoot + restrictedVolumes (overriding hostPathVolumes)
    low = [cid for cid, _ in checks_for(Level.RESTRICTED, Version(7))]
    assert "allowPrivilegeEscalation" not in low and "hostPathVolumes" not in low
    assert {"runAsNonRoot", "restrictedVolumes", "seccompProfile_baseline"} <= set(low)
    assert checks_for(Level.PRIVILEGED, Version(37)) == ()
    assert {c.id for c in CHECKS} >= {"procMount_restricted", "hostProbesAndHostLifecycle"}


@pytest.mark.parametrize("version", ["latest", "v1.38", "v1.99", "v1.1000"])
def test_versions_above_newest_clamp_but_keep_their_name(version):
    p = {
        "spec": {
            "containers": [c("a")],
            "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat"}]},
        }
    }
    r = evaluate_pod(p, "restricted", version)
    newest = evaluate_pod(p, "restricted", "v1.37")
    assert [f.check for f in r.failures] == [f.check for f in newest.failures]
    assert r.message.startswith(f'violates PodSecurity "restricted:{version}": ')
    assert "sysctls" not in [f.check for f in r.failures]


@pytest.mark.parametrize(
    "name,first",
    [
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_keepalive_time", 29),
        ("net.ipv4.tcp_fin_timeout", 29),
        ("net.ipv4.tcp_rmem", 32),
        ("net.ipv4.tcp_wmem", 32),
        ("net.ipv4.tcp_slow_start_after_idle", 37),
        ("net.ipv4.tcp_notsent_lowat", 37),
        ("kernel.shm_rmid_forced", 0),
    ],
)
def test_sysctl_allow_list_by_version(name, first):
    p = {"spec": {"containers": [c("a")], "securityContext": {"sysctls": [{"name": name, "value": "1"}]}}}
    if first:
        r = evaluate_pod(p, "baseline", f"v1.{first - 1}")
        assert not r.allowed and r.forbidden_detail == f"forbidden sysctls ({name})"
    assert evaluate_pod(p, "baseline", f"v1.{first}").allowed


def test_run_as_user_not_before_v1_23():
    p = pod(
        {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 0,
                "seccompProfile": {"type": "RuntimeDefault"},
            }
        }
    )
    assert evaluate_pod(p, "restricted", "v1.22").allowed
    assert not evaluate_pod(p, "restricted", "v1.23").allowed


# --- what the fixtures lack ---------------------------------------------------------------------


def test_ephemeral_containers_are_checked_last():
    p = pod()
    p["spec"]["ephemeralContainers"] = [
        {"name": "debugger", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    p["spec"]["initContainers"][0]["securityContext"]["privileged"] = True
    r = evaluate_pod(p, "baseline", "latest")
    assert r.message == (
        'violates PodSecurity "baseline:latest": privileged (containers "init", "debugger" must not set '
        "securityContext.privileged=true)"
    )
    paths = [v.path for v in r.violations]
    assert paths == [
        "spec.initContainers[0].securityContext.privileged",
        "spec.ephemeralContainers[0].securityContext.privileged",
    ]
    # kubectl debug without a profile: no securityContext at all, denied at restricted
    p = pod()
    p["spec"]["ephemeralContainers"] = [{"name": "debugger-x", "image": "busybox"}]
    r = evaluate_pod(p, "restricted", "latest")
    assert 'container "debugger-x" must set securityContext.allowPrivilegeEscalation=false' in r.message
    assert 'pod or container "debugger-x"' not in r.message  # pod-level runAsNonRoot/seccomp cover it


def test_apparmor_fields_on_pod_and_container():
    for where in ("pod", "container"):
        p = pod()
        target = (
            p["spec"]["securityContext"] if where == "pod" else p["spec"]["containers"][0]["securityContext"]
        )
        target["appArmorProfile"] = {"type": "Unconfined"}
        r = evaluate_pod(p, "baseline", "v1.0")
        assert not r.allowed and "forbidden AppArmor profile" in r.message
        target["appArmorProfile"] = {"type": "Localhost", "localhostProfile": "k8s-nginx"}
        assert evaluate_pod(p, "restricted", "latest").allowed


def test_host_users_false_relaxations_from_v1_35():
    p = pod(
        {
            "hostUsers": False,
            "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
        }
    )
    p["spec"]["containers"][0]["securityContext"]["procMount"] = "Unmasked"
    r35 = evaluate_pod(p, "restricted", "v1.35")
    # runAsNonRoot and runAsUser relax for user-namespaced pods; procMount_restricted does not
    assert [f.check for f in r35.failures] == ["procMount_restricted"]
    r34 = evaluate_pod(p, "restricted", "v1.34")
    assert [f.check for f in r34.failures] == ["procMount", "runAsNonRoot", "runAsUser"]
    assert evaluate_pod(p, "baseline", "v1.35").allowed
    assert not evaluate_pod(p, "baseline", "v1.34").allowed
    p["spec"]["hostUsers"] = True
    assert not evaluate_pod(p, "baseline", "v1.35").allowed


@pytest.mark.parametrize("minor", [25, 26, 27, 28])
def test_windows_pods_v1_25_to_v1_28(minor):
    win = {
        "spec": {
            "os": {"name": "windows"},
            "securityContext": {"runAsNonRoot": True},
            "containers": [{"name": "iis", "image": "mcr.microsoft.com/windows/servercore/iis"}],
        }
    }
    assert evaluate_pod(win, "restricted", f"v1.{minor}").allowed
    before = evaluate_pod(win, "restricted", "v1.24")
    assert [f.check for f in before.failures] == [
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "seccompProfile_restricted",
    ]
    # no windows exemption for runAsNonRoot, nor for hostProcess
    no_nonroot = copy.deepcopy(win)
    del no_nonroot["spec"]["securityContext"]
    assert [f.check for f in evaluate_pod(no_nonroot, "restricted", f"v1.{minor}").failures] == [
        "runAsNonRoot"
    ]
    hp = copy.deepcopy(win)
    hp["spec"]["securityContext"]["windowsOptions"] = {"hostProcess": True}
    r = evaluate_pod(hp, "restricted", f"v1.{minor}")
    assert (
        r.forbidden_detail == "hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)"
    )
    # linux pods get no exemption
    lin = copy.deepcopy(win)
    lin["spec"]["os"] = {"name": "linux"}
    assert not evaluate_pod(lin, "restricted", f"v1.{minor}").allowed


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda s: s.__setitem__("containers", None), "spec.containers"),
        (lambda s: s.__setitem__("containers", "web"), "spec.containers"),
        (
            lambda s: s["containers"][0].__setitem__("securityContext", "x"),
            "spec.containers[0].securityContext",
        ),
        (
            lambda s: s["containers"][0]["securityContext"].__setitem__("runAsUser", True),
            "spec.containers[0].securityContext.runAsUser",
        ),
        (
            lambda s: s["containers"][0]["securityContext"].__setitem__("privileged", "true"),
            "spec.containers[0].securityContext.privileged",
        ),
        (lambda s: s.__setitem__("hostNetwork", "yes"), "spec.hostNetwork"),
        (lambda s: s["securityContext"].__setitem__("sysctls", {"a": 1}), "spec.securityContext.sysctls"),
        (lambda s: s.__setitem__("volumes", [{"name": "v", "hostPath": "/etc"}]), "spec.volumes[0].hostPath"),
        (lambda s: s["initContainers"].append(7), "spec.initContainers[1]"),
        (
            lambda s: s["containers"][0]["securityContext"]["capabilities"].__setitem__("drop", "ALL"),
            "spec.containers[0].securityContext.capabilities.drop",
        ),
    ],
)
def test_wrong_types_are_invalid_never_allowed(mutate, field):
    p = pod()
    mutate(p["spec"])
    for level in ("privileged", "baseline", "restricted"):
        r = evaluate_pod(p, level, "latest")
        assert not r.allowed and r.error is not None and r.error.field == field, (level, r.error)
        assert r.message.startswith("invalid pod spec: ")


def test_non_string_annotation_is_invalid():
    p = pod(annotations={"a": 1})
    r = evaluate_pod(p, "baseline")
    assert r.error is not None and r.error.field == "metadata.annotations[a]"


def test_go_quote():
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'


def test_precompiled_checks_match_direct_evaluation():
    view = pod_view(pod())
    for minor in range(MAX_MINOR + 1):
        for level in Level:
            assert run_checks(view, LevelVersion(level, Version(minor))).allowed
    assert RESTRICTED_CONTAINER_SC["capabilities"] == {"drop": ["ALL"]}
