"""Precedence and attribution, case by case (../shared/reference/pod-security.md section 4): the right
container, the right field path, the right severity, pod vs container vs ServiceAccount."""

from __future__ import annotations

import pytest

from kubestrata.checks import load_builtin_checks
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_objects
from kubestrata.scan import run_scan

REGISTRY = load_builtin_checks()


def scan(text: str, rule: str) -> list:
    result = run_scan(Cluster(load_objects(text)), checks=[REGISTRY.get(rule)])
    assert not result.coverage.gaps, result.coverage.gaps
    return [f for f in result.findings if f.rule_id == rule]


POD = "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: app}}\nspec:\n{spec}"


def pod(spec: str) -> str:
    return POD.format(spec="\n".join("  " + ln for ln in spec.strip().splitlines()))


# --- runAsNonRoot / runAsUser (KS-WL-005) ---------------------------------------------------------
@pytest.mark.parametrize(
    "spec,expected",
    [
        # container false hides behind pod true in peers (aquasecurity/defsec#1131): must fire
        (
            "securityContext: {runAsNonRoot: true}\ncontainers: [{name: c, image: a, securityContext: {runAsNonRoot: false}}]",
            [("c", "spec.containers[0].securityContext.runAsNonRoot", "medium")],
        ),
        # container true overrides pod false
        (
            "securityContext: {runAsNonRoot: false}\ncontainers: [{name: c, image: a, securityContext: {runAsNonRoot: true}}]",
            [],
        ),
        # pod false, container unset: the finding points at the pod field that causes it
        (
            "securityContext: {runAsNonRoot: false}\ncontainers: [{name: c, image: a}]",
            [("c", "spec.securityContext.runAsNonRoot", "medium")],
        ),
        # UID 0 on the container beats runAsNonRoot on the pod, and is high
        (
            "securityContext: {runAsNonRoot: true}\ncontainers: [{name: c, image: a, securityContext: {runAsUser: 0}}]",
            [("c", "spec.containers[0].securityContext.runAsUser", "high")],
        ),
        # UID 0 on the pod, overridden by a container user
        (
            "securityContext: {runAsUser: 0}\ncontainers: [{name: c, image: a, securityContext: {runAsUser: 1000}}, {name: d, image: a}]",
            [("d", "spec.securityContext.runAsUser", "high")],
        ),
        # only the container at fault is named (trivy#6154): init, regular, ephemeral
        (
            "initContainers: [{name: i, image: a}]\ncontainers: [{name: c, image: a, securityContext: {runAsUser: 5}}]\nephemeralContainers: [{name: e, image: a}]",
            [
                ("i", "spec.initContainers[0].securityContext.runAsNonRoot", "medium"),
                ("e", "spec.ephemeralContainers[0].securityContext.runAsNonRoot", "medium"),
            ],
        ),
    ],
)
def test_run_as_non_root_precedence(spec, expected):
    got = sorted((f.container, f.evidence[0].path, f.severity.value) for f in scan(pod(spec), "KS-WL-005"))
    assert got == sorted(expected)


def test_run_as_root_fix_says_it_may_need_an_image_change():
    (f,) = scan(pod("containers: [{name: c, image: a}]"), "KS-WL-005")
    assert f.fix == [
        {"op": "add", "path": "/spec/containers/0/securityContext", "value": {"runAsNonRoot": True}}
    ]
    assert "image" in f.fix_note


# --- automountServiceAccountToken (KS-WL-002) -------------------------------------------------
SA = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: app, namespace: app}}\n{field}\n---\n"


@pytest.mark.parametrize(
    "sa_field,pod_field,fires",
    [
        ("", "", True),  # neither: mounted by default
        ("automountServiceAccountToken: false", "", False),  # the SA's setting applies
        ("automountServiceAccountToken: false", "automountServiceAccountToken: true", True),  # pod wins
        ("automountServiceAccountToken: true", "automountServiceAccountToken: false", False),  # pod wins
        ("automountServiceAccountToken: true", "", True),
    ],
)
def test_automount_pod_wins_else_service_account_else_mounted(sa_field, pod_field, fires):
    text = SA.format(field=sa_field) + pod(
        f"serviceAccountName: app\n{pod_field}\ncontainers: [{{name: c, image: a}}]"
    )
    assert bool(scan(text, "KS-WL-002")) is fires


def test_automount_severity_depends_on_rbac_bindings():
    base = pod("serviceAccountName: app\ncontainers: [{name: c, image: a}]")
    # no RBAC objects in the input: cannot tell, default severity
    (f,) = scan(base, "KS-WL-002")
    assert f.severity.value == "medium"
    other = (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, namespace: app}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\n"
        "subjects: [{kind: ServiceAccount, name: other, namespace: app}]\n---\n"
    )
    # bindings exist, none for this ServiceAccount: it does not need the API, so higher severity
    (f,) = scan(other + base, "KS-WL-002")
    assert f.severity.value == "high" and "no RBAC binding" in f.message
    # a binding for the ServiceAccount (here through the namespace's service-account group)
    group = other.replace(
        "{kind: ServiceAccount, name: other, namespace: app}",
        "{kind: Group, name: 'system:serviceaccounts:app'}",
    )
    (f,) = scan(group + base, "KS-WL-002")
    assert f.severity.value == "medium"


def test_automount_service_account_not_in_input_is_named():
    (f,) = scan(pod("serviceAccountName: builder\ncontainers: [{name: c, image: a}]"), "KS-WL-002")
    assert "'builder' (not in the input)" in f.message


def test_cronjob_paths_point_into_the_job_template():
    text = (
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: n, namespace: app}\nspec:\n  schedule: '* * * * *'\n"
        "  jobTemplate:\n    spec:\n      template:\n        spec:\n"
        "          containers: [{name: job, image: a, securityContext: {privileged: true}}]\n"
    )
    (f,) = scan(text, "KS-WL-001")
    assert (
        f.evidence[0].path == "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"
    )
    assert f.fix[0]["path"] == "/spec/jobTemplate/spec/template/spec/containers/0/securityContext/privileged"
    (f,) = scan(text, "KS-WL-002")
    assert f.evidence[0].path == "spec.jobTemplate.spec.template.spec.automountServiceAccountToken"


def test_privileged_ephemeral_container_is_not_allow_listed_outside_kube_system():
    text = pod(
        "containers: [{name: app, image: a}]\n"
        "ephemeralContainers: [{name: debugger, image: b, securityContext: {privileged: true}}]"
    )
    (f,) = scan(text, "KS-WL-001")
    assert f.container == "debugger" and f.severity.value == "high"
    assert f.evidence[0].path == "spec.ephemeralContainers[0].securityContext.privileged"
    assert (
        scan(
            text.replace("namespace: app", "namespace: kube-system").replace("name: p,", "name: aws-node,"),
            "KS-WL-001",
        )[0].severity.value
        == "info"
    )


# --- hostPath ranking (KS-WL-003) --------------------------------------------------------------
@pytest.mark.parametrize(
    "path,read_only,severity",
    [
        ("/var/run/docker.sock", False, "critical"),
        ("/run/containerd/containerd.sock", True, "high"),
        ("/var/lib/kubelet/pods", False, "critical"),
        ("/", True, "high"),
        ("/data/cache", False, "high"),
        ("/data/cache", True, "medium"),
        ("/etcetera", True, "medium"),  # a prefix of /etc by characters, not a path under it
    ],
)
def test_host_path_ranking(path, read_only, severity):
    text = pod(
        f"volumes: [{{name: h, hostPath: {{path: '{path}'}}}}]\n"
        f"containers: [{{name: c, image: a, volumeMounts: [{{name: h, mountPath: /h, readOnly: {str(read_only).lower()}}}]}}]"
    )
    (f,) = scan(text, "KS-WL-003")
    assert f.severity.value == severity


# --- fixes on a null securityContext (KS-WL-004, KS-WL-005) ----------------------------------------
@pytest.mark.parametrize("rule", ["KS-WL-004", "KS-WL-005"])
def test_fix_applies_to_null_security_context(rule: str) -> None:
    import jsonpatch

    text = pod("containers: [{name: c, image: a, securityContext: null}]")
    (finding,) = scan(text, rule)
    patched = jsonpatch.apply_patch(load_objects(text)[0].raw, finding.fix)
    assert patched["spec"]["containers"][0]["securityContext"] in (
        {"readOnlyRootFilesystem": True},
        {"runAsNonRoot": True},
    )
