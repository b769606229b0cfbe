"""Namespace labels (api.PolicyToEvaluate), PodSecurityConfiguration, exemptions, object evaluation."""

from __future__ import annotations

import pytest

from kubestrata.errors import InputError
from kubestrata.pss import (
    Level,
    LevelVersion,
    NamespacePolicy,
    Policy,
    Version,
    evaluate_object,
    load_pod_security_configuration,
    parse_pod_security_configuration,
)
from kubestrata.pss.api import LATEST, parse_version
from tests.pss.helpers import pod

P = "pod-security.kubernetes.io/"


def lv(s):
    return LevelVersion.parse(s)


def test_unlabelled_namespace_uses_defaults():
    assert NamespacePolicy.from_labels({}).policy == Policy()
    d = Policy(lv("baseline:v1.30"), lv("restricted"), lv("restricted"))
    assert NamespacePolicy.from_labels({"kubernetes.io/metadata.name": "x"}, d).policy == d


def test_invalid_values_fail_closed_for_enforce_open_for_audit_and_warn():
    pol = NamespacePolicy.from_labels({P + "enforce": "strict", P + "audit": "loud", P + "warn": "Baseline"})
    assert pol.enforce == LevelVersion(Level.RESTRICTED, LATEST)
    assert pol.audit.level is Level.PRIVILEGED
    assert pol.warn.level is Level.PRIVILEGED
    assert [e.label for e in pol.errors] == [P + "enforce", P + "audit", P + "warn"]
    assert str(pol.errors[0]) == (
        'metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": '
        "must be one of privileged, baseline, restricted"
    )


@pytest.mark.parametrize("bad", ["1.30", "v1.030", "v2.0", "v1", "v1.", "latest ", "", "V1.30", "v1.-1"])
def test_invalid_versions_mean_latest(bad):
    pol = NamespacePolicy.from_labels({P + "enforce": "baseline", P + "enforce-version": bad})
    assert pol.enforce == LevelVersion(Level.BASELINE, LATEST)
    assert pol.errors and 'must be "latest" or "v1.x"' in str(pol.errors[0])


@pytest.mark.parametrize("good,minor", [("v1.0", 0), ("v1.30", 30), ("v1.10000", 10000), ("latest", None)])
def test_valid_versions(good, minor):
    assert parse_version(good) == (Version(minor), None)


def test_warn_follows_a_stricter_enforce():
    pol = NamespacePolicy.from_labels({P + "enforce": "restricted", P + "enforce-version": "v1.29"})
    assert pol.warn == lv("restricted:v1.29")
    pol = NamespacePolicy.from_labels(
        {P + "enforce": "restricted", P + "enforce-version": "v1.29", P + "warn-version": "v1.31"}
    )
    assert pol.warn == lv("restricted:v1.31")
    pol = NamespacePolicy.from_labels({P + "enforce": "restricted", P + "warn": "baseline"})
    assert pol.warn == lv("baseline")
    # not when the default warn is already as strict
    d = Policy(lv("privileged"), lv("privileged"), lv("restricted:v1.25"))
    assert NamespacePolicy.from_labels({P + "enforce": "baseline"}, d).warn == lv("restricted:v1.25")


CONFIG = """
apiVersion: pod-security.admission.config.k8s.io/v1
kind: PodSecurityConfiguration
defaults:
  enforce: baseline
  enforce-version: v1.30
  audit: restricted
  warn: restricted
  warn-version: latest
exemptions:
  usernames: [system:serviceaccount:kube-system:replicaset-controller]
  runtimeClasses: [kata]
  namespaces: [kube-system]
"""


def test_pod_security_configuration(tmp_path):
    f = tmp_path / "psa.yaml"
    f.write_text(CONFIG)
    cfg = load_pod_security_configuration(str(f))
    assert cfg.defaults == Policy(lv("baseline:v1.30"), lv("restricted"), lv("restricted"))
    assert cfg.exemptions.namespaces == {"kube-system"} and cfg.exemptions.runtime_classes == {"kata"}
    # the same inside an AdmissionConfiguration, and v1beta1
    wrapped = (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  configuration:\n"
        + "\n".join("    " + line for line in CONFIG.replace("/v1\n", "/v1beta1\n").strip().splitlines())
    )
    f.write_text(wrapped)
    assert load_pod_security_configuration(str(f)) == type(cfg)(cfg.defaults, cfg.exemptions, str(f))


@pytest.mark.parametrize(
    "mutation,field",
    [
        (("enforce: baseline", "enforce: strict"), "defaults.enforce"),
        (("enforce-version: v1.30", "enforce-version: '1.30'"), "defaults.enforce-version"),
        (("namespaces: [kube-system]", "namespaces: [kube-system, kube-system]"), "exemptions.namespaces[1]"),
        (("namespaces: [kube-system]", "namespaces: [Kube_System]"), "exemptions.namespaces[0]"),
        (("runtimeClasses: [kata]", "runtimeClasses: ['']"), "exemptions.runtimeClasses[0]"),
        (("kind: PodSecurityConfiguration", "kind: Pod"), "kind"),
        (("/v1\n", "/v2\n"), "apiVersion"),
    ],
)
def test_invalid_configuration_names_the_field(tmp_path, mutation, field):
    f = tmp_path / "psa.yaml"
    f.write_text(CONFIG.replace(*mutation))
    with pytest.raises(InputError) as e:
        load_pod_security_configuration(str(f))
    assert e.value.field == field and e.value.file == str(f)


def test_exemptions(tmp_path):
    import yaml

    cfg = parse_pod_security_configuration(yaml.safe_load(CONFIG))
    pol = NamespacePolicy.from_labels({P + "enforce": "restricted"})
    bad = pod({"securityContext": None})
    r = evaluate_object(bad, pol, exemptions=cfg.exemptions)
    assert not r.allowed
    ns = pod({"securityContext": None}, namespace="kube-system")
    assert evaluate_object(ns, pol, exemptions=cfg.exemptions).exempt == "namespace"
    rc = pod({"securityContext": None, "runtimeClassName": "kata"})
    r = evaluate_object(rc, pol, exemptions=cfg.exemptions)
    assert r.allowed and r.exempt == "runtimeClass"
    r = evaluate_object(
        bad,
        pol,
        exemptions=cfg.exemptions,
        username="system:serviceaccount:kube-system:replicaset-controller",
    )
    assert r.allowed and r.exempt == "user"
    # a controller's service account is not the requesting user: no exemption by default
    assert not evaluate_object(bad, pol, exemptions=cfg.exemptions, username="alice").allowed


def test_pod_versus_controller_admission():
    pol = NamespacePolicy.from_labels(
        {P + "enforce": "baseline", P + "audit": "restricted", P + "warn": "restricted"}
    )
    priv = pod()
    priv["spec"]["containers"][0]["securityContext"]["privileged"] = True
    r = evaluate_object(priv, pol)
    assert not r.allowed and r.message.startswith('violates PodSecurity "baseline:latest": privileged (')
    assert r.warnings == []  # no warnings on a request already denied
    assert r.audit_annotations["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest": privileged ('
    )
    assert r.audit_annotations["pod-security.kubernetes.io/enforce-policy"] == "baseline:latest"
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"template": {"metadata": {}, "spec": priv["spec"]}},
    }
    r = evaluate_object(deploy, pol)
    assert r.allowed and not r.pods_allowed  # controllers: warn and audit only
    from kubestrata.pss import evaluate_pod

    assert r.warnings == [evaluate_pod(deploy, "restricted").warning]
    assert r.summary().startswith(
        'pods of Deployment d would be denied in namespace ns: violates PodSecurity "baseline:latest"'
    )
    assert r.enforce.violations[0].path == "spec.template.spec.containers[0].securityContext.privileged"
    # a compliant pod in a baseline namespace still warns at restricted
    ok = pod()
    del ok["spec"]["securityContext"]
    r = evaluate_object(ok, pol)
    assert (
        r.allowed
        and r.warnings
        and r.warnings[0].startswith('would violate PodSecurity "restricted:latest": runAsNonRoot')
    )


def test_label_errors_are_reported_and_enforced_closed():
    pol = NamespacePolicy.from_labels({P + "enforce": "nope"})
    ok = pod()
    r = evaluate_object(ok, pol)
    assert r.allowed and r.audit_annotations["error"].startswith("Failed to parse policy: metadata.labels[")
    bad = pod({"securityContext": None})
    assert not evaluate_object(bad, pol).allowed  # restricted, fail closed


def test_cronjob_and_other_kinds():
    cj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {
            "jobTemplate": {
                "spec": {"template": {"spec": {"hostPID": True, "containers": [{"name": "x", "image": "x"}]}}}
            }
        },
    }
    r = evaluate_object(cj, lv("baseline"))
    assert (
        not r.pods_allowed and r.enforce.violations[0].path == "spec.jobTemplate.spec.template.spec.hostPID"
    )
    assert evaluate_object({"kind": "ConfigMap", "metadata": {"name": "x"}}, lv("baseline")) is None
    broken = {
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "securityContext": "x"}]}}},
    }
    r = evaluate_object(broken, lv("baseline"))
    assert r.error is not None and r.error.field == "spec.template.spec.containers[0].securityContext"
    assert not r.pods_allowed
