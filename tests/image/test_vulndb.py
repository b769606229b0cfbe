"""The offline OSV database built from real records (tests/image/data/osv): exact matches and
non-matches at range boundaries, release suffixes, source packages, and bad input named, not lost."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from kubestrata.findings import Severity
from kubestrata.image.matching import match
from kubestrata.image.vulndb import DatabaseError, VulnDB, build

from .conftest import DATA, inventory, pkg


def ids(db: VulnDB, *packages, **kw) -> set[tuple[str, str]]:
    return {(v.id, v.package) for v in match(inventory(*packages, **kw), db).vulns}


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("1.2.1-2.2+wheezy2", True),
        ("1.2.1-2.2+wheezy3~bpo60+1", True),  # ~ sorts before the fixed version
        ("1.2.1-2.2+wheezy3", False),  # the fixed version itself
        ("1.2.1-2.2+wheezy4", False),
    ],
)
def test_debian_dsa_fixed_boundary_and_tilde(fixture_db: VulnDB, version: str, affected: bool) -> None:
    got = ids(fixture_db, pkg("nginx-full", version, "Debian", source="nginx", release="7"))
    assert got == ({("DSA-3029-1", "nginx-full")} if affected else set())


def test_debian_matches_on_source_package_only(fixture_db: VulnDB) -> None:
    # the binary name is not an OSV name: without source_name = nginx nothing matches
    assert ids(fixture_db, pkg("nginx-full", "1.2.1-2.2", "Debian", release="7")) == set()


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("1:1.2.11.dfsg-2", True),
        ("1:1.2.11.dfsg-2+deb11u1", True),
        ("1:1.2.11.dfsg-2+deb11u2", False),
        ("1.2.13.dfsg-1", True),
    ],  # no epoch is epoch 0: below any 1: version
)
def test_debian_epoch(fixture_db: VulnDB, version: str, affected: bool) -> None:
    got = ids(fixture_db, pkg("zlib1g", version, "Debian", source="zlib", release="11"))
    assert got == ({("DEBIAN-CVE-2022-37434", "zlib1g")} if affected else set())


def test_debian_release_is_part_of_the_key(fixture_db: VulnDB) -> None:
    # DSA-3029-1 names Debian:7 only; the same version on Debian 11 is not matched, and 11.7 means 11
    assert ids(fixture_db, pkg("nginx", "1.2.1-2.2", "Debian", source="nginx", release="11.7")) == set()
    r = match(inventory(pkg("nginx", "1.2.1-2.2", "Debian", source="nginx", release="13")), fixture_db)
    assert r.vulns == [] and "no Debian:13 records" in r.gaps[0].detail


@pytest.mark.parametrize(
    ("release", "version", "affected", "fixed"),
    [
        ("3.12", "10.4.24-r0", True, "10.4.25-r0"),
        ("3.12", "10.4.25-r0", False, None),
        ("3.15", "10.6.7-r0", True, "10.6.8-r0"),
        ("3.15", "10.6.8-r0", False, None),
        ("3.15", "10.6.8-r1", False, None),  # -r revisions order numerically after the fix
        ("3.15", "10.6.8_rc1-r0", True, "10.6.8-r0"),  # _rc sorts before the release
        ("3.14", "10.5.15-r9", True, "10.5.16-r0"),
        ("3.14.2", "10.5.16-r0", False, None),  # Alpine release 3.14.2 is OSV's Alpine:v3.14
    ],
)
def test_alpine_revision_and_release(fixture_db: VulnDB, release, version, affected, fixed) -> None:
    r = match(
        inventory(pkg("mariadb-client", version, "Alpine", source="mariadb", release=release)), fixture_db
    )
    assert [(v.id, v.fixed) for v in r.vulns] == ([("CVE-2022-27449", (fixed,))] if affected else [])


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("2.10", True),
        ("2.10.1rc1", True),
        ("2.10.1", False),
        ("2.11.0", False),
        ("1.0", True),
        ("2.0rc1", True),
    ],
)
def test_pypi_pep440_prereleases(fixture_db: VulnDB, version: str, affected: bool) -> None:
    # the record's name is "jinja2"; PyPI names compare PEP 503-normalised ("Jinja2")
    assert ids(fixture_db, pkg("Jinja2", version, "PyPI")) == (
        {("PYSEC-2019-217", "Jinja2")} if affected else set()
    )


@pytest.mark.parametrize(
    ("version", "affected", "fixed"),
    [
        ("1.18.5", True, "1.18.6"),
        ("1.18.6", False, None),
        ("1.19.0-rc.1", True, "1.19.1"),
        ("1.19.0", True, "1.19.1"),
        ("1.19.1", False, None),
        ("v1.18.0", True, "1.18.6"),
    ],
)
def test_go_two_introduced_ranges(fixture_db: VulnDB, version, affected, fixed) -> None:
    r = match(inventory(pkg("stdlib", version, "Go")), fixture_db)
    assert [(v.id, v.fixed) for v in r.vulns] == ([("GO-2022-0969", (fixed,))] if affected else [])


def test_go_pseudo_version_fix(fixture_db: VulnDB) -> None:
    assert ids(fixture_db, pkg("golang.org/x/net", "v0.0.0-20220826154423-83b083e8dc8b", "Go"))
    assert not ids(fixture_db, pkg("golang.org/x/net", "v0.0.0-20220906165146-f3363e06e74c", "Go"))
    assert not ids(fixture_db, pkg("golang.org/x/net", "v0.1.0", "Go"))


def test_npm_severity_from_cvss_vector(fixture_db: VulnDB) -> None:
    (v,) = match(inventory(pkg("lodash", "4.17.20", "npm")), fixture_db).vulns
    assert (v.id, v.severity, v.score, v.fixed) == ("GHSA-35jh-r3h4-6jhm", Severity.HIGH, 7.2, ("4.17.21",))
    assert v.aliases == ("CVE-2021-23337",) and v.severity_source == "CVSS:3.1 vector"
    assert not match(inventory(pkg("lodash", "4.17.21", "npm")), fixture_db).vulns


def test_unfixed_advisory_has_no_fix_and_database_severity_fallback(fixture_db: VulnDB) -> None:
    (v,) = match(inventory(pkg("shiba", "9.9.9", "npm")), fixture_db).vulns
    assert v.fixed == () and v.severity == Severity.MEDIUM and v.severity_source.startswith("unknown")


def test_maven_introduced_boundary(fixture_db: VulnDB) -> None:
    name = "com.typesafe.akka:akka-actor_2.12"
    assert not ids(fixture_db, pkg(name, "2.4.20", "Maven"))
    assert ids(fixture_db, pkg(name, "2.5.0", "Maven"))
    assert not ids(fixture_db, pkg(name, "2.5.16", "Maven"))


def test_amazon_linux_is_a_named_gap_not_silence(fixture_db: VulnDB) -> None:
    inv = inventory(
        pkg("glibc", "2.34-52.amzn2023.0.8", "Amazon Linux", release="2023"), os_release={"ID": "amzn"}
    )
    r = match(inv, fixture_db)
    assert r.vulns == [] and len(r.gaps) == 1
    assert "OSV has no Amazon Linux data" in r.gaps[0].detail and "glibc" in r.gaps[0].detail


def test_inventory_gaps_and_unknown_ecosystems_carry_into_the_report(fixture_db: VulnDB) -> None:
    from kubestrata.findings import CoverageGap, GapReason

    inv = inventory(pkg("rails", "7.0.0", "RubyGems"), pkg("libfoo", "1.0", "Alpine", source="foo"))
    inv.gaps.append(CoverageGap("img", GapReason.INVALID, "lib/apk/db/installed: truncated"))
    details = [g.detail for g in match(inv, fixture_db).gaps]
    assert details[0] == "lib/apk/db/installed: truncated"
    assert any("no RubyGems records" in d for d in details)
    assert any("Alpine release unknown" in d for d in details)


def test_bad_records_are_counted_and_named(tmp_path: Path) -> None:
    zpath = tmp_path / "PyPI.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(DATA / "osv" / "PYSEC-2019-217.json", "PYSEC-2019-217.json")
        zf.writestr("BAD-1.json", "{not json")
    stats = build([DATA / "osv-bad", zpath], tmp_path / "db")
    assert stats.records == 2  # PYSEC-2019-217 and the GIT-only record
    assert stats.withdrawn == 1 and stats.git_only == 1
    details = "\n".join(d for _, d in stats.problems)
    for needle in (
        "BAD-1.json: not JSON",
        "truncated.json: not JSON",
        "list.json: expected a JSON object",
        "noid.json: no id",
        "nopkg.json: affected[0] has no package",
        "not a readable zip archive",
    ):
        assert needle in details
    db = VulnDB(tmp_path / "db")
    info = db.info()
    assert info["badRecords"] == 6 and info["gitOnlyNotEvaluated"] == 1
    assert db.affected("PyPI", "", "gitonly")[0].git_only


def test_no_records_and_unreadable_databases_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatabaseError, match="no OSV records"):
        build([tmp_path / "empty"], tmp_path / "db")
    with pytest.raises(DatabaseError, match="no such file"):
        build([tmp_path / "missing"], tmp_path / "db")
    (tmp_path / "junk.db").write_text("junk")
    with pytest.raises(DatabaseError, match="not a kubestrata vulnerability database"):
        VulnDB(tmp_path / "junk.db")
    with pytest.raises(DatabaseError, match="image db build"):
        VulnDB(tmp_path / "nothing.db")


def test_compact_store_drops_versions_lists_covered_by_ranges(fixture_db: VulnDB) -> None:
    (aff,) = fixture_db.affected("PyPI", "", "jinja2")
    assert aff.versions == [] and aff.ranges == [["ECOSYSTEM", [["introduced", "0"], ["fixed", "2.10.1"]]]]


@pytest.mark.parametrize("eco", ["Debian", "npm", "PyPI", "Alpine"])
def test_indexed_matching_equals_record_by_record_evaluation(eco: str) -> None:
    import random

    from kubestrata.image.matching import _evaluate, _index
    from kubestrata.image.versions import VersionError, evaluate
    from kubestrata.image.vulndb import Affected

    rnd = random.Random(eco)

    def ver() -> str:
        a, b, c = rnd.randint(0, 3), rnd.randint(0, 5), rnd.randint(0, 5)
        return {
            "Debian": f"{a}.{b}.{c}-{rnd.randint(1, 3)}",
            "Alpine": f"{a}.{b}.{c}-r{rnd.randint(0, 3)}",
        }.get(eco, f"{a}.{b}.{c}")

    rows = []
    for i in range(200):
        shape = rnd.random()
        if shape < 0.6:
            events = [["introduced", "0"], ["fixed", ver()]]
        elif shape < 0.8:
            events = [["introduced", ver()], ["fixed", ver()]]
        else:
            events = [["introduced", "0"], ["last_affected", ver()]]
        rows.append(Affected(f"V-{i}", [["ECOSYSTEM", events]], [], False))
    idx = _index(eco, rows)
    for _ in range(200):
        v = ver()
        want = set()
        for a in rows:
            try:
                verdict = evaluate(eco, v, a.ranges, a.versions)
            except VersionError:
                continue
            if verdict.affected:
                want.add((a.vuln, verdict.fixed))
        assert {(vid, fixed) for vid, fixed, err in _evaluate(eco, v, idx) if not err} == want, v
