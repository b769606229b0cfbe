"""deploy/: the manifests parse, point at the server's real routes, state the documented failure
modes, carry the demo policies unchanged, and the config file validates."""

from __future__ import annotations

import json

import yaml

from kubestrata.kube.loader import load_paths
from kubestrata.server.config import load_serve_config
from kubestrata.server.engines import load_cedar
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def _objects():
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    res = load_paths([str(DEPLOY / f) for f in [*kust["resources"], "webhooks.yaml"]])
    assert not res.errors, [str(e) for e in res.errors]
    return {(o.kind, o.name): o.raw for o in res.objects}


def test_manifests_parse_and_kustomization_lists_them():
    objs = _objects()
    for kind in ("Deployment", "Service", "ValidatingWebhookConfiguration", "NetworkPolicy", "ConfigMap"):
        assert any(k == kind for k, _ in objs), kind
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    # installed after the Deployment is ready (docs/serve.md), so not in the kustomization
    assert "webhooks.yaml" not in kust["resources"]
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
    # no fixes are configured, so no mutating webhook is registered at all
    assert ("MutatingWebhookConfiguration", "kubestrata") not in objs
    assert v["clientConfig"]["service"]["path"] in routes and v["clientConfig"]["service"]["path"] == "/admit"
    assert v["failurePolicy"] == "Fail" and v["timeoutSeconds"] == 5
    assert v["admissionReviewVersions"] == ["v1"] and v["sideEffects"] == "None"
    excluded = v["namespaceSelector"]["matchExpressions"][0]["values"]
    assert {"kube-system", "kube-node-lease", "kube-public", "kubestrata-system"} <= set(excluded)
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
    cfg = load_serve_config(DEPLOY / "config.yaml").serve
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
    spec = dep["spec"]["template"]["spec"]
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    objs = _objects()
    pdb = objs[("PodDisruptionBudget", "kubestrata")]
    assert pdb["spec"]["minAvailable"] >= 1
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    cfg = load_serve_config(DEPLOY / "config.yaml").serve
    assert ports == {"https": cfg.port, "ops": cfg.ops.port} and cfg.ops.host == "0.0.0.0"
    np = objs[("NetworkPolicy", "kubestrata")]["spec"]
    webhook_in = next(r for r in np["ingress"] if r["ports"] == [{"protocol": "TCP", "port": cfg.port}])
    assert webhook_in["from"] == [{"ipBlock": {"cidr": c}} for c in cfg.manifests.apiserver_cidrs]


def test_policies_are_the_demo_policies_and_load():
    demo = REPO_ROOT / "examples" / "cedar-demo" / "policies"
    for f in demo.glob("*.cedar"):
        assert (DEPLOY / "policies" / f.name).read_text() == f.read_text(), f.name
    assert load_cedar([DEPLOY / "policies"]).count == 5


def test_config_file_validates():
    cfg = load_serve_config(DEPLOY / "config.yaml")
    assert cfg.serve.admission.namespaces.live is True
    assert str(cfg.serve.policies.dirs[0]) == "/etc/kubestrata/policies"


def test_rbac_lets_the_server_list_and_watch_policies_and_crd_matches_the_watcher():
    from kubestrata.rbac import Attributes, RBACAuthorizer, service_account_user
    from kubestrata.server.clusterpolicies import GROUP, PLURAL, VERSION

    res = load_paths([str(DEPLOY / "rbac.yaml")])
    authz = RBACAuthorizer(res.objects)
    user = service_account_user("kubestrata-system", "kubestrata")
    for verb, allowed in (("list", True), ("watch", True), ("create", False), ("update", False)):
        d = authz.authorize(
            Attributes(user=user, verb=verb, resource_request=True, api_group=GROUP, resource=PLURAL)
        )
        assert d.allowed is allowed, verb
    for verb in ("get", "list", "watch"):  # the namespace label mirror (list + watch) and its fallback
        d = authz.authorize(
            Attributes(user=user, verb=verb, resource_request=True, api_group="", resource="namespaces")
        )
        assert d.allowed, verb
    crd = yaml.safe_load((DEPLOY / "policy-crd.yaml").read_text())
    assert crd["spec"]["group"] == GROUP and crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"] == {
        "kind": "Policy",
        "listKind": "PolicyList",
        "plural": PLURAL,
        "singular": "policy",
    }
    assert [v["name"] for v in crd["spec"]["versions"]] == [VERSION]
    assert load_serve_config(DEPLOY / "config.yaml").serve.policies.cluster.tier == "last"


def test_deploy_is_generated_and_does_not_drift(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from kubestrata.cli.main import app

    monkeypatch.chdir(REPO_ROOT)
    r = CliRunner().invoke(
        app,
        [
            "serve",
            "manifests",
            "-c",
            "deploy/config.yaml",
            "--policies",
            "deploy/policies",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    for name in ("webhooks.yaml", "networkpolicy.yaml"):
        assert (tmp_path / name).read_text() == (DEPLOY / name).read_text(), (
            f"deploy/{name} drifted: run kubestrata serve manifests -c deploy/config.yaml "
            "--policies deploy/policies --out deploy"
        )


def test_generated_scope_follows_the_policies_and_excludes_system_traffic(tmp_path):
    from kubestrata.admission.namespaces import StaticNamespaces
    from kubestrata.server.assemble import build_state
    from kubestrata.server.manifests import webhook_configurations

    pol = tmp_path / "p"
    pol.mkdir()
    (pol / "a.cedar").write_text(
        'forbid (principal, action == k8s::admission::Action::"delete", resource is apps::v1::Deployment);\n'
        'forbid (principal, action == k8s::admission::Action::"connect", resource is core::v1::PodExecOptions);\n'
        'permit (principal, action == k8s::Action::"get", resource);\n'
    )
    cfg = load_serve_config(DEPLOY / "config.yaml")
    cfg.serve.policies.dirs = [pol]
    cfg.serve.admission.pss.enabled = False
    cfg.serve.admission.checks.enabled = False
    state = build_state(cfg, audit=None, namespaces=StaticNamespaces())
    (hook,) = webhook_configurations(state)
    rules = hook["webhooks"][0]["rules"]
    assert [(r["apiGroups"], r["resources"], r["operations"]) for r in rules] == [
        ([""], ["pods/exec"], ["CONNECT"]),
        (["apps"], ["deployments"], ["DELETE"]),
    ]
    # an unscoped forbid needs every resource, but the exclusions still apply
    (pol / "b.cedar").write_text('forbid (principal, action, resource) when { principal.name == "x" };\n')
    state = build_state(cfg, audit=None, namespaces=StaticNamespaces())
    wh = webhook_configurations(state)[0]["webhooks"][0]
    assert wh["rules"][0]["resources"] == ["*/*"]
    conds = " ".join(c["expression"] for c in wh["matchConditions"])
    for never in (
        "leases",
        "events",
        "endpoints",
        "bindings",
        "tokenreviews",
        "nodes",
        "'token'",
        "system:nodes",
    ):
        assert never in conds, never


def test_our_own_scan_and_pss_find_nothing_in_deploy(monkeypatch):
    from typer.testing import CliRunner

    from kubestrata.cli.main import app

    monkeypatch.chdir(REPO_ROOT)
    r = CliRunner().invoke(app, ["scan", "deploy/", "-o", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    unsuppressed = [f for f in doc["findings"] if not f.get("suppressed")]
    assert unsuppressed == [] and doc["coverage"]["notEvaluated"] == [], r.stdout[:2000]
    r = CliRunner().invoke(app, ["pss", "check", "--level", "restricted", "deploy/"])
    assert r.exit_code == 0 and "0 denied or invalid" in r.output, r.output


def test_manifests_without_apiserver_addresses_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from kubestrata.cli.main import app

    cfg = tmp_path / "k.yaml"
    cfg.write_text("serve:\n  policies: {dirs: []}\n")
    r = CliRunner().invoke(app, ["serve", "manifests", "-c", str(cfg)])
    assert r.exit_code == 2 and "apiserver_cidrs" in r.output and "Traceback" not in r.output
    bad = tmp_path / "cm.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  kubestrata.yaml: |\n    serve: {port: -1}\n"
    )
    r = CliRunner().invoke(app, ["serve", "manifests", "-c", str(bad)])
    assert r.exit_code == 2 and "data.kubestrata.yaml" in r.output and "serve.port" in r.output
