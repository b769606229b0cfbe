"""Reports of `kubestrata pss`: PSA decisions per object (check), what a label change would deny
(what-if), a namespace rollout table and a version bump, as text; check's JSON is streamed in batches.
Every datum is escaped where it enters the text (kubestrata.textsafe.printable)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

import orjson

from kubestrata.pss.evaluate import ObjectResult
from kubestrata.textsafe import printable

_IDENTITY = ("source", "kind", "namespace", "name")  # the first keys of ObjectResult.to_dict


def json_list(results: Iterable[ObjectResult], fixes: bool) -> Iterator[str]:
    """The text of an indented JSON list of r.to_dict(fixes), produced a batch at a time (the report
    is never one string)."""
    for batch in json_batches(results, fixes):
        yield b"".join(batch).decode()


def json_batches(results: Iterable[ObjectResult], fixes: bool) -> Iterator[list[bytes]]:
    """json_list's UTF-8, a batch of pieces at a time, for a writer that hands the pieces to the
    system as they are (os.writev). Replicas of one template under one policy differ only in the
    identity fields, so the rest of their entry is serialised once and is the same bytes object
    in every batch it is in."""
    first = True
    batch: list[bytes] = []
    rests: dict[tuple[int, int, bool, str | None], tuple[Any, bytes]] = {}
    q = lru_cache(maxsize=65536)(orjson.dumps)  # kinds and namespaces repeat: each JSON string made once
    last_source: Any = None  # consecutive objects of one document share their Source
    source_q = b""
    dumps = orjson.dumps

    for r in results:
        o = r.obj
        kind = o.kind
        key = (id(r.shared), id(r.policy), kind == "Pod", r.exempt) if r.shared is not None else None
        got = rests.get(key) if key is not None else None
        if got is None:
            doc = r.to_dict(fixes)
            for k in _IDENTITY:
                doc.pop(k)
            # '{\n  "allowed": ...\n}' -> the members, one level deeper, and the entry's end
            body = dumps(doc, option=orjson.OPT_INDENT_2)[1:-2].replace(b"\n", b"\n  ")
            got = (r.shared, r.policy), body + b"\n  }"  # the objects are held so their ids stay theirs
            if key is not None:
                rests[key] = got
        if o.source is not last_source:
            last_source = o.source
            source_q = dumps(str(last_source))
        # KubeObject.namespace and .name for a workload kind (never cluster-scoped), read once
        meta = o.raw.get("metadata")
        if type(meta) is not dict:
            meta = _NO_METADATA
        ns = meta.get("namespace")
        ns = (ns if type(ns) is str else str(ns)) if ns else "default"
        name = meta.get("name") or meta.get("generateName") or ""
        # the header and the shared rest as separate pieces: the rest (kilobytes) is never copied
        batch.append(
            _HEADER
            % (
                b",\n  " if not first else b"[\n  ",
                source_q,
                q(kind),
                q(ns),
                dumps(name if type(name) is str else str(name)),
            )
        )
        batch.append(got[1])
        first = False
        if len(batch) >= 1024:
            yield batch
            batch = []
    batch.append(b"[]\n" if first else b"\n]\n")
    yield batch


_HEADER = b'%s{\n    "source": %s,\n    "kind": %s,\n    "namespace": %s,\n    "name": %s,'
_NO_METADATA: dict[str, Any] = {}


def check_table(results: Iterable[ObjectResult], fixes: bool = True) -> str:
    return "".join(check_table_pieces(results, fixes))


def check_table_pieces(results: Iterable[ObjectResult], fixes: bool = True) -> Iterator[str]:
    """The table, a batch of lines at a time."""
    lines: list[str] = []
    n = denied = 0
    bodies: dict[tuple[int, int, bool, str | None], list[str]] = {}
    keep: list[Any] = []
    p = lru_cache(maxsize=65536)(printable)  # kinds, namespaces, policies and messages repeat
    last_source: Any = None  # consecutive objects of one document share their Source
    source_p = ""

    for r in results:
        n += 1
        o = r.obj
        if r.error is not None:
            status = "INVALID"
        elif r.exempt:
            status = f"EXEMPT ({r.exempt})"
        elif not r.allowed:
            status = "DENIED"
        elif not r.pods_allowed:
            status = "PODS DENIED"
        else:
            status = "ALLOWED"
        if status in ("DENIED", "PODS DENIED", "INVALID"):
            denied += 1
        if o.source is not last_source:
            last_source = o.source
            source_p = printable(last_source)
        name = o.name
        if not (name.isascii() and name.isprintable()):  # else nothing to escape (C speed)
            name = printable(name)
        lines.append(
            f"{status:<12} {p(o.kind)}/{name} in {p(o.namespace)}  [{p(str(r.policy.enforce))}]  ({source_p})"
        )
        if r.error is not None:
            lines.append(f"    invalid pod spec: {printable(r.error)}")
        elif not r.pods_allowed:
            lines.append(f"    {printable(r.summary()) if r.is_controller else p(r.message)}")
        # the rest depends only on the template and the policy: replicas share it
        key = (id(r.shared), id(r.policy), r.obj.kind == "Pod", r.exempt) if r.shared is not None else None
        body = bodies.get(key) if key is not None else None
        if body is None:
            body = _table_body(r, fixes)
            if key is not None:
                bodies[key] = body
                keep.append((r.shared, r.policy))  # their ids stay theirs while cached
        lines.extend(body)
        if len(lines) >= 2048:
            yield "\n".join(lines) + "\n"
            lines = []
    if not n:
        yield "no pods or workload controllers in the input\n"
        return
    lines.append("")
    lines.append(f"{n} object{'s' if n != 1 else ''} evaluated, {denied} denied or invalid")
    yield "\n".join(lines) + "\n"


def _table_body(r: ObjectResult, fixes: bool) -> list[str]:
    lines: list[str] = []
    if r.error is None and not r.pods_allowed:
        for v in r.enforce.violations if r.enforce else []:
            where = f"container {printable(v.container)}: " if v.container else ""
            lines.append(f"    - {v.check}: {where}{printable(v.path)}")
            if not v.fix and v.fix_note:
                lines.append(f"        no automatic fix: {printable(v.fix_note)}")
        rem = r._fix_dict() if fixes else None
        if rem and rem["patch"]:
            lines.append(f"    fix (JSON patch): {printable(orjson.dumps(rem['patch']).decode())}")
            for note in rem["notes"]:
                lines.append(f"        review: {printable(note)}")
    for w in r.warnings:
        if w != r.message:
            lines.append(f"    warning: {printable(w)}")
    for e in r.policy.errors:
        lines.append(f"    label error: {printable(e)}")
    return lines


def what_if(reports: list[Any]) -> str:
    lines = []
    for r in reports:
        head = f"namespace {printable(r.namespace)} with enforce={r.level_version}: "
        if r.exempt:
            lines.append(head + "exempt (PodSecurityConfiguration), the label would be ignored")
            lines.extend(f"    Warning: {printable(w)}" for w in r.psa_warnings)
            lines.append("")
            continue
        lines.append(
            head + f"{r.pods_denied} of {r.pods} pods and {r.controllers_denied} of {r.controllers} "
            "workload templates would be denied"
        )
        for g in r.groups:
            what = []
            if g.pods:
                what.append(f"{len(g.pods)} pod{'s' if len(g.pods) != 1 else ''}")
            if g.template_denied:
                what.append("template")
            lines.append(f"  {printable(g.kind)}/{printable(g.name)}: {', '.join(what)} denied")
            for reason, n in g.reasons.items():
                lines.append(f"      {n} x {printable(reason)}")
            lines.append(f"      e.g. {printable(g.example)}")
        for inv in r.invalid:
            lines.append(f"  invalid: {printable(inv)}")
        if r.psa_warnings:
            lines.append("  kubectl label --dry-run=server would warn (without its 3,000-pod / 1 s limit):")
            for w in r.psa_warnings:
                lines.append(f"    Warning: {printable(w)}")
        lines.append("")
    return "\n".join(lines) + ("\n" if lines and lines[-1] else "")


def rollout(rows: list[Any], version: str) -> str:
    hdr = (
        "NAMESPACE",
        "ENFORCE NOW",
        "PODS",
        "WORKLOADS",
        f"BASELINE:{version}",
        f"RESTRICTED:{version}",
        "NEXT STEP",
    )
    table = [hdr] + [
        (
            printable(r.namespace),
            str(r.current.enforce) + (" (label error)" if r.label_errors else ""),
            str(r.pods),
            str(r.controllers),
            "-" if r.exempt else f"{r.baseline_denied} denied",
            "-" if r.exempt else f"{r.restricted_denied} denied",
            r.recommendation,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(hdr))]
    return (
        "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table)
        + "\n"
    )


def bump(changes: list[Any], old: str, new: str) -> str:
    if not changes:
        return f"nothing newly fails from {old} to {new}\n"
    lines = [f"what newly fails from {old} to {new}:"]
    for c in changes:
        state = "newly DENIED" if c.newly_denied else "already denied, new failures"
        lines.append(
            f"  {printable(c.kind)}/{printable(c.name)} in {printable(c.namespace)} ({printable(c.owner[0])}/{printable(c.owner[1])}, "
            f"{c.level.value}): {state}: {', '.join(c.new_checks)}"
        )
        lines.append(f"      {printable(c.message)}")
    return "\n".join(lines) + "\n"
