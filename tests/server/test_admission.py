"""Admission (validating and mutating) through the ASGI app in-process: PSS per namespace labels,
Cedar forbids, best-practice warnings, safe fixes as JSONPatch, dryRun, failure modes."""

from __future__ import annotations

import base64
import copy
import json
import logging
import warnings

import jsonpatch
import pytest

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx is what the project ships
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from kubestrata.admission.namespaces import StaticNamespaces
from kubestrata.admission.registry import AdmissionDenied, AdmissionRegistry
from kubestrata.server.app import create_app
from kubestrata.server.assemble import build_state
from tests.server.fakes import ForbidNamedProd, config

RESTRICTED_NS = {
    "team-a": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "v1.30",
    },
    "relaxed": {"pod-security.kubernetes.io/warn": "baseline"},
}

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web"},
    "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]},
}
PRIVILEGED_POD = copy.deepcopy(POD)
PRIVILEGED_POD["spec"]["containers"][0]["securityContext"] = {"privileged": True}


def review(
    obj, *, op="CREATE", ns="team-a", kind="Pod", group="", uid="uid-1", dry_run=False, old=None, user="alice"
):
    req = {
        "uid": uid,
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"},
        "namespace": ns,
        "name": (obj or old or {}).get("metadata", {}).get("name", ""),
        "operation": op,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


def make_client(*, cedar=None, registry=None, namespaces=None, **serve):
    cfg = config(**serve)
    state = build_state(
        cfg,
        cedar=cedar,
        audit=None,
        registry=registry,
        namespaces=namespaces if namespaces is not None else StaticNamespaces(RESTRICTED_NS),
    )
    return TestClient(create_app(state)), state


@pytest.fixture
def client():
    c, _ = make_client()
    with c:
        yield c


def test_pss_enforce_denies_pod_with_psa_message(client):
    r = client.post("/admit", json=review(PRIVILEGED_POD)).json()["response"]
    assert r["uid"] == "uid-1" and r["allowed"] is False
    assert r["status"]["code"] == 403
    msg = r["status"]["message"]
    # PSA's own text; the API server prefixes 'admission webhook "<name>" denied the request: '
    assert msg.startswith(
        'violates PodSecurity "restricted:v1.30": privileged (container "app" must not set '
        "securityContext.privileged=true), allowPrivilegeEscalation != false"
    )
    assert r["auditAnnotations"]["pss-enforce-policy"] == "restricted:v1.30"


def test_pss_controller_warns_but_is_admitted(client):
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": PRIVILEGED_POD["spec"]},
        },
    }
    r = client.post("/admit", json=review(dep, kind="Deployment", group="apps")).json()["response"]
    assert r["allowed"] is True
    assert any('would violate PodSecurity "restricted:v1.30"' in w for w in r["warnings"])


def test_namespace_without_labels_is_privileged(client):
    r = client.post("/admit", json=review(PRIVILEGED_POD, ns="other")).json()["response"]
    assert r["allowed"] is True
    # the best-practice checks still warn, as `kubestrata scan` would report
    assert any(w.startswith("KS-WL-001 (high): container 'app' runs privileged") for w in r["warnings"])
    assert "KS-WL-001" in r["auditAnnotations"]["checks-findings"]


def test_pss_warn_label(client):
    r = client.post("/admit", json=review(PRIVILEGED_POD, ns="relaxed")).json()["response"]
    assert r["allowed"] is True
    assert any('would violate PodSecurity "baseline:latest"' in w for w in r["warnings"])


def test_pod_update_without_spec_change_is_not_reevaluated(client):
    old = copy.deepcopy(PRIVILEGED_POD)
    new = copy.deepcopy(PRIVILEGED_POD)
    new["metadata"]["labels"] = {"x": "y"}
    r = client.post("/admit", json=review(new, op="UPDATE", old=old)).json()["response"]
    assert r["allowed"] is True


class FailingLookup:
    async def labels(self, namespace):
        raise TimeoutError("API server unreachable")


def test_namespace_lookup_failure_fails_closed_by_default():
    c, state = make_client(namespaces=FailingLookup())
    with c:
        r = c.post("/admit", json=review(POD)).json()["response"]
        assert r["allowed"] is False and "pss could not evaluate" in r["status"]["message"]
        metrics = state.metrics.render()[0].decode()
    assert 'kubestrata_evaluation_errors_total{engine="namespaces",webhook="admit"} 1.0' in metrics


def test_namespace_lookup_failure_fails_open_when_configured():
    c, _ = make_client(namespaces=FailingLookup(), admission={"on_error": "allow"})
    with c:
        r = c.post("/admit", json=review(POD)).json()["response"]
    assert r["allowed"] is True and any("pss could not evaluate" in w for w in r["warnings"])


CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prod-settings"}, "data": {"a": "b"}}


def test_cedar_forbid_names_policy():
    c, _ = make_client(cedar=_fake_cedar())
    with c:
        r = c.post("/admit", json=review(CM, kind="ConfigMap")).json()["response"]
    assert r["allowed"] is False
    assert r["status"]["message"] == 'demo.cedar#3 (@id "no-prod"): production objects are frozen'
    assert r["auditAnnotations"]["cedar-forbidden-by"] == 'demo.cedar#3 (@id "no-prod")'


def test_cedar_engine_exception_fails_closed():
    c, _ = make_client(cedar=_fake_cedar())
    boom = {**CM, "metadata": {"name": "boom-1"}}
    with c:
        r = c.post("/admit", json=review(boom, kind="ConfigMap")).json()["response"]
        assert (
            r["allowed"] is False
            and "cedar could not evaluate the request (RuntimeError)" in r["status"]["message"]
        )
        ok = c.post("/admit", json=review({**CM, "metadata": {"name": "dev"}}, kind="ConfigMap")).json()
    assert ok["response"]["allowed"] is True


def _fake_cedar():
    from kubestrata.server.engines import CedarEngines

    return CedarEngines(store=None, authorizer=None, admission=ForbidNamedProd())  # type: ignore[arg-type]


def test_dry_run_gets_the_same_verdict_and_is_logged_as_dry_run(client, caplog):
    caplog.set_level(logging.INFO, logger="kubestrata")
    real = client.post("/admit", json=review(PRIVILEGED_POD)).json()["response"]
    dry = client.post("/admit", json=review(PRIVILEGED_POD, dry_run=True)).json()["response"]
    assert real["allowed"] is dry["allowed"] is False
    assert real["status"] == dry["status"]
    logged = [r for r in caplog.records if getattr(r, "event", None) == "admit"]
    assert [r.dry_run for r in logged] == [False, True]


def test_delete_and_connect_pass_through(client):
    r = client.post("/admit", json=review(None, op="DELETE", old=PRIVILEGED_POD)).json()["response"]
    assert r == {"uid": "uid-1", "allowed": True}


def test_exempt_namespace_skips_every_handler():
    c, _ = make_client(admission={"exempt_namespaces": ["team-a"]})
    with c:
        r = c.post("/admit", json=review(PRIVILEGED_POD)).json()["response"]
    assert r == {"uid": "uid-1", "allowed": True}


def test_injected_registry_kopf_style():
    reg = AdmissionRegistry()

    @reg.validating("no-latest", kinds=["Pod"], operations=["CREATE"])
    def no_latest(ctx, out):
        for cont in ctx.request.object["spec"]["containers"]:
            if cont["image"].endswith(":latest"):
                raise AdmissionDenied(f"container {cont['name']} uses :latest", policies=["no-latest"])
        out.warn("images pinned")

    c, _ = make_client(registry=reg)
    bad = copy.deepcopy(POD)
    bad["spec"]["containers"][0]["image"] = "nginx:latest"
    with c:
        r1 = c.post("/admit", json=review(bad)).json()["response"]
        r2 = c.post("/admit", json=review(POD)).json()["response"]
    assert r1["allowed"] is False and r1["status"]["message"] == "container app uses :latest"
    assert r2 == {"uid": "uid-1", "allowed": True, "warnings": ["images pinned"]}


def test_mutation_applies_configured_fixes_as_jsonpatch():
    c, _ = make_client(admission={"mutations": {"fixes": ["KS-WL-004", "KS-WL-005", "KS-WL-002"]}})
    with c:
        r = c.post("/mutate", json=review(POD, ns="other")).json()["response"]
        assert r["allowed"] is True and r["patchType"] == "JSONPatch"
        ops = json.loads(base64.b64decode(r["patch"]))
        patched = jsonpatch.apply_patch(POD, ops)
        sc = patched["spec"]["containers"][0]["securityContext"]
        # two fixes that each add a securityContext to the same container both survive
        assert sc == {"readOnlyRootFilesystem": True, "runAsNonRoot": True}
        assert patched["spec"]["automountServiceAccountToken"] is False
        assert any("KS-WL-004" in w for w in r["warnings"])
        # the fixed object passes those checks
        again = c.post("/mutate", json=review(patched, ns="other")).json()["response"]
    assert "patch" not in again


def test_mutation_without_configured_fixes_is_a_no_op(client):
    r = client.post("/mutate", json=review(POD)).json()["response"]
    assert r == {"uid": "uid-1", "allowed": True}


def test_unknown_fix_id_is_a_config_error():
    from kubestrata.errors import KubestrataError

    with pytest.raises(KubestrataError, match="KS-NOPE-1"):
        make_client(admission={"mutations": {"fixes": ["KS-NOPE-1"]}})


def test_warnings_are_bounded_and_printable(client):
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"] = [
        {"name": f"c{i}", "image": "registry.example/app:1.0", "securityContext": {"privileged": True}}
        for i in range(200)
    ]
    r = client.post("/admit", json=review(pod, ns="other")).json()["response"]
    total = sum(len(w) for w in r["warnings"])
    assert total <= 4100 and r["warnings"][-1].endswith("more warnings omitted")
    assert all(len(w) <= 256 and w.isprintable() for w in r["warnings"])


def test_combined_patches_skip_a_fix_whole_when_it_no_longer_applies():
    from kubestrata.admission.registry import combine_patches

    obj = {"spec": {"containers": [{"name": "a"}]}}
    ops = combine_patches(
        obj,
        [
            (
                "first",
                [
                    {
                        "op": "add",
                        "path": "/spec/containers/0/securityContext",
                        "value": {"runAsNonRoot": True},
                    }
                ],
            ),
            # the second op of this fix fails (no container 5): the first op must not be applied either
            (
                "broken",
                [
                    {"op": "add", "path": "/spec/hostUsers", "value": False},
                    {"op": "replace", "path": "/spec/containers/5/image", "value": "x"},
                ],
            ),
            (
                "merge",
                [
                    {
                        "op": "add",
                        "path": "/spec/containers/0/securityContext",
                        "value": {"readOnlyRootFilesystem": True},
                    }
                ],
            ),
        ],
    )
    assert jsonpatch.apply_patch(obj, ops) == {
        "spec": {
            "containers": [
                {"name": "a", "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True}}
            ]
        }
    }


def test_dry_run_mutation_returns_the_same_patch():
    c, _ = make_client(admission={"mutations": {"fixes": ["KS-WL-004"]}})
    with c:
        real = c.post("/mutate", json=review(POD, ns="other")).json()["response"]
        dry = c.post("/mutate", json=review(POD, ns="other", dry_run=True)).json()["response"]
    assert real["patch"] == dry["patch"] and real["patchType"] == "JSONPatch"


def test_status_subresource_updates_are_not_rechecked(client):
    doc = review(PRIVILEGED_POD, op="UPDATE", ns="other", old=PRIVILEGED_POD)
    doc["request"]["subResource"] = "status"
    r = client.post("/admit", json=doc).json()["response"]
    assert r == {"uid": "uid-1", "allowed": True}


def test_pss_fixes_make_a_pod_pass_restricted_except_flagged_ones():
    c, _ = make_client(admission={"checks": {"enabled": False}, "mutations": {"pss_level": "restricted"}})
    with c:
        r = c.post("/mutate", json=review(POD)).json()["response"]
        patched = jsonpatch.apply_patch(POD, json.loads(base64.b64decode(r["patch"])))
        sc = patched["spec"]["containers"][0]["securityContext"]
        assert sc == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        assert patched["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
        # runAsNonRoot is flagged (may need an image change): not applied, so restricted still denies it
        v = c.post("/admit", json=review(patched)).json()["response"]
        assert v["allowed"] is False and "runAsNonRoot != true" in v["status"]["message"]
        assert "seccompProfile" not in v["status"]["message"]

    c, _ = make_client(
        admission={
            "checks": {"enabled": False},
            "mutations": {"pss_level": "restricted", "pss_include_flagged": True},
        }
    )
    with c:
        r = c.post("/mutate", json=review(POD)).json()["response"]
        patched = jsonpatch.apply_patch(POD, json.loads(base64.b64decode(r["patch"])))
        assert c.post("/admit", json=review(patched)).json()["response"]["allowed"] is True
