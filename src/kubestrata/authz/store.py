"""Policy stores: Cedar policies from ``.cedar`` files and ``cedar.k8s.aws/v1alpha1`` Policy objects,
in ordered tiers, parsed and validated once, swapped atomically.

Every policy gets a stable id that denial reasons show: ``<file>#<index>`` for a ``.cedar`` file (the
path relative to the directory it was found under) and ``Policy/<name>#<index>`` for a Policy object,
where index counts the policies in that file or object from 0. A load that meets any policy that does
not parse or does not validate against kubestrata's schema (or a template, or a duplicate Policy
name) is rejected as a whole: ``load()`` raises ``PolicyLoadError`` listing every problem and the
previous snapshot keeps serving. So an erroring forbid can never be loaded, let alone fail open.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cedarpy
import orjson
import yaml

from kubestrata.authz.entities import CedarRequest
from kubestrata.authz.schema import schema
from kubestrata.authz.slicing import SliceIndex, constraints_of
from kubestrata.errors import KubestrataError

POLICY_API_VERSION = "cedar.k8s.aws/v1alpha1"
CEDAR_SUFFIX = ".cedar"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_POLICY_FILE_BYTES = 16 * 1024 * 1024


class PolicyLoadError(KubestrataError):
    """Policies were rejected; ``problems`` lists each one with its file/object and policy index."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = f"{len(problems)} problem(s) in the policies; none were loaded"
        super().__init__(head + ":\n  " + "\n  ".join(problems))


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Cedar text and where it came from. ``label`` prefixes policy ids (``demo.cedar`` or
    ``Policy/name``); ``origin`` is what error messages name (the file, and the object for Policies)."""

    label: str
    origin: str
    text: str


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    id: str
    origin: str
    index: int
    effect: str  # "permit" | "forbid"
    annotations: dict[str, str]
    est: dict[str, Any] = field(repr=False)

    @property
    def id_annotation(self) -> str | None:
        return self.annotations.get("id")

    def describe(self) -> str:
        """The id plus its @id annotation, as denial reasons show it."""
        ann = self.id_annotation
        return f'{self.id} (@id "{ann}")' if ann else self.id


@dataclass(frozen=True, slots=True)
class EvalResult:
    decision: str  # "Allow" | "Deny" | "NoDecision"
    reasons: tuple[str, ...]
    errors: tuple[str, ...]


def _policy_set(policies: Iterable[PolicyInfo]) -> cedarpy.PolicySet:
    doc = {"staticPolicies": {p.id: p.est for p in policies}, "templates": {}, "templateLinks": []}
    return cedarpy.PolicySet.from_json_str(orjson.dumps(doc).decode())


class PolicyTier:
    """One tier: its policies, the whole parsed set, and the slicing index with memoised slices."""

    def __init__(self, name: str, policies: Sequence[PolicyInfo], slice_cache: int = 4096) -> None:
        self.name = name
        self.policies: dict[str, PolicyInfo] = {p.id: p for p in policies}
        self.policy_set = _policy_set(policies)
        self.index = SliceIndex((p.id, constraints_of(p.est)) for p in policies)
        self._sets: OrderedDict[tuple[str, ...], cedarpy.PolicySet] = OrderedDict()
        self._slice_cache = slice_cache
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.policies)

    def sliced_set(self, ids: tuple[str, ...]) -> cedarpy.PolicySet:
        ps = self._sets.get(ids)
        if ps is None:
            ps = _policy_set(self.policies[i] for i in ids)
            with self._lock:
                self._sets[ids] = ps
                if len(self._sets) > self._slice_cache:
                    self._sets.popitem(last=False)
        return ps

    def evaluate(
        self, req: CedarRequest, entities: str | cedarpy.Entities, *, sliced: bool = True
    ) -> EvalResult:
        if sliced:
            ids = self.index.slice(req)
            if not ids:
                return EvalResult("Deny", (), ())
            ps = self.sliced_set(ids)
        else:
            ps = self.policy_set
        res = cedarpy.is_authorized(req.as_cedarpy(), ps, entities)
        diag = res.diagnostics
        # Cedar reports reasons in no fixed order; policy order keeps responses (and caches) stable
        order = self.index.order
        reasons = tuple(sorted(diag.reasons, key=lambda i: order.get(i, -1)))
        return EvalResult(res.decision.value, reasons, tuple(sorted(str(e) for e in diag.errors)))


@dataclass(frozen=True)
class PolicySnapshot:
    """An immutable, fully parsed policy set; the store swaps whole snapshots."""

    tiers: tuple[PolicyTier, ...]
    generation: int
    loaded_at: float
    fingerprint: tuple[Any, ...] = ()

    def policy(self, pid: str) -> PolicyInfo | None:
        for t in self.tiers:
            p = t.policies.get(pid)
            if p is not None:
                return p
        return None

    def __len__(self) -> int:
        return sum(len(t) for t in self.tiers)


def parse_sources(sources: Sequence[PolicySource]) -> tuple[list[PolicyInfo], list[str]]:
    """Parse and validate each source; returns the policies and every problem found."""
    out: list[PolicyInfo] = []
    problems: list[str] = []
    sch = schema()
    for src in sources:
        try:
            est = orjson.loads(cedarpy.policies_to_json_str(src.text))
        except ValueError as e:
            where = _locate_parse_error(src.text)
            at = f" in policy {src.label}#{where[0]} (line {where[1]})" if where else ""
            problems.append(f"{src.origin}: Cedar parse error{at}: {e}")
            continue
        if est.get("templates"):
            problems.append(
                f"{src.origin}: policy templates are not supported (found {len(est['templates'])})"
            )
            continue
        static = est.get("staticPolicies") or {}
        ids = {k: f"{src.label}#{int(k.removeprefix('policy'))}" for k in static}
        result = cedarpy.validate_policies(src.text, sch)
        if not result.validation_passed:
            found = set()
            for err in result.errors:
                pid = ids.get(err.policy_id, err.policy_id or "?")
                # cedarpy names its positional id inside the message; ours is already in front
                msg = re.sub(r"^for policy `[^`]*`, ", "", err.error)
                found.add(f"{src.origin}: policy {pid}: {msg}")
            problems += sorted(found)
            continue
        for key, body in static.items():
            idx = int(key.removeprefix("policy"))
            out.append(
                PolicyInfo(
                    id=ids[key],
                    origin=src.origin,
                    index=idx,
                    effect=body.get("effect", ""),
                    annotations={str(k): str(v) for k, v in (body.get("annotations") or {}).items()},
                    est=body,
                )
            )
    return out, problems


def _statements(text: str) -> list[tuple[int, str]]:
    """Split Cedar text at top-level `;` (outside strings and comments): (first line, statement)."""
    out: list[tuple[int, str]] = []
    start, line, start_line, i, n = 0, 1, 1, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif ch == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif ch == ";":
            out.append((start_line, text[start : i + 1]))
            start, start_line = i + 1, line
        i += 1
    if text[start:].strip():
        out.append((start_line, text[start:]))
    return out


def _locate_parse_error(text: str) -> tuple[int, int] | None:
    """(policy index, line) of the first statement that does not parse on its own, for error messages."""
    index = 0
    for first_line, stmt in _statements(text):
        body = stmt.strip()
        if not body or all(ln.strip().startswith("//") or not ln.strip() for ln in body.splitlines()):
            continue
        try:
            cedarpy.policies_to_json_str(stmt)
        except ValueError:
            skipped = len(stmt) - len(stmt.lstrip())
            return index, first_line + stmt[:skipped].count("\n")
        index += 1
    return None


def policy_objects_to_sources(docs: Iterable[Any], origin: str) -> tuple[list[PolicySource], list[str]]:
    """Policy objects (cedar.k8s.aws/v1alpha1) among parsed YAML/JSON documents; other kinds are skipped."""
    sources, problems = [], []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") != "Policy" or not str(doc.get("apiVersion", "")).startswith("cedar.k8s.aws/"):
            continue
        where = f"{origin} document {i}"
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: Policy has no metadata.name")
            continue
        content = (doc.get("spec") or {}).get("content") if isinstance(doc.get("spec"), dict) else None
        if not isinstance(content, str):
            problems.append(f"{where} (Policy/{name}): spec.content must be a string of Cedar policies")
            continue
        sources.append(PolicySource(f"Policy/{name}", f"{where} (Policy/{name})", content))
    return sources, problems


def _read(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_POLICY_FILE_BYTES:
        raise OSError(f"file is {size} bytes, over the {MAX_POLICY_FILE_BYTES} byte limit")
    return path.read_text(encoding="utf-8")


def collect_sources(path: str | Path, prefix: str = "") -> tuple[list[PolicySource], list[str]]:
    """Sources from a ``.cedar`` file, a YAML/JSON file of Policy objects, or a directory of both
    (recursively, sorted, hidden entries skipped). ``prefix`` goes in front of file labels."""
    root = Path(path)
    if not root.exists():
        return [], [f"{root}: no such file or directory"]
    files: list[tuple[Path, str]] = []
    if root.is_dir():
        for dirpath, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for n in sorted(names):
                if not n.startswith(".") and n.endswith((CEDAR_SUFFIX, *MANIFEST_SUFFIXES)):
                    f = Path(dirpath) / n
                    files.append((f, f.relative_to(root).as_posix()))
    else:
        files.append((root, root.name))
    sources: list[PolicySource] = []
    problems: list[str] = []
    for f, rel in files:
        try:
            text = _read(f)
        except (OSError, UnicodeDecodeError) as e:
            problems.append(f"{f}: cannot read: {getattr(e, 'strerror', None) or e}")
            continue
        if f.name.endswith(CEDAR_SUFFIX):
            sources.append(PolicySource(prefix + rel, str(f), text))
            continue
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            problems.append(f"{f}: invalid YAML: {str(e).splitlines()[0]}")
            continue
        s, p = policy_objects_to_sources(docs, str(f))
        sources += s
        problems += p
    return sources, problems


def _fingerprint(paths: Iterable[Path]) -> tuple[Any, ...]:
    out: list[tuple[Any, ...]] = []
    for p in paths:
        try:
            if p.is_dir():
                for dirpath, dirs, names in os.walk(p):
                    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                    for n in sorted(names):
                        st = (Path(dirpath) / n).stat()
                        out.append((dirpath, n, st.st_mtime_ns, st.st_size))
            else:
                st = p.stat()
                out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), None))
    return tuple(out)


class PolicyStore:
    """Ordered tiers of policy paths. ``load()`` parses everything into a new snapshot and swaps it in,
    or raises PolicyLoadError and keeps serving the previous one. Readers take ``store.snapshot`` once
    per request, so a reload never mixes two policy sets within one decision.

    ``tiers`` is a list of tiers, each a list of paths; a flat list of paths is one tier. The first
    tier that reaches an explicit decision (a satisfied policy or an error) decides, as in the
    reference project's TieredPolicyStores.
    """

    def __init__(
        self,
        tiers: Sequence[Sequence[str | Path]] | Sequence[str | Path] = (),
        *,
        cluster_tier: int | None = None,
    ) -> None:
        # all() does not narrow the union for mypy, hence the casts
        if tiers and all(isinstance(t, str | Path) for t in tiers):
            groups = [cast(Sequence[str | Path], tiers)]  # one flat tier
        else:
            groups = list(cast(Sequence[Sequence[str | Path]], tiers))
        self.tier_paths: list[list[Path]] = [[Path(p) for p in t] for t in groups]
        # Where Policy objects watched in a live cluster go among the file tiers (None: no such tier).
        # Until the watcher hands over its first list the store is not ready, so a cluster forbid
        # can never be missing from a decision.
        if cluster_tier is not None and not 0 <= cluster_tier <= len(self.tier_paths):
            raise ValueError(f"cluster_tier {cluster_tier} is outside 0..{len(self.tier_paths)}")
        self.cluster_tier = cluster_tier
        self._cluster_sources: list[PolicySource] | None = None
        self._file_sources: list[list[PolicySource]] | None = None
        self._snapshot: PolicySnapshot | None = None
        self._lock = threading.Lock()
        self.reloads = 0
        self.rejections = 0
        self.last_error: PolicyLoadError | None = None

    @classmethod
    def from_text(cls, text: str, label: str = "inline.cedar") -> PolicyStore:
        """A store holding one tier parsed from Cedar text (tests, benchmarks, `cedar check`)."""
        store = cls()
        store.load_sources([[PolicySource(label, label, text)]])
        return store

    @property
    def snapshot(self) -> PolicySnapshot | None:
        return self._snapshot

    @property
    def ready(self) -> bool:
        return self._snapshot is not None and (self.cluster_tier is None or self._cluster_sources is not None)

    def load(self) -> PolicySnapshot:
        """(Re)load every tier from disk. Raises PolicyLoadError (previous snapshot kept)."""
        with self._lock:
            fp = _fingerprint(p for t in self.tier_paths for p in t)
            tiers_sources: list[list[PolicySource]] = []
            problems: list[str] = []
            # with several directories, file ids carry the directory's name (guardrails/a.cedar#0)
            # so that a.cedar in two tiers stays two policies
            several = sum(len(t) for t in self.tier_paths) > 1
            for paths in self.tier_paths:
                srcs: list[PolicySource] = []
                for p in paths:
                    s, probs = collect_sources(p, f"{p.name}/" if several and p.is_dir() else "")
                    srcs += s
                    problems += probs
                tiers_sources.append(srcs)
            snap = self._install(self._with_cluster(tiers_sources), problems, fp)
            self._file_sources = tiers_sources
            return snap

    def _with_cluster(self, file_tiers: list[list[PolicySource]]) -> list[list[PolicySource]]:
        if self.cluster_tier is None:
            return file_tiers
        out = list(file_tiers)
        out.insert(self.cluster_tier, list(self._cluster_sources or []))
        return out

    def check_cluster_source(self, src: PolicySource) -> list[str]:
        """Problems of one Policy object on its own (parse, schema validation, an id that a file
        already uses), so the watcher can reject it without touching the rest of the set."""
        _, problems = parse_sources([src])
        for tier in self._file_sources or []:
            for s in tier:
                if s.label == src.label:
                    problems.append(f"{src.origin}: duplicate policy source {src.label} (also {s.origin})")
        return problems

    def set_cluster_sources(self, sources: Sequence[PolicySource]) -> PolicySnapshot:
        """Swap in the cluster tier's Policy objects beside the last loaded files. Raises
        PolicyLoadError (the previous snapshot, cluster objects included, keeps serving)."""
        if self.cluster_tier is None:
            raise ValueError("this store has no cluster tier")
        with self._lock:
            previous = self._cluster_sources
            self._cluster_sources = list(sources)
            fp = self._snapshot.fingerprint if self._snapshot is not None else ()
            try:
                return self._install(self._with_cluster(self._file_sources or []), [], fp)
            except PolicyLoadError:
                self._cluster_sources = previous
                raise

    def load_sources(self, tiers_sources: Sequence[Sequence[PolicySource]]) -> PolicySnapshot:
        with self._lock:
            return self._install(tiers_sources, [], ())

    def reload_if_changed(self) -> bool:
        """Reload when any file's mtime or size changed. True if a new snapshot was installed; raises
        PolicyLoadError when the new files are rejected (the old snapshot keeps serving)."""
        current = self._snapshot
        fp = _fingerprint(p for t in self.tier_paths for p in t)
        if current is not None and current.fingerprint == fp:
            return False
        self.load()
        return True

    def _install(
        self, tiers_sources: Sequence[Sequence[PolicySource]], problems: list[str], fp: tuple[Any, ...]
    ) -> PolicySnapshot:
        tiers_policies: list[list[PolicyInfo]] = []
        seen_labels: dict[str, str] = {}
        for srcs in tiers_sources:
            for s in srcs:
                if s.label in seen_labels:
                    problems.append(
                        f"{s.origin}: duplicate policy source {s.label} (also {seen_labels[s.label]})"
                    )
                seen_labels.setdefault(s.label, s.origin)
            policies, probs = parse_sources(srcs)
            problems += probs
            tiers_policies.append(policies)
        if problems:
            self.rejections += 1
            self.last_error = PolicyLoadError(problems)
            raise self.last_error
        gen = (self._snapshot.generation + 1) if self._snapshot else 1
        snap = PolicySnapshot(
            tuple(PolicyTier(f"tier{i}", ps) for i, ps in enumerate(tiers_policies)), gen, time.time(), fp
        )
        self._snapshot = snap  # one reference assignment: readers see the old or the new set, never a mix
        self.reloads += 1
        self.last_error = None
        return snap
