"""The input itself: one object defined differently in several places (KS-INP-*)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubestrata.checks.base import CheckContext, cluster_check
from kubestrata.findings import Evidence, Finding, Layer, Severity

# a difference under one of these makes the conflict high: it decides what Pod Security enforces or
# what a binding grants, so renaming a file can turn a high finding into a low one
DECISIVE_PREFIXES = ("metadata.labels.pod-security.kubernetes.io/", "roleRef", "subjects", "rules", "spec")


def _diff(a: Any, b: Any, path: tuple[str, ...] = (), depth: int = 4) -> list[tuple[str, ...]]:
    """Key paths where ``a`` and ``b`` differ (down to ``depth`` levels of mappings)."""
    if a == b:
        return []
    if depth == 0 or not (isinstance(a, dict) and isinstance(b, dict)):
        return [path]
    out: list[tuple[str, ...]] = []
    for k in sorted(set(a) | set(b), key=str):
        out.extend(_diff(a.get(k), b.get(k), (*path, str(k)), depth - 1))
    return out


@cluster_check(
    "KS-INP-001",
    "Object defined differently in several places",
    severity=Severity.MEDIUM,
    layer=Layer.CLUSTER,
    rationale="The same object (kind, namespace, name) appears more than once with different content: "
    "what the cluster holds depends on which file is applied last, and a review of one file misses the "
    "other. kubestrata judges every definition and uses the first one read for lookups (a namespace's "
    "Pod Security labels, a binding's role); the conflict itself is this finding, high when the "
    "definitions differ in Pod Security labels, a binding's role or subjects, a role's rules or a spec. "
    "Identical copies are not a conflict: they are judged once and their findings name every source.",
    remediation="Keep one definition: delete the copy, or make the overlays explicit (kustomize patches).",
    references={"nsa-cisa": ["Configuration management"], "mitre": ["T1562 Impair Defenses"]},
)
def conflicting_definitions(ctx: CheckContext) -> Iterator[Finding]:
    meta = conflicting_definitions.meta
    for (kind, ns, name), variants in sorted(ctx.cluster.conflicts.items()):
        first = variants[0]
        keys: list[tuple[str, ...]] = []
        for other in variants[1:]:
            keys.extend(p for p in _diff(first.raw, other.raw) if p not in keys)
        differ = [".".join(k) or "(document)" for k in keys]
        decisive = any(p.startswith(DECISIVE_PREFIXES) for p in differ)
        who = f"{kind}/{ns + '/' if ns else ''}{name}"
        yield meta.finding(
            first,
            f"{who} is defined {len(variants)} times with different content "
            f"({', '.join(str(v.source) for v in variants)}); they differ at {', '.join(differ[:6])}"
            + (" ..." if len(differ) > 6 else "")
            + f"; lookups use the first, {first.source}",
            severity=Severity.HIGH if decisive else None,
            evidence=[
                Evidence(p, [_at(v.raw, k) for v in variants], "one definition")
                for p, k in zip(differ[:6], keys[:6], strict=False)
            ],
        )


def _at(raw: Any, keys: tuple[str, ...]) -> Any:
    node = raw
    for part in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
