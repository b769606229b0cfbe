"""Image vulnerabilities tied to workloads: each image read once per reference and matched once per
digest (a counting fake inventorier), findings that name the workloads, ranked by attacker gain."""

from __future__ import annotations

import json

import pytest

from kubestrata.config import ImagesConfig, ScanConfig
from kubestrata.findings import Severity
from kubestrata.image import seam
from kubestrata.image.model import ImageConfig, ImageInventory
from kubestrata.image.vulndb import VulnDB
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_paths
from kubestrata.scan import run_scan, select_checks

from .conftest import DATA, pkg

NODE = "registry.example/shop/web:1.0"
NODE_PINNED = "registry.example/shop/web@sha256:" + "b" * 64
PY = "registry.example/shop/jobs:3"

MANIFESTS = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      serviceAccountName: web
      containers: [{{name: web, image: "{NODE}", ports: [{{containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{type: LoadBalancer, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
  namespace: shop
  annotations: {{eks.amazonaws.com/role-arn: "arn:aws:iam::111122223333:role/web"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: internal, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: internal}}}}
  template:
    metadata: {{labels: {{app: internal}}}}
    spec:
      containers: [{{name: app, image: "{NODE_PINNED}"}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: report, namespace: shop}}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          hostPID: true
          containers: [{{name: report, image: "{PY}", securityContext: {{privileged: true}}}}]
"""


class FakeInventorier:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, source: str) -> ImageInventory:
        self.calls.append(source)
        if "jobs" in source:
            return ImageInventory(
                source,
                "sha256:" + "c" * 64,
                packages=[pkg("Jinja2", "2.10", "PyPI")],
                config=ImageConfig(user=""),
            )
        # the tag and the pinned reference are one image (same digest)
        return ImageInventory(
            source,
            "sha256:" + "b" * 64,
            packages=[pkg("lodash", "4.17.20", "npm")],
            config=ImageConfig(user="node", env={"API_TOKEN": "s3cr3t-value"}),
        )


@pytest.fixture
def cluster(tmp_path) -> Cluster:
    (tmp_path / "m.yaml").write_text(MANIFESTS)
    return Cluster(load_paths([tmp_path / "m.yaml"]).objects)


def _scan(cluster: Cluster, fixture_db: VulnDB, monkeypatch, **images) -> tuple:
    fake = FakeInventorier()
    monkeypatch.setattr(seam, "default_inventorier", lambda: fake)
    cfg = ScanConfig(images=ImagesConfig(enabled=True, db=str(fixture_db.path), **images))
    result = run_scan(cluster, config=cfg, checks=select_checks(["KS-IMG-00[4-6]", "KS-IMG-010"]))
    return result, fake


def test_each_image_read_once_and_findings_name_and_rank_workloads(cluster, fixture_db, monkeypatch) -> None:
    result, fake = _scan(cluster, fixture_db, monkeypatch)
    # the pinned reference names the digest the tag resolved to: read once, not twice
    assert fake.calls == [PY, NODE]
    vulns = [f for f in result.findings if f.rule_id == "KS-IMG-010"]
    by_id = {f.message.split(" ", 1)[0]: f for f in vulns}
    lodash = by_id["GHSA-35jh-r3h4-6jhm"]
    # high, raised twice: web is behind a LoadBalancer and carries an IRSA role -> critical
    assert lodash.severity is Severity.CRITICAL
    assert "raised from high" in lodash.message
    assert (
        "Deployment shop/web (container web; reachable from outside (Service shop/web type LoadBalancer); "
        "IAM role arn:aws:iam::111122223333:role/web (IRSA))" in lodash.message
    )
    assert lodash.object.name == "web"  # the highest-gain workload is the finding's object
    # the pinned reference of the same digest is matched once but both workloads are named
    assert lodash.message.count("lodash 4.17.20") == 1
    assert "Deployment shop/internal" in lodash.message
    jinja = by_id["PYSEC-2019-217"]
    # medium (no CVSS in the record), privileged + hostPID but not exposed: one level up
    assert jinja.severity is Severity.HIGH and "CronJob shop/report" in jinja.message
    assert "privileged/host access (hostPID, privileged container report)" in jinja.message
    assert not [f for f in result.findings if f.rule_id == "KS-IMG-006"]


def test_root_image_and_secret_env(cluster, fixture_db, monkeypatch) -> None:
    result, _ = _scan(cluster, fixture_db, monkeypatch)
    root = [f for f in result.findings if f.rule_id == "KS-IMG-004"]
    assert [(f.object.name, f.container) for f in root] == [("report", "report")]  # USER node is not root
    (sec,) = [f for f in result.findings if f.rule_id == "KS-IMG-005"]
    assert "API_TOKEN (a secret-looking name with a literal value)" in sec.message
    assert "s3cr3t" not in sec.message and "s3cr3t" not in str([e.observed for e in sec.evidence])


def test_imported_results_rank_without_pulling(cluster, fixture_db, monkeypatch, tmp_path) -> None:
    trivy = json.loads((DATA / "imports" / "trivy-debian-buster.json").read_text())
    trivy["ArtifactName"] = "registry.example/shop/jobs:3"
    (tmp_path / "t.json").write_text(json.dumps(trivy))
    monkeypatch.setattr(seam, "default_inventorier", lambda: pytest.fail("must not read images"))
    cfg = ScanConfig(images=ImagesConfig(results=[str(tmp_path / "t.json")]))
    result = run_scan(cluster, config=cfg, checks=select_checks(["KS-IMG-006", "KS-IMG-010"]))
    (crit,) = [f for f in result.findings if f.rule_id == "KS-IMG-006"]
    assert crit.message.startswith(
        "CVE-2019-18224 in libidn2-0 2.0.5-1 (critical, CVSS 9.8, fixed in 2.0.5-1+deb10u1"
    )
    assert "CronJob shop/report" in crit.message
    # the two web images are covered by nothing: gaps, not clean
    subjects = {g.subject for g in result.coverage.gaps}
    assert NODE in subjects and NODE_PINNED in subjects


def test_unreadable_image_is_a_gap(cluster, fixture_db, monkeypatch) -> None:
    def broken(source: str) -> ImageInventory:
        raise OSError("registry unreachable")

    monkeypatch.setattr(seam, "default_inventorier", lambda: broken)
    cfg = ScanConfig(images=ImagesConfig(enabled=True, db=str(fixture_db.path)))
    result = run_scan(cluster, config=cfg, checks=select_checks(["KS-IMG-010"]))
    assert not result.findings
    assert {g.detail for g in result.coverage.gaps} == {"image not read: registry unreachable"}


def test_images_off_by_default(cluster) -> None:
    result = run_scan(cluster, checks=select_checks(["KS-IMG-00[4-6]", "KS-IMG-010"]))
    assert not result.findings and not result.coverage.gaps


def test_cluster_admin_path_and_pod_identity_raise(tmp_path, fixture_db, monkeypatch) -> None:
    manifests = (
        MANIFESTS
        + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: internal-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: default, namespace: shop}]
"""
    )
    (tmp_path / "m.yaml").write_text(manifests)
    cluster = Cluster(load_paths([tmp_path / "m.yaml"]).objects)
    result, _ = _scan(cluster, fixture_db, monkeypatch)
    (lodash,) = [f for f in result.findings if f.message.startswith("GHSA-35jh-r3h4-6jhm")]
    assert (
        "Deployment shop/internal (container app; its ServiceAccount reaches cluster-admin" in lodash.message
    )


def test_bad_image_scan_documents_are_named(tmp_path) -> None:
    (tmp_path / "m.yaml").write_text(
        MANIFESTS
        + """
---
apiVersion: kubestrata.io/v1alpha1
kind: ImageScan
metadata: {name: broken}
spec: {vulnerabilities: [{id: X}]}
---
apiVersion: kubestrata.io/v1alpha1
kind: ImageScan
metadata: {name: bad-severity}
spec: {image: "registry.example/shop/jobs:3", vulnerabilities: [{id: CVE-1, severity: apocalyptic}]}
"""
    )
    cluster = Cluster(load_paths([tmp_path / "m.yaml"]).objects)
    result = run_scan(cluster, checks=select_checks(["KS-IMG-010"]))
    details = " | ".join(g.detail for g in result.coverage.gaps)
    assert "ImageScan/broken" in details and "spec.image is required" in details
    assert "unknown severity 'apocalyptic'" in details


def test_hostile_package_names_are_escaped_in_tables() -> None:
    import io

    from rich.console import Console

    from kubestrata.image.vulns import ImageReport, ImageVuln
    from kubestrata.report.image_vulns import render_table

    rep = ImageReport(
        "evil:1", vulns=[ImageVuln("CVE-1\x1b[31m", "pkg\x1b]0;owned\x07", "1[/]", "npm", Severity.HIGH)]
    )
    buf = io.StringIO()
    render_table([rep], Console(file=buf, width=200, force_terminal=False))
    out = buf.getvalue()
    assert "\x1b" not in out and "\x07" not in out and "1[/]" in out


def test_results_match_by_digest_repository_and_never_across_registries() -> None:
    from kubestrata.image.vulns import ImageReport
    from kubestrata.image.workloads import ImageData

    data = ImageData()
    data.add(ImageReport("registry-a.example/shop/web:1.0"))
    ecr = ImageReport("shop/api:2.4.1", "sha256:" + "1" * 64)  # ECR/Inspector results name no registry
    data.add(ecr)
    assert data.report_for("registry-b.example/shop/web:1.0") is None
    assert data.report_for("registry-a.example/shop/web:1.0") is not None
    assert data.report_for("111122223333.dkr.ecr.us-east-1.amazonaws.com/shop/api:2.4.1") is ecr
    assert data.report_for("elsewhere.example/shop/other@sha256:" + "1" * 64) is ecr
    hub = ImageReport("docker.io/library/nginx:1.25")
    data.add(hub)
    assert data.report_for("nginx:1.25") is hub
