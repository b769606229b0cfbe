"""Migration round trip: what the planned access entries grant equals what aws-auth granted, except where
the plan's diff says why."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from kubestrata.access.migrate import apply_plan, plan_migration
from kubestrata.access.model import AccessModel, parse_request
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_objects, load_paths
from kubestrata.report.migrate import render_cli, render_eksctl, render_json, render_terraform

DEMO = "examples/demo-cluster"

PROBES = [
    (v, r, ns)
    for v in ("get", "list", "create", "delete")
    for r in ("pods", "pods/exec", "secrets", "deployments.apps", "rolebindings", "nodes", "configmaps")
    for ns in ("", "shop", "payments", "kube-system")
] + [("get", "/healthz", ""), ("get", "/metrics", "")]


def allowed_set(model: AccessModel, arn: str, session: str = "i-0123456789abcdef0") -> frozenset:
    ident = model.resolve(arn, session)
    if ident is None:
        return frozenset()
    out = set()
    for v, r, ns in PROBES:
        ok, _, _ = model.check(parse_request(v, r), ident.user_info, ns, ident.associations)
        if ok:
            out.add((v, r, ns))
    return frozenset(out)


def test_demo_round_trip_is_exact():
    before = AccessModel(Cluster(load_paths([DEMO]).objects))
    plan = plan_migration(before, "demo")
    after = apply_plan(before, plan)
    assert after.mode == "API"
    assert not [c for c in plan.changes if c.sign in "+-!"], plan.changes
    for m in before.aws_auth.mappings:
        if m.username.startswith("system:node:"):
            continue  # nodes are compared below by identity, not by RBAC probes
        assert allowed_set(before, m.arn) == allowed_set(after, m.arn), m.arn
        assert allowed_set(after, m.arn)  # a test that cannot fail is a defect: the sets are not empty


def test_node_role_becomes_node_entry():
    before = AccessModel(Cluster(load_paths([DEMO]).objects))
    after = apply_plan(before, plan_migration(before))
    ident = after.resolve("arn:aws:iam::123456789012:role/eks-node-role", "i-0123456789abcdef0")
    assert ident.entry_type == "EC2_LINUX" and "system:nodes" in ident.groups
    assert ident.username.startswith("system:node:")


RISKY = """
apiVersion: v1
kind: ConfigMap
metadata: {name: aws-auth, namespace: kube-system}
data:
  mapRoles: |
    - rolearn: arn:aws:iam::1:role/team/pathed
      username: pathed
      groups: [viewers]
    - rolearn: arn:aws:iam::1:role/boot
      username: boot
      groups: [system:bootstrappers, ops]
    - rolearn: arn:aws:iam::1:role/raw
      username: "{{SessionNameRaw}}"
      groups: [ops]
    - rolearn: arn:aws:iam::1:role/win
      username: system:node:{{EC2PrivateDNSName}}
      groups: [system:bootstrappers, system:nodes, eks:kube-proxy-windows]
  mapAccounts: |
    - "444455556666"
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: viewer}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: viewers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: viewer}
subjects: [{kind: Group, name: viewers}, {kind: Group, name: ops}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bootstrap-extra}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: viewer}
subjects: [{kind: Group, name: system:bootstrappers}]
"""


def _changes(plan, principal):
    return [c for c in plan.changes if c.principal == principal]


def test_differences_are_reported_and_real():
    before = AccessModel(Cluster(load_objects(RISKY)))
    plan = plan_migration(before, "c")
    after = apply_plan(before, plan)
    # a rolearn with a path never matched; the access entry will: a gain, reported as "+"
    pathed = "arn:aws:iam::1:role/team/pathed"
    assert allowed_set(before, "arn:aws:sts::1:assumed-role/pathed/s") == frozenset()
    assert allowed_set(after, "arn:aws:sts::1:assumed-role/pathed/s")
    assert [c.sign for c in _changes(plan, pathed)][0] == "+"
    # system:bootstrappers cannot be a kubernetesGroup; the RBAC bound to it is lost, reported as "-"
    boot = _changes(plan, "arn:aws:iam::1:role/boot")
    assert any(c.sign == "-" and "ClusterRoleBinding/bootstrap-extra" in c.text for c in boot)
    entry = next(e for e in plan.entries if e.principal_arn == "arn:aws:iam::1:role/boot")
    assert entry.groups == ["ops"]
    # {{SessionNameRaw}} alone cannot follow a ':' -> EKS's default username; reported
    raw = next(e for e in plan.entries if e.principal_arn == "arn:aws:iam::1:role/raw")
    assert raw.username is None and _changes(plan, "arn:aws:iam::1:role/raw")
    # windows node role
    assert next(e for e in plan.entries if e.principal_arn == "arn:aws:iam::1:role/win").type == "EC2_WINDOWS"
    # mapAccounts has no equivalent
    assert _changes(plan, "account 444455556666")[0].sign == "-"
    assert before.resolve("arn:aws:iam::444455556666:user/x") is not None
    assert after.resolve("arn:aws:iam::444455556666:user/x") is None
    # everything else is equal
    for arn in ("arn:aws:iam::1:role/raw",):
        assert allowed_set(before, arn) == allowed_set(after, arn)


def test_renderers_are_well_formed():
    before = AccessModel(Cluster(load_objects(RISKY)))
    plan = plan_migration(before, "my cluster")
    cli = render_cli(plan, "eu-west-1")
    cmds = [shlex.split(line) for line in cli.splitlines() if line.startswith("aws ")]
    assert cmds[0][4:6] == ["update-cluster-config", "--name"] and cmds[0][6] == "my cluster"
    created = [c for c in cmds if "create-access-entry" in c]
    assert len(created) == len(plan.entries)
    assert any(c[c.index("--type") + 1] == "EC2_WINDOWS" for c in created)
    doc = yaml.safe_load(render_eksctl(plan))
    assert doc["kind"] == "ClusterConfig" and len(doc["accessConfig"]["accessEntries"]) == len(plan.entries)
    tf = render_terraform(plan)
    assert tf.count('resource "aws_eks_access_entry"') == len(plan.entries)
    j = json.loads(render_json(plan))
    assert j["diff"] and j["accessEntries"]


def test_hostile_values_are_quoted():
    text = RISKY.replace("username: pathed", "username: 'x; rm -rf / ${HOME}'")
    plan = plan_migration(AccessModel(Cluster(load_objects(text))), "c")
    cli = render_cli(plan)
    for line in cli.splitlines():
        if line.startswith("aws "):
            assert "x; rm -rf / ${HOME}" not in line or "'x; rm -rf / ${HOME}'" in line
    tf = render_terraform(plan)
    assert "$${HOME}" in tf


@pytest.mark.parametrize("fmt", ["cli", "eksctl", "terraform", "json"])
def test_cli_formats(fmt):
    from typer.testing import CliRunner

    from kubestrata.cli.main import app

    r = CliRunner().invoke(app, ["access", "migrate", DEMO, "-o", fmt, "--cluster-name", "demo"])
    assert r.exit_code == 0, r.output
    assert "AmazonEKSClusterAdminPolicy" in r.output
