"""Kustomize trees are rendered, Helm charts are named gaps, build files are never objects (issue 11)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.kube import render
from kubestrata.kube.loader import load_paths

RUN = CliRunner()

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
"""
# a strategic-merge patch: judged raw it looks like a Deployment without a selector or image
PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      hostPID: true
      containers: [{name: web, securityContext: {runAsNonRoot: true}}]
"""


def _tree(tmp_path: Path) -> Path:
    def w(rel: str, text: str) -> None:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))

    w("base/kustomization.yaml", "resources: [deploy.yaml]\n")
    w("base/deploy.yaml", DEPLOY)
    w(
        "overlays/prod/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: prod\n"
        "resources: [../../base]\nimages: [{name: nginx, newTag: '1.27'}]\npatches: [{path: patch.yaml}]\n",
    )
    w("overlays/prod/patch.yaml", PATCH)
    w("plain/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\n")
    return tmp_path


@pytest.mark.skipif(render.renderer() is None, reason="needs kubectl or kustomize")
def test_kustomization_is_rendered_not_read_raw(tmp_path):
    res = load_paths([_tree(tmp_path)])
    assert not res.errors and not res.not_evaluated
    kinds = sorted((o.kind, o.namespace, o.name) for o in res.objects)
    # the overlay renders once (the base it references is not rendered again), the patch is merged
    assert kinds == [("ConfigMap", "x", "c"), ("Deployment", "prod", "web")]
    dep = next(o for o in res.objects if o.kind == "Deployment")
    spec = dep.raw["spec"]["template"]["spec"]
    assert spec["hostPID"] is True and spec["containers"][0]["image"] == "nginx:1.27"
    assert "overlays/prod/kustomization.yaml" in dep.source.file


@pytest.mark.skipif(render.renderer() is None, reason="needs kubectl or kustomize")
def test_scan_judges_the_rendered_object(tmp_path):
    r = RUN.invoke(app, ["scan", str(_tree(tmp_path)), "-o", "json", "--strict"])
    assert r.exit_code == 1, r.output  # findings, and no gap (so --strict does not fail)
    assert '"notEvaluated": []' in r.output
    assert '"namespace": "prod"' in r.output
    assert "KS-PSS-004" in r.output  # hostPID comes from the patch, judged on the real object


def test_without_renderer_patches_are_a_named_gap_never_findings(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "renderer", lambda: None)
    res = load_paths([_tree(tmp_path)])
    assert not res.errors
    assert [(o.kind, o.name) for o in res.objects] == [("ConfigMap", "c")]
    ((subject, detail),) = res.not_evaluated
    assert subject.endswith("overlays/prod") and "kubectl kustomize" in detail and "patches" in detail


def test_render_failure_is_a_gap(tmp_path):
    if render.renderer() is None:
        pytest.skip("needs kubectl or kustomize")
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    res = load_paths([tmp_path])
    assert not res.objects and not res.errors
    assert "failed" in res.not_evaluated[0][1]


def test_helm_chart_is_a_gap_that_says_how_to_render(tmp_path):
    (tmp_path / "chart" / "templates").mkdir(parents=True)
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (tmp_path / "chart" / "values.yaml").write_text("image: x\n")
    (tmp_path / "chart" / "templates" / "ds.yaml").write_text(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {{ .Release.Name }}\n"
    )
    res = load_paths([tmp_path])
    assert not res.objects and not res.errors
    assert "helm template" in res.not_evaluated[0][1]
    r = RUN.invoke(app, ["scan", str(tmp_path)])
    assert r.exit_code == 2 and "helm template" in r.output  # never a green "0 findings"


def test_kustomization_file_is_never_an_object_or_invalid(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "renderer", lambda: None)
    (tmp_path / "kustomization.yaml").write_text("resources: [cm.yaml]\n")  # no kind at all
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    res = load_paths([tmp_path], render=False)
    assert not res.errors and [o.kind for o in res.objects] == ["ConfigMap"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_access_commands_render_too(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("namespace: ops\nresources: [rb.yaml]\n")
    (tmp_path / "rb.yaml").write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n"
        "subjects: [{kind: User, name: ann}]\n"
    )
    r = RUN.invoke(app, ["access", "can-i", "list", "pods", "-n", "ops", "--as", "ann", "-m", str(tmp_path)])
    assert r.exit_code == 0, r.output


@pytest.mark.skipif(render.renderer() is None, reason="needs kubectl or kustomize")
def test_files_beside_a_kustomization_it_does_not_reference_are_read(tmp_path):
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\nconfigMapGenerator: [{name: cfg, files: [conf=settings.yaml]}]\n"
    )
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    (tmp_path / "settings.yaml").write_text("not: a manifest\n")
    (tmp_path / "crd.yaml").write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: applied-apart}\n"
    )
    res = load_paths([tmp_path])
    assert not res.errors, res.errors  # settings.yaml is generator input, not a broken manifest
    names = sorted((o.kind, o.name) for o in res.objects)
    assert ("ServiceAccount", "applied-apart") in names and ("ConfigMap", "c") in names
    assert sum(1 for o in res.objects if o.name == "c") == 1
