"""Trust-policy lint as a user runs it: `aws iam get-role` JSON (as the CLI prints it, and URL-encoded as
the API returns it) through `kubestrata access import` into `kubestrata scan`."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from kubestrata.eks.awsjson import merge_aws_json
from kubestrata.errors import InputError
from kubestrata.identity.trust import lint

REPO = Path(__file__).resolve().parents[2]
ISS = "oidc.eks.eu-west-1.amazonaws.com/id/5C64F628ED9A2B2D"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::111122223333:oidc-provider/{ISS}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {f"{ISS}:sub": "system:serviceaccount:*"}},
        },
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"},
    ],
}


def get_role(policy, encoded=False):
    return {
        "Role": {
            "Path": "/",
            "RoleName": "shop-uploader",
            "RoleId": "AROAEXAMPLEEXAMPLE01",
            "Arn": "arn:aws:iam::111122223333:role/shop-uploader",
            "CreateDate": "2026-01-01T00:00:00+00:00",
            "AssumeRolePolicyDocument": urllib.parse.quote(json.dumps(policy)) if encoded else policy,
        }
    }


@pytest.mark.parametrize("encoded", [False, True])
def test_get_role_output_is_read_in_both_forms(encoded):
    eks = merge_aws_json([("role.json", get_role(POLICY, encoded))])
    p = eks.iam_principals["arn:aws:iam::111122223333:role/shop-uploader"]
    assert p.trust_policy == POLICY and p.field == "Role"
    rules = sorted(i.rule for i in lint(p.arn, p.trust_policy, path="Role.AssumeRolePolicyDocument"))
    assert rules == ["aud-missing", "irsa-and-pod-identity", "no-tag-session", "sub-wildcard"]


def test_bad_policy_document_names_the_field():
    doc = get_role(POLICY)
    doc["Role"]["AssumeRolePolicyDocument"] = "%7Bnot json"
    with pytest.raises(InputError, match="Role.AssumeRolePolicyDocument: not a JSON policy"):
        merge_aws_json([("role.json", doc)])


def test_import_then_scan(tmp_path):
    (tmp_path / "role.json").write_text(json.dumps(get_role(POLICY)))
    (tmp_path / "cluster.json").write_text(
        json.dumps(
            {
                "cluster": {
                    "name": "prod",
                    "arn": "arn:aws:eks:eu-west-1:111122223333:cluster/prod",
                    "version": "1.31",
                    "identity": {"oidc": {"issuer": f"https://{ISS}"}},
                    "accessConfig": {"authenticationMode": "API"},
                }
            }
        )
    )
    (tmp_path / "sa.yaml").write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: uploader\n  namespace: shop\n"
        "  annotations: {eks.amazonaws.com/role-arn: 'arn:aws:iam::111122223333:role/shop-uploader'}\n"
    )
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    imp = subprocess.run(
        [sys.executable, "-m", "kubestrata", "access", "import", str(tmp_path / "cluster.json"),
         str(tmp_path / "role.json"), "--output-file", str(tmp_path / "eks.yaml")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert imp.returncode == 0, imp.stderr
    scan = subprocess.run(
        [sys.executable, "-m", "kubestrata", "scan", str(tmp_path / "sa.yaml"), str(tmp_path / "eks.yaml"),
         "-o", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert scan.returncode == 1, scan.stderr  # findings at or above the default --fail-on
    found = {
        (f["ruleId"], f["severity"])
        for f in json.loads(scan.stdout)["findings"]
        if f["ruleId"].startswith("KS-IDN")
    }
    assert found == {
        ("KS-IDN-002", "high"),
        ("KS-IDN-003", "medium"),
        ("KS-IDN-005", "low"),
        ("KS-IDN-006", "medium"),
    }
