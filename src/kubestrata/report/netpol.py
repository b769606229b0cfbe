"""Network-policy reports: connection lists (txt, json, csv, md, dot), explanations, diffs and the
coverage report. The engines (kubestrata.netpol) return data; this module only formats it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from kubestrata.errors import InputError

if TYPE_CHECKING:
    from kubestrata.netpol.analysis import ConnectionWhy, CoverageReport, DiffEntry, Exposure
    from kubestrata.netpol.connlist import Conn
    from kubestrata.netpol.engine import Network

_TIER_NAMES = {
    "admin": "admin tier",
    "np": "NetworkPolicy",
    "baseline": "baseline tier",
    "aws-sg": "security group",
}


def render_connections(conns: Iterable[Conn], fmt: str, net: Network | None = None) -> str:
    return "".join(iter_render_connections(conns, fmt, net))


def iter_render_connections(conns: Iterable[Conn], fmt: str, net: Network | None = None) -> Iterator[str]:
    """The formats as a stream of text pieces (txt, json, csv and md never hold all pairs)."""
    if fmt == "txt":
        for c in conns:
            yield f"{c.src} => {c.dst} : {c.conn}\n"
    elif fmt == "json":
        first = True
        for c in conns:
            item = json.dumps({"src": c.src, "dst": c.dst, "conn": c.conn}, indent=2).replace("\n", "\n  ")
            yield ("[\n  " if first else ",\n  ") + item
            first = False
        yield "[]\n" if first else "\n]\n"
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["src", "dst", "conn"])
        for c in conns:
            w.writerow([c.src, c.dst, c.conn])
            if buf.tell() > 1 << 16:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
    elif fmt == "md":
        yield "| src | dst | conn |\n|-----|-----|------|\n"
        for c in conns:
            yield f"| {_md(c.src)} | {_md(c.dst)} | {_md(c.conn)} |\n"
    elif fmt == "dot":
        from kubestrata.netpol.graph import to_dot

        yield to_dot(list(conns), net)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _md(s: str) -> str:
    return s.replace("|", "\\|")


def render_explanation(why: ConnectionWhy) -> str:
    """netpol.analysis.explain as text: the ports each way, then each direction tier by tier."""
    lines = [f"Connections between {why.src.label} => {why.dst.label}:", ""]
    if not why.allowed.empty:
        lines.append(f"Allowed: {why.allowed}")
    if not why.denied.empty:
        lines.append(f"Denied: {why.denied}")
    for d in why.directions:
        lines.append("")
        if d.verdict is None:
            lines.append(
                f"{d.direction.capitalize()}: {d.subject.label} is outside the cluster; no policy applies"
            )
            continue
        lines.append(
            f"{d.direction.capitalize()} (at the {d.who} {d.subject.label}): allowed {d.verdict.allowed}"
        )
        if d.selected_by:
            lines.append(f"  selected by: {', '.join(d.selected_by)}")
        for r in d.verdict.reasons:
            lines.append(f"  [{_TIER_NAMES.get(r.tier, r.tier)}] {r.text}")
    if why.security_groups:
        lines.append("")
        for side, groups in why.security_groups:
            if not why.groups_evaluated:
                lines.append(
                    f"AWS security groups of {side.label}: {', '.join(groups)} (their rules are not "
                    "evaluated: pass --security-groups with `aws ec2 describe-security-groups` output)"
                )
            else:
                lines.append(f"AWS security groups of {side.label}: {', '.join(groups)} (evaluated above)")
    return "\n".join(lines) + "\n"


def render_diff(entries: list[DiffEntry], fmt: str) -> str:
    if fmt == "txt":
        lines = ["Connectivity diff:"]
        lines += [
            f"diff-type: {e.kind}, source: {e.src}, destination: {e.dst}, dir1:  {e.before}, dir2: {e.after}"
            for e in entries
        ]
        return "\n".join(lines) + "\n"
    if fmt == "json":
        return json.dumps([e.__dict__ for e in entries], indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["diff-type", "source", "destination", "dir1", "dir2"])
        for e in entries:
            w.writerow([e.kind, e.src, e.dst, e.before, e.after])
        return buf.getvalue()
    if fmt == "md":
        rows = ["| diff-type | source | destination | dir1 | dir2 |", "|---|---|---|---|---|"]
        rows += [f"| {e.kind} | {e.src} | {e.dst} | {e.before} | {e.after} |" for e in entries]
        return "\n".join(rows) + "\n"
    raise InputError(f"unknown diff format {fmt!r} (txt, json, csv, md)")


def coverage_doc(rep: CoverageReport, exp: list[Exposure]) -> dict[str, Any]:
    """The JSON form of `netpol coverage`."""
    return {
        "unrestricted": [e.label for e in rep.unrestricted],
        "ingressOnly": [e.label for e in rep.ingress_only],
        "egressOnly": [e.label for e in rep.egress_only],
        "namespacesWithoutDefaultDeny": rep.no_default_deny,
        "exposure": [
            {
                "workload": x.endpoint.label,
                "ingressFromAnyNamespace": x.ingress_any_namespace.to_json(),
                "ingressFromOutside": x.ingress_outside.to_json(),
                "ingressFromAllOutside": x.ingress_internet.to_json(),
                "egressToAnyNamespace": x.egress_any_namespace.to_json(),
                "egressToOutside": x.egress_outside.to_json(),
            }
            for x in exp
        ],
        "invalidPolicies": [{"policy": g.subject, "error": g.detail} for g in rep.gaps],
        "warnings": rep.warnings,
    }


def render_coverage(rep: CoverageReport, exp: list[Exposure], fmt: str) -> str:
    """`netpol coverage` as a table (text) or JSON."""
    if fmt == "json":
        return json.dumps(coverage_doc(rep, exp), indent=2) + "\n"
    lines = [f"Workloads isolated in no direction ({len(rep.unrestricted)}):"]
    lines += [f"  {e.label}" for e in rep.unrestricted] or ["  (none)"]
    lines.append(f"Workloads isolated for ingress only ({len(rep.ingress_only)}):")
    lines += [f"  {e.label}" for e in rep.ingress_only] or ["  (none)"]
    lines.append(f"Workloads isolated for egress only ({len(rep.egress_only)}):")
    lines += [f"  {e.label}" for e in rep.egress_only] or ["  (none)"]
    lines.append(f"Namespaces without a default-deny NetworkPolicy ({len(rep.no_default_deny)}):")
    lines += [f"  {ns}: {', '.join(d)}" for ns, d in rep.no_default_deny.items()] or ["  (none)"]
    lines.append("Exposure (ingress from any namespace | from some outside address):")
    for x in exp:
        if not x.ingress_any_namespace.empty or not x.ingress_outside.empty:
            lines.append(f"  {x.endpoint.label}: {x.ingress_any_namespace} | {x.ingress_outside}")
    lines.append(f"Invalid policies left out ({len(rep.gaps)}):")
    lines += [f"  {g.detail}" for g in rep.gaps] or ["  (none)"]
    if rep.warnings:
        lines.append("Warnings:")
        lines += [f"  {w}" for w in rep.warnings]
    return "\n".join(lines) + "\n"
