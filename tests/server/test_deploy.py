"""deploy/: the manifests parse, point at the server's real routes, state the documented failure
modes, carry the demo policies unchanged, and the config file validates."""

from __future__ import annotations

import yaml

from kubestrata.kube.loader import load_paths
from kubestrata.server.config import load_serve_config
from kubestrata.server.engines import load_cedar
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def _objects():
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    res = load_paths([str(DEPLOY / f) for f in kust["resources"]])
    assert not res.errors, [str(e) for e in res.errors]
    return {(o.kind, o.name): o.raw for o in res.objects}


def test_manifests_parse_and_kustomization_lists_them():
    objs = _objects()
    for kind in ("Deployment", "Service", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        assert (kind, "kubestrata") in objs
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    for f in kust["resources"]:
        assert (DEPLOY / f).is_file()
    for gen in kust["configMapGenerator"]:
        for f in gen["files"]:
            assert (DEPLOY / f).is_file()


def test_webhooks_target_real_routes_with_documented_failure_modes():
    from kubestrata.server.app import ServerState, create_app
    from kubestrata.server.config import ServeConfig

    routes = {r.path for r in create_app(ServerState(ServeConfig())).routes}
    routes |= {"/healthz", "/readyz", "/metrics"}
    objs = _objects()
    v = objs[("ValidatingWebhookConfiguration", "kubestrata")]["webhooks"][0]
    m = objs[("MutatingWebhookConfiguration", "kubestrata")]["webhooks"][0]
    assert v["clientConfig"]["service"]["path"] in routes and v["clientConfig"]["service"]["path"] == "/admit"
    assert m["clientConfig"]["service"]["path"] == "/mutate"
    assert v["failurePolicy"] == "Fail" and m["failurePolicy"] == "Ignore"
    assert v["admissionReviewVersions"] == ["v1"] and v["sideEffects"] == "None"
    for wh in (v, m):
        excluded = wh["namespaceSelector"]["matchExpressions"][0]["values"]
        assert {"kube-system", "kubestrata-system"} <= set(excluded)
    authz = yaml.safe_load((DEPLOY / "apiserver" / "authorization-config.yaml").read_text())
    hook = next(a for a in authz["authorizers"] if a["type"] == "Webhook")["webhook"]
    assert hook["failurePolicy"] == "Deny" and hook["matchConditions"]
    assert [a["type"] for a in authz["authorizers"]] == ["Node", "Webhook", "RBAC"]
    for kc, route in (
        ("authorization-webhook.kubeconfig", "/authorize"),
        ("audit-webhook.kubeconfig", "/audit"),
    ):
        doc = yaml.safe_load((DEPLOY / "apiserver" / kc).read_text())
        server = doc["clusters"][0]["cluster"]["server"]
        assert server.startswith("https://") and server.endswith(route) and route in routes
        user = doc["users"][0]["user"]  # the API server authenticates with a client certificate
        assert user["client-certificate"].endswith("client.crt") and user["client-key"].endswith("client.key")
    cfg = load_serve_config(DEPLOY / "kubestrata.yaml").serve
    assert (
        cfg.tls.client_ca
        and cfg.tls.client_names == ["kube-apiserver"]
        and not cfg.tls.insecure_no_client_auth
    )


def test_deployment_probes_and_hardening():
    dep = _objects()[("Deployment", "kubestrata")]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert dep["spec"]["replicas"] >= 2


def test_policies_are_the_demo_policies_and_load():
    demo = REPO_ROOT / "examples" / "cedar-demo" / "policies"
    for f in demo.glob("*.cedar"):
        assert (DEPLOY / "policies" / f.name).read_text() == f.read_text(), f.name
    assert load_cedar([DEPLOY / "policies"]).count == 5


def test_config_file_validates():
    cfg = load_serve_config(DEPLOY / "kubestrata.yaml")
    assert cfg.serve.admission.namespaces.live is True
    assert str(cfg.serve.policies.dirs[0]) == "/etc/kubestrata/policies"


def test_rbac_lets_the_server_list_and_watch_policies_and_crd_matches_the_watcher():
    from kubestrata.rbac import Attributes, RBACAuthorizer, service_account_user
    from kubestrata.server.policywatch import GROUP, PLURAL, VERSION

    res = load_paths([str(DEPLOY / "rbac.yaml")])
    authz = RBACAuthorizer(res.objects)
    user = service_account_user("kubestrata-system", "kubestrata")
    for verb, allowed in (("list", True), ("watch", True), ("create", False), ("update", False)):
        d = authz.authorize(
            Attributes(user=user, verb=verb, resource_request=True, api_group=GROUP, resource=PLURAL)
        )
        assert d.allowed is allowed, verb
    crd = yaml.safe_load((DEPLOY / "policy-crd.yaml").read_text())
    assert crd["spec"]["group"] == GROUP and crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"] == {
        "kind": "Policy",
        "listKind": "PolicyList",
        "plural": PLURAL,
        "singular": "policy",
    }
    assert [v["name"] for v in crd["spec"]["versions"]] == [VERSION]
    assert load_serve_config(DEPLOY / "kubestrata.yaml").serve.policies.cluster.tier == "last"
