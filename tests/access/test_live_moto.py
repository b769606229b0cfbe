"""Live collection through boto3 against moto's server on loopback.

moto (5.x) implements describe-cluster, nodegroups and Fargate profiles, but not access entries,
access policies or Pod Identity associations: those calls come back as errors that the collector
records as gaps instead of failing, and the test asserts exactly that.
"""

from __future__ import annotations

import boto3
import pytest

from kubestrata.eks.live import collect_live
from kubestrata.errors import InputError
from tests.conftest import moto_endpoint

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint() as url:
        yield url


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_collect_from_moto(endpoint):
    eks = boto3.client("eks", endpoint_url=endpoint, region_name="eu-west-1")
    eks.create_cluster(
        name="demo",
        roleArn="arn:aws:iam::123456789012:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    eks.create_nodegroup(
        clusterName="demo",
        nodegroupName="workers",
        nodeRole="arn:aws:iam::123456789012:role/eks-node",
        subnets=["subnet-1"],
    )
    gaps: list[str] = []
    got = collect_live("demo", region="eu-west-1", endpoint_url=endpoint, gaps=gaps)
    assert got.cluster_name == "demo"
    assert got.cluster_arn.endswith(":cluster/demo")
    # moto's describe-cluster has no accessConfig: read as the pre-access-entry default
    assert got.authentication_mode == "CONFIG_MAP"
    assert [(n.role_arn, n.source) for n in got.node_roles] == [
        ("arn:aws:iam::123456789012:role/eks-node", "nodegroup/workers")
    ]
    gapped = {g.split(":", 1)[0] for g in gaps}
    assert {"list-access-entries", "list-pod-identity-associations"} <= gapped
    assert got.entries == []


def test_unknown_cluster_is_a_clear_error(endpoint):
    with pytest.raises(InputError, match="not found"):
        collect_live("nope", region="eu-west-1", endpoint_url=endpoint)


def test_collect_posture_kms_and_guardduty(endpoint):
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="eu-west-1")
    key = kms.create_key(Description="secrets")["KeyMetadata"]["Arn"]
    eks = boto3.client("eks", endpoint_url=endpoint, region_name="eu-west-1")
    eks.create_cluster(
        name="posture",
        version="1.31",
        roleArn="arn:aws:iam::123456789012:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-1"], "endpointPublicAccess": True},
        logging={"clusterLogging": [{"types": ["audit"], "enabled": True}]},
        encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": key}}],
    )
    gaps: list[str] = []
    got = collect_live("posture", region="eu-west-1", endpoint_url=endpoint, gaps=gaps)
    assert got.version == "1.31"
    assert got.logging.get("audit") is True
    assert [e.key_arn for e in got.encryption] == [key]
    k = got.kms_key(key)
    assert k is not None and k.rotation_enabled is False and k.key_manager == "CUSTOMER"
    # no detector in the account: GuardDuty is off
    assert got.guardduty is not None and got.guardduty.status == "DISABLED"

    gd = boto3.client("guardduty", endpoint_url=endpoint, region_name="eu-west-1")
    gd.create_detector(Enable=True)
    kms.enable_key_rotation(KeyId=key)
    got = collect_live("posture", region="eu-west-1", endpoint_url=endpoint, gaps=[])
    assert got.kms_key(key).rotation_enabled is True
    assert got.guardduty.status == "ENABLED"
