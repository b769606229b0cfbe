"""`kubestrata cedar validate | check | from-rbac | schema`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kubestrata.authz import Authorizer, PolicyStore
from kubestrata.cli.main import app
from tests.conftest import EXAMPLES

runner = CliRunner()


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


CEDAR = EXAMPLES / "cedar"


def test_check_subject_access_review_denial_names_policy() -> None:
    r = runner.invoke(
        app,
        [
            "cedar",
            "check",
            "--policies",
            str(CEDAR / "policies"),
            str(CEDAR / "reviews" / "list-without-selector.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["status"] == {
        "allowed": False,
        "denied": True,
        "reason": 'denied by Cedar policy configmaps.cedar#1 (@id "list-requires-owner-selector")',
    }


def test_check_admission_review() -> None:
    r = runner.invoke(
        app,
        ["cedar", "check", "-p", str(CEDAR / "policies"), str(CEDAR / "reviews" / "update-not-owner.json")],
    )
    assert r.exit_code == 0, r.output
    resp = json.loads(r.stdout)["response"]
    assert resp["allowed"] is False and "owner-only-update" in resp["status"]["message"]


def test_check_bad_inputs_exit_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for content, needle in [
        ("{not json", "neither JSON nor YAML"),
        ('{"kind": "Pod"}', "kind must be SubjectAccessReview or AdmissionReview"),
        (
            '{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {}}',
            "resourceAttributes",
        ),
    ]:
        bad.write_text(content)
        r = runner.invoke(app, ["cedar", "check", "-p", str(CEDAR / "policies"), str(bad)])
        assert r.exit_code == 2 and needle in flat(r.output) and "Traceback" not in r.output, r.output
    r = runner.invoke(app, ["cedar", "check", "-p", str(tmp_path / "nope"), str(bad)])
    assert r.exit_code == 2 and "no such file or directory" in flat(r.output)


def test_validate(tmp_path: Path) -> None:
    r = runner.invoke(app, ["cedar", "validate", str(CEDAR / "policies")])
    assert r.exit_code == 0 and "3 policies in 1 source(s) are valid" in r.stdout
    (tmp_path / "x.cedar").write_text(
        'permit (principal, action, resource is k8s::Resource) when { resource.name == "a" };'
    )
    r = runner.invoke(app, ["cedar", "validate", str(tmp_path)])
    assert (
        r.exit_code == 1 and "x.cedar#0" in flat(r.output) and "optional attribute `name`" in flat(r.output)
    )
    r = runner.invoke(app, ["cedar", "validate", str(tmp_path / "missing")])
    assert r.exit_code == 2


def test_from_rbac_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "rbac.cedar"
    r = runner.invoke(app, ["cedar", "from-rbac", str(CEDAR / "rbac" / "pod-reader.yaml"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    store = PolicyStore([out])
    store.load()
    a = Authorizer(store)

    def review(
        user: str, groups: list[str], resource: str, sub: str = "", name: str = "", ns: str = "team-a"
    ) -> bool:
        ra = {"verb": "get", "resource": resource, "subresource": sub, "name": name, "namespace": ns}
        sar = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": ra},
        }
        return a.review(sar)["status"]["allowed"]

    assert review("dev", ["developers"], "pods", "log")
    assert not review("dev", ["developers"], "pods", "exec")
    assert not review("dev", ["developers"], "pods", ns="other")
    assert review("system:serviceaccount:monitoring:dashboard", [], "configmaps", name="app-settings")
    assert not review("system:serviceaccount:monitoring:dashboard", [], "configmaps", name="other")


def test_from_rbac_warns_on_missing_role_and_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "b.yaml"
    f.write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\n"
        "roleRef: {kind: ClusterRole, name: missing}\nsubjects: [{kind: User, name: u}]\n"
    )
    r = runner.invoke(app, ["cedar", "from-rbac", str(f)])
    assert r.exit_code == 0 and "not found or has no rules" in flat(r.output)
    f.write_text("kind: [")
    r = runner.invoke(app, ["cedar", "from-rbac", str(f)])
    assert r.exit_code == 2 and "invalid YAML" in flat(r.output)


def test_schema_prints_and_parses() -> None:
    import cedarpy

    r = runner.invoke(app, ["cedar", "schema"])
    assert r.exit_code == 0 and "namespace k8s {" in r.stdout
    cedarpy.Schema.from_str(r.stdout)


def test_from_rbac_needs_input() -> None:
    r = runner.invoke(app, ["cedar", "from-rbac"])
    assert r.exit_code == 2 and "--cluster" in flat(r.output)


def test_check_repeated_policies_are_ordered_tiers(tmp_path: Path) -> None:
    (tmp_path / "permit.cedar").write_text('permit (principal, action == k8s::Action::"get", resource);')
    (tmp_path / "forbid.cedar").write_text('forbid (principal, action == k8s::Action::"get", resource);')
    review = tmp_path / "r.json"
    review.write_text(
        json.dumps(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {"user": "u", "resourceAttributes": {"verb": "get", "resource": "pods"}},
            }
        )
    )
    first = runner.invoke(
        app,
        [
            "cedar",
            "check",
            "-p",
            str(tmp_path / "permit.cedar"),
            "-p",
            str(tmp_path / "forbid.cedar"),
            str(review),
        ],
    )
    assert json.loads(first.stdout)["status"]["allowed"] is True
    second = runner.invoke(
        app,
        [
            "cedar",
            "check",
            "-p",
            str(tmp_path / "forbid.cedar"),
            "-p",
            str(tmp_path / "permit.cedar"),
            str(review),
        ],
    )
    assert json.loads(second.stdout)["status"]["denied"] is True
