"""The one way every command reads its Kubernetes input: manifests (files, directories, stdin) or a live
cluster, with the same treatment of bad documents everywhere.

A document that cannot be read is named (file, document, field) in a `warning:` line on stderr and
recorded as a coverage gap; the command goes on with the rest. Nothing readable at all is an error
(exit 2). `--strict` turns any unreadable input into exit 2 (see `require_complete`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubestrata.cli.common import EXIT_ERROR, error_line, exit_with, warning_line
from kubestrata.cli.progress import stage
from kubestrata.errors import InputError, KubestrataError
from kubestrata.findings import Coverage, GapReason
from kubestrata.kube.cluster import Cluster


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
