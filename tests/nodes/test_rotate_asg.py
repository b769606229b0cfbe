"""--terminate-instances: drained nodes' EC2 instances are terminated in their Auto Scaling group (desired
capacity kept) through boto3 against moto's server on loopback, while the fake API server runs the drain."""

from __future__ import annotations

import boto3
import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from tests.conftest import moto_endpoint
from tests.kube.fake_apiserver import TLSFiles, write_kubeconfig
from tests.nodes.fake_cluster import FakeCluster, node, pdb, pod
from tests.nodes.test_rotate import OLD

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
runner = CliRunner()


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint() as url:
        yield url


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_drained_nodes_instances_are_terminated_keeping_desired_capacity(tmp_path, endpoint):
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")
    asg = boto3.client("autoscaling", endpoint_url=endpoint, region_name="us-east-1")
    ec2.create_launch_template(
        LaunchTemplateName="workers",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.small"},
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="eks-workers",
        LaunchTemplate={"LaunchTemplateName": "workers", "Version": "$Latest"},
        MinSize=2,
        MaxSize=4,
        DesiredCapacity=2,
        AvailabilityZones=["us-east-1a"],
    )
    ids = sorted(
        i["InstanceId"] for i in asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]
    )
    objs = []
    for k, iid in enumerate(ids):
        n = node(f"w-{k}", "workers", "us-east-1a", OLD)
        n["spec"]["providerID"] = f"aws:///us-east-1a/{iid}"
        objs.append(n)
        objs.append(pod(f"web-{k}", "shop", "web", f"w-{k}"))
    objs.append(pdb("web", "shop", "web", maxUnavailable=1))
    tls = TLSFiles()
    try:
        with FakeCluster(objs, tls) as srv:
            kc = write_kubeconfig(tmp_path / "kc", srv.url, tls)
            r = runner.invoke(
                app,
                [
                    "nodes",
                    "rotate",
                    "--cluster",
                    "--kubeconfig",
                    str(kc),
                    "--max-age",
                    "21d",
                    "--terminate-instances",
                    "--endpoint-url",
                    endpoint,
                    "--region",
                    "us-east-1",
                    "--poll",
                    "0.03",
                    "--eviction-timeout",
                    "8",
                    "--replacement-timeout",
                    "8",
                ],
            )
            assert r.exit_code == 0, r.output
            assert srv.violations == []
    finally:
        tls.dir.cleanup()
    group = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 2  # not decremented: the group replaces the instances
    still = {i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"}
    assert not (set(ids) & still), (ids, group["Instances"])
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]
        for i in res["Instances"]
    }
    assert set(states.values()) <= {"shutting-down", "terminated"}, states
