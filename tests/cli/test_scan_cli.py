from __future__ import annotations

import json

from typer.testing import CliRunner

from kubestrata.cli.main import app
from tests.conftest import EXAMPLES

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["version"])
    assert r.exit_code == 0 and r.stdout.startswith("kubestrata ")


def test_demo_scan_json_finds_the_planted_problems():
    r = runner.invoke(app, ["scan", str(EXAMPLES / "demo-cluster"), "-o", "json"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    got = {(f["ruleId"], f["object"]["name"], f["container"]) for f in doc["findings"]}
    assert ("KS-WL-001", "payments-api", "debug") in got
    assert ("KS-IMG-001", "web", "nginx") in got
    assert ("KS-WL-003", "log-agent", "agent") in got
    # allow-listed system component: informational, not high
    cni = [f for f in doc["findings"] if f["ruleId"] == "KS-WL-001" and f["object"]["name"] == "aws-node"]
    assert cni and all(f["severity"] == "info" for f in cni)
    assert doc["schemaVersion"] == 1 and doc["summary"]["total"] == len(doc["findings"])


def test_fail_on_threshold(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: 'a.dkr.ecr.x.amazonaws.com/a:1@sha256:"
        + "a" * 64
        + "', resources: {requests: {cpu: 1}}}]\n"
    )
    assert runner.invoke(app, ["scan", str(p), "--fail-on", "critical", "-q"]).exit_code == 0
    assert runner.invoke(app, ["scan", str(p), "--fail-on", "low", "-q"]).exit_code == 1
    assert runner.invoke(app, ["scan", str(p), "--fail-on", "never", "-q"]).exit_code == 0
    r = runner.invoke(app, ["scan", str(p), "--fail-on", "bogus"])
    assert r.exit_code == 2 and "unknown value 'bogus'" in r.output and "never" in r.output


def test_fail_on_defaults_to_high_and_says_why(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n"
    )
    r = runner.invoke(app, ["scan", str(p), "-o", "json", "-q"])
    sev = {f["severity"] for f in json.loads(r.stdout)["findings"]}
    assert "high" not in sev and "critical" not in sev, sev
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["scan", str(p), "-o", "json", "-q", "--fail-on", "low"])
    assert r.exit_code == 1 and "at or above low (--fail-on low)" in r.stderr


def test_filter_that_matches_nothing_is_an_error():
    r = runner.invoke(app, ["scan", str(EXAMPLES / "demo-cluster"), "--include", "NOPE-*"])
    assert r.exit_code == 2 and "matches no check" in r.output


def test_bad_input_names_file_and_document_and_goes_on(tmp_path):
    (tmp_path / "good.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n"
    )
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec: {containers: {name: c}}\n---\nkind: [\n"
    )
    r = runner.invoke(app, ["scan", str(tmp_path), "-o", "json", "--fail-on", "low"])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    gaps = doc["coverage"]["notEvaluated"]
    assert any("bad.yaml" in g["subject"] and "document 1" in g["detail"] for g in gaps)
    assert any("Pod/default/q" in g["subject"] and "spec.containers" in g["detail"] for g in gaps)
    assert any(f["object"]["name"] == "p" for f in doc["findings"])
    assert runner.invoke(app, ["scan", str(tmp_path), "--strict", "-q"]).exit_code == 2


def test_nothing_scannable_exits_2(tmp_path):
    (tmp_path / "bad.yaml").write_text("kind: [\n")
    r = runner.invoke(app, ["scan", str(tmp_path / "bad.yaml")])
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_suppressions_and_expiry(tmp_path):
    sup = tmp_path / "s.yaml"
    sup.write_text(
        "suppressions:\n"
        "  - {rule: 'KS-IMG-*', reason: mirrored later, owner: team, expires: 2999-01-01}\n"
        "  - {rule: KS-WL-004, reason: old, expires: 2000-01-01}\n"
    )
    r = runner.invoke(app, ["scan", str(EXAMPLES / "demo-cluster"), "-o", "json", "--suppressions", str(sup)])
    doc = json.loads(r.stdout)
    img = [f for f in doc["findings"] if f["ruleId"].startswith("KS-IMG")]
    assert img and all(f["suppressed"] for f in img)
    assert any(f["ruleId"] == "KS-WL-004" and not f["suppressed"] for f in doc["findings"])
    assert any("expired" in n for n in doc["notices"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("suppressions:\n  - {rule: X, reason: ''}\n")
    r = runner.invoke(app, ["scan", str(EXAMPLES / "demo-cluster"), "--suppressions", str(bad)])
    assert r.exit_code == 2 and "reason" in r.output


def test_suppress_annotation_without_a_suppressions_file(tmp_path):
    # the annotation suppresses its object's findings of the rules it names, and only those
    (tmp_path / "d.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n"
        "    kubestrata.io/suppress: KS-IMG-002\n    kubestrata.io/suppress-reason: mirrored\n"
        "spec:\n  template:\n    spec:\n      containers: [{name: c, image: nginx:1.27}]\n"
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\n"
        "spec:\n  template:\n    spec:\n      containers: [{name: c, image: nginx:1.27}]\n"
    )
    r = runner.invoke(app, ["scan", str(tmp_path), "-o", "json", "--fail-on", "never"])
    doc = json.loads(r.stdout)
    img = {f["object"]["name"]: f["suppressed"] for f in doc["findings"] if f["ruleId"] == "KS-IMG-002"}
    assert img == {"web": "annotation: mirrored", "api": None}
    assert all(f["suppressed"] is None for f in doc["findings"] if f["ruleId"] != "KS-IMG-002")


def test_baseline_reports_only_new(tmp_path):
    demo = str(EXAMPLES / "demo-cluster")
    base = tmp_path / "base.json"
    runner.invoke(app, ["scan", demo, "-o", "json", "--output-file", str(base)])
    r = runner.invoke(app, ["scan", demo, "-o", "json", "--baseline", str(base)])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["findings"] == []


def test_html_baseline_shows_new_fixed_and_unchanged(tmp_path):
    demo = str(EXAMPLES / "demo-cluster")
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: gone, namespace: shop}\n"
        "spec: {containers: [{name: c, image: nginx:1.27, securityContext: {privileged: true}}]}\n"
    )
    base = tmp_path / "base.json"
    runner.invoke(app, ["scan", demo, str(extra), "-o", "json", "--output-file", str(base), "-q"])
    before = json.loads(base.read_text())["findings"]
    gone = [f for f in before if f["object"] and f["object"]["name"] == "gone"]
    # now the pod is gone and a new one is privileged
    extra.write_text(extra.read_text().replace("name: gone", "name: fresh"))
    out = tmp_path / "r.html"
    r = runner.invoke(
        app,
        ["scan", demo, str(extra), "-o", "html", "--baseline", str(base), "--output-file", str(out), "-q"],
    )
    assert r.exit_code == 1, r.output  # the new privileged pod is at or above high
    page = out.read_text()
    sec = page[page.index('id="baseline"') :].split("</section>")[0]

    def card(k):
        return int(sec.split(f'data-card="{k}"><div class="n">')[1].split("<")[0])

    assert card("new") == len(gone) and card("fixed") == len(gone)
    assert card("unchanged") == len(before) - len(gone)
    assert "Pod/shop/gone" in sec and page.count("Pod/shop/fresh</span>") == len(gone)
    assert 'id="scanned-at"' in page and 'id="duration"' in page


def test_scan_applies_a_pod_security_configuration(tmp_path):
    pod = tmp_path / "pod.yaml"
    pod.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team}\n"
        "spec: {containers: [{name: c, image: nginx:1.27, securityContext: {privileged: true}}]}\n"
    )
    psc = tmp_path / "psc.yaml"
    psc.write_text(
        "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\n"
        "defaults: {enforce: baseline, enforce-version: latest}\n"
        "exemptions: {usernames: [], runtimeClasses: [], namespaces: [legacy]}\n"
    )
    cfg = tmp_path / "kubestrata.yaml"

    def pss_findings(config_text):
        cfg.write_text(config_text)
        r = runner.invoke(app, ["scan", str(pod), "-o", "json", "-c", str(cfg), "--include", "KS-PSS-001"])
        return [f for f in json.loads(r.stdout)["findings"] if f["ruleId"] == "KS-PSS-001"]

    assert pss_findings("scan: {}\n") == []  # PSA's built-in default is privileged
    denied = pss_findings(f"scan: {{pss_configuration: {psc}}}\n")
    assert denied and "baseline:latest" in denied[0]["message"]
    pod.write_text(pod.read_text().replace("namespace: team", "namespace: legacy"))
    assert pss_findings(f"scan: {{pss_configuration: {psc}}}\n") == []  # exempt namespace
    cfg.write_text(f"scan: {{pss_configuration: {tmp_path / 'missing.yaml'}}}\n")
    r = runner.invoke(app, ["scan", str(pod), "-c", str(cfg)])
    assert r.exit_code == 2 and "missing.yaml" in r.output


def test_demo_aws_node_is_bound_like_on_eks():
    # the VPC CNI's ServiceAccount has a ClusterRoleBinding, so its token finding is not escalated
    r = runner.invoke(app, ["scan", str(EXAMPLES / "demo-cluster"), "-o", "json", "-q"])
    doc = json.loads(r.stdout)
    (tok,) = [f for f in doc["findings"] if f["ruleId"] == "KS-WL-002" and f["object"]["name"] == "aws-node"]
    assert tok["severity"] == "medium" and "no RBAC binding" not in tok["message"]
    # while an unbound ServiceAccount in the demo still is
    web = [f for f in doc["findings"] if f["ruleId"] == "KS-WL-002" and f["object"]["name"] == "web"]
    assert web and web[0]["severity"] == "high"


def test_html_report_shows_network_connectivity(tmp_path):
    out = tmp_path / "r.html"
    r = runner.invoke(
        app, ["scan", str(EXAMPLES / "demo-cluster"), "-o", "html", "--output-file", str(out), "-q"]
    )
    assert r.exit_code == 1, r.output
    page = out.read_text()
    section = page[page.index('<section class="netpol-connectivity"') :]
    matrix = section[section.index('<table class="netpol-matrix">') :]
    matrix = matrix[: matrix.index("</table>")]
    # the demo's one NetworkPolicy lets web reach cart on its named port only
    web_row = matrix[matrix.index("<tr><th>shop/web[Deployment]</th>") :].split("</tr>")[0]
    assert "TCP 9090" in web_row
    cart_col = matrix.split("</tr>")[0].split("<th>").index("shop/cart[Deployment]</th>")
    log_agent_row = matrix[matrix.index("<tr><th>monitoring/log-agent[DaemonSet]</th>") :].split("</tr>")[0]
    assert log_agent_row.split("<td>")[cart_col - 1].startswith("</td>")  # isolated by the policy


def test_a_namespace_that_names_nothing_is_an_error():
    demo = str(EXAMPLES / "demo-cluster")
    r = runner.invoke(app, ["scan", demo, "-n", "shpo"])
    assert r.exit_code == 2 and "namespace 'shpo' is not in the input" in r.output and "shop" in r.output
    r = runner.invoke(app, ["pss", "what-if", demo, "-n", "shpo", "--enforce", "restricted"])
    assert r.exit_code == 2 and "not in the input" in r.output
    ok = runner.invoke(app, ["scan", demo, "-n", "shop", "-o", "json", "-q"])
    namespaces = {f["object"]["namespace"] for f in json.loads(ok.stdout)["findings"] if f["object"]}
    assert namespaces <= {"shop", None}
