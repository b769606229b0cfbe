"""Mixed inputs for one detect run: each document goes to the audit pipeline, the runtime rules
(Tetragon / Falco events) or the CloudTrail rules, and every finding, whatever its source, goes
through the same findings store, sinks and the attack-sequence correlator.

``DetectRouter`` wraps a ``Pipeline`` and has its ingestion interface (``process_line``,
``process_obj``, ``flush``, ``close``, ``stats``, ``config``, ``bad``), so a reader or a scale-out
worker that feeds a Pipeline can feed a router instead. Bad documents are counted in the
pipeline's ``stats.bad`` (reasons ``bad-runtime-event``, ``bad-cloudtrail-record``); well-formed
events of types no rule reads are counted in ``extra.unknown`` and skipped.
"""

from __future__ import annotations

import gzip
import sys
import time as _time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any, cast

from kubestrata.detect import cloudtrail as ct
from kubestrata.detect.catalogue import RuleSpec
from kubestrata.detect.cloudtrail_rules import CLOUDTRAIL_CATALOGUE
from kubestrata.detect.cloudtrail_rules import evaluate as ct_evaluate
from kubestrata.detect.decode import decode_cloudwatch_payload, loads
from kubestrata.detect.emit import as_finding, build_finding
from kubestrata.detect.event import AuditEvent, BadEvent
from kubestrata.detect.pipeline import Pipeline, parse_time
from kubestrata.detect.rules.registry import Hit
from kubestrata.detect.runtime import falco_input, tetragon
from kubestrata.detect.runtime.catalogue import FALCO_RULE_IDS, RUNTIME_CATALOGUE
from kubestrata.detect.runtime.events import RuntimeEvent, UnknownEventType
from kubestrata.detect.runtime.rules import RuntimeRules
from kubestrata.detect.sequences import Chain, Correlator, SignalStore, load_chains
from kubestrata.detect.sources import Oversize, read_line_blocks
from kubestrata.detect.wire import read_event
from kubestrata.errors import KubestrataError
from kubestrata.findings import Finding

WORKLOAD_KINDS = frozenset(("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob", "Pod"))
_PAYLOAD_PREFIXES = (b"H4sI", b"\x1f\x8b")  # base64 of gzip, gzip: a CloudWatch Logs payload on a line
_RANKS = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class InputFormat(StrEnum):
    AUTO = "auto"
    AUDIT = "audit"
    TETRAGON = "tetragon"
    FALCO = "falco"
    CLOUDTRAIL = "cloudtrail"
    SCAN = "scan"  # `kubestrata scan -o json`: posture findings, attack-sequence steps only


def extra_rule_ids(chains: list[Chain] | None = None) -> set[str]:
    """Rule ids beyond the audit catalogue: runtime, CloudTrail and attack-sequence rules."""
    return set(RUNTIME_CATALOGUE) | set(CLOUDTRAIL_CATALOGUE) | {c.id for c in chains or load_chains()}


def _foreign_messages(payload: dict[str, Any]) -> bool:
    """Whether a CloudWatch payload carries CloudTrail records or runtime events (not audit events)."""
    evs = payload.get("logEvents")
    if payload.get("messageType") == "CONTROL_MESSAGE" or type(evs) is not list or not evs:
        return False
    first = evs[0].get("message") if type(evs[0]) is dict else None
    return type(first) is str and any(
        m in first[:4096] for m in ('"eventSource"', '"process_', '"output_fields"')
    )


def extra_specs(chains: list[Chain] | None = None) -> list[Any]:
    """RuleSpecs of the runtime, CloudTrail and attack-sequence rules, in id order."""
    return [
        *RUNTIME_CATALOGUE.values(),
        *CLOUDTRAIL_CATALOGUE.values(),
        *(c.spec for c in chains or load_chains()),
    ]


def sniff(obj: dict[str, Any]) -> InputFormat:
    if "auditID" in obj or obj.get("kind") in ("Event", "EventList") or "protoPayload" in obj:
        return InputFormat.AUDIT
    if tetragon.is_tetragon(obj):
        return InputFormat.TETRAGON
    if falco_input.is_falco(obj):
        return InputFormat.FALCO
    if ct.is_cloudtrail(obj):
        return InputFormat.CLOUDTRAIL
    if "schemaVersion" in obj and "findings" in obj and "tool" in obj:
        return InputFormat.SCAN
    return (
        InputFormat.AUDIT
    )  # the audit decoder knows the wrappers (AKS records, CloudWatch) and says what is bad


@dataclass
class ExtraStats:
    runtime_events: Counter[str] = field(default_factory=Counter)  # by sensor
    unknown: Counter[str] = field(default_factory=Counter)  # event types skipped
    unmapped_falco_rules: Counter[str] = field(default_factory=Counter)
    cloudtrail_records: int = 0
    cloudtrail_other_services: int = 0
    cloudtrail_failed_calls: int = 0
    duplicates: int = 0
    findings: Counter[str] = field(default_factory=Counter)  # by source
    sequences: int = 0
    posture_findings: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtimeEvents": dict(self.runtime_events),
            "unknownEventTypes": dict(self.unknown),
            "unmappedFalcoRules": dict(self.unmapped_falco_rules.most_common(20)),
            "cloudtrailRecords": self.cloudtrail_records,
            "cloudtrailOtherServices": self.cloudtrail_other_services,
            "cloudtrailFailedCalls": self.cloudtrail_failed_calls,
            "duplicates": self.duplicates,
            "findingsBySource": dict(self.findings),
            "sequences": self.sequences,
            "postureFindings": self.posture_findings,
        }

    def line(self) -> str:
        parts = []
        if self.runtime_events:
            parts.append(
                "runtime events: " + ", ".join(f"{n} {k}" for k, n in sorted(self.runtime_events.items()))
            )
        if self.unknown:
            top = ", ".join(f"{k} {n}" for k, n in self.unknown.most_common(5))
            parts.append(f"{sum(self.unknown.values())} of unknown types skipped ({top})")
        if self.cloudtrail_records or self.cloudtrail_other_services:
            parts.append(f"{self.cloudtrail_records} EKS CloudTrail records ({self.cloudtrail_failed_calls} failed "
                         f"calls, {self.cloudtrail_other_services} of other services ignored)")  # fmt: skip
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate runtime/CloudTrail events")
        if self.posture_findings:
            parts.append(f"{self.posture_findings} posture findings read as sequence steps")
        if self.sequences:
            parts.append(f"{self.sequences} attack sequences")
        return "; ".join(parts)


class DetectRouter:
    MAX_SEEN = 200_000

    def __init__(
        self,
        pipeline: Pipeline,
        input_format: InputFormat = InputFormat.AUTO,
        sequences: bool = True,
        chains: list[Chain] | None = None,
        signal_store: SignalStore | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.config = pipeline.config
        self.stats = pipeline.stats
        self.extra = ExtraStats()
        self.input_format = input_format
        chains = chains if chains is not None else load_chains()
        ids = extra_rule_ids(chains)
        if self.config.only is not None:
            ids &= set(self.config.only)
        self.enabled = ids - set(self.config.disabled)
        self.runtime = RuntimeRules(self.enabled)
        self.correlator = Correlator(chains, signal_store, self.enabled) if sequences else None
        if self.correlator is not None and self.config.min_severity != "info":
            pipeline.below_min_severity = self._signal  # low audit findings can still complete a chain
        self.chain_specs = {c.id: c.spec for c in chains}
        self._min_rank = _RANKS.get(self.config.min_severity, 0)
        self._pending: list[Finding] = []
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()

    # -- the Pipeline interface (the rest: store, engine, sinks ... are the pipeline's) --

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)

    def bad(self, reason: str, origin: str, detail: str, sample: bytes | str | None = None) -> None:
        self.pipeline.bad(reason, origin, detail, sample)

    def flush(self) -> None:
        self.pipeline.flush()

    def close(self) -> None:
        self.pipeline.close()

    def process_line(self, line: bytes | str, origin: str = "") -> list[Finding]:
        if self.input_format is InputFormat.AUDIT:
            return self._correlate(self.pipeline.process_line(line, origin))
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogatepass")
        stripped = line.strip()
        if len(line) > self.config.max_event_bytes:
            return self._correlate(self.pipeline.process_line(line, origin))  # counted as oversize there
        if stripped.startswith(_PAYLOAD_PREFIXES):
            # a CloudWatch Logs subscription payload: audit events (EKS control-plane logs) or, from a
            # CloudTrail log group, CloudTrail records; the pipeline decodes the first kind
            try:
                payload = decode_cloudwatch_payload(stripped)
            except BadEvent:
                return self._correlate(self.pipeline.process_line(line, origin))  # counts it as bad
            if not _foreign_messages(payload):
                return self._correlate(self.pipeline.process_line(line, origin))
            self.stats.lines += 1
            out: list[Finding] = []
            for i, le in enumerate(payload["logEvents"]):
                msg = le.get("message") if type(le) is dict else None
                if type(msg) is not str:
                    self.bad("bad-event", f"{origin} logEvents[{i}]", "message: expected a string")
                    continue
                try:
                    obj = loads(msg)
                except BadEvent as e:
                    self.bad("invalid-json", f"{origin} logEvents[{i}]", e.reason, msg[:200])
                    continue
                out += self.process_obj(obj, f"{origin} logEvents[{i}]")
            return out
        self.stats.lines += 1
        if not stripped:
            return []
        if self.input_format is InputFormat.AUTO:
            ev = read_event(stripped, self.config.cluster)
            if ev is not None:  # the usual Event line (kind Event: sniff's AUDIT), read without its dict
                found = self.pipeline.process_event(ev)
                return self._correlate(found, ev) if found or self._pending else found
        try:
            obj = loads(stripped)
        except BadEvent as e:
            self.bad("invalid-utf8" if "UTF-8" in e.reason else "invalid-json", origin, e.reason, stripped)
            return []
        if self.input_format is InputFormat.AUTO and type(obj) is dict and "auditID" in obj:
            # an audit event (sniff's first test), the usual line: process_obj's way, inline
            found = self.pipeline.process_obj(obj, origin)
            return self._correlate(found) if found or self._pending else found
        return self.process_obj(obj, origin)

    def process_obj(self, obj: Any, origin: str = "", check_size: bool = False) -> list[Finding]:
        fmt = self.input_format
        if type(obj) is not dict:
            if fmt in (InputFormat.AUTO, InputFormat.AUDIT):
                return self._correlate(self.pipeline.process_obj(obj, origin, check_size))
            self.bad("bad-event", origin, f"expected a JSON object, got {type(obj).__name__}")
            return []
        if fmt is InputFormat.AUTO:
            fmt = sniff(obj)
        if fmt is InputFormat.TETRAGON:
            return self._runtime(obj, tetragon.parse, origin)
        if fmt is InputFormat.FALCO:
            return self._runtime(obj, falco_input.parse, origin)
        if fmt is InputFormat.CLOUDTRAIL:
            return self._cloudtrail(obj, origin)
        if fmt is InputFormat.SCAN:
            return self._posture(obj, origin)
        return self._correlate(self.pipeline.process_obj(obj, origin, check_size))

    # -- runtime --

    def _duplicate(self, key: int) -> bool:
        if key in self._seen:
            self.extra.duplicates += 1
            return True
        self._seen.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > self.MAX_SEEN:
            self._seen.discard(self._seen_order.popleft())
        return False

    def _runtime(
        self, obj: dict[str, Any], parse: Callable[[dict[str, Any]], RuntimeEvent], origin: str
    ) -> list[Finding]:
        try:
            ev = parse(obj)
        except UnknownEventType as e:
            self.extra.unknown[e.kind] += 1
            return []
        except BadEvent as e:
            self.bad("bad-runtime-event", origin, str(e), None)
            return []
        p = ev.process
        if self._duplicate(hash((ev.source, ev.kind, ev.time, p.exec_id, p.pid, p.binary, ev.syscall,
                                 ev.file_path, ev.daddr, ev.dport, ev.sensor_rule))):  # fmt: skip
            return []
        self.extra.runtime_events[ev.source] += 1
        self.stats.events += 1
        if not ev.cluster:
            ev.cluster = self.config.cluster
        hits = self.runtime.evaluate(ev)
        if ev.sensor_rule and not hits and ev.sensor_rule not in FALCO_RULE_IDS:
            self.extra.unmapped_falco_rules[ev.sensor_rule] += 1
        out: list[Finding] = []
        for h in hits:
            self._emit(runtime_finding(RUNTIME_CATALOGUE[h.rule_id], h, ev), out)
        return out

    # -- CloudTrail --

    def _cloudtrail(self, obj: dict[str, Any], origin: str) -> list[Finding]:
        out: list[Finding] = []
        it = ct.iter_records(obj)
        i = 0
        while True:
            try:
                raw = next(it)
            except StopIteration:
                break
            except BadEvent as e:
                self.bad("bad-cloudtrail-record", f"{origin} item {i}", str(e), None)
                break
            i += 1
            try:
                rec = ct.record(raw)
            except ct.NotEks:
                self.extra.cloudtrail_other_services += 1
                continue
            except BadEvent as e:
                self.bad("bad-cloudtrail-record", f"{origin} item {i - 1}", str(e), None)
                continue
            if rec.event_id and self._duplicate(hash(("cloudtrail", rec.event_id))):
                continue  # CloudTrail may deliver an event twice (AWS: dedupe on eventID)
            self.extra.cloudtrail_records += 1
            self.stats.events += 1
            if rec.error:
                self.extra.cloudtrail_failed_calls += 1
            for h in ct_evaluate(rec, self.enabled):
                f = build_finding(
                    CLOUDTRAIL_CATALOGUE[h.rule_id],
                    message=h.message,
                    time=rec.time,
                    cluster=rec.cluster or self.config.cluster,
                    source="cloudtrail",
                    subject={"user": rec.actor, "verb": rec.event_name, "name": rec.cluster,
                             "userAgent": rec.user_agent, "sourceIPs": [rec.source_ip] if rec.source_ip else []},
                    evidence=h.evidence,
                    fingerprint_parts=(rec.actor, rec.event_name, rec.cluster),
                    severity=h.severity,
                    extra={"cloudtrail": {"eventID": rec.event_id, "eventName": rec.event_name,
                                          "eventSource": ct.EKS_SOURCE, "awsRegion": rec.region,
                                          "accountId": rec.account, "userIdentityType": rec.actor_type}},
                )  # fmt: skip
                self._emit(f, out)
        return out

    # -- posture --

    def _posture(self, obj: dict[str, Any], origin: str) -> list[Finding]:
        """A scan report's workload findings become timeless attack-sequence steps (not reported
        again: the scan reported them)."""
        findings = obj.get("findings")
        if type(findings) is not list:
            self.bad("bad-event", origin, "findings: expected a list")
            return []
        self.stats.events += 1
        out: list[Finding] = []
        for i, f in enumerate(findings):
            o = f.get("object") if type(f) is dict else None
            if type(o) is not dict or type(f.get("ruleId")) is not str:
                self.bad("bad-event", f"{origin} findings[{i}]", "expected a finding with ruleId and object")
                continue
            if o.get("kind") not in WORKLOAD_KINDS or not o.get("name"):
                continue
            self.extra.posture_findings += 1
            if self.correlator is None:
                continue
            workload = f"{o.get('namespace') or ''}/{o['name']}"
            fp = str(f.get("fingerprint") or f"{f['ruleId']}:{workload}")
            msg = f"{f['ruleId']} {f.get('title', '')} on {o['kind']} {workload}"
            for seq in self.correlator.add_posture(self.config.cluster, f["ruleId"], workload, fp, msg):
                self._emit(seq, out)
        return out

    # -- findings --

    def _emit(self, f: dict[str, Any], out: list[Finding]) -> None:
        """A runtime, CloudTrail or sequence finding record: reported (store, sinks) at or above
        --min-severity, and a step for the correlator in any case."""
        if _RANKS.get(f["severity"], 0) >= self._min_rank:
            when = parse_time(f["time"]) or _time.time()
            finding = as_finding(f)
            if not self.pipeline.store.admit(finding, when):
                self.stats.suppressed += 1
            else:
                self.stats.findings += 1
                self.extra.findings[f["source"]] += 1
                if f["source"] == "sequence":
                    self.extra.sequences += 1
                out.append(finding)
                for s in self.pipeline.sinks:
                    s.submit(finding)
        # a chain step counts even below --min-severity (a low step can complete a critical chain)
        if self.correlator is not None and f["source"] != "sequence":
            for seq in self.correlator.observe(f):
                self._emit(seq, out)

    def _signal(self, f: Finding) -> None:
        """An audit finding below --min-severity: not reported, but a step of an attack sequence."""
        assert self.correlator is not None
        for seq in self.correlator.observe(f):
            self._emit(seq, self._pending)

    def _correlate(self, findings: list[Finding], event: AuditEvent | None = None) -> list[Finding]:
        """Findings and the sequences they complete; ``event``, when all come from one audit event,
        lends its parsed time to the correlator (its findings carry the same text)."""
        if self._pending:  # sequences completed by findings below --min-severity
            findings, self._pending = [*findings, *self._pending], []
            if self.correlator is None:
                return findings
        if self.correlator is None or not findings:
            return findings
        seqs = (
            self.correlator.observe_event(findings, event.timestamp, event.epoch)
            if event is not None
            else self.correlator.observe_event(findings, "", None)
        )  # (a finding of no chain's rule: passed over at once)
        if not seqs:
            return findings
        out = list(findings)
        for seq in seqs:
            self._emit(seq, out)
        return out


def runtime_finding(spec: RuleSpec, h: Hit, ev: RuntimeEvent) -> dict[str, Any]:
    p = ev.process
    process: dict[str, Any] = {
        "binary": p.binary,
        "arguments": p.args,
        "cwd": p.cwd,
        "uid": p.uid,
        "pid": p.pid,
    }
    if ev.parent is not None:
        process["parent"] = {"binary": ev.parent.binary, "arguments": ev.parent.args}
    if ev.ancestors:
        process["ancestors"] = ev.ancestors[:8]
    extra: dict[str, Any] = {
        "process": process,
        "container": {
            "id": ev.container_id,
            "name": ev.container,
            "image": ev.image,
            "workload": ev.workload or None,
        },
        "node": ev.node,
        "sensor": {"source": ev.source, "rule": ev.sensor_rule or None},
    }
    if ev.file_path:
        extra["file"] = {"path": ev.file_path, "access": ev.access or None}
    if ev.daddr or ev.socket_path:
        extra["network"] = {"destinationAddress": ev.daddr or None, "destinationPort": ev.dport,
                            "socketPath": ev.socket_path or None}  # fmt: skip
    user = p.user or (f"uid={p.uid}" if p.uid is not None else None)
    return build_finding(
        spec,
        message=h.message,
        time=ev.time,
        cluster=ev.cluster,
        source=ev.source,
        subject={"user": user, "verb": ev.kind, "resource": "pods" if ev.pod else None,
                 "namespace": ev.namespace, "name": ev.pod, "requestURI": p.cmdline[:512]},
        evidence=h.evidence,
        fingerprint_parts=(ev.namespace, ev.pod, ev.container, p.binary, ev.file_path, ev.daddr),
        severity=h.severity,
        extra=extra,
    )  # fmt: skip


# -- reading files and S3 -------------------------------------------------------------------


def feed_lines(target: Pipeline | DetectRouter, fh: IO[bytes], name: str) -> None:
    """Every line of a stream into a pipeline or router; a line over the size limit is counted as
    bad (oversize) without being read whole."""
    limit = target.config.max_event_bytes
    cluster = target.config.cluster
    stats = target.stats
    process_line = target.process_line
    # the usual Event line (detect/wire.py) is process_line's first case: taken here, without the
    # checks that do not apply to it (a line within the limit: read_line_blocks) and without its origin
    router: DetectRouter | None = None
    if isinstance(target, DetectRouter):
        router, process_event = target, target.pipeline.process_event
        usual = target.input_format in (InputFormat.AUTO, InputFormat.AUDIT)
    else:
        process_event, usual = target.process_event, True
    n = 0
    for lines in read_line_blocks(fh, limit):
        for line in lines:
            n += 1
            if isinstance(line, Oversize):
                stats.lines += 1
                target.bad("oversize", f"{name}:{n}", f"{line.length} bytes > limit {limit}")
            elif usual and (ev := read_event(line, cluster)) is not None:
                stats.lines += 1
                found = process_event(ev)
                if router is not None and (found or router._pending):
                    router._correlate(found, ev)
            else:
                process_line(line, f"{name}:{n}")


@contextmanager
def open_input(path: str) -> Iterator[tuple[IO[bytes], str]]:
    """A file, or stdin for "-", open for reading bytes, and its name in messages; closed after
    (stdin is left open). KubestrataError when it cannot be opened."""
    name = "<stdin>" if path == "-" else path
    try:
        fh = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise KubestrataError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        yield fh, name
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def feed_file(router: DetectRouter, path: str) -> None:
    """Every document of a file: JSON lines (audit, Tetragon, Falco, CloudTrail records), a gzip
    file (a CloudTrail log object or rotated JSON lines), or one pretty-printed JSON document."""
    with open_input(path) as (fh, name):
        try:
            _feed_document_or_lines(router, fh, name)
        except (OSError, EOFError) as e:
            router.bad("unreadable", name, str(e))


def _feed_document_or_lines(router: DetectRouter, fh: IO[bytes], name: str) -> None:
    """feed_file's reading: gzip unwrapped, one JSON document (an array or a CloudTrail log object) or JSON lines."""
    peek = getattr(fh, "peek", None)  # buffered files and stdin have it; IO[bytes] does not say so
    head = peek(4096)[:4096] if peek is not None else b""
    if head[:2] == b"\x1f\x8b":
        gz = gzip.GzipFile(fileobj=fh)
        head = gz.peek(4096)[:4096]
        fh = cast(IO[bytes], gz)  # a binary stream; typeshed types GzipFile apart from IO[bytes]
    first = head.lstrip()[:1]
    first_line = head.lstrip().split(b"\n", 1)[0].strip()
    if (
        first == b"["
        or (first == b"{" and first_line in (b"{", b'{"Records": [', b'{"Records":['))
        or (first == b"{" and b"\n" not in head.strip() and b'"Records"' in head[:64])
    ):
        data = fh.read(ct.MAX_OBJECT_BYTES + 1)
        router.stats.lines += 1
        if len(data) > ct.MAX_OBJECT_BYTES:
            router.bad("oversize", name, f"more than {ct.MAX_OBJECT_BYTES} bytes")
            return
        try:
            obj = loads(data)
        except BadEvent as e:
            router.bad("invalid-json", name, e.reason, data[:200])
            return
        if isinstance(obj, list):
            for i, o in enumerate(obj):
                router.process_obj(o, f"{name}[{i}]")
        else:
            router.process_obj(obj, name)
        return
    feed_lines(router, fh, name)


def feed_s3(router: DetectRouter, url: str, s3: Any) -> int:
    """Every CloudTrail log object under s3://bucket/prefix; the number of objects read."""
    try:
        bucket, prefix = ct.parse_s3_url(url)
    except ValueError as e:
        raise KubestrataError(str(e)) from None
    n = 0
    try:
        for key, body in ct.iter_s3_objects(s3, bucket, prefix):
            n += 1
            router.stats.lines += 1
            try:
                obj = ct.read_object(body)
            except BadEvent as e:
                router.bad("bad-cloudtrail-object", f"s3://{bucket}/{key}", str(e), body[:200])
                continue
            router.process_obj(obj, f"s3://{bucket}/{key}")
    except BadEvent as e:
        router.bad("bad-cloudtrail-object", url, str(e))
    return n
