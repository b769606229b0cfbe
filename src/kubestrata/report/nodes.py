"""Reports of `kubestrata nodes`: the CIS node audit as text, grouped as kube-bench groups it, and the
rotation plan as text. Every datum is escaped where it enters the text (host files, kubelet flags and
cluster object names are input)."""

from __future__ import annotations

from typing import Any

from kubestrata.nodes.rotate.model import ANNOTATION, RotationPlan
from kubestrata.textsafe import printable as p


def audit_table(reports: list[Any]) -> str:
    lines = []
    for rep in reports:
        lines.append(
            f"node {p(rep.node)}: CIS Amazon EKS Benchmark {p(rep.benchmark)} ({p(rep.benchmark_reason)})"
        )
        for res in rep.results:
            for g in res.groups:
                lines.append(f"  [{p(g.group.id)}] {p(g.group.text)}")
                for r in g.results:
                    line = f"    [{p(r.state)}] {p(r.check.id)} {p(r.check.text)}"
                    if r.state != "PASS" and r.reason:
                        line += f"  ({p(r.reason)})"
                    lines.append(line)
            lines.append(
                f"  == {res.count('PASS')} pass, {res.count('FAIL')} fail, {res.count('WARN')} warn, "
                f"{res.count('INFO')} info"
            )
        for gap in rep.coverage.gaps:
            lines.append(f"  not evaluated: {p(gap.subject)}: {p(gap.detail)}")
    return "\n".join(lines) + "\n"


def rotation_plan_text(plan: RotationPlan) -> str:
    """The plan as the numbered steps `nodes rotate` prints (and, without --dry-run, carries out)."""
    lines = [
        f"rotation plan: {len(plan.steps)} node(s) older than {plan.max_age.total_seconds() / 86400:g} days, "
        "oldest first, one node group and zone at a time"
    ]
    for g, c in sorted(plan.groups.items()):
        lines.append(f"  group {p(g)}: {c['ready']} ready, keep at least {c['minHealthy']}")
    for n in plan.notes:
        lines.append(f"  note: {p(n)}")
    for i, s in enumerate(plan.steps, 1):
        inst = f", instance {s.instance_id}" if s.instance_id else ""
        head = (
            f"{i}. node {p(s.node)} (group {p(s.group)}, zone {p(s.zone)}{inst}, {s.age_days:.0f} days old)"
        )
        if s.resume:
            head += f" -- resuming: already {p(s.resume)}"
        lines.append(head)
        lines.append(f"   annotate {ANNOTATION} and cordon {p(s.node)}")
        for pod in s.evict:
            lines.append(f"   evict pod {p(pod)} (Eviction API; 429 = wait for its budget and retry)")
        for w in s.waits:
            lines.append(f"   will wait: {p(w)}")
        for b in s.blocked:
            lines.append(f"   BLOCKED: {p(b)}")
        lines.append(f"   wait until the evicted pods are gone, then delete node {p(s.node)}")
        lines.append(f"   wait for a replacement node in group {p(s.group)} to be Ready")
    for sk in plan.skipped:
        lines.append(f"skip {p(sk['node'])}: {p(sk['reason'])}")
    return "\n".join(lines) + "\n"
