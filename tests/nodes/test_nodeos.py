"""Node OS and access posture checks over AWS CLI JSON carried through `access import`'s snapshot."""

from __future__ import annotations

import datetime as dt

from kubestrata.checks import load_builtin_checks
from kubestrata.eks.awsjson import merge_aws_json
from kubestrata.eks.document import to_document
from kubestrata.eks.objects import from_objects
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.scan import run_scan
from tests.conftest import moto_endpoint

REG = {c.meta.id: c for c in load_builtin_checks()}
CLOCK = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)

NODEGROUP = {
    "nodegroup": {
        "nodegroupName": "legacy",
        "amiType": "CUSTOM",
        "nodeRole": "arn:aws:iam::111122223333:role/legacy-node",
        "remoteAccess": {"ec2SshKey": "ops", "sourceSecurityGroups": ["sg-0123"]},
        "launchTemplate": {"id": "lt-0abc", "name": "legacy", "version": "7"},
    }
}
LT_VERSIONS = {
    "LaunchTemplateVersions": [
        {
            "LaunchTemplateId": "lt-0abc",
            "LaunchTemplateName": "legacy",
            "VersionNumber": 6,
            "LaunchTemplateData": {
                "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1}
            },
        },
        {
            "LaunchTemplateId": "lt-0abc",
            "LaunchTemplateName": "legacy",
            "VersionNumber": 7,
            "LaunchTemplateData": {
                "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}
            },
        },
    ]
}


def _scan(docs, ids):
    eks = merge_aws_json(docs)
    # the snapshot document as `access import` writes it, read back by the scan
    snap = KubeObject(to_document(eks))
    back, errs = from_objects([snap])
    assert not errs and back.nodegroups == eks.nodegroups
    return run_scan(Cluster([snap]), checks=[REG[i] for i in ids], now=CLOCK)


def test_imported_nodegroup_and_launch_template_versions_drive_the_checks():
    res = _scan([("ng.json", NODEGROUP), ("lt.json", LT_VERSIONS)], ["KS-NODE-005", "KS-NODE-006"])
    by = {f.rule_id: f for f in res.findings}
    assert by["KS-NODE-005"].severity.value == "medium"  # SSH limited to a security group
    # the version the node group uses (7), not the other one
    assert "hop limit 2" in by["KS-NODE-006"].message and by["KS-NODE-006"].severity.value == "medium"
    assert res.coverage.gaps == []


def test_launch_template_not_imported_is_a_gap_not_a_pass():
    res = _scan([("ng.json", NODEGROUP)], ["KS-NODE-006"])
    assert res.findings == []
    (gap,) = res.coverage.gaps
    assert gap.subject == "nodegroup/legacy" and "describe-launch-template-versions" in gap.detail


def test_eol_depends_on_the_date():
    node = KubeObject(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "n"},
            "status": {"nodeInfo": {"operatingSystem": "linux", "osImage": "Amazon Linux 2"}},
        }
    )
    before = run_scan(
        Cluster([node]), checks=[REG["KS-NODE-004"]], now=dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
    )
    after = run_scan(Cluster([node]), checks=[REG["KS-NODE-004"]], now=CLOCK)
    assert before.findings == [] and len(after.findings) == 1
    al2023 = KubeObject({**node.raw, "status": {"nodeInfo": {"osImage": "Amazon Linux 2023.7.20250512"}}})
    assert run_scan(Cluster([al2023]), checks=[REG["KS-NODE-004"]], now=CLOCK).findings == []


def test_live_collection_fetches_the_nodegroups_launch_template_versions(monkeypatch):

    import boto3
    import pytest

    pytest.importorskip("moto.server")
    from kubestrata.eks.live import collect_live

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with moto_endpoint() as url:
        ec2 = boto3.client("ec2", endpoint_url=url, region_name="eu-west-1")
        lt = ec2.create_launch_template(
            LaunchTemplateName="workers",
            LaunchTemplateData={"MetadataOptions": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 2}},
        )["LaunchTemplate"]
        eks = boto3.client("eks", endpoint_url=url, region_name="eu-west-1")
        eks.create_cluster(
            name="demo",
            roleArn="arn:aws:iam::123456789012:role/eks-cluster",
            resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        )
        eks.create_nodegroup(
            clusterName="demo",
            nodegroupName="workers",
            nodeRole="arn:aws:iam::123456789012:role/eks-node",
            subnets=["subnet-1"],
            launchTemplate={"id": lt["LaunchTemplateId"], "version": "1"},
        )
        got = collect_live("demo", region="eu-west-1", endpoint_url=url, gaps=[])
    assert [ng["nodegroupName"] for ng in got.nodegroups] == ["workers"]
    (v,) = got.launch_template_versions
    assert v["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "optional"
    res = run_scan(Cluster([KubeObject(to_document(got))]), checks=[REG["KS-NODE-006"]], now=CLOCK)
    assert [f.rule_id for f in res.findings] == ["KS-NODE-006"]
