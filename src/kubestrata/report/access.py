"""Reports of `kubestrata access`: who-can, can-i, identities and escalation paths, as text tables or
JSON. Every datum is escaped where it enters the text (kubestrata.report.terminal)."""

from __future__ import annotations

import json
from typing import Any

from kubestrata.report.terminal import plain_table
from kubestrata.textsafe import printable


def _json(doc: Any) -> str:
    return json.dumps(doc, indent=2) + "\n"


def who_can(request: str, namespace: str, rows: list[Any], not_evaluated: list[str], fmt: str) -> str:
    if fmt == "json":
        return _json(
            {
                "request": request,
                "namespace": namespace or None,
                "allowed": [r.__dict__ for r in rows],
                "notEvaluated": not_evaluated,
            }
        )
    where = f" in namespace {namespace}" if namespace else " (cluster-scoped)"
    return plain_table(
        f"who can {request}{where}",
        ["Subject", "Via", "Condition"],
        [[r.subject, r.via, r.condition] for r in rows],
    )


def can_i(result: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return _json(result)
    lines = ["yes" if result["allowed"] else "no"]
    ident = result.get("identity")
    if ident:
        lines.append("  as: " + ", ".join(f"{printable(k)}={printable(v)}" for k, v in ident.items()))
    lines += [f"  {printable(r)}" for r in result.get("reasons", [])]
    lines += [f"  note: {printable(n)}" for n in result.get("notes", [])]
    return "\n".join(lines) + "\n"


def identities(mode: str | None, rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return _json({"authenticationMode": mode, "identities": rows})
    return plain_table(
        f"IAM identities (authentication mode {mode})",
        ["Principal", "Source", "Type", "Username", "Groups", "Access policies"],
        [
            [
                r["principal"],
                r["source"],
                r["type"],
                r["username"],
                ", ".join(r["groups"]),
                "; ".join(r["accessPolicies"]),
            ]
            for r in rows
        ],
    )


def paths(target: str, found: list[tuple[str, list[Any]]], admins_omitted: bool, fmt: str) -> str:
    """Escalation paths: ``found`` holds (source node, edges) pairs."""
    if fmt == "json":
        return _json(
            {
                "target": target,
                "paths": [
                    {
                        "from": s,
                        "length": len(p),
                        "edges": [
                            {"from": e.src, "to": e.dst, "kind": e.kind, "evidence": e.evidence} for e in p
                        ],
                    }
                    for s, p in found
                ],
            }
        )
    lines = []
    for s, p in found:
        lines.append(f"{printable(s)}  ({len(p)} step{'s' if len(p) != 1 else ''} to {target})")
        for e in p:
            lines.append(f"  -> {printable(e.dst)}  [{printable(e.kind)}]")
            lines.append(f"       {printable(e.evidence)}")
    lines.append(
        f"{len(found)} identit{'y' if len(found) == 1 else 'ies'} can reach {target}"
        + (" (direct admins omitted; --include-admins shows them)" if admins_omitted else "")
    )
    return "\n".join(lines) + "\n"
