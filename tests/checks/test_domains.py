"""`scan --include <domain>`: each domain is one module of kubestrata.checks and selects exactly its checks."""

import pytest

from kubestrata.checks import load_builtin_checks
from kubestrata.errors import KubestrataError
from kubestrata.scan import select_checks

# the id families each domain holds; a check moved to another module shows up here
DOMAINS = {
    "awsauth": {f"KS-ACC-{n:03d}" for n in (1, 2, 3, 4, 6, 10, 11, 12, 13)},
    "accessentries": {f"KS-ACC-{n:03d}" for n in (5, 7, 8, 9, 15, 16, 17, 18)},
    "identity": {f"KS-ACC-{n:03d}" for n in (20, 21, 22, 23, 24)} | {f"KS-IDN-{n:03d}" for n in range(1, 7)},
    "rbac": {"KS-ACC-014", "KS-RBAC-001", "KS-RBAC-002", "KS-RBAC-003", "KS-RBAC-004"},
    "eks": {f"KS-EKS-{n:03d}" for n in range(1, 8)},
}


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_include_domain_selects_its_checks(domain):
    got = {c.meta.id for c in select_checks([domain])}
    assert got == DOMAINS[domain]


def test_every_check_has_the_domain_of_its_module():
    for chk in load_builtin_checks():
        assert chk.meta.domain == chk.fn.__module__.rsplit(".", 1)[-1]
        assert chk.meta.domain not in ("base", "accesssupport", "ekssupport", "needs", "limits")


def test_every_domain_selects_something_and_support_modules_none():
    domains = {c.meta.domain for c in load_builtin_checks()}
    for d in domains:
        assert select_checks([d])
    for support in ("accesssupport", "ekssupport"):
        with pytest.raises(KubestrataError, match="matches no check"):
            select_checks([support])


def test_exclude_domain_removes_exactly_it():
    everything = {c.meta.id for c in select_checks()}
    assert {c.meta.id for c in select_checks(exclude=["rbac"])} == everything - DOMAINS["rbac"]


def test_registration_returns_the_check():
    # the decorated name is the registered Check: its metadata is the registry's, no function attribute
    from kubestrata.checks import awsauth

    reg = load_builtin_checks()
    assert awsauth.rolearn_with_path is reg.get("KS-ACC-001")
    assert not hasattr(awsauth.rolearn_with_path.fn, "meta")


def test_docs_name_every_domain():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "scan.md").read_text()
    para = text.split("The domains (one module of `kubestrata/checks/` each):", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z]+)`", para))
    from kubestrata.scan import DOMAIN_GROUPS

    assert named == {c.meta.domain for c in load_builtin_checks()} | set(DOMAIN_GROUPS)


def test_access_is_the_group_of_the_four_domains_split_from_it():
    four = {c.meta.id for d in ("awsauth", "accessentries", "identity", "rbac") for c in select_checks([d])}
    assert {c.meta.id for c in select_checks(["access"])} == four
    assert four and {c.meta.id for c in select_checks(["rbac"])} < four
