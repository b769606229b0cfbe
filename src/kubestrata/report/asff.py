"""AWS Security Finding Format (ASFF, schema 2018-10-08) for AWS Security Hub.

The shape follows kube-bench's ASFF output (check/controls.go): account, cluster ARN and region
identify where the finding lives, ``GeneratorId`` names the check, ``ProductFields`` carry the
evidence, and field lengths are cut to Security Hub's limits. Differences, on purpose: the product
is the account's own ``product/ACCOUNT/default`` (the ARN any account may import into; kube-bench's
``product/aqua-security/kube-bench`` is a partner integration), ``Id`` is stable across runs (the
cluster ARN and the finding fingerprint, so a re-import updates a finding rather than adding one),
each finding names its Kubernetes object as a resource next to the cluster, suppressed findings
carry ``Workflow.Status SUPPRESSED`` and coverage gaps are ``Compliance.Status NOT_AVAILABLE``
findings, so "not evaluated" is not read as clean.

The document is ``{"Findings": [...]}``, the BatchImportFindings request shape (``aws securityhub
batch-import-findings --cli-input-json file://...`` takes it, 100 findings per call).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from typing import IO, Any

import orjson

from kubestrata.findings import CoverageGap, Finding, Severity
from kubestrata.scan import ScanResult

SCHEMA_VERSION = "2018-10-08"
DEFAULT_CLUSTER_ARN = "arn:aws:eks:us-east-1:000000000000:cluster/unknown"
CIS_TYPE = "Software and Configuration Checks/Industry and Regulatory Standards/CIS Kubernetes Benchmark"
POSTURE_TYPE = (
    "Software and Configuration Checks/Industry and Regulatory Standards/Kubernetes Security Posture"
)
LABEL = {
    Severity.CRITICAL: "CRITICAL",
    Severity.HIGH: "HIGH",
    Severity.MEDIUM: "MEDIUM",
    Severity.LOW: "LOW",
    Severity.INFO: "INFORMATIONAL",
}
# Security Hub's limits (kube-bench cuts the same fields)
MAX_TITLE, MAX_DESCRIPTION, MAX_REMEDIATION, MAX_FIELD = 256, 1024, 512, 2048


@dataclass(frozen=True)
class AwsTarget:
    """Where the findings belong: partition, region, account and the EKS cluster's ARN."""

    cluster_arn: str
    partition: str
    region: str
    account: str
    cluster_name: str

    @classmethod
    def from_arn(cls, arn: str) -> AwsTarget:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "eks" or not parts[5].startswith("cluster/"):
            raise ValueError(
                f"not an EKS cluster ARN (arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME): {arn!r}"
            )
        if not (parts[4].isdigit() and len(parts[4]) == 12) or not parts[3]:
            raise ValueError(f"EKS cluster ARN without a 12-digit account or a region: {arn!r}")
        return cls(arn, parts[1], parts[3], parts[4], parts[5].removeprefix("cluster/"))

    @property
    def product_arn(self) -> str:
        return f"arn:{self.partition}:securityhub:{self.region}:{self.account}:product/{self.account}/default"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"  # ProductFields values and keys are bounded


def _json(v: Any) -> str:
    return orjson.dumps(v, default=str).decode()


def _types(f: Finding) -> list[str]:
    return [CIS_TYPE if any(k.startswith("cis") for k in f.references) else POSTURE_TYPE]


class _Rule:
    """What every finding of one check (with one severity) shares: the fields as a template to copy,
    its constant ProductFields, and the template written once as JSON (``render`` splices it)."""

    __slots__ = ("template", "fields", "prefix", "fields_tail")

    def __init__(self, template: dict[str, Any], fields: dict[str, str]) -> None:
        self.template = template
        self.fields = fields
        # '{"SchemaVersion":...,"RecordState":"ACTIVE"' and the comma before a finding's own fields
        self.prefix = orjson.dumps(template)[:-1] + b","
        # ',"kubestrata/RuleId":...}': the end of every finding's ProductFields, and what follows them
        self.fields_tail = b"," + orjson.dumps(fields)[1:] + b',"Resources":'


class _Writer:
    """Builds findings for one target. What findings of one check share (types, title, remediation,
    reference fields) and what findings on one object share (its resource) is built once and reused:
    a large cluster has many findings per check and per object."""

    def __init__(self, t: AwsTarget, when: str) -> None:
        self.t = t
        self.when = when
        self.cluster = _cluster_resource(t)
        self.head = {
            "SchemaVersion": SCHEMA_VERSION,
            "ProductArn": t.product_arn,
            "ProductName": "kubestrata",
            "CompanyName": "kubestrata",
        }
        self.by_rule: dict[tuple[Any, ...], _Rule] = {}
        self.by_object: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        self.json_by_object: dict[tuple[Any, ...], bytes] = {}
        self.cluster_json = orjson.dumps([self.cluster])
        self.severity = {s: {"Label": LABEL[s], "Original": s.value} for s in Severity}
        self.id_prefix = f"{t.cluster_arn}/kubestrata/"

    def _rule(self, f: Finding) -> _Rule:
        key = (f.rule_id, f.title, f.remediation, f.severity, id(f.references))
        got = self.by_rule.get(key)
        if got is None:
            t, when = self.t, self.when
            fields = {"kubestrata/RuleId": f.rule_id, "kubestrata/Layer": f.layer.value}
            for k, v in sorted(f.references.items()):
                fields[f"kubestrata/References/{k}"] = _cut(", ".join(v), MAX_FIELD)
            template: dict[str, Any] = {
                **self.head,
                "GeneratorId": f"kubestrata/{f.rule_id}",
                "AwsAccountId": t.account,
                "Region": t.region,
                "Types": _types(f),
                "CreatedAt": when,
                "UpdatedAt": when,
                "Severity": self.severity[f.severity],
                "Confidence": 100,
                "Title": _cut(f"{f.rule_id} {f.title}", MAX_TITLE),
                "Compliance": _FAILED,
                "RecordState": "ACTIVE",
            }
            if f.remediation:
                template["Remediation"] = {"Recommendation": {"Text": _cut(f.remediation, MAX_REMEDIATION)}}
            got = self.by_rule[key] = _Rule(template, fields)
        return got

    @staticmethod
    def _object_key(f: Finding) -> tuple[Any, ...] | None:
        ref = f.object
        if ref is None:
            return None
        return (ref.kind, ref.namespace, ref.name, ref.api_version, f.container)  # tuple hash: C, not Python

    def _resources(self, f: Finding) -> list[dict[str, Any]]:
        key = self._object_key(f)
        if key is None:
            return [self.cluster]
        got = self.by_object.get(key)
        if got is None:
            got = self.by_object[key] = self._build_resources(f)
        return got

    def _resources_json(self, f: Finding) -> bytes:
        key = self._object_key(f)
        if key is None:
            return self.cluster_json
        got = self.json_by_object.get(key)
        if got is None:
            # a copy the size of its text: orjson's own bytes keep the 4 KiB buffer it wrote into, and
            # a large cluster has tens of thousands of objects (100 MiB at 50,000 objects)
            got = self.json_by_object[key] = bytes(memoryview(orjson.dumps(self._build_resources(f))))
        return got

    def _build_resources(self, f: Finding) -> list[dict[str, Any]]:
        ref = f.object
        assert ref is not None
        t = self.t
        other = {"kind": ref.kind, "name": ref.name}
        if ref.namespace:
            other["namespace"] = ref.namespace
        if ref.api_version:
            other["apiVersion"] = ref.api_version
        if f.container:
            other["container"] = f.container
        path = f"{ref.namespace}/{ref.kind}/{ref.name}" if ref.namespace else f"{ref.kind}/{ref.name}"
        return [
            {
                "Type": "Other",
                "Id": _cut(f"{t.cluster_arn}/{path}", 512),
                "Partition": t.partition,
                "Region": t.region,
                "Details": {"Other": {k: _cut(v, MAX_FIELD) for k, v in other.items()}},
            },
            self.cluster,
        ]

    def _own_fields(self, f: Finding, fp: str) -> dict[str, str]:
        """The ProductFields of this finding alone (the check's follow them)."""
        fields = {"kubestrata/Fingerprint": fp}
        if f.container:
            fields["kubestrata/Container"] = f.container
        src = f.source
        if src is not None:
            fields["kubestrata/Source"] = f"{src.file}:{src.line}" if src.line else src.file
        if f.evidence:
            # orjson writes the Evidence dataclasses itself: {"path", "observed", "expected"}
            ev = orjson.dumps(f.evidence, default=str).decode()
            fields["kubestrata/Evidence"] = ev if len(ev) <= MAX_FIELD else _cut(ev, MAX_FIELD)
        if f.fix:
            fix = orjson.dumps(f.fix, default=str).decode()
            fields["kubestrata/Fix"] = fix if len(fix) <= MAX_FIELD else _cut(fix, MAX_FIELD)
        return fields

    def _head(self, f: Finding, fp: str, fields: dict[str, str]) -> dict[str, Any]:
        msg = f.message or f.title
        return {
            "Id": self.id_prefix + fp,
            "Description": msg if len(msg) <= MAX_DESCRIPTION else _cut(msg, MAX_DESCRIPTION),
            "ProductFields": fields,
        }

    def _workflow(self, f: Finding) -> dict[str, Any]:
        if f.suppressed is None:
            return _WORKFLOW_NEW
        return {
            "Workflow": _SUPPRESSED,
            "Note": {
                "Text": _cut(f"suppressed: {f.suppressed}", 512), "UpdatedBy": "kubestrata", "UpdatedAt": self.when,
            },
        }  # fmt: skip

    def finding(self, f: Finding) -> dict[str, Any]:
        rule = self._rule(f)
        fp = f.fingerprint
        fields = self._own_fields(f, fp)
        fields.update(rule.fields)
        out = rule.template.copy()
        out.update(self._head(f, fp, fields))
        out["Resources"] = self._resources(f)
        out.update(self._workflow(f))
        return out

    def write(self, f: Finding, parts: list[bytes]) -> None:
        """Append the finding as JSON, byte for byte what ``orjson.dumps(self.finding(f))`` writes: the
        check's template and ProductFields written once, the object's resources once per object, and
        only the finding's own fields here. No finding's dict outlives its line."""
        rule = self._rule(f)
        fp = f.fingerprint
        head = orjson.dumps(self._head(f, fp, self._own_fields(f, fp)))
        parts.append(rule.prefix)
        parts.append(head[1:-2])  # '"Id":...,"ProductFields":{...' without '}}'
        parts.append(rule.fields_tail)
        parts.append(self._resources_json(f))
        parts.append(
            _WORKFLOW_NEW_JSON if f.suppressed is None else b"," + orjson.dumps(self._workflow(f))[1:]
        )


_FAILED = {"Status": "FAILED"}
_NEW = {"Status": "NEW"}
_SUPPRESSED = {"Status": "SUPPRESSED"}
_WORKFLOW_NEW = {"Workflow": _NEW}
_WORKFLOW_NEW_JSON = b"," + orjson.dumps(_WORKFLOW_NEW)[1:]


def _cluster_resource(t: AwsTarget) -> dict[str, Any]:
    return {"Type": "AwsEksCluster", "Id": t.cluster_arn, "Partition": t.partition, "Region": t.region}


def _gap(g: CoverageGap, t: AwsTarget, when: str) -> dict[str, Any]:
    digest = hashlib.sha256(f"{g.subject}\x1f{g.reason.value}".encode()).hexdigest()[:32]
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": f"{t.cluster_arn}/kubestrata/coverage/{digest}",
        "ProductArn": t.product_arn,
        "ProductName": "kubestrata",
        "CompanyName": "kubestrata",
        "GeneratorId": "kubestrata/coverage",
        "AwsAccountId": t.account,
        "Region": t.region,
        "Types": [POSTURE_TYPE],
        "CreatedAt": when,
        "UpdatedAt": when,
        "Severity": {"Label": "INFORMATIONAL", "Original": "info"},
        "Title": _cut(f"Not evaluated: {g.subject}", MAX_TITLE),
        "Description": _cut(f"{g.subject} was not evaluated ({g.reason.value}): {g.detail}", MAX_DESCRIPTION),
        "ProductFields": {
            "kubestrata/GapReason": g.reason.value,
            "kubestrata/Subject": _cut(g.subject, MAX_FIELD),
        },
        "Resources": [_cluster_resource(t)],
        "Compliance": {"Status": "NOT_AVAILABLE"},
        "RecordState": "ACTIVE",
    }


def _when(now: dt.datetime | None) -> str:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def to_findings(
    result: ScanResult, target: AwsTarget, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    when = _when(now)
    w = _Writer(target, when)
    out = [w.finding(f) for f in result.findings]
    out.extend(_gap(g, target, when) for g in result.coverage.gaps)
    return out


def render(result: ScanResult, target: AwsTarget | None = None, now: dt.datetime | None = None) -> str:
    """``{"Findings": [...]}``, compact: the document is an API request, and ASFF's nesting would
    double its size indented (``jq -c '.Findings[]'`` gives a finding a line). The same document as
    ``orjson.dumps({"Findings": to_findings(...)})``, written a finding at a time."""
    buf = io.BytesIO()
    write(result, buf, target, now)
    return buf.getvalue().decode()


def write(
    result: ScanResult, out: IO[bytes], target: AwsTarget | None = None, now: dt.datetime | None = None
) -> None:
    """``render``'s text to ``out``, a thousand findings at a time."""
    t = target or AwsTarget.from_arn(DEFAULT_CLUSTER_ARN)
    when = _when(now)
    w = _Writer(t, when)
    parts: list[bytes] = [b'{"Findings":[']
    first = True
    for f in result.findings:
        if not first:
            parts.append(b",")
        first = False
        w.write(f, parts)
        if len(parts) > 6000:
            out.write(b"".join(parts))
            parts = []
    for g in result.coverage.gaps:
        if not first:
            parts.append(b",")
        first = False
        parts.append(orjson.dumps(_gap(g, t, when)))
    parts.append(b"]}\n")
    out.write(b"".join(parts))
