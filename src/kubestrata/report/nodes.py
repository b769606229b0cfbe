"""Reports of `kubestrata nodes`: the CIS node audit as text, grouped as kube-bench groups it. Every
datum is escaped where it enters the text (host files and kubelet flags are input)."""

from __future__ import annotations

from typing import Any

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
