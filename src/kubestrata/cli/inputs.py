"""The one way every command reads its Kubernetes input: manifests (files, directories, stdin) or a live
cluster, with the same treatment of bad documents everywhere.

A document that cannot be read is named (file, document, field) in a `warning:` line on stderr and
recorded as a coverage gap; the command goes on with the rest. Nothing readable at all is an error
(exit 2). `--strict` turns any unreadable input into exit 2 (see `require_complete`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubestrata.cli.common import EXIT_ERROR, error_line, exit_with, warning_line
from kubestrata.cli.progress import stage
from kubestrata.errors import InputError, KubestrataError
from kubestrata.findings import Coverage, GapReason
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import CLUSTER_SCOPED_KINDS

if TYPE_CHECKING:
    from kubestrata.kube.loader import LoadResult
    from kubestrata.kube.objects import KubeObject

_EMPTY: dict[str, Any] = {}


@dataclass
class Input:
    """What a command reads: the snapshot, and what could not be read."""

    cluster: Cluster
    coverage: Coverage = field(default_factory=Coverage)
    errors: list[InputError] = field(default_factory=list)
    live: bool = False


def load_input(
    paths: list[str] | None,
    *,
    cluster: bool = False,
    context: str | None = None,
    kubeconfig: str | None = None,
    namespace: str | None = None,
    timeout: float = 60.0,
    quiet: bool = False,
    allow_empty: bool = False,
) -> Input:
    """Manifests or the live cluster; exits 2 (with the reason) when nothing could be read."""
    if cluster:
        return _live(context, kubeconfig, namespace, timeout, quiet)
    if not paths:
        raise KubestrataError("give manifest paths (a file, a directory or - for stdin) or --cluster")
    from kubestrata.kube.loader import load_paths

    loaded = load_paths(paths)
    inp = Input(Cluster([]), errors=list(loaded.errors))
    for e in loaded.errors:
        inp.coverage.gap(e.file or "input", GapReason.INVALID, str(e))
    # kustomizations that could not be rendered and Helm charts: named, never read as manifests
    for subject, detail in loaded.not_evaluated:
        inp.coverage.gap(subject, GapReason.MISSING_INPUT, f"{subject}: {detail}")
    if not loaded.objects:
        if loaded.errors or loaded.not_evaluated:
            for e in loaded.errors:
                error_line(str(e))
            for subject, detail in loaded.not_evaluated:
                error_line(f"{subject}: {detail}")
            exit_with(EXIT_ERROR, f"nothing readable in {' '.join(paths)}")
        if not allow_empty:
            raise KubestrataError("no Kubernetes objects found in the input")
    if not quiet:
        for e in loaded.errors:
            warning_line(f"{e} (skipped)")
        for subject, detail in loaded.not_evaluated:
            warning_line(f"not evaluated: {subject}: {detail}")
    objs = loaded.objects
    if namespace:
        objs = [o for o in objs if o.namespace in ("", namespace)]
    inp.cluster = Cluster(objs)
    if loaded.objects:
        require_namespace(inp.cluster, namespace)
    return inp


def _live(
    context: str | None, kubeconfig: str | None, namespace: str | None, timeout: float, quiet: bool
) -> Input:
    try:
        from kubestrata.kube.live import collect_cluster
    except ImportError as e:  # a partial build without the kubernetes client
        raise KubestrataError(f"live cluster input is not available in this build ({e.name or e})") from None
    coverage = Coverage()
    with stage("listing the cluster", quiet=quiet, delay=0.5) as s:
        snap = collect_cluster(
            kubeconfig=kubeconfig,
            context=context,
            namespace=namespace,
            timeout=timeout,
            coverage=coverage,
            progress=lambda done, total, what: s.update(f"listing the cluster: {done}/{total} kinds, {what}"),
        )
    if "Namespace" not in getattr(snap, "missing_kinds", set()):
        require_namespace(snap, namespace)
    return Input(snap, coverage=coverage, live=True)


def require_namespace(snap: Cluster, namespace: str | None) -> None:
    """A --namespace that names nothing in the input is a typo to report, not a clean result."""
    if namespace and namespace not in snap.namespaces:
        known = snap.namespaces
        raise KubestrataError(
            f"namespace {namespace!r} is not in the input"
            + (f" (namespaces: {', '.join(known[:10])}{', ...' if len(known) > 10 else ''})" if known else "")
        )


def require_complete(coverage: Coverage, strict: bool) -> None:
    """With --strict, any input that was not evaluated is exit 2, naming the first few."""
    if strict and coverage.gaps:
        shown = "; ".join(f"{g.subject}: {g.reason.value}" for g in coverage.gaps[:3])
        more = f" and {len(coverage.gaps) - 3} more" if len(coverage.gaps) > 3 else ""
        exit_with(EXIT_ERROR, f"--strict: {len(coverage.gaps)} inputs not evaluated ({shown}{more})")


class ManifestStream:
    """load_input for a command that judges each object on its own: the same objects (namespace
    filter, one object in several files judged once, conflicting copies all kept), the same warnings,
    coverage gaps and errors, but read one file at a time, so a consumer that lets go of each batch
    never holds the whole input. Iterating yields the objects of each file, in load order; the
    checks load_input makes up front (nothing readable, nothing found, an unknown --namespace) are
    made when the iteration ends, before it returns, so a consumer can defer its last output until
    then.

    ``skim``: for a consumer that never reads ``status``: JSON List files are read without it
    (kube.loader.load_file); a file whose object repeats one read before is read again in full, so
    that the copies are compared whole."""

    def __init__(
        self,
        paths: list[str] | None,
        *,
        namespace: str | None = None,
        quiet: bool = False,
        skim: bool = False,
    ) -> None:
        if not paths:
            raise KubestrataError("give manifest paths (a file, a directory or - for stdin) or --cluster")
        self.paths = paths
        self.namespace = namespace
        self.quiet = quiet
        self.skim = skim
        self.coverage = Coverage()
        self.errors: list[InputError] = []
        self._not_evaluated: list[tuple[str, str]] = []
        self._pending: list[str] = []  # warnings held until something readable is found
        self._any = False
        self._namespaces: set[str] = set()  # of every object, and the Namespace objects
        self._namespace_objects: set[str] = set()
        # (kind, namespace, name) -> (batch, index): where each object was first read
        self._first: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._batches: list[Any] = []  # per batch: its file (to read again) or its objects
        self._cached: tuple[int, list[KubeObject]] | None = None

    def __iter__(self) -> Iterator[list[KubeObject]]:
        from kubestrata.kube.loader import iter_load

        for part in iter_load(self.paths, skim=self.skim):
            self.errors.extend(part.errors)
            for e in part.errors:
                self.coverage.gap(e.file or "input", GapReason.INVALID, str(e))
                self._warn(f"{e} (skipped)")
            for subject, detail in part.not_evaluated:
                self._not_evaluated.append((subject, detail))
                self.coverage.gap(subject, GapReason.MISSING_INPUT, f"{subject}: {detail}")
                self._warn(f"not evaluated: {subject}: {detail}")
            if not part.objects:
                continue
            if not self._any:
                self._any = True
                self._flush()
            yield self._admit(part)
        self._finish()

    def _warn(self, line: str) -> None:
        if self.quiet:
            return
        if self._any:
            warning_line(line)
        else:
            self._pending.append(line)

    def _flush(self) -> None:
        for line in self._pending:
            warning_line(line)
        self._pending = []

    def _admit(self, part: LoadResult) -> list[KubeObject]:
        """The batch's objects as Cluster would keep them: an identical copy of an object read
        before is dropped, a different one kept."""
        batch = len(self._batches)
        objs = part.objects
        src = objs[0].source.file
        reloadable = not part.rendered and src != "-" and all(o.source.file == src for o in objs)
        self._batches.append(src if reloadable else objs)
        if part.skimmed:
            kept = self._admit_objects(objs, batch, skimmed=True)
            if kept is not None:
                return kept
            # an object read before: the copies are compared whole, so read this file in full
            from kubestrata.kube.loader import load_file

            objs = load_file(Path(src)).objects
            if not reloadable:  # pragma: no cover - skim_list reads one file at a time
                self._batches[batch] = objs
        kept = self._admit_objects(objs, batch, skimmed=False)
        assert kept is not None
        return kept

    def _admit_objects(self, objs: list[KubeObject], batch: int, *, skimmed: bool) -> list[KubeObject] | None:
        """_admit's work; None (with nothing recorded from this batch) when ``skimmed`` and an
        object's key was seen before."""
        ns = self.namespace
        kept = []
        namespaces, first_seen = self._namespaces, self._first
        added: list[tuple[str, str, str]] = []
        for i, o in enumerate(objs):
            # KubeObject's kind, namespace and name, read once (the loader made kind a string and
            # metadata a mapping or None)
            raw = o.raw
            kind = raw["kind"]
            meta = raw.get("metadata") or _EMPTY
            name = meta.get("name") or meta.get("generateName") or ""
            if type(name) is not str:
                name = str(name)
            if kind == "Namespace":
                namespaces.add(name)
                self._namespace_objects.add(name)
                onamespace = ""
            elif kind in CLUSTER_SCOPED_KINDS:
                onamespace = ""
            else:
                onamespace = meta.get("namespace") or "default"
                if type(onamespace) is not str:
                    onamespace = str(onamespace)
                namespaces.add(onamespace)
            if ns and onamespace not in ("", ns):
                continue
            if name:
                key = (kind, onamespace, name)
                first = first_seen.get(key)
                if first is None:
                    first_seen[key] = (batch, i)
                    if skimmed:
                        added.append(key)
                elif skimmed:
                    for k in added:
                        del first_seen[k]
                    return None
                elif self._object(first, objs, batch).raw == raw:
                    continue  # one object in several files: judged once
            kept.append(o)
        return kept

    def _object(self, where: tuple[int, int], current: list[KubeObject], batch: int) -> KubeObject:
        b, i = where
        if b == batch:
            return current[i]
        held = self._batches[b]
        if isinstance(held, list):
            return held[i]
        if self._cached is None or self._cached[0] != b:
            from kubestrata.kube.loader import load_file

            self._cached = (b, load_file(Path(held)).objects)  # a duplicate across files: rare
        return self._cached[1][i]

    def _finish(self) -> None:
        if not self._any:
            if self.errors or self._not_evaluated:
                for e in self.errors:
                    error_line(str(e))
                for subject, detail in self._not_evaluated:
                    error_line(f"{subject}: {detail}")
                exit_with(EXIT_ERROR, f"nothing readable in {' '.join(self.paths)}")
            raise KubestrataError("no Kubernetes objects found in the input")
        if self.namespace and self.namespace not in self._namespaces:
            known = sorted(self._namespace_objects)
            raise KubestrataError(
                f"namespace {self.namespace!r} is not in the input"
                + (
                    f" (namespaces: {', '.join(known[:10])}{', ...' if len(known) > 10 else ''})"
                    if known
                    else ""
                )
            )
