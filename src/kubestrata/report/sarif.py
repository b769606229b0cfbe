"""SARIF 2.1.0 for GitHub code scanning and other SARIF consumers.

One run; ``tool.driver.rules`` holds the metadata of every check that ran (and of any rule that
reported without being a registered check); each result points at the manifest file and the line
where its object's document starts, names the object as a logical location, and carries the
finding fingerprint as ``partialFingerprints["kubestrata/v1"]`` so a consumer (and ``--baseline``)
recognises the same finding across runs. Suppressed findings stay in the log with a ``suppressions``
entry, as the specification asks, rather than disappearing. Coverage gaps become tool execution
notifications, so "not evaluated" is visible in the log too.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import orjson

from kubestrata import __version__
from kubestrata.checks import load_builtin_checks
from kubestrata.findings import Finding, Severity
from kubestrata.report.pieces import HOLE, INDENT, around_hole, write_items
from kubestrata.scan import ScanResult

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT_KEY = "kubestrata/v1"

LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning reads properties.security-severity (0.0-10.0) to rank security alerts:
# >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def artifact_uri(file: str, base: Path | None = None) -> str | None:
    """A URI reference for a manifest path: relative to ``base`` (default: the working directory)
    when the file lies under it, so code scanning can map it to the repository; ``None`` for input
    that is not a file (stdin, a live cluster, synthesized objects)."""
    if not file or file == "-" or file.startswith("<") or "://" in file:
        return None
    p = Path(file)
    base = (base or Path.cwd()).resolve()
    if p.is_absolute():
        try:
            p = p.resolve()
        except (OSError, ValueError):  # no path the system can resolve (an embedded NUL): as written
            p = Path(os.path.normpath(file))
        try:
            rel = p.relative_to(base)
        except ValueError:
            return p.as_uri()
        return quote(rel.as_posix())
    return quote(Path(os.path.normpath(file)).as_posix())


def _rule(rule_id: str, sample: Finding | None) -> dict[str, Any]:
    chk = load_builtin_checks().get(rule_id)
    if chk is not None:
        m = chk.meta
        title, severity, layer, rationale, remediation, refs = (
            m.title,
            m.severity,
            m.layer.value,
            m.rationale,
            m.remediation,
            m.references,
        )
        tags = ["security", "kubernetes", layer, m.domain]
    elif sample is not None:  # reported by another engine (PSS, network...), not a registered check
        title, severity, layer, rationale, remediation, refs = (
            sample.title,
            sample.severity,
            sample.layer.value,
            sample.title,
            sample.remediation,
            sample.references,
        )
        tags = ["security", "kubernetes", layer]
    else:  # a check from a custom registry that reported nothing
        title, severity, layer, rationale, remediation, refs = rule_id, Severity.INFO, "", rule_id, "", {}
        tags = ["security", "kubernetes"]
    ref_lines = [f"{k}: {', '.join(v)}" for k, v in sorted(refs.items())]
    help_text = remediation + ("\n\nReferences:\n" + "\n".join(ref_lines) if ref_lines else "")
    help_md = f"**{title}**\n\n{rationale}\n\n**Remediation:** {remediation}" + (
        "\n\n**References:**\n" + "\n".join(f"- {r}" for r in ref_lines) if ref_lines else ""
    )
    return {
        "id": rule_id,
        "name": "".join(w[:1].upper() + w[1:] for w in title.replace("-", " ").split()),
        "shortDescription": {"text": title},
        "fullDescription": {"text": rationale},
        "help": {"text": help_text, "markdown": help_md},
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {
            "tags": [t for t in tags if t],
            "precision": "high",
            "problem.severity": {"error": "error", "warning": "warning", "note": "recommendation"}[
                LEVEL[severity]
            ],
            "security-severity": SECURITY_SEVERITY[severity],
            "layer": layer,
            "references": {k: list(v) for k, v in sorted(refs.items())},
        },
    }


def _result(
    f: Finding,
    rule_index: int,
    uris: dict[str, str | None],
    base: Path,
    places: dict[tuple[str, int | None], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """One result; ``places`` keeps the physical location of a file and line, which every finding on
    the objects of one document shares (orjson writes a shared dict as often as it is referenced)."""
    location: dict[str, Any] = {}
    src = f.source
    if src is not None:
        key = (src.file, src.line)
        phys = None if places is None else places.get(key)
        if phys is None:
            # one path computation per file, not per finding (tens of thousands share a file)
            try:
                uri = uris[src.file]
            except KeyError:
                uri = uris[src.file] = artifact_uri(src.file, base)
            if uri is not None:
                phys = {"artifactLocation": {"uri": uri}}
                if src.line:
                    phys["region"] = {"startLine": src.line}
                if places is not None:
                    places[key] = phys
        if phys is not None:
            location["physicalLocation"] = phys
    ref = f.object
    if ref is not None:
        name = str(ref)
        if f.container:
            location["logicalLocations"] = [
                {"name": ref.name, "fullyQualifiedName": f"{name}/{f.container}", "kind": "resource"}
            ]
            where = f" ({name}, container {f.container})"
        else:
            location["logicalLocations"] = [
                {"name": ref.name, "fullyQualifiedName": name, "kind": "resource"}
            ]
            where = f" ({name})"
        obj: dict[str, Any] | None = {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "namespace": ref.namespace or None,
            "name": ref.name,
        }
    else:
        where = ""
        obj = None
    sev = f.severity
    res: dict[str, Any] = {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": LEVEL[sev],
        "message": {"text": f.message + where},
        "locations": [location] if location else [],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": {
            "severity": sev,
            "security-severity": SECURITY_SEVERITY[sev],
            "layer": f.layer,
            "object": obj,
            "container": f.container,
            "evidence": f.evidence,  # dataclasses: {"path", "observed", "expected"}
            "remediation": f.remediation,
            "fix": f.fix,
            "fixNote": f.fix_note,
        },
    }
    if f.suppressed is not None:
        in_source = f.suppressed.startswith("annotation:")
        res["suppressions"] = [
            {
                "kind": "inSource" if in_source else "external",
                "status": "accepted",
                "justification": f.suppressed,
            }
        ]
    return res


def to_document(result: ScanResult, target: str = "", *, base: Path | None = None) -> dict[str, Any]:
    """The log as one dict (what ``write`` writes in pieces)."""
    doc, results = _without_results(result, target, base)
    doc["runs"][0]["results"] = list(results)
    return doc


def _without_results(
    result: ScanResult, target: str, base: Path | None
) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The log with an empty results list, and its results, made as they are read."""
    rule_ids = sorted(result.coverage.checks_run | {f.rule_id for f in result.findings})
    samples = {f.rule_id: f for f in result.findings}
    index = {rid: i for i, rid in enumerate(rule_ids)}
    notifications = [
        {
            "level": "warning",
            "message": {"text": f"not evaluated ({g.reason.value}): {g.subject}: {g.detail}"},
            "descriptor": {"id": f"coverage/{g.reason.value}"},
        }
        for g in result.coverage.gaps
    ] + [{"level": "note", "message": {"text": n}} for n in result.notices]
    uris: dict[str, str | None] = {}
    resolved_base = (base or Path.cwd()).resolve()
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "kubestrata",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_rule(rid, samples.get(rid)) for rid in rule_ids],
            }
        },
        "invocations": [invocation],
        "columnKind": "unicodeCodePoints",
        "results": [],
        "properties": {"target": target},
    }
    places: dict[tuple[str, int | None], dict[str, Any] | None] = {}
    results = (_result(f, index[f.rule_id], uris, resolved_base, places) for f in result.findings)
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, results


def write(result: ScanResult, out: IO[bytes], target: str = "", *, base: Path | None = None) -> None:
    """The log to ``out``, byte for byte ``render``'s text: the results a batch at a time."""
    doc, results = _without_results(result, target, base)
    if not result.findings:
        out.write(orjson.dumps(doc, option=INDENT) + b"\n")
        return
    doc["runs"][0]["results"] = [HOLE]
    head, tail = around_hole(doc)
    out.write(head)
    write_items(out, results, 4)
    out.write(tail + b"\n")


def render(result: ScanResult, target: str = "", *, base: Path | None = None) -> str:
    """``orjson.dumps(to_document(...), option=OPT_INDENT_2)`` and a newline."""
    buf = io.BytesIO()
    write(result, buf, target, base=base)
    return buf.getvalue().decode()
