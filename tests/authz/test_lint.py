"""`cedar validate` warns when a forbid guards fewer principal types than the permits it overlaps."""

from __future__ import annotations

from typer.testing import CliRunner

from kubestrata.authz.lint import lint_policies
from kubestrata.authz.store import collect_sources, parse_sources
from kubestrata.cli.main import app
from tests.conftest import REPO_ROOT


def _lint(tmp_path, text):
    (tmp_path / "p.cedar").write_text(text)
    sources, _ = collect_sources(str(tmp_path))
    policies, problems = parse_sources(sources)
    assert not problems, problems
    return lint_policies(policies)


PERMIT = (
    'permit (principal in k8s::Group::"devs", action == k8s::Action::"get", resource is k8s::Resource);\n'
)


def test_user_only_forbid_under_group_permit_is_flagged(tmp_path):
    out = _lint(
        tmp_path,
        PERMIT
        + 'forbid (principal is k8s::User in k8s::Group::"devs", action, resource is k8s::Resource);\n',
    )
    assert len(out) == 1 and out[0].policy == "p.cedar#1" and out[0].code == "principal-type-gap"
    assert "k8s::Node, k8s::ServiceAccount" in out[0].message and "p.cedar#0" in out[0].message


def test_forbid_covering_every_type_or_disjoint_actions_is_fine(tmp_path):
    assert _lint(tmp_path, PERMIT + 'forbid (principal in k8s::Group::"devs", action, resource);\n') == []
    out = _lint(
        tmp_path,
        PERMIT
        + 'forbid (principal is k8s::User, action == k8s::Action::"delete", resource is k8s::Resource);\n',
    )
    assert out == []  # the permit never allows delete: nothing to bypass


def test_admission_forbid_limited_to_users_is_flagged(tmp_path):
    out = _lint(
        tmp_path,
        'forbid (principal is k8s::User, action == k8s::admission::Action::"create", resource);\n',
    )
    assert len(out) == 1 and "admission (allow by default)" in out[0].message


def test_shipped_examples_have_no_gaps_and_cli_prints_warnings(tmp_path):
    for d in ("examples/cedar-demo/policies", "examples/cedar/policies", "deploy/policies"):
        r = CliRunner().invoke(app, ["cedar", "validate", str(REPO_ROOT / d)])
        assert r.exit_code == 0 and "warning" not in r.output, (d, r.output)
    (tmp_path / "p.cedar").write_text(
        PERMIT + 'forbid (principal is k8s::User in k8s::Group::"devs", action, resource is k8s::Resource);\n'
    )
    r = CliRunner().invoke(app, ["cedar", "validate", str(tmp_path)])
    assert r.exit_code == 0 and "warning principal-type-gap: p.cedar#1" in r.output
