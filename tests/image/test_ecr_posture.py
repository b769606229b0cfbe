"""ECR repository, registry scanning and VPC endpoint inputs: AWS CLI JSON through access import,
the snapshot round trip, live through moto, and the KS-ECR checks on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubestrata.eks.awsjson import is_aws_cli_json, read_aws_json_files
from kubestrata.eks.document import to_document
from kubestrata.errors import InputError
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.scan import run_scan, select_checks

DESCRIBE_CLUSTER = {
    "cluster": {
        "name": "prod",
        "arn": "arn:aws:eks:us-east-1:111122223333:cluster/prod",
        "version": "1.33",
        "resourcesVpcConfig": {"vpcId": "vpc-0abc"},
    }
}
REPOS = {
    "repositories": [
        {
            "repositoryArn": "arn:aws:ecr:us-east-1:111122223333:repository/shop/api",
            "registryId": "111122223333",
            "repositoryName": "shop/api",
            "repositoryUri": "111122223333.dkr.ecr.us-east-1.amazonaws.com/shop/api",
            "imageTagMutability": "MUTABLE",
            "imageScanningConfiguration": {"scanOnPush": False},
            "encryptionConfiguration": {"encryptionType": "AES256"},
        },
        {
            "repositoryArn": "arn:aws:ecr:us-east-1:111122223333:repository/shop/web",
            "repositoryName": "shop/web",
            "imageTagMutability": "IMMUTABLE",
            "imageScanningConfiguration": {"scanOnPush": True},
        },
    ]
}
SCANNING = {"registryId": "111122223333", "scanningConfiguration": {"scanType": "BASIC", "rules": []}}
ENDPOINTS = {
    "VpcEndpoints": [
        {
            "VpcEndpointId": "vpce-1",
            "VpcEndpointType": "Interface",
            "VpcId": "vpc-0abc",
            "ServiceName": "com.amazonaws.us-east-1.ecr.dkr",
            "State": "available",
            "PrivateDnsEnabled": True,
        },
        {
            "VpcEndpointId": "vpce-9",
            "VpcEndpointType": "Interface",
            "VpcId": "vpc-other",
            "ServiceName": "com.amazonaws.us-east-1.ecr.api",
            "State": "available",
            "PrivateDnsEnabled": True,
        },
    ]
}


def _write(tmp: Path, **docs) -> list[str]:
    out = []
    for name, doc in docs.items():
        (tmp / f"{name}.json").write_text(json.dumps(doc))
        out.append(str(tmp / f"{name}.json"))
    return out


def _scan(eks) -> list:
    doc = to_document(eks)
    cl = Cluster([KubeObject(doc)])
    return run_scan(cl, checks=select_checks(["KS-ECR-*"])).findings


def test_cli_json_through_access_import_and_snapshot_round_trip(tmp_path: Path) -> None:
    eks = read_aws_json_files(_write(tmp_path, c=DESCRIBE_CLUSTER, r=REPOS, s=SCANNING, e=ENDPOINTS))
    assert eks.image_registry["vpcId"] == "vpc-0abc" and len(eks.image_registry["repositories"]) == 2
    findings = {(f.rule_id, f.message) for f in _scan(eks)}
    assert (
        "KS-ECR-001",
        "ECR repository shop/api is not scanned on push and not covered by enhanced scanning "
        "(registry scan type BASIC)",
    ) in findings
    assert [m for r, m in findings if r == "KS-ECR-002"] == [
        "ECR repository shop/api has imageTagMutability MUTABLE: its tags can be moved to another image"
    ]
    (vpc,) = [m for r, m in findings if r == "KS-ECR-003"]
    # the ecr.api endpoint of another VPC does not count; the S3 gateway is missing
    assert (
        "com.amazonaws.us-east-1.ecr.api (Interface)" in vpc and "com.amazonaws.us-east-1.s3 (Gateway)" in vpc
    )
    assert "ecr.dkr" not in vpc


def test_other_json_is_not_claimed(tmp_path: Path) -> None:
    (tmp_path / "composer.json").write_text(
        json.dumps({"repositories": [{"type": "vcs", "url": "https://x"}]})
    )
    assert not is_aws_cli_json(str(tmp_path / "composer.json"))


def test_broken_fields_are_named(tmp_path: Path) -> None:
    bad = {"VpcEndpoints": [{"VpcEndpointId": "vpce-1"}]}
    with pytest.raises(InputError) as e:
        read_aws_json_files(_write(tmp_path, e=bad))
    assert e.value.field == "VpcEndpoints[0].ServiceName"


def test_missing_inputs_are_gaps_only_when_images_are_in_scope(tmp_path: Path) -> None:
    from kubestrata.config import ImagesConfig, ScanConfig

    eks = read_aws_json_files(_write(tmp_path, c=DESCRIBE_CLUSTER))
    cl = Cluster([KubeObject(to_document(eks))])
    assert not run_scan(cl, checks=select_checks(["KS-ECR-*"])).coverage.gaps
    cfg = ScanConfig(images=ImagesConfig(results=[]))
    cfg.images.enabled = True
    gaps = run_scan(cl, config=cfg, checks=select_checks(["KS-ECR-*"])).coverage.gaps
    assert {g.detail.split(". Provide")[0] for g in gaps} == {
        "registry posture not evaluated: the EKS snapshot has no repositories",
        "registry posture not evaluated: the EKS snapshot has no vpcEndpoints",
    }


def test_live_through_moto() -> None:
    import boto3

    from kubestrata.eks import ecr
    from tests.conftest import moto_endpoint

    with moto_endpoint() as url:
        session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
        client = session.client("ecr", endpoint_url=url)
        client.create_repository(repositoryName="shop/api", imageTagMutability="MUTABLE")
        client.put_registry_scanning_configuration(
            scanType="ENHANCED",
            rules=[
                {
                    "scanFrequency": "CONTINUOUS_SCAN",
                    "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}],
                }
            ],
        )
        ec2 = session.client("ec2", endpoint_url=url)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_vpc_endpoint(
            VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3", VpcEndpointType="Gateway", RouteTableIds=[rt]
        )
        gaps: list[str] = []

        def call(label, fn, **kw):
            try:
                resp = fn(**kw)
            except Exception as e:  # noqa: BLE001 - recorded like access.eks does
                gaps.append(f"{label}: {e}")
                return None
            resp.pop("ResponseMetadata", None)
            return json.loads(json.dumps(resp, default=str))

        docs = ecr.collect_live(session, call, url, vpc)
    assert not gaps
    from kubestrata.eks.awsjson import merge_aws_json

    eks = merge_aws_json(
        [
            *docs,
            (
                "describe-cluster",
                {"cluster": {**DESCRIBE_CLUSTER["cluster"], "resourcesVpcConfig": {"vpcId": vpc}}},
            ),
        ]
    )
    findings = {f.rule_id: f.message for f in _scan(eks)}
    assert "KS-ECR-001" not in findings  # enhanced, continuous, every repository
    assert findings["KS-ECR-002"].startswith("ECR repository shop/api has imageTagMutability MUTABLE")
    assert "ecr.api" in findings["KS-ECR-003"] and "s3 (Gateway" not in findings["KS-ECR-003"]
