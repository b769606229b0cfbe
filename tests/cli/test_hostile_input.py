"""Hostile and malformed input found by the QA sweep: every case must end in a named error or a
coverage gap, never in the CLI's "internal error" catch-all."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from tests.conftest import EXAMPLES

runner = CliRunner()

BINARY = b"\x7fELF\x02\x01\x01\x00\xc7\xd0" + bytes(range(256)) * 4

# a binding the API server would reject (roleRef must be a mapping) and a Deployment whose
# containers are a mapping: before the fix both crashed every RBAC/access check
BROKEN_RBAC_AND_WORKLOAD = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crb}
roleRef: cluster-admin
subjects: [{kind: User, name: mallory}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d1, namespace: ns1}
spec:
  template:
    spec:
      containers: {name: a, image: nginx}
"""


def _invoke(*args: str, env: dict[str, str] | None = None):
    r = runner.invoke(app, list(args), env=env)
    assert "internal error" not in r.output, r.output
    assert "Traceback" not in r.output, r.output
    return r


@pytest.mark.parametrize(
    "args",
    [
        ["scan", str(EXAMPLES / "demo-cluster"), "-q", "-c", "{bad}"],
        ["scan", str(EXAMPLES / "demo-cluster"), "-q", "--suppressions", "{bad}"],
        ["pss", "what-if", str(EXAMPLES / "pss" / "cluster.yaml"), "-A", "--config", "{bad}"],
        [
            "netpol",
            "explain",
            str(EXAMPLES / "netpol" / "demo"),
            "-s",
            "shop/web",
            "-d",
            "payments/api",
            "--security-groups",
            "{bad}",
        ],
    ],
    ids=["scan-config", "scan-suppressions", "pss-config", "netpol-security-groups"],
)
def test_binary_side_file_is_a_named_input_error(tmp_path, args):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(BINARY)
    r = _invoke(*[a.replace("{bad}", str(bad)) for a in args])
    assert r.exit_code == 2, r.output
    assert "bad.bin" in r.output and "not UTF-8" in r.output


def test_scan_of_broken_binding_and_workload_has_no_internal_errors(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text(BROKEN_RBAC_AND_WORKLOAD)
    r = _invoke("scan", str(f), "-o", "json", "-q")
    report = json.loads(r.stdout)
    gaps = report["coverage"]["notEvaluated"]
    assert not [g for g in gaps if g["reason"] == "error"], gaps
    # the invalid Deployment is still reported, naming its field
    assert any("spec.template.spec.containers" in g["detail"] for g in gaps), gaps


@pytest.mark.parametrize(
    "args",
    [
        ["access", "paths", "{f}", "--to", "cluster-admin"],
        ["access", "identities", "{f}"],
        ["access", "who-can", "get", "pods", "-m", "{f}"],
        ["access", "migrate", "{f}", "--dry-run"],
    ],
)
def test_access_commands_survive_broken_binding_and_workload(tmp_path, args):
    f = tmp_path / "broken.yaml"
    f.write_text(BROKEN_RBAC_AND_WORKLOAD)
    r = _invoke(*[a.replace("{f}", str(f)) for a in args])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "args",
    [
        ["netpol", "list", "{p}"],
        ["netpol", "coverage", "{p}"],
        ["netpol", "diff", "{p}", "{p}"],
        ["access", "paths", "{p}", "--to", "cluster-admin"],
        ["access", "who-can", "get", "pods", "-m", "{p}"],
        ["access", "can-i", "get", "pods", "--as", "x", "-m", "{p}"],
        ["access", "migrate", "{p}", "--dry-run"],
    ],
)
@pytest.mark.parametrize("what", ["empty-dir", "missing-file"])
def test_nothing_to_evaluate_is_exit_2_not_a_clean_answer(tmp_path, args, what):
    p = tmp_path / "manifests"
    if what == "empty-dir":
        p.mkdir()
    else:
        p = tmp_path / "missing.yaml"
    r = _invoke(*[a.replace("{p}", str(p)) for a in args])
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.split())  # rich wraps long paths
    assert "no Kubernetes objects found" in out or "no such file" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["cedar", "validate", "{d}"], "no .cedar files or Policy objects found"),
        (
            [
                "cedar",
                "check",
                "--policies",
                "{d}",
                str(EXAMPLES / "cedar/reviews/list-without-selector.json"),
            ],
            "no Cedar policies found",
        ),
        (["cedar", "from-rbac", "{d}"], "no Kubernetes objects found in the input"),
    ],
)
def test_cedar_on_an_empty_directory_is_exit_2(tmp_path, args, message):
    d = tmp_path / "policies"
    d.mkdir()
    r = _invoke(*[a.replace("{d}", str(d)) for a in args])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())


ESC = "\x1b[31mEVIL\x1b[0m"
EVIL_NAME = f"web{ESC}\nINJECTED"
EVIL_MANIFESTS = "\n---\n".join(
    json.dumps(d)
    for d in [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": EVIL_NAME, "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "w"}},
                "template": {
                    "metadata": {"labels": {"app": "w"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "c" + ESC,
                                "image": "nginx:latest",
                                "securityContext": {"privileged": True},
                            }
                        ]
                    },
                },
            },
        },
    ]
)


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "{f}", "-q"],
        ["pss", "check", "{f}"],
        ["netpol", "list", "{f}"],
        ["netpol", "list", "{f}", "-o", "md"],
        ["netpol", "coverage", "{f}"],
    ],
)
def test_escape_sequences_and_newlines_in_names_never_reach_the_terminal(tmp_path, args):
    f = tmp_path / "evil.yaml"
    f.write_text(EVIL_MANIFESTS)
    # wide: this is about escaping; a narrow table would fold the visible "\\x1b" across lines
    r = _invoke(*[a.replace("{f}", str(f)) for a in args], env={"COLUMNS": "300"})
    assert "\x1b" not in r.output
    assert not any(line.startswith("INJECTED") for line in r.output.splitlines()), r.output
    assert "\\x1b" in r.output  # shown, escaped, not dropped


def test_printable_escapes_controls_and_bidi_but_keeps_tabs():
    from kubestrata.textsafe import printable

    assert printable("a\tb\nc\x1b[1m\u202ed") == "a\tb\\x0ac\\x1b[1m\\u202ed"
    assert printable("a\nb", keep_lines=True) == "a\nb"


ATTACK_LOG = EXAMPLES / "detect" / "attack.log"


@pytest.mark.parametrize(
    "args, message",
    [
        (["detect", "replay", str(ATTACK_LOG), "--fail-on", "bogus"], "--fail-on: unknown value 'bogus'"),
        (
            ["detect", "replay", str(ATTACK_LOG), "-o", "none", "--stats", "{tmp}/no/such/dir/s.json"],
            "cannot write",
        ),
        (
            ["scan", "--cluster", "--kubeconfig", "{tmp}/kubeconfig", "-q"],
            "cannot load Kubernetes credentials",
        ),
        (["certs", "--dns-name", "", "--out", "{tmp}/certs"], "is not a DNS name or IP address"),
        (["access", "import", "{tmp}/empty"], "no AWS CLI JSON found"),
        (
            ["access", "identities", str(EXAMPLES / "demo-cluster"), "--eks", "{tmp}/empty"],
            "no AWS CLI JSON found",
        ),
    ],
)
def test_bad_option_values_are_one_line_errors(tmp_path, args, message):
    (tmp_path / "kubeconfig").write_text("a: [1, 2\nb: {")
    (tmp_path / "empty").mkdir()
    r = _invoke(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert not (tmp_path / "certs").exists()  # nothing written before the input is checked


def _deployment(pod_labels: object, container_extra: dict) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "a"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "volumes": [{"name": "v", "hostPath": {"path": "/etc"}}],
                    "containers": [{"name": "c", "image": "nginx:1", **container_extra}],
                },
            },
        },
    }


NP = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "np", "namespace": "a"},
    "spec": {
        "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["d"]}]},
        "policyTypes": ["Ingress"],
    },
}

# each found by mutating one field of a valid snapshot; each crashed a whole engine before the fix
TYPE_CONFUSED = {
    "namespace-metadata-null": [{"apiVersion": "v1", "kind": "Namespace", "metadata": None}, NP],
    "label-value-mapping": [_deployment({"app": {}}, {}), NP],
    "label-value-list": [_deployment({"app": ["d"]}, {}), NP],
    "role-rules-bool": [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "r", "namespace": "a"},
            "rules": True,
        }
    ],
    "binding-subjects-int": [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "rb", "namespace": "a"},
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": 5,
        }
    ],
    "volume-mounts-bool": [_deployment({"app": "d"}, {"volumeMounts": True})],
    "selector-operator-mapping": [
        _deployment({"app": "d"}, {}),
        {
            **NP,
            "spec": {"podSelector": {"matchExpressions": [{"key": "app", "operator": {}, "values": ["d"]}]}},
        },
    ],
}


@pytest.mark.parametrize("name", list(TYPE_CONFUSED))
@pytest.mark.parametrize(
    "args",
    [
        ["scan", "{f}", "-o", "json", "-q"],
        ["pss", "check", "{f}"],
        ["netpol", "list", "{f}", "-q"],
        ["access", "paths", "{f}", "--to", "node-root"],
    ],
)
def test_type_confused_fields_never_crash_an_engine(tmp_path, name, args):
    f = tmp_path / "doc.yaml"
    f.write_text("\n---\n".join(json.dumps(d) for d in TYPE_CONFUSED[name]))
    r = _invoke(*[a.replace("{f}", str(f)) for a in args])
    assert r.exit_code in (0, 1, 2), r.output
    if args[0] == "scan":
        gaps = json.loads(r.stdout)["coverage"]["notEvaluated"]
        assert not [g for g in gaps if g["reason"] == "error"], gaps


def _command_paths(cmd, prefix=()):
    if getattr(cmd, "commands", None):  # a group (typer vendors its own click)
        for name, sub in cmd.commands.items():
            yield from _command_paths(sub, (*prefix, name))
    else:
        yield prefix


def test_every_command_help_renders():
    # help texts were rich markup: a literal "[/X]" in a help string crashed `--help`
    from kubestrata.cli.main import COMMANDS, load_command

    paths = [p for name in COMMANDS for p in _command_paths(load_command(name), (name,))]
    assert len(paths) > 20
    for path in paths:
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output, r.exception)


def test_can_i_rejects_a_sub_subresource():
    from kubestrata.access.model import parse_request
    from kubestrata.errors import KubestrataError

    assert parse_request("get", "pods/exec").subresource == "exec"
    with pytest.raises(KubestrataError, match="TYPE\\[.GROUP\\]\\[/SUBRESOURCE\\]"):
        parse_request("get", "pods/exec/foo")
