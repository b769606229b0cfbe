"""Version ordering: the fast keys agree with univers (the oracle); OSV range evaluation boundaries."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from univers.versions import DebianVersion, SemverVersion

from kubestrata.image.versions import VersionError, debian_key, evaluate, semver_key

DEBIAN = [
    "1.0",
    "1.0~rc1",
    "1.0.0",
    "1a",
    "1:0.9",
    "2.0",
    "1.2-1",
    "1.2-1+deb12u1",
    "3.0.11-1~deb12u2",
    "3.0.11-1",
    "1.2.1-2.2+wheezy3~bpo60+1",
    "1.2.1-2.2+wheezy3",
    "1.0~",
    "1.0+",
    "1.0-0",
    "1:1.2.11.dfsg-2+deb11u2",
    "1:1.2.11.dfsg-2",
    "1:1.2.11.dfsg-2+deb11u1",
    "1.0a",
    "1.0.a",
    "2.36-9+deb12u3",
    "2.36-9+deb12u10",
    "10.4.25",
    "0.0~git20230101.abc-1",
]
SEMVER = [
    "1.0.0",
    "1.0.0-rc.1",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.19.0-0",
    "1.19.0",
    "1.18.6",
    "0.0.0-20220906165146-f3363e06e74c",
    "0.0.0-20230101000000-aaaaaaaaaaaa",
    "4.17.21",
    "4.17.20",
    "v1.2.3",
]


def _same_order(key, oracle, a: str, b: str) -> None:
    ka, kb, oa, ob = key(a), key(b), oracle(a), oracle(b)
    assert (ka < kb) == (oa < ob), (a, b)
    assert (kb < ka) == (ob < oa), (a, b)


@pytest.mark.parametrize(("a", "b"), list(itertools.product(DEBIAN, DEBIAN)))
def test_debian_key_orders_like_univers(a: str, b: str) -> None:
    _same_order(debian_key, DebianVersion, a, b)


@pytest.mark.parametrize(("a", "b"), list(itertools.product(SEMVER, SEMVER)))
def test_semver_key_orders_like_univers(a: str, b: str) -> None:
    _same_order(semver_key, lambda v: SemverVersion(v.lstrip("v")), a, b)


_deb_part = st.text(alphabet="0123456789.+~ab", min_size=1, max_size=6)
_deb = st.builds(
    lambda e, u, r: (f"{e}:" if e else "") + "1" + u + (f"-{r}" if r else ""),
    st.sampled_from(["", "1", "2"]),
    _deb_part,
    st.one_of(
        st.just(""), st.text(alphabet="0123456789.+~ab", min_size=1, max_size=5).map(lambda s: "1" + s)
    ),
)


@settings(max_examples=300, deadline=None)
@given(_deb, _deb)
def test_debian_key_agrees_with_univers_on_generated_versions(a: str, b: str) -> None:
    _same_order(debian_key, DebianVersion, a, b)


def test_unreadable_versions_raise() -> None:
    with pytest.raises(VersionError):
        debian_key("not a version")
    with pytest.raises(VersionError):
        evaluate("PyPI", "1.0.0.dev-what", [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}])
    with pytest.raises(VersionError):
        evaluate("Nonexistent", "1", [])


LAST_AFFECTED = [{"type": "ECOSYSTEM", "events": [{"introduced": "4.0.0"}, {"last_affected": "4.17.20"}]}]


@pytest.mark.parametrize(
    ("version", "affected"),
    [("3.10.1", False), ("4.0.0", True), ("4.17.20", True), ("4.17.21", False), ("4.17.20-rc.1", True)],
)
def test_last_affected_is_inclusive(version: str, affected: bool) -> None:
    # OSV schema "Evaluation": last_affected is an inclusive ceiling (no fix to report)
    v = evaluate("npm", version, LAST_AFFECTED)
    assert v.affected is affected
    assert v.fixed is None


def test_limit_bounds_a_range() -> None:
    r = [{"type": "SEMVER", "events": [{"introduced": "0"}, {"limit": "2.0.0"}]}]
    assert evaluate("npm", "1.9.9", r).affected
    assert not evaluate("npm", "2.0.0", r).affected


def test_git_ranges_are_not_evaluated_and_versions_list_still_counts() -> None:
    git = [{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}]}]
    assert not evaluate("PyPI", "1.0", git).affected
    assert evaluate("PyPI", "1.0", git, ["1.0"]).affected
