"""KS-ENC-*: EncryptionConfiguration first-match semantics, severity by role, honest coverage."""

from __future__ import annotations

import pytest
import yaml

from kubestrata.checks import load_builtin_checks
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.scan import run_scan

REGISTRY = load_builtin_checks()
KMS = {"kms": {"apiVersion": "v2", "name": "p", "endpoint": "unix:///s.sock"}}


def _scan(*docs, ids=None):
    checks = [c for c in REGISTRY if c.meta.id.startswith("KS-ENC") and (ids is None or c.meta.id in ids)]
    return run_scan(Cluster([KubeObject(d) for d in docs]), checks=checks)


def _ec(*entries):
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": list(entries),
    }


def _by_rule(result):
    out = {}
    for f in result.findings:
        out.setdefault(f.rule_id, []).append(f)
    return out


def test_first_matching_entry_governs_secrets():
    # secrets are matched by the first entry (identity first) even though *.* below encrypts
    r = _by_rule(
        _scan(
            _ec(
                {"resources": ["secrets"], "providers": [{"identity": {}}]},
                {"resources": ["*.*"], "providers": [KMS]},
            )
        )
    )
    assert [f.severity.value for f in r["KS-ENC-001"]] == ["high"]
    assert "KS-ENC-002" not in r
    # identity first on an entry that does not govern Secrets: low
    r = _by_rule(
        _scan(
            _ec(
                {"resources": ["secrets"], "providers": [KMS]},
                {"resources": ["*."], "providers": [{"identity": {}}]},
            )
        )
    )
    assert [f.severity.value for f in r["KS-ENC-001"]] == ["low"]
    assert "governs Secrets" not in r["KS-ENC-001"][0].message


def test_core_wildcard_covers_secrets_but_a_group_wildcard_does_not():
    assert "KS-ENC-002" not in _by_rule(_scan(_ec({"resources": ["*."], "providers": [KMS]})))
    r = _by_rule(_scan(_ec({"resources": ["*.apps", "configmaps"], "providers": [KMS]})))
    assert r["KS-ENC-002"][0].evidence[0].observed == ["*.apps", "configmaps"]


def test_kms_versions():
    v1 = {"kms": {"name": "old", "endpoint": "unix:///a"}}
    v2 = {"kms": {"apiVersion": "v2", "name": "new", "endpoint": "unix:///b"}}
    r = _by_rule(_scan(_ec({"resources": ["secrets"], "providers": [v2, v1]})))
    assert len(r["KS-ENC-003"]) == 1 and "'old'" in r["KS-ENC-003"][0].message
    assert r["KS-ENC-003"][0].evidence[0].path == "resources[0].providers[1].kms.apiVersion"


def test_static_key_severity_depends_on_its_role():
    box = {"secretbox": {"keys": [{"name": "k", "secret": "eA=="}]}}
    first = _by_rule(_scan(_ec({"resources": ["secrets"], "providers": [box, KMS]})))["KS-ENC-004"]
    after = _by_rule(_scan(_ec({"resources": ["secrets"], "providers": [KMS, box]})))["KS-ENC-004"]
    assert (first[0].severity.value, after[0].severity.value) == ("medium", "low")


def test_malformed_files():
    r = _by_rule(_scan(_ec({"resources": [], "providers": [{"rot13": {}}]})))
    assert {f.message for f in r["KS-ENC-010"]} == {
        "resources[0] names no resources",
        "resources[0].providers[0] is not a known provider",
    }
    r = _by_rule(_scan({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration"}))
    assert r["KS-ENC-010"][0].message == "the file has no resources entries" and "KS-ENC-002" in r


def test_foreign_key_needs_the_account_and_says_so():
    sc = yaml.safe_load(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: c}\nprovisioner: ebs.csi.aws.com\n"
        "parameters: {encrypted: 'true', kmsKeyId: 'arn:aws:kms:eu-west-1:444455556666:key/x'}"
    )
    res = _scan(sc, ids={"KS-ENC-007"})
    assert not res.findings
    assert [g.subject for g in res.coverage.gaps] == ["StorageClass/c kmsKeyId"]
    # a bare key id or alias resolves in the volume's own account: nothing to judge, no gap
    sc["parameters"]["kmsKeyId"] = "alias/ebs"
    res = _scan(sc, ids={"KS-ENC-007"})
    assert not res.findings and not res.coverage.gaps


def test_ebs_parameter_keys_are_case_insensitive_and_other_provisioners_ignored():
    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "c"},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"Encrypted": "True"},
    }
    assert not _scan(sc, ids={"KS-ENC-006"}).findings
    sc["provisioner"] = "pd.csi.storage.gke.io"
    sc["parameters"] = {}
    assert not _scan(sc, ids={"KS-ENC-006"}).findings
    sc["provisioner"] = "ebs.csi.aws.com"
    f = _scan(sc, ids={"KS-ENC-006"}).findings[0]
    assert f.fix == [{"op": "add", "path": "/parameters/encrypted", "value": "true"}]


def test_efs_parse_bool_like_the_driver():
    def pv(value):
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "p"},
            "spec": {
                "csi": {
                    "driver": "efs.csi.aws.com",
                    "volumeHandle": "fs-1",
                    "volumeAttributes": {"encryptInTransit": value},
                }
            },
        }

    assert [bool(_scan(pv(v), ids={"KS-ENC-008"}).findings) for v in ("false", "F", "0", "true", "1")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_shipped_encryption_config_only_flags_the_migration_identity():
    from pathlib import Path

    from kubestrata.kube.loader import load_paths

    path = Path(__file__).resolve().parents[2] / "deploy-host" / "kms" / "encryption-config.yaml"
    loaded = load_paths([path])
    assert not loaded.errors
    res = run_scan(Cluster(loaded.objects), checks=[c for c in REGISTRY if c.meta.id.startswith("KS-ENC")])
    assert [f.rule_id for f in res.findings] == ["KS-ENC-005"]  # identity until the rewrap, as documented


def test_pv_volumes_come_from_describe_volumes_through_access_import(tmp_path):
    import json

    from typer.testing import CliRunner

    from kubestrata.cli.main import app
    from kubestrata.kube.loader import load_paths

    (tmp_path / "volumes.json").write_text(
        json.dumps(
            {
                "Volumes": [
                    {"VolumeId": "vol-1", "Encrypted": False, "State": "in-use", "Size": 8},
                    {"VolumeId": "vol-2", "Encrypted": True, "KmsKeyId": "arn:aws:kms:eu-west-1:1:key/k"},
                ]
            }
        )
    )
    (tmp_path / "cluster.json").write_text(
        json.dumps(
            {
                "cluster": {
                    "name": "c",
                    "arn": "arn:aws:eks:eu-west-1:111122223333:cluster/c",
                    "version": "1.33",
                }
            }
        )
    )
    snap = tmp_path / "snap.yaml"
    r = CliRunner().invoke(
        app,
        [
            "access",
            "import",
            str(tmp_path / "cluster.json"),
            str(tmp_path / "volumes.json"),
            "--output-file",
            str(snap),
        ],
    )
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(snap.read_text())
    assert doc["ebsVolumes"][0] == {"volumeId": "vol-1", "encrypted": False}

    def pv(name, vid):
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {"csi": {"driver": "ebs.csi.aws.com", "volumeHandle": vid}},
        }

    objs = load_paths([snap]).objects + [
        KubeObject(pv("a", "vol-1")),
        KubeObject(pv("b", "vol-2")),
        KubeObject(pv("c", "vol-3")),
    ]
    res = run_scan(Cluster(objs), checks=[REGISTRY.get("KS-ENC-011")])
    assert [f.object.name for f in res.findings] == ["a"]
    assert [g.subject for g in res.coverage.gaps] == ["PersistentVolume/c volume vol-3"]
    # without describe-volumes: one gap, never a pass
    res = run_scan(
        Cluster([KubeObject(pv("a", "vol-1")), KubeObject(pv("b", "vol-2"))]),
        checks=[REGISTRY.get("KS-ENC-011")],
    )
    assert not res.findings and [g.subject for g in res.coverage.gaps] == ["EBS volumes of PersistentVolumes"]


def test_describe_volumes_bad_input_names_the_field(tmp_path):
    from kubestrata.eks.awsjson import merge_aws_json
    from kubestrata.errors import InputError

    with pytest.raises(InputError, match=r"Volumes\[0\]\.Encrypted"):
        merge_aws_json([("v.json", {"Volumes": [{"VolumeId": "vol-1", "Encrypted": "no"}]})])


def test_live_scan_collects_storage_classes_and_persistent_volumes(tmp_path):
    import json

    from typer.testing import CliRunner

    from kubestrata.cli.main import app
    from tests.kube.fake_apiserver import FakeAPIServer, TLSFiles, write_kubeconfig

    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "gp2", "resourceVersion": "1"},
        "provisioner": "kubernetes.io/aws-ebs",
        "parameters": {"type": "gp2"},
    }
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "nfs-plain", "resourceVersion": "2"},
        "spec": {
            "csi": {
                "driver": "efs.csi.aws.com",
                "volumeHandle": "fs-1",
                "volumeAttributes": {"encryptInTransit": "false"},
            }
        },
    }
    tls = TLSFiles()
    try:
        with FakeAPIServer([sc, pv], tls) as srv:
            kc = write_kubeconfig(tmp_path / "kc", srv.url, tls)
            r = CliRunner().invoke(app, ["scan", "--cluster", "--kubeconfig", str(kc), "-o", "json", "-q"])
            paths = {req["path"] for req in srv.requests}
    finally:
        tls.dir.cleanup()
    assert {"/apis/storage.k8s.io/v1/storageclasses", "/api/v1/persistentvolumes"} <= paths
    rules = {(f["ruleId"], f["object"]["name"]) for f in json.loads(r.stdout)["findings"]}
    assert {("KS-ENC-006", "gp2"), ("KS-ENC-008", "nfs-plain")} <= rules
