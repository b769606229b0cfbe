"""`kubestrata access` end to end through the CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kubestrata.cli.main import app

DEMO = "examples/demo-cluster"
RUN = CliRunner()


def run(*args: str):
    return RUN.invoke(app, ["access", *args])


def test_can_i_iam_session_through_aws_auth():
    r = run(
        "can-i",
        "create",
        "pods/exec",
        "-n",
        "shop",
        "--as",
        "arn:aws:sts::123456789012:assumed-role/developers/bob@example.com",
        "-m",
        DEMO,
    )
    assert r.exit_code == 0, r.output
    assert r.output.startswith("yes") and "developer:bob-example.com" in r.output
    r = run(
        "can-i",
        "get",
        "secrets",
        "-n",
        "payments",
        "--as",
        "arn:aws:sts::123456789012:assumed-role/developers/bob",
        "-m",
        DEMO,
    )
    assert r.exit_code == 1 and r.output.startswith("no")


def test_can_i_unmapped_principal():
    r = run("can-i", "get", "pods", "--as", "arn:aws:iam::123456789012:role/stranger", "-m", DEMO)
    assert r.exit_code == 1 and "not mapped" in r.output


def test_can_i_sees_access_policy_grants(tmp_path):
    entry = {
        "principalArn": "arn:aws:iam::123456789012:role/auditor",
        "associatedAccessPolicies": [
            {
                "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy",
                "accessScope": {"type": "cluster"},
            }
        ],
    }
    f = tmp_path / "policies.json"
    f.write_text(json.dumps(entry))
    r = run(
        "can-i",
        "get",
        "secrets",
        "-n",
        "payments",
        "--as",
        "arn:aws:iam::123456789012:role/auditor",
        "-m",
        DEMO,
        "--eks",
        str(f),
        "-o",
        "json",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["allowed"] and doc["reasons"] == ["access-policy: AmazonEKSAdminViewPolicy (cluster)"]


def test_who_can_json():
    r = run("who-can", "create", "pods/exec", "-n", "shop", "-m", DEMO, "-o", "json")
    assert r.exit_code == 0, r.output
    subjects = {row["subject"] for row in json.loads(r.output)["allowed"]}
    assert {
        "Group shop-developers",
        "IAM arn:aws:iam::123456789012:role/developers",
        "IAM arn:aws:iam::123456789012:user/alice",
    } <= subjects


def test_malformed_aws_json_names_file_and_field(tmp_path):
    f = tmp_path / "entry.json"
    f.write_text(
        json.dumps({"accessEntry": {"principalArn": "arn:aws:iam::1:role/r", "kubernetesGroups": [1]}})
    )
    r = run("identities", DEMO, "--eks", str(f))
    assert r.exit_code == 2
    assert str(f) in r.output and "accessEntry.kubernetesGroups[0]" in r.output
    assert "Traceback" not in r.output


def test_import_then_scan(tmp_path):
    f = tmp_path / "cluster.json"
    f.write_text(
        json.dumps(
            {
                "cluster": {
                    "name": "prod",
                    "accessConfig": {
                        "authenticationMode": "API",
                        "bootstrapClusterCreatorAdminPermissions": False,
                    },
                }
            }
        )
    )
    out = tmp_path / "snap.yaml"
    r = run("import", str(f), "--output-file", str(out))
    assert r.exit_code == 0, r.output
    r = RUN.invoke(app, ["scan", str(out), "--include", "KS-ACC-*", "-o", "json"])
    rules = {x["ruleId"] for x in json.loads(r.stdout)["findings"]}
    assert "KS-ACC-007" in rules  # API mode, no admin entry: nobody administers the cluster


def test_broken_aws_auth_is_a_finding_not_a_crash(tmp_path):
    cm = tmp_path / "aws-auth.yaml"
    cm.write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: aws-auth, namespace: kube-system}\ndata:\n  mapRoles: "- rolearn: x\\n\\tusername: y"\n'
    )
    r = RUN.invoke(app, ["scan", str(cm), "--include", "KS-ACC-*", "-o", "json"])
    assert r.exit_code == 1, r.output
    assert "KS-ACC-002" in {x["ruleId"] for x in json.loads(r.stdout)["findings"]}
    r = run("identities", str(cm))
    assert r.exit_code == 0


def test_paths_and_hostile_names(tmp_path):
    m = tmp_path / "rbac.yaml"
    m.write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: imp}\n"
        "rules: [{apiGroups: [''], resources: [groups], verbs: [impersonate]}]\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: imp}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: imp}\n"
        'subjects: [{kind: User, name: "eve\\u001b[31m"}]\n'
    )
    r = run("paths", str(m), "--to", "cluster-admin")
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\\x1b" in r.output
    assert "[impersonate]" in r.output


def test_migrate_dry_run():
    r = run("migrate", DEMO, "--dry-run")
    assert r.exit_code == 0 and "system:masters -> AmazonEKSClusterAdminPolicy" in r.output


def test_no_input_is_an_error():
    r = run("identities")
    assert r.exit_code == 2 and "give manifest paths" in r.output


def test_import_creator_then_can_i(tmp_path):
    f = tmp_path / "cluster.json"
    f.write_text(json.dumps({"cluster": {"name": "old"}}))  # no accessConfig: CONFIG_MAP
    out = tmp_path / "snap.yaml"
    r = run(
        "import", str(f), "--creator-arn", "arn:aws:iam::123456789012:role/creator", "--output-file", str(out)
    )
    assert r.exit_code == 0, r.output
    r = run(
        "can-i",
        "delete",
        "nodes",
        "--as",
        "arn:aws:sts::123456789012:assumed-role/creator/x",
        "-m",
        DEMO,
        "-m",
        str(out),
    )
    assert r.exit_code == 0 and "source=creator" in r.output
    r = run("import", str(f), "--creator-arn", "nope")
    assert r.exit_code == 2 and "--creator-arn" in r.output


def test_can_i_service_account_has_its_implicit_groups(tmp_path):
    # issue 11: `--as system:serviceaccount:NS:NAME` must carry system:serviceaccounts,
    # system:serviceaccounts:NS and system:authenticated, as who-can already assumes
    docs = []
    for i, group in enumerate(
        ["system:serviceaccounts:app", "system:serviceaccounts", "system:authenticated"]
    ):
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"b{i}", "namespace": "app"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"r{i}"},
                "subjects": [{"kind": "Group", "name": group}],
            }
        )
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": f"r{i}", "namespace": "app"},
                "rules": [
                    {"apiGroups": [""], "resources": [["secrets", "configmaps", "pods"][i]], "verbs": ["get"]}
                ],
            }
        )
    p = tmp_path / "rbac.yaml"
    import yaml

    p.write_text(yaml.safe_dump_all(docs))
    for res in ("secrets", "configmaps", "pods"):
        who = run("who-can", "get", res, "-n", "app", "-m", str(p), "-o", "json")
        assert who.exit_code == 0 and len(json.loads(who.output)["allowed"]) == 2
        r = run("can-i", "get", res, "-n", "app", "--as", "system:serviceaccount:app:web", "-m", str(p))
        assert r.exit_code == 0, (res, r.output)
    # another namespace's ServiceAccount is not in system:serviceaccounts:app
    r = run("can-i", "get", "secrets", "-n", "app", "--as", "system:serviceaccount:other:web", "-m", str(p))
    assert r.exit_code == 1
    # a plain user is authenticated, but no ServiceAccount
    r = run("can-i", "get", "pods", "-n", "app", "--as", "alice", "-m", str(p))
    assert r.exit_code == 0
    r = run("can-i", "get", "configmaps", "-n", "app", "--as", "alice", "-m", str(p))
    assert r.exit_code == 1
    r = run("can-i", "get", "pods", "-n", "app", "--as", "system:serviceaccount:app", "-m", str(p))
    assert r.exit_code == 2 and "system:serviceaccount:NAMESPACE:NAME" in r.output


def test_access_commands_skip_non_kubernetes_json(tmp_path):
    # issue 11: IAM policy documents and package.json among the manifests are skipped, as scan does
    (tmp_path / "package.json").write_text('{"name": "x", "version": "1.0.0"}')
    (tmp_path / "iam.json").write_text('{"Version": "2012-10-17", "Statement": []}')
    (tmp_path / "crb.yaml").write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
        "subjects: [{kind: ServiceAccount, name: ci, namespace: build}]\n"
    )
    r = run("who-can", "delete", "nodes", "-m", str(tmp_path))
    assert r.exit_code == 0 and "ServiceAccount build/ci" in r.output, r.output
    r = run("can-i", "delete", "nodes", "--as", "system:serviceaccount:build:ci", "-m", str(tmp_path))
    assert r.exit_code == 0, r.output
    r = run("paths", str(tmp_path), "--include-admins")
    assert r.exit_code == 0 and "sa:build/ci" in r.output, r.output
    # AWS CLI output among the manifests is still read (and its errors still name the field)
    (tmp_path / "entries.json").write_text('{"accessEntries": 5}')
    r = run("who-can", "delete", "nodes", "-m", str(tmp_path))
    assert r.exit_code == 2 and "entries.json" in r.output
