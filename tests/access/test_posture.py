"""EKS cluster posture: AWS CLI JSON for describe-cluster / KMS / GuardDuty into the snapshot, the KS-EKS
checks, and the gap policy for missing EKS input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kubestrata.checks import load_builtin_checks
from kubestrata.checks.base import CheckContext
from kubestrata.cli.main import app
from kubestrata.eks.awsjson import merge_aws_json, read_aws_json_files
from kubestrata.eks.document import to_document
from kubestrata.eks.model import SNAPSHOT_KIND
from kubestrata.eks.objects import from_objects
from kubestrata.eks.posture import calendar
from kubestrata.errors import InputError
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_objects
from kubestrata.scan import run_scan, select_checks

REPO = Path(__file__).resolve().parents[2]
DEMO_EKS = REPO / "examples" / "access" / "eks"
KEY = "arn:aws:kms:eu-west-1:1:key/1234abcd-12ab-34cd-56ef-1234567890ab"
REGISTRY = load_builtin_checks()

DESCRIBE = {
    "cluster": {
        "name": "prod",
        "arn": "arn:aws:eks:eu-west-1:1:cluster/prod",
        "version": "1.33",
        "platformVersion": "eks.12",
        "resourcesVpcConfig": {
            "subnetIds": ["subnet-1"],
            "endpointPublicAccess": True,
            "endpointPrivateAccess": True,
            "publicAccessCidrs": ["203.0.113.0/24"],
        },
        "logging": {
            "clusterLogging": [
                {"types": ["api", "audit"], "enabled": True},
                {"types": ["scheduler"], "enabled": False},
            ]
        },
        "encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": KEY}}],
        "accessConfig": {"authenticationMode": "API"},
    }
}
ROTATION = {"KeyId": KEY, "KeyRotationEnabled": True, "RotationPeriodInDays": 365}
DESCRIBE_KEY = {
    "KeyMetadata": {
        "KeyId": KEY.rsplit("/", 1)[1],
        "Arn": KEY,
        "KeyState": "Enabled",
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
    }
}
DETECTOR = {
    "ServiceRole": "arn:aws:iam::1:role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty",
    "Status": "ENABLED",
    "Features": [
        {"Name": "EKS_AUDIT_LOGS", "Status": "ENABLED"},
        {
            "Name": "RUNTIME_MONITORING",
            "Status": "ENABLED",
            "AdditionalConfiguration": [{"Name": "EKS_ADDON_MANAGEMENT", "Status": "ENABLED"}],
        },
    ],
}


def merged(*docs):
    return merge_aws_json([(f"f{i}.json", d) for i, d in enumerate(docs)])


def snapshot_text(eks) -> str:
    return yaml.safe_dump(to_document(eks), sort_keys=False)


def scan(text: str, rules: list[str]):
    return run_scan(Cluster(load_objects(text)), checks=select_checks(rules))


def run_check(check_id: str, text: str, now: dt.datetime):
    ctx = CheckContext(Cluster(load_objects(text)), now=now)
    return list(REGISTRY.get(check_id).fn(ctx)), ctx.coverage.gaps


# -- reading AWS CLI JSON ----------------------------------------------------------------------------------


def test_aws_cli_posture_round_trips_through_the_snapshot():
    eks = merged(DESCRIBE, ROTATION, DESCRIBE_KEY, DETECTOR)
    assert eks.version == "1.33" and eks.platform_version == "eks.12"
    assert [(e.resources, e.key_arn) for e in eks.encryption] == [(("secrets",), KEY)]
    assert eks.logging == {"api": True, "audit": True, "scheduler": False}
    assert (eks.endpoint.public, eks.endpoint.private, eks.endpoint.public_cidrs) == (
        True,
        True,
        ("203.0.113.0/24",),
    )
    key = eks.kms_key(KEY)
    assert (key.rotation_enabled, key.rotation_period_days, key.key_manager, key.origin) == (
        True,
        365,
        "CUSTOMER",
        "AWS_KMS",
    )
    assert eks.guardduty.features == {"EKS_AUDIT_LOGS": "ENABLED", "RUNTIME_MONITORING": "ENABLED"}
    back, errors = from_objects(load_objects(snapshot_text(eks)))
    assert not errors
    assert to_document(back) == to_document(eks)


def test_kms_key_found_by_key_id():
    eks = merged(ROTATION)
    assert eks.kms_key("1234abcd-12ab-34cd-56ef-1234567890ab") is eks.kms_keys[KEY]
    assert eks.kms_key("arn:aws:kms:eu-west-1:1:key/other") is None


def test_guardduty_older_datasources_shape():
    old = {
        "ServiceRole": "arn:x",
        "Status": "ENABLED",
        "DataSources": {"Kubernetes": {"AuditLogs": {"Status": "DISABLED"}}},
    }
    assert merged(old).guardduty.features == {"EKS_AUDIT_LOGS": "DISABLED"}


def test_describe_cluster_defaults_and_duplicates():
    c = {"cluster": {"name": "p", "version": "1.30", "resourcesVpcConfig": {"endpointPublicAccess": True}}}
    eks = merged(c, DESCRIBE, DESCRIBE)
    assert eks.encryption and len(eks.encryption) == 1  # the same describe-cluster twice: one entry
    bare = merged(c)
    assert bare.encryption == [] and bare.endpoint.public_cidrs == () and bare.endpoint.private is False


@pytest.mark.parametrize(
    "doc,field,msg",
    [
        (
            {"cluster": {"version": "1.30", "resourcesVpcConfig": {"publicAccessCidrs": ["0.0.0.0/33"]}}},
            "cluster.resourcesVpcConfig.publicAccessCidrs[0]",
            "not a CIDR block",
        ),
        ({"cluster": {"version": 1.3}}, "cluster.version", "minor version"),
        (
            {
                "cluster": {
                    "version": "1.30",
                    "logging": {"clusterLogging": [{"types": ["audit"], "enabled": "yes"}]},
                }
            },
            "cluster.logging.clusterLogging[0].enabled",
            "expected a boolean",
        ),
        (
            {
                "cluster": {
                    "encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": "alias/x"}}]
                }
            },
            "cluster.encryptionConfig[0].provider.keyArn",
            "KMS key ARN",
        ),
        ({"KeyRotationEnabled": True}, "(document).KeyId", "required"),
        ({"KeyId": KEY, "KeyRotationEnabled": "true"}, "(document).KeyRotationEnabled", "boolean"),
        ({"KeyMetadata": {"KeyId": "x"}}, "KeyMetadata.Arn", "required"),
        ({"ServiceRole": "arn:x", "Status": "ON"}, "(document).Status", "ENABLED or DISABLED"),
        ({"Status": "ENABLED", "Features": [{"Status": "ENABLED"}]}, "Features[0].Name", "required"),
    ],
)
def test_malformed_aws_json_names_file_and_field(doc, field, msg):
    with pytest.raises(InputError) as e:
        merge_aws_json([("bad.json", doc)])
    assert e.value.file == "bad.json" and e.value.field == field and msg in str(e.value)


def test_import_cli_reports_bad_kms_json(tmp_path):
    bad = tmp_path / "rot.json"
    bad.write_text(json.dumps({"KeyId": KEY, "KeyRotationEnabled": "no"}))
    res = CliRunner().invoke(app, ["access", "import", str(bad)])
    assert res.exit_code == 2
    assert "rot.json" in res.output and "KeyRotationEnabled" in res.output and "Traceback" not in res.output


# -- checks ----------------------------------------------------------------------------------------------


def posture(**cluster) -> str:
    doc = {
        "apiVersion": "kubestrata.io/v1alpha1",
        "kind": SNAPSHOT_KIND,
        "metadata": {"name": "prod", "namespace": "kube-system"},
        "cluster": {"name": "prod", "version": "1.33", **cluster},
    }
    return yaml.safe_dump(doc)


NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "version,now,severity,text",
    [
        ("1.34", dt.datetime(2026, 6, 1, tzinfo=dt.UTC), None, None),
        (
            "1.34",
            dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            "low",
            "standard support ends 2026-12-02 (in 31 days)",
        ),
        ("1.34", dt.datetime(2026, 12, 2, tzinfo=dt.UTC), "medium", "standard support ended 2026-12-02"),
        ("1.31", dt.datetime(2026, 11, 25, 23, tzinfo=dt.UTC), "medium", "extended support until 2026-11-26"),
        ("1.31", dt.datetime(2026, 11, 26, tzinfo=dt.UTC), "high", "extended support ended 2026-11-26"),
        ("1.22", NOW, "high", "older than every version"),
    ],
)
def test_version_support_against_the_calendar(version, now, severity, text):
    found, gaps = run_check("KS-EKS-005", posture(version=version), now)
    assert not gaps
    if severity is None:
        assert found == []
    else:
        assert [f.severity.value for f in found] == [severity]
        assert text in found[0].message


def test_version_newer_than_the_calendar_is_a_gap_not_a_pass():
    newest = max(calendar().versions, key=lambda v: tuple(map(int, v.split("."))))
    major, minor = newest.split(".")
    found, gaps = run_check("KS-EKS-005", posture(version=f"{major}.{int(minor) + 1}"), NOW)
    assert found == [] and len(gaps) == 1 and "not in kubestrata's EKS release calendar" in gaps[0].detail


def test_calendar_is_consistent():
    for v in calendar().versions.values():
        assert v.release < v.end_of_standard < v.end_of_extended
        # 14 months of standard support, then 12 of extended (EKS user guide)
        assert 420 <= (v.end_of_standard - v.release).days <= 430
        assert 365 <= (v.end_of_extended - v.end_of_standard).days <= 366


@pytest.mark.parametrize(
    "vpc,severity",
    [
        (
            {"endpointPublicAccess": True, "endpointPrivateAccess": True, "publicAccessCidrs": ["::/0"]},
            "medium",
        ),
        ({"endpointPublicAccess": True, "endpointPrivateAccess": False}, "high"),  # no CIDRs: 0.0.0.0/0
        (
            {
                "endpointPublicAccess": True,
                "endpointPrivateAccess": True,
                "publicAccessCidrs": ["10.0.0.0/8", "0.0.0.0/0"],
            },
            "medium",
        ),
        (
            {
                "endpointPublicAccess": True,
                "endpointPrivateAccess": False,
                "publicAccessCidrs": ["198.51.100.7/32"],
            },
            "low",
        ),
        ({"endpointPublicAccess": False, "endpointPrivateAccess": True}, None),
    ],
)
def test_public_endpoint(vpc, severity):
    found, gaps = run_check("KS-EKS-004", posture(resourcesVpcConfig=vpc), NOW)
    assert not gaps
    assert [f.severity.value for f in found] == ([severity] if severity else [])


def test_rotation_skips_aws_managed_keys_and_notes_imported_material():
    enc = [{"resources": ["secrets"], "provider": {"keyArn": KEY}}]
    base = yaml.safe_load(posture(encryptionConfig=enc))
    base["kmsKeys"] = [{"keyArn": KEY, "keyRotationEnabled": False, "keyManager": "AWS"}]
    assert run_check("KS-EKS-002", yaml.safe_dump(base), NOW) == ([], [])
    base["kmsKeys"] = [
        {"keyArn": KEY, "keyRotationEnabled": False, "keyManager": "CUSTOMER", "origin": "EXTERNAL"}
    ]
    found, _ = run_check("KS-EKS-002", yaml.safe_dump(base), NOW)
    assert "does not support automatic rotation" in found[0].message


def test_rotation_without_kms_data_is_one_gap():
    enc = [{"resources": ["secrets"], "provider": {"keyArn": KEY}}]
    found, gaps = run_check("KS-EKS-002", posture(encryptionConfig=enc), NOW)
    assert found == [] and [g.subject for g in gaps] == [f"KMS key {KEY} rotation"]


def test_guardduty_detector_without_eks_feature_listed():
    doc = yaml.safe_load(posture())
    doc["guardDuty"] = {
        "status": "ENABLED",
        "features": [{"name": "RUNTIME_MONITORING", "status": "ENABLED"}],
    }
    found, _ = run_check("KS-EKS-006", yaml.safe_dump(doc), NOW)
    assert [f.message for f in found] == [
        "GuardDuty EKS Protection (EKS_AUDIT_LOGS) is not reported by the detector: the audit log is not analysed"
    ]


# -- gap policy ------------------------------------------------------------------------------------------

ALL_EKS = ["KS-ACC-*", "KS-EKS-*"]
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1.27}]}
"""
AWS_AUTH = """apiVersion: v1
kind: ConfigMap
metadata: {name: aws-auth, namespace: kube-system}
data:
  mapRoles: |
    - rolearn: arn:aws:iam::1:role/node
      username: system:node:{{EC2PrivateDNSName}}
      groups: [system:bootstrappers, system:nodes]
"""


def gaps(text: str, rules=ALL_EKS) -> list[tuple[str, str]]:
    return [(g.subject, g.reason.value) for g in scan(text, rules).coverage.gaps]


def test_plain_manifests_get_no_eks_gaps():
    assert gaps(DEPLOYMENT) == []


@pytest.mark.parametrize(
    "signal",
    [
        AWS_AUTH,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: x, annotations: "
        "{eks.amazonaws.com/role-arn: 'arn:aws:iam::1:role/r'}}\n",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {eks.amazonaws.com/nodegroup: general}}\n",
    ],
)
def test_eks_looking_input_without_snapshot_is_one_gap(signal):
    assert gaps(DEPLOYMENT + "---\n" + signal) == [("EKSClusterAccess", "missing-input")]


def test_snapshot_without_describe_cluster_is_one_gap_per_missing_kind():
    text = yaml.safe_dump(
        {
            "apiVersion": "kubestrata.io/v1alpha1",
            "kind": SNAPSHOT_KIND,
            "metadata": {"name": "prod", "namespace": "kube-system"},
            "accessEntries": [{"principalArn": "arn:aws:iam::1:role/admin"}],
        }
    )
    got = gaps(text)
    assert sorted(got) == [
        ("EKSClusterAccess/prod", "missing-input"),  # describe-cluster: KS-ACC-007/015/016, KS-EKS-001..005
        ("GuardDuty detector for prod", "missing-input"),
        ("IAM principals of 1 access entries", "missing-input"),
    ]


def test_snapshot_from_an_older_import_names_the_absent_fields():
    text = yaml.safe_dump(
        {
            "apiVersion": "kubestrata.io/v1alpha1",
            "kind": SNAPSHOT_KIND,
            "metadata": {"name": "prod", "namespace": "kube-system"},
            "cluster": {"name": "prod", "accessConfig": {"authenticationMode": "API"}},
        }
    )
    res = scan(text, ["KS-EKS-00[1-5]"])
    assert len(res.coverage.gaps) == 1
    assert "lacks cluster.version, cluster.encryptionConfig, cluster.logging, cluster.resourcesVpcConfig" in (
        res.coverage.gaps[0].detail
    )


def test_complete_snapshot_has_no_gaps():
    eks = merged(DESCRIBE, ROTATION, DESCRIBE_KEY, DETECTOR)
    assert gaps(snapshot_text(eks), ["KS-EKS-*"]) == []


def test_demo_shows_the_posture_findings():
    eks = read_aws_json_files([str(DEMO_EKS)])
    demo = REPO / "examples" / "demo-cluster"
    text = "\n---\n".join(p.read_text() for p in sorted(demo.glob("*.yaml"))) + "\n---\n" + snapshot_text(eks)
    res = scan(text, ["KS-ACC-*", "KS-RBAC-*", "KS-EKS-*"])
    assert res.coverage.gaps == []
    ids = {f.rule_id for f in res.findings}
    assert {"KS-EKS-002", "KS-EKS-003", "KS-EKS-004", "KS-EKS-005", "KS-EKS-006"} <= ids
    assert "KS-EKS-001" not in ids  # the demo encrypts Secrets with a customer-managed key


@pytest.mark.parametrize(
    "state,severity", [("Unavailable", "high"), ("PendingImport", "critical"), ("Creating", None)]
)
def test_key_state(state, severity):
    doc = yaml.safe_load(posture(encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": KEY}}]))
    doc["kmsKeys"] = [{"keyArn": KEY, "keyState": state}]
    found, gaps = run_check("KS-EKS-007", yaml.safe_dump(doc), NOW)
    assert not gaps and [f.severity.value for f in found] == ([severity] if severity else [])


def test_rotation_without_describe_key_is_a_separate_gap():
    eks = merged(DESCRIBE, ROTATION, DETECTOR)
    assert gaps(snapshot_text(eks), ["KS-EKS-*"]) == [(f"KMS key {KEY}", "missing-input")]


def test_describe_cluster_versions_win_over_the_shipped_calendar():
    versions = {
        "clusterVersions": [
            {
                "clusterVersion": "1.40",
                "clusterType": "eks",
                "releaseDate": "2028-01-27T16:00:00-08:00",
                "endOfStandardSupportDate": "2029-03-26T16:00:00-08:00",
                "endOfExtendedSupportDate": "2030-03-26T16:00:00-08:00",
                "versionStatus": "STANDARD_SUPPORT",
            }
        ]
    }
    eks = merged({"cluster": {"name": "p", "version": "1.40"}}, versions)
    assert eks.version_dates["1.40"].end_of_standard == dt.date(2029, 3, 27)  # UTC day
    text = snapshot_text(eks)
    assert run_check("KS-EKS-005", text, dt.datetime(2028, 6, 1, tzinfo=dt.UTC)) == ([], [])
    found, _ = run_check("KS-EKS-005", text, dt.datetime(2029, 4, 1, tzinfo=dt.UTC))
    assert "standard support ended 2029-03-27" in found[0].message


def test_describe_cluster_versions_bad_date():
    bad = {
        "clusterVersions": [
            {"clusterVersion": "1.31", "endOfStandardSupportDate": "soon", "endOfExtendedSupportDate": "x"}
        ]
    }
    with pytest.raises(InputError) as e:
        merge_aws_json([("v.json", bad)])
    assert e.value.field == "clusterVersions[0].endOfStandardSupportDate"
