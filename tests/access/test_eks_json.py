"""AWS CLI JSON input: recognised outputs merge into one model; malformed input names file and field."""

import json

import pytest

from kubestrata.eks.awsjson import merge_aws_json, read_aws_json_files
from kubestrata.eks.document import to_document
from kubestrata.eks.model import SNAPSHOT_KIND
from kubestrata.errors import InputError

DESCRIBE = {
    "cluster": {
        "name": "prod",
        "arn": "arn:aws:eks:eu-west-1:1:cluster/prod",
        "accessConfig": {
            "authenticationMode": "API_AND_CONFIG_MAP",
            "bootstrapClusterCreatorAdminPermissions": True,
        },
    }
}
LIST = {"accessEntries": ["arn:aws:iam::1:role/admin", "arn:aws:iam::1:role/node"]}
ENTRY = {
    "accessEntry": {
        "clusterName": "prod",
        "principalArn": "arn:aws:iam::1:role/node",
        "kubernetesGroups": [],
        "type": "EC2_LINUX",
        "username": "system:node:{{EC2PrivateDNSName}}",
        "createdAt": "2024-05-01T10:00:00+00:00",
    }
}
POLICIES = {
    "clusterName": "prod",
    "principalArn": "arn:aws:iam::1:role/admin",
    "associatedAccessPolicies": [
        {
            "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
            "accessScope": {"type": "cluster", "namespaces": []},
        }
    ],
}


def test_merge_outputs(tmp_path):
    files = []
    for i, d in enumerate([DESCRIBE, LIST, ENTRY, POLICIES]):
        p = tmp_path / f"{i}.json"
        p.write_text(json.dumps(d))
        files.append(str(p))
    eks = read_aws_json_files(files)
    assert eks.authentication_mode == "API_AND_CONFIG_MAP" and eks.bootstrap_creator_admin is True
    assert [e.principal_arn for e in eks.entries] == ["arn:aws:iam::1:role/node", "arn:aws:iam::1:role/admin"]
    assert eks.entry_for("arn:aws:iam::1:role/admin").associations[0].policy == "AmazonEKSClusterAdminPolicy"
    doc = to_document(eks)
    assert doc["kind"] == SNAPSHOT_KIND
    again = merge_aws_json([("snap", doc)])
    assert [e.principal_arn for e in again.entries] == [e.principal_arn for e in eks.entries]


def test_concatenated_stdin():
    import io

    data = (json.dumps(DESCRIBE) + "\n" + json.dumps(POLICIES)).encode()
    eks = read_aws_json_files(["-"], stdin=io.BytesIO(data))
    assert eks.cluster_name == "prod" and eks.entries


@pytest.mark.parametrize(
    "doc,field",
    [
        (
            {"cluster": {"name": "x", "accessConfig": {"authenticationMode": "OPEN"}}},
            "cluster.accessConfig.authenticationMode",
        ),
        (
            {"cluster": {"accessConfig": {"bootstrapClusterCreatorAdminPermissions": "yes"}}},
            "cluster.accessConfig.bootstrapClusterCreatorAdminPermissions",
        ),
        ({"accessEntry": {"principalArn": "not-an-arn"}}, "accessEntry.principalArn"),
        ({"accessEntry": {"principalArn": "arn:aws:iam::1:role/r", "type": "ROOT"}}, "accessEntry.type"),
        (
            {"accessEntry": {"principalArn": "arn:aws:iam::1:role/r", "kubernetesGroups": "admins"}},
            "accessEntry.kubernetesGroups",
        ),
        (
            {
                "principalArn": "arn:aws:iam::1:role/r",
                "associatedAccessPolicies": [
                    {
                        "policyArn": "arn:aws:eks::aws:cluster-access-policy/X",
                        "accessScope": {"type": "galaxy"},
                    }
                ],
            },
            "associatedAccessPolicies[0].accessScope.type",
        ),
        (
            {
                "principalArn": "arn:aws:iam::1:role/r",
                "associatedAccessPolicies": [
                    {
                        "policyArn": "arn:aws:eks::aws:cluster-access-policy/X",
                        "accessScope": {"type": "namespace", "namespaces": []},
                    }
                ],
            },
            "associatedAccessPolicies[0].accessScope.namespaces",
        ),
        ({"accessEntries": [42]}, "accessEntries[0]"),
        ({"something": 1}, "(document)"),
    ],
)
def test_malformed_names_file_and_field(tmp_path, doc, field):
    p = tmp_path / "in.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(InputError) as e:
        read_aws_json_files([str(p)])
    assert e.value.file == str(p)
    assert e.value.field == field


def test_invalid_json(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"cluster": ')
    with pytest.raises(InputError) as e:
        read_aws_json_files([str(p)])
    assert e.value.file == str(p) and "invalid JSON" in str(e.value)
