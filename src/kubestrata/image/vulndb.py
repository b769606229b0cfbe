"""The offline vulnerability database: OSV records from export zips, in one SQLite file.

``build`` reads OSV's per-ecosystem exports (``<ecosystem>/all.zip``, or loose ``.json`` records)
into a table of affected packages indexed by (ecosystem, release, name), so matching an image is one
indexed lookup per package. Records are kept compact: the affected ranges (ECOSYSTEM and SEMVER
events only), the explicit ``versions`` list only when a record has no such range (the list is then
the only statement of what is affected; otherwise OSV derives it from the ranges), and per record its
aliases, summary and rating (severity.py). GIT-only ranges cannot be evaluated without the
repository: they are counted and reported by ``info`` as not evaluated.

Bad input (a zip that is not a zip, a member that is not JSON, a record without id or packages) is
counted and named in the database's ``problems`` table; the build goes on.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import sqlite3
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kubestrata.findings import Severity
from kubestrata.image.severity import rate_osv

OSV_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_ECOSYSTEMS = ("Debian", "Alpine", "PyPI", "npm", "Go", "Maven")
SCHEMA_VERSION = "1"
MAX_PROBLEMS = 200  # problems named in the database; the rest are counted

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE vulns(id TEXT PRIMARY KEY, aliases TEXT NOT NULL, summary TEXT NOT NULL,
                   severity TEXT NOT NULL, score REAL, severity_source TEXT NOT NULL, modified TEXT NOT NULL);
CREATE TABLE affected(vuln TEXT NOT NULL, ecosystem TEXT NOT NULL, release TEXT NOT NULL, name TEXT NOT NULL,
                      ranges BLOB, versions BLOB, git_only INTEGER NOT NULL);
CREATE TABLE problems(source TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE sources(source TEXT PRIMARY KEY, records INTEGER NOT NULL, withdrawn INTEGER NOT NULL,
                     bad INTEGER NOT NULL);
"""


class DatabaseError(Exception):
    """A database that cannot be opened or built (missing file, wrong format, no input)."""


def default_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kubestrata" / "osv.db"


def split_ecosystem(eco: str) -> tuple[str, str]:
    """``Debian:12`` -> (Debian, 12); ``Alpine:v3.19`` -> (Alpine, 3.19); ``PyPI`` -> (PyPI, "")."""
    base, _, release = eco.partition(":")
    if base == "Alpine" and release.startswith("v"):
        release = release[1:]
    if base == "Ubuntu":
        release = release.removesuffix(":LTS")
    return base, release


_PEP503 = re.compile(r"[-_.]+")


def normalize_name(ecosystem: str, name: str) -> str:
    if ecosystem == "PyPI":
        return _PEP503.sub("-", name).lower()
    return name


def normalize_release(ecosystem: str, release: str | None) -> str:
    """The release as OSV spells it: Debian's major ("12.5" -> "12"), Alpine's major.minor."""
    if not release:
        return ""
    release = release.strip().removeprefix("v")
    if ecosystem == "Debian":
        return release.split(".", 1)[0]
    if ecosystem in ("Alpine",):
        return ".".join(release.split(".")[:2])
    return release


@dataclass
class BuildStats:
    records: int = 0
    affected: int = 0
    withdrawn: int = 0
    bad: int = 0
    git_only: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    per_source: dict[str, list[int]] = field(default_factory=dict)  # source -> [records, withdrawn, bad]

    def problem(self, source: str, detail: str) -> None:
        self.bad += 1
        self.per_source.setdefault(source, [0, 0, 0])[2] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((source, detail))


def _iter_inputs(paths: Iterable[Path], stats: BuildStats) -> Iterator[tuple[str, str, bytes]]:
    """(source, member, bytes) of every OSV record file under ``paths`` (zips and .json files)."""
    for p in paths:
        if p.is_dir():
            yield from _iter_inputs(sorted(q for q in p.iterdir() if not q.name.startswith(".")), stats)
            continue
        if p.suffix == ".zip":
            try:
                with zipfile.ZipFile(p) as zf:
                    for info in zf.infolist():
                        if info.is_dir() or not info.filename.endswith(".json"):
                            continue
                        try:
                            yield str(p), info.filename, zf.read(info)
                        except (zipfile.BadZipFile, OSError, RuntimeError) as e:
                            stats.problem(str(p), f"{info.filename}: unreadable zip member: {e}")
            except (zipfile.BadZipFile, OSError) as e:
                stats.problem(str(p), f"not a readable zip archive: {e}")
        elif p.suffix == ".json":
            try:
                yield str(p.parent), p.name, p.read_bytes()
            except OSError as e:
                stats.problem(str(p), f"cannot read: {e.strerror or e}")


def _compact_ranges(ranges: Any) -> tuple[list[Any], bool]:
    """(evaluable ranges as [type, [[kind, version], ...]], whether a GIT range was present)."""
    out: list[Any] = []
    git = False
    for r in ranges if isinstance(ranges, list) else []:
        if not isinstance(r, dict):
            continue
        typ = r.get("type")
        if typ == "GIT":
            git = True
            continue
        if typ not in ("ECOSYSTEM", "SEMVER"):
            continue
        events = []
        for ev in r.get("events") or []:
            if isinstance(ev, dict) and len(ev) == 1:
                ((kind, val),) = ev.items()
                if kind in ("introduced", "fixed", "last_affected", "limit") and isinstance(val, str):
                    events.append([kind, val])
        if events:
            out.append([typ, events])
    return out, git


def _check_record(rec: Any) -> str | None:
    if not isinstance(rec, dict):
        return f"expected a JSON object, got {type(rec).__name__}"
    if not isinstance(rec.get("id"), str) or not rec["id"]:
        return "no id"
    if not isinstance(rec.get("affected", []), list):
        return "affected is not a list"
    return None


def build(inputs: Iterable[str | Path], db_path: str | Path) -> BuildStats:
    """Read OSV records from ``inputs`` (directories, zips, .json files) into a new database file."""
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.exists():
            raise DatabaseError(f"{p}: no such file or directory")
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(db_path.name + ".building")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    con.executescript(_SCHEMA)
    stats = BuildStats()
    seen: set[str] = set()
    vulns: list[tuple[Any, ...]] = []
    affected: list[tuple[Any, ...]] = []
    for source, member, data in _iter_inputs(paths, stats):
        src = stats.per_source.setdefault(source, [0, 0, 0])
        try:
            rec = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            stats.problem(source, f"{member}: not JSON: {e}")
            continue
        bad = _check_record(rec)
        if bad:
            stats.problem(source, f"{member}: {bad}")
            continue
        if rec.get("withdrawn"):
            stats.withdrawn += 1
            src[1] += 1
            continue
        vid = rec["id"]
        if vid in seen:
            continue  # the same record in two exports (a record naming several ecosystems)
        rows = []
        for i, a in enumerate(rec.get("affected") or []):
            pkg = a.get("package") if isinstance(a, dict) else None
            if not isinstance(pkg, dict) or not isinstance(pkg.get("ecosystem"), str) or not pkg.get("name"):
                stats.problem(source, f"{member}: affected[{i}] has no package ecosystem and name")
                continue
            eco, release = split_ecosystem(pkg["ecosystem"])
            ranges, git = _compact_ranges(a.get("ranges"))
            versions = a.get("versions") if isinstance(a.get("versions"), list) else []
            versions = [v for v in versions if isinstance(v, str)]
            keep_versions = versions if not ranges else []
            git_only = 1 if (git and not ranges and not versions) else 0
            stats.git_only += git_only
            rows.append(
                (
                    vid,
                    eco,
                    release,
                    normalize_name(eco, str(pkg["name"])),
                    orjson.dumps(ranges) if ranges else None,
                    orjson.dumps(keep_versions) if keep_versions else None,
                    git_only,
                )
            )
        if not rows:
            if rec.get("affected"):
                continue  # every entry was bad: already a problem
            continue  # no packages (an advisory that only lists upstream ids): nothing to match
        seen.add(vid)
        stats.records += 1
        src[0] += 1
        stats.affected += len(rows)
        rating = rate_osv(rec)
        aliases = [a for a in (rec.get("aliases") or []) + (rec.get("upstream") or []) if isinstance(a, str)]
        vulns.append(
            (
                vid,
                orjson.dumps(sorted(set(aliases))).decode(),
                str(rec.get("summary") or "")[:300],
                rating.severity.value,
                rating.score,
                rating.source,
                str(rec.get("modified") or ""),
            )
        )
        affected.extend(rows)
        if len(affected) > 20_000:
            _flush(con, vulns, affected)
    _flush(con, vulns, affected)
    con.executemany("INSERT INTO problems VALUES (?, ?)", stats.problems)
    con.executemany(
        "INSERT INTO sources VALUES (?, ?, ?, ?)", [(s, *v) for s, v in sorted(stats.per_source.items())]
    )
    con.execute("CREATE INDEX affected_pkg ON affected(ecosystem, release, name)")
    meta = {
        "schema": SCHEMA_VERSION,
        "built": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "records": str(stats.records),
        "bad": str(stats.bad),
        "withdrawn": str(stats.withdrawn),
        "git_only": str(stats.git_only),
    }
    con.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    con.commit()
    con.close()
    if stats.records == 0 and stats.bad == 0:
        tmp.unlink(missing_ok=True)
        raise DatabaseError(
            "no OSV records found in "
            + ", ".join(map(str, paths))
            + " (expected <ecosystem>/all.zip exports or "
            ".json records)"
        )
    os.replace(tmp, db_path)
    return stats


def _flush(con: sqlite3.Connection, vulns: list[tuple[Any, ...]], affected: list[tuple[Any, ...]]) -> None:
    con.executemany("INSERT OR IGNORE INTO vulns VALUES (?, ?, ?, ?, ?, ?, ?)", vulns)
    con.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?, ?)", affected)
    vulns.clear()
    affected.clear()


@dataclass(frozen=True, slots=True)
class Affected:
    vuln: str
    ranges: list[Any]  # [[type, [[kind, version], ...]], ...]
    versions: list[str]
    git_only: bool


@dataclass(frozen=True, slots=True)
class VulnRecord:
    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: Severity
    score: float | None
    severity_source: str


class VulnDB:
    """A built database, opened read-only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatabaseError(
                f"{self.path}: no vulnerability database (build one with `kubestrata image db build DIR` "
                "or `kubestrata image db update`)"
            )
        try:
            self._con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            meta = dict(self._con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as e:
            raise DatabaseError(f"{self.path}: not a kubestrata vulnerability database ({e})") from None
        if meta.get("schema") != SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.path}: database schema {meta.get('schema')!r}, expected {SCHEMA_VERSION}: rebuild it"
            )
        self.meta = meta
        self._vulns: dict[str, VulnRecord] = {}
        self._rows: dict[tuple[str, str, str], list[Affected]] = {}
        # (ecosystem, release, name, version) -> [(vuln id, fixed)] or the VersionError text: matching
        # many images evaluates each installed package version once
        self.verdicts: dict[tuple[str, str, str, str], Any] = {}
        self._ecosystems: set[tuple[str, str]] | None = None

    def close(self) -> None:
        self._con.close()

    def ecosystems(self) -> set[tuple[str, str]]:
        """(ecosystem, release) pairs the database holds records for."""
        if self._ecosystems is None:
            self._ecosystems = {
                (e, r) for e, r in self._con.execute("SELECT DISTINCT ecosystem, release FROM affected")
            }
        return self._ecosystems

    def affected(self, ecosystem: str, release: str, name: str) -> list[Affected]:
        """The affected entries of one package (cached: images share most of their packages)."""
        k = (ecosystem, release, name)
        got = self._rows.get(k)
        if got is None:
            got = self._rows[k] = self._fetch(ecosystem, release, name)
        return got

    def _fetch(self, ecosystem: str, release: str, name: str) -> list[Affected]:
        rows = self._con.execute(
            "SELECT vuln, ranges, versions, git_only FROM affected WHERE ecosystem=? AND release=? AND name=?",
            (ecosystem, release, normalize_name(ecosystem, name)),
        ).fetchall()
        return [
            Affected(v, orjson.loads(r) if r else [], orjson.loads(vs) if vs else [], bool(g))
            for v, r, vs, g in rows
        ]

    def vuln(self, vid: str) -> VulnRecord:
        rec = self._vulns.get(vid)
        if rec is None:
            row = self._con.execute(
                "SELECT id, aliases, summary, severity, score, severity_source FROM vulns WHERE id=?", (vid,)
            ).fetchone()
            rec = VulnRecord(row[0], tuple(orjson.loads(row[1])), row[2], Severity(row[3]), row[4], row[5])
            self._vulns[vid] = rec
        return rec

    def info(self) -> dict[str, Any]:
        per_eco = self._con.execute(
            "SELECT ecosystem, release, COUNT(DISTINCT vuln) FROM affected GROUP BY ecosystem, release "
            "ORDER BY ecosystem, release"
        ).fetchall()
        problems = self._con.execute("SELECT source, detail FROM problems ORDER BY rowid LIMIT 20").fetchall()
        return {
            "path": str(self.path),
            "built": self.meta.get("built"),
            "records": int(self.meta.get("records", 0)),
            "withdrawnSkipped": int(self.meta.get("withdrawn", 0)),
            "badRecords": int(self.meta.get("bad", 0)),
            "gitOnlyNotEvaluated": int(self.meta.get("git_only", 0)),
            "ecosystems": [{"ecosystem": e + (f":{r}" if r else ""), "records": n} for e, r, n in per_eco],
            "problems": [{"source": s, "detail": d} for s, d in problems],
        }


# -- update ----------------------------------------------------------------------------------------


class UpdateError(Exception):
    """The export could not be fetched (no network, HTTP error): one line for the user."""


def download(
    ecosystems: Iterable[str], dest: str | Path, *, base_url: str = OSV_BASE_URL, timeout: float = 60.0
) -> list[Path]:
    """Fetch ``<base_url>/<ecosystem>/all.zip`` for each ecosystem into ``dest``."""
    import urllib.error
    import urllib.parse
    import urllib.request

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for eco in ecosystems:
        url = f"{base_url.rstrip('/')}/{urllib.parse.quote(eco)}/all.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - https or a --mirror
                data = resp.read()
        except urllib.error.HTTPError as e:
            raise UpdateError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise UpdateError(f"cannot reach {url}: {reason}") from None
        try:
            zipfile.ZipFile(io.BytesIO(data)).testzip()
        except zipfile.BadZipFile:
            raise UpdateError(f"{url}: the response is not a zip archive ({len(data)} bytes)") from None
        target = dest / f"{eco.replace('/', '_')}.zip"
        target.write_bytes(data)
        out.append(target)
    return out
