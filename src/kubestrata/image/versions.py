"""Version ordering per OSV ecosystem, and OSV range evaluation.

univers defines the ordering of every ecosystem. Matching compares one installed version with the
events of tens of records per package, and univers' Debian and SemVer objects cost 15-90 us to build
and 30 us to compare, so three ecosystems use an equivalent sort key instead:

- Debian: the dpkg algorithm (epoch, then upstream and revision compared as alternating non-digit
  runs, ``~`` before everything, letters before other characters, and digit runs as integers);
- npm and Go: SemVer 2.0 precedence (Go's leading ``v`` dropped);
- PyPI: ``packaging.version.Version`` (what univers' PypiVersion wraps).

tests/image/test_versions.py checks each key against univers (the oracle) on real and generated
versions. Every other ecosystem compares univers objects directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any


class VersionError(ValueError):
    """A version string the ecosystem's ordering cannot read."""


_DIGITS = re.compile(r"(\d+)")


def _dpkg_order(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _dpkg_part(s: str) -> tuple[Any, ...]:
    """dpkg's verrevcmp as a sort key: alternating non-digit runs (char orders, then a 0 "end of
    run" that sorts after ``~`` and before any character) and digit runs (integers). Trailing empty
    runs and zeros compare equal to nothing in dpkg, so they are dropped, and a final (0,) stands for
    "the string ended" at the next non-digit position."""
    out: list[Any] = []
    for i, chunk in enumerate(_DIGITS.split(s)):
        out.append(int(chunk) if i % 2 else (*(_dpkg_order(c) for c in chunk), 0))
    if len(out) % 2 == 1:
        out.append(0)
    while len(out) >= 2 and out[-2] == (0,) and out[-1] == 0:
        del out[-2:]
    out.append((0,))
    return tuple(out)


_DEB_RE = re.compile(r"^(?:(\d+):)?([0-9][A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?$")


def debian_key(v: str) -> tuple[Any, ...]:
    m = _DEB_RE.match(v.strip())
    if m is None:
        raise VersionError(f"{v!r} is not a Debian version ([epoch:]upstream[-revision])")
    epoch, upstream, revision = m.groups()
    return (int(epoch or 0), _dpkg_part(upstream), _dpkg_part(revision or "0"))


_SEMVER_RE = re.compile(
    r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


def semver_key(v: str) -> tuple[Any, ...]:
    m = _SEMVER_RE.match(v.strip())
    if m is None:
        raise VersionError(f"{v!r} is not a SemVer version")
    major, minor, patch, pre = m.groups()
    if pre is None:
        pre_key: tuple[Any, ...] = (1,)  # a release sorts after all of its pre-releases
    else:
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
        pre_key = (0, ids)
    return (int(major), int(minor or 0), int(patch or 0), pre_key)


def _pypi_key(v: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(v)
    except InvalidVersion:
        raise VersionError(f"{v!r} is not a PEP 440 version") from None


# OSV ecosystem (without release suffix) -> univers version class name
UNIVERS_CLASS = {
    "Debian": "DebianVersion",
    "Ubuntu": "DebianVersion",
    "Alpine": "AlpineLinuxVersion",
    "Wolfi": "AlpineLinuxVersion",
    "Chainguard": "AlpineLinuxVersion",
    "PyPI": "PypiVersion",
    "npm": "SemverVersion",
    "Go": "GolangVersion",
    "Maven": "MavenVersion",
    "Red Hat": "RpmVersion",
    "AlmaLinux": "RpmVersion",
    "Rocky Linux": "RpmVersion",
    "SUSE": "RpmVersion",
    "openSUSE": "RpmVersion",
    "Mageia": "RpmVersion",
    "NuGet": "NugetVersion",
    "RubyGems": "RubygemsVersion",
    "Packagist": "ComposerVersion",
    "crates.io": "SemverVersion",
}
_FAST: dict[str, Callable[[str], Any]] = {
    "Debian": debian_key,
    "Ubuntu": debian_key,
    "npm": semver_key,
    "Go": semver_key,
    "crates.io": semver_key,
    "PyPI": _pypi_key,
}


def supported(ecosystem: str) -> bool:
    return ecosystem in UNIVERS_CLASS


def _univers_key(cls_name: str) -> Callable[[str], Any]:
    def key(v: str) -> Any:
        import univers.versions as uv

        try:
            return getattr(uv, cls_name)(v)
        except (uv.InvalidVersion, ValueError, TypeError) as e:
            raise VersionError(f"{v!r} is not a valid {cls_name.removesuffix('Version')} version") from e

    return key


@cache
def key_function(ecosystem: str) -> Callable[[str], Any]:
    """The sort key of ``ecosystem``'s versions; raises VersionError for an unreadable version."""
    fast = _FAST.get(ecosystem)
    if fast is None:
        cls_name = UNIVERS_CLASS.get(ecosystem)
        if cls_name is None:
            raise VersionError(f"no version ordering for ecosystem {ecosystem!r}")
        fast = _univers_key(cls_name)
    return lru_cache(maxsize=200_000)(fast)


@dataclass(frozen=True, slots=True)
class OsvVerdict:
    """Whether an installed version is affected by one OSV record, and the first fixed version if any."""

    affected: bool
    fixed: str | None = None  # the first fixed version above the installed one, in the affecting range


def evaluate(ecosystem: str, version: str, ranges: Sequence[Any], versions: Sequence[str] = ()) -> OsvVerdict:
    """OSV's evaluation (schema.md "Evaluation"): affected when the version is listed in ``versions``
    or lies in an ECOSYSTEM/SEMVER range: at or above an ``introduced``, below the next ``fixed``, at
    or below ``last_affected``, below ``limit``. GIT ranges are not evaluated (callers list them as
    gaps). Raises VersionError when ``version`` or an event cannot be read."""
    key = key_function(ecosystem)
    v = key(version)
    listed = version in versions
    for r in ranges:
        if isinstance(r, dict):  # OSV's own shape
            typ = r.get("type")
            pairs = [kv for ev in r.get("events") or [] for kv in ev.items()]
        else:  # the database's compact [type, [[kind, version], ...]]
            typ, pairs = r
        if typ not in ("ECOSYSTEM", "SEMVER"):
            continue
        if len(pairs) == 2 and pairs[0][0] == "introduced" and pairs[1][0] == "fixed":
            # most records are one introduced/fixed pair: no sorting, two comparisons at most
            intro, fixed = pairs[0][1], pairs[1][1]
            fk = key(fixed)
            if v < fk and (intro == "0" or not v < key(intro)):
                return OsvVerdict(True, fixed)
            continue
        events = []
        limits = []
        for kind, val in pairs:
            if kind == "limit":
                if val != "*":
                    limits.append(key(val))
            elif kind == "introduced" and val == "0":
                events.append((None, kind, val))
            else:
                events.append((key(val), kind, val))
        if limits and not any(v < lim for lim in limits):
            continue
        events.sort(key=lambda e: (e[0] is not None, e[0] if e[0] is not None else 0, e[1] != "introduced"))
        affected = False
        # only "<" is used: univers' AlpineLinuxVersion answers a < b and a >= b both True for
        # 10.6.8_rc1-r0 vs 10.6.8-r0 (its >= is not the negation of its <)
        for ek, kind, _ in events:
            if kind == "introduced":
                if ek is None or not v < ek:
                    affected = True
            elif kind == "fixed":
                if not v < ek:
                    affected = False
            elif kind == "last_affected":
                if ek < v:
                    affected = False
        if affected:
            fixed = next((val for ek, kind, val in events if kind == "fixed" and v < ek), None)
            return OsvVerdict(True, fixed)
    if listed:
        return OsvVerdict(True, None)
    return OsvVerdict(False)
