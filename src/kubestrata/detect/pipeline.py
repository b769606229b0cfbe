"""The detection pipeline: decode -> validate -> dedup (auditID, stage) -> dispatch -> rules ->
findings (dedup window) -> sinks. Every bad record is counted and skipped; nothing stops it.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from kubestrata.detect.catalogue import CATALOGUE, RuleSpec
from kubestrata.detect.decode import NotAudit, decode_cloudwatch_payload, iter_event_dicts, loads
from kubestrata.detect.escape import clean
from kubestrata.detect.event import AuditEvent, BadEvent, parse_time  # noqa: F401 - parse_time: re-exported
from kubestrata.detect.factory import FindingFactory
from kubestrata.detect.identities import ControlPlane, builtin
from kubestrata.detect.objects import ObjectMemory
from kubestrata.detect.rules import ALLOWED_K8S_USERS, DETECTORS, RULE_ERRORS, Detector, parse_ip
from kubestrata.detect.rules.facts import event_facts
from kubestrata.detect.state import FindingsStore, FirstSeen
from kubestrata.detect.wire import read_event
from kubestrata.errors import KubestrataError
from kubestrata.findings import Finding, Severity

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger("kubestrata.detect")

DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024  # above the apiserver's 100 KiB truncation default, far below 10 MB
DEFAULT_THRESHOLDS = {"KS-AUD-N13": 20, "KS-AUD-N14": 15, "KS-AUD-N18": 10}
DEFAULT_WINDOWS = {"KS-AUD-N13": 900.0, "KS-AUD-N14": 1800.0, "KS-AUD-N18": 900.0}


# --- IP lists --------------------------------------------------------------------------------


class IPList:
    """IPs and CIDRs from a file: one a line, ``#`` comments; AWS ip-ranges.json is accepted too
    (its ``prefixes[].ip_prefix`` and ``ipv6_prefixes[].ipv6_prefix``)."""

    def __init__(self, entries: list[str] | None = None, name: str = "") -> None:
        self.name = name
        self.exact: set[str] = set()
        self.nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for e in entries or []:
            self.add(e)

    def add(self, entry: str, where: str = "") -> None:
        e = entry.strip()
        if not e:
            return
        try:
            if "/" in e:
                net = ipaddress.ip_network(e, strict=False)
                if net.num_addresses == 1:
                    self.exact.add(str(net.network_address))
                else:
                    self.nets.append(net)
            else:
                self.exact.add(str(ipaddress.ip_address(e)))
        except ValueError:
            raise KubestrataError(
                f"{where or self.name}: not an IP address or CIDR: {clean(e, 80)!r}"
            ) from None

    @classmethod
    def load(cls, path: str) -> IPList:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise KubestrataError(f"cannot read IP list {path}: {e}") from None
        lst = cls(name=path)
        if text.lstrip().startswith("{"):
            try:
                doc = loads(text)
            except BadEvent as e:
                raise KubestrataError(f"{path}: {e}") from None
            for i, p in enumerate(doc.get("prefixes") or []):
                lst.add(str(p.get("ip_prefix", "")), f"{path}: prefixes[{i}]")
            for i, p in enumerate(doc.get("ipv6_prefixes") or []):
                lst.add(str(p.get("ipv6_prefix", "")), f"{path}: ipv6_prefixes[{i}]")
            return lst
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0]
            # Tor's bulk exit list and most feeds: the address is the first field
            if line.strip():
                lst.add(line.split()[0], f"{path}:{n}")
        return lst

    def __contains__(self, ip: str) -> bool:
        if ip in self.exact:
            return True
        if not self.nets:
            return False
        addr = parse_ip(ip)
        return addr is not None and any(addr in n for n in self.nets)

    def __bool__(self) -> bool:
        return bool(self.exact or self.nets)


class IPLists:
    """The reputation lists GuardDuty's tactic x source types need, plus cloud ranges."""

    def __init__(
        self,
        malicious: IPList | None = None,
        custom: IPList | None = None,
        tor: IPList | None = None,
        cloud: IPList | None = None,
    ) -> None:
        self.lists = [
            (lst, src)
            for lst, src in (
                (malicious, "MaliciousIPCaller"),
                (custom, "MaliciousIPCaller.Custom"),
                (tor, "TorIPCaller"),
            )
            if lst
        ]
        self.cloud = cloud or IPList()
        self.any_loaded = bool(self.lists)
        self._cache: dict[str, tuple[str, ...]] = {}

    def sources_of(self, ip: str) -> tuple[str, ...]:
        r = self._cache.get(ip)
        if r is None:
            r = tuple(src for lst, src in self.lists if ip in lst)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[ip] = r
        return r

    def is_cloud(self, ip: str) -> bool:
        return bool(self.cloud) and ip in self.cloud


# --- configuration and stats -----------------------------------------------------------------


@dataclass
class DetectConfig:
    cluster: str = ""
    allowed_users: frozenset[str] = ALLOWED_K8S_USERS
    allowed_images: frozenset[str] = frozenset()  # enables KS-AUD-F02 when non-empty
    full_admin_users: frozenset[str] = frozenset()  # enables KS-AUD-F52 when non-empty
    allowed_nodes: frozenset[str] | None = None  # enables KS-AUD-F54/F55 when set
    control_plane: ControlPlane = field(default_factory=builtin)  # exempt from actor rules, by name
    ip_lists: IPLists = field(default_factory=IPLists)
    thresholds: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    windows: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    disabled: frozenset[str] = frozenset()
    only: frozenset[str] | None = None  # restrict to these rule ids
    min_severity: str = "info"
    dedup_window: float = 3600.0  # findings store: same fingerprint within this many seconds
    dedup_capacity: int = 200_000  # (auditID, stage) keys remembered
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    learning: bool = False  # record first-seen state, raise no anomaly findings
    state_url: str | None = None  # None: in-memory only

    def enabled_ids(self) -> set[str]:
        ids = {rid for rid, spec in CATALOGUE.items() if spec.enabled}
        if self.allowed_images:
            ids.add("KS-AUD-F02")
        if self.full_admin_users:
            ids.add("KS-AUD-F52")
        if self.allowed_nodes is not None:
            ids |= {"KS-AUD-F54", "KS-AUD-F55"}
        if self.only is not None:
            ids &= set(self.only)
        return ids - set(self.disabled)


@dataclass
class Stats:
    lines: int = 0
    events: int = 0
    evaluated: int = 0
    duplicates: int = 0
    ignored: int = 0
    bad: Counter[str] = field(default_factory=Counter)
    rule_errors: Counter[str] = field(default_factory=Counter)
    findings: int = 0
    suppressed: int = 0
    samples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))

    @property
    def bad_total(self) -> int:
        return sum(self.bad.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "events": self.events,
            "evaluated": self.evaluated,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "bad": self.bad_total,
            "badByReason": dict(self.bad),
            "ruleErrors": dict(self.rule_errors),
            "findings": self.findings,
            "suppressed": self.suppressed,
            "badSamples": list(self.samples),
        }


# --- the pipeline ----------------------------------------------------------------------------


class _Window:
    """Sliding window for one (rule, key): event times, or the last time of each distinct value.
    Both hold fewer entries than the threshold (they are cleared when it is reached)."""

    __slots__ = ("items", "distinct")

    def __init__(self) -> None:
        self.items: deque[float] = deque()
        self.distinct: dict[str, float] = {}


class Pipeline:
    """Feed it lines, objects or events; it returns (and sends to sinks) the new findings."""

    MAX_CACHE_KEYS = 4096
    MAX_WINDOW_KEYS = 100_000

    def __init__(self, config: DetectConfig | None = None, sinks: list[Any] | None = None) -> None:
        self.config = config or DetectConfig()
        self.stats = Stats()
        self.sinks = sinks or []
        self.ip_lists = self.config.ip_lists
        self.learning = self.config.learning
        engine = None
        if self.config.state_url:  # SQLAlchemy is imported only for a state database
            from kubestrata.detect.statedb import make_engine

            engine = make_engine(self.config.state_url)
        self.engine = engine
        self._first_seen = self.make_first_seen(engine)
        self.store = self.make_store(engine)
        enabled = self.config.enabled_ids()
        self.specs: dict[str, RuleSpec] = {rid: CATALOGUE[rid] for rid in enabled}
        self._finding = FindingFactory()
        self._min_rank = Severity.parse(self.config.min_severity).rank
        self.detectors = [d for d in DETECTORS if any(i in enabled for i in d.ids)]
        # (stage, verb, resource, subresource, facts) -> (any rule registered for the first four,
        # the detectors whose declared facts the event has)
        self._dispatch: dict[tuple[str, str, str, str, int], tuple[bool, tuple[Detector, ...]]] = {}
        self._seen: set[tuple[str, str]] = set()
        self._seen_order: deque[tuple[str, str]] = deque()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._now: float = 0.0
        self.objects = ObjectMemory()  # last produced state per object: the base of later patches
        # called with each finding below --min-severity instead of dropping it (hook: router.py)
        self.below_min_severity: Callable[[Finding], None] | None = None

    # -- state factories (detect/worker.py's fleet pipeline shares state across workers) --

    def make_first_seen(self, engine: Engine | None) -> FirstSeen:
        return FirstSeen(engine)

    def make_store(self, engine: Engine | None) -> FindingsStore:
        return FindingsStore(engine, self.config.dedup_window)

    # -- the rule context (rules.registry.RuleContext) --

    def first_seen(self, dimension: str, key: str) -> bool:
        return self._first_seen.check(self.config.cluster, dimension, key)

    @property
    def first_seen_state(self) -> FirstSeen:
        return self._first_seen

    def count(self, rule_id: str, key: str, ev: AuditEvent, distinct: str = "") -> int | None:
        """Add ev to the (rule, key) window; the count (of distinct values, when given) when it
        reaches the threshold (then the window restarts: one burst, one finding), else None."""
        threshold = self.config.thresholds.get(rule_id, 1)
        window = self.config.windows.get(rule_id, 900.0)
        now = ev.epoch or time.time()
        k = (rule_id, key)
        w = self._windows.get(k)
        if w is None:
            if len(self._windows) >= self.MAX_WINDOW_KEYS:
                self._windows.clear()
            w = self._windows[k] = _Window()
        if distinct:
            w.distinct[distinct] = now
            if len(w.distinct) >= threshold:
                w.distinct = {d: t for d, t in w.distinct.items() if now - t <= window}
            n = len(w.distinct)
        else:
            w.items.append(now)
            while w.items and now - w.items[0] > window:
                w.items.popleft()
            n = len(w.items)
        if n >= threshold:
            w.items.clear()
            w.distinct = {}
            return n
        return None

    def rule_error(self, name: str, ev: AuditEvent, err: Exception) -> None:
        self.stats.rule_errors[name] += 1
        if self.stats.rule_errors[name] <= 3:
            log.warning("rule %s skipped event %s: %s", name, clean(ev.audit_id, 64), clean(str(err), 200))

    # -- ingestion --

    def bad(self, reason: str, origin: str, detail: str, sample: bytes | str | None = None) -> None:
        self.stats.bad[reason] += 1
        if isinstance(sample, bytes):
            sample = sample[:200].decode("utf-8", "replace")
        entry = {"reason": reason, "where": clean(origin, 200), "detail": clean(detail, 300)}
        if sample is not None:
            entry["sample"] = clean(sample, 200)
        self.stats.samples.append(entry)
        if self.stats.bad[reason] <= 5 or self.stats.bad[reason] % 10_000 == 0:
            log.warning(
                "skipped bad input (%s, %d so far) at %s: %s; sample: %s",
                reason,
                self.stats.bad[reason],
                entry["where"],
                entry["detail"],
                entry.get("sample", ""),
            )

    def process_line(self, line: bytes | str, origin: str = "") -> list[Finding]:
        """One JSON document (a JSONL line, a webhook body, a CloudWatch message)."""
        self.stats.lines += 1
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogatepass")
        if len(line) > self.config.max_event_bytes:
            self.bad("oversize", origin, f"{len(line)} bytes > limit {self.config.max_event_bytes}", line)
            return []
        stripped = line.strip()
        if not stripped:
            return []
        ev = read_event(stripped, self.config.cluster)
        if ev is not None:  # the usual Event line, read without its dict (detect/wire.py)
            return self.process_event(ev)
        try:
            if stripped[:4] == b"H4sI" or stripped[:2] == b"\x1f\x8b":
                # a CloudWatch subscription payload (base64 of gzip, or raw gzip) on its own line
                obj = decode_cloudwatch_payload(stripped)
            else:
                obj = loads(stripped)
        except BadEvent as e:
            self.bad("invalid-utf8" if "UTF-8" in e.reason else "invalid-json", origin, e.reason, stripped)
            return []
        return self.process_obj(obj, origin)

    def process_obj(self, obj: Any, origin: str = "", check_size: bool = False) -> list[Finding]:
        """Events from a decoded document. ``check_size``: the document was larger than the
        per-event limit (a webhook batch), so measure each event and skip the oversize ones."""
        if (
            type(obj) is dict
            and obj.get("kind") == "Event"
            and not check_size
            and not ("messageType" in obj and "logEvents" in obj)
        ):
            # one plain Event, the usual document: what iter_event_dicts would yield, without the
            # generator and its loop (a few per cent of a replay)
            try:
                ev = AuditEvent(obj, self.config.cluster)
            except BadEvent as e:
                self.bad("bad-event", f"{origin} item 0", str(e), _sample(obj))
                return []
            return self.process_event(ev)
        out: list[Finding] = []
        limit = self.config.max_event_bytes
        it = iter_event_dicts(obj)
        i = 0
        while True:
            try:
                raw = next(it)
            except StopIteration:
                break
            except NotAudit:
                self.stats.ignored += 1
                break
            except BadEvent as e:
                self.bad("bad-event", f"{origin} item {i}", str(e), None)
                break
            i += 1
            if check_size:
                size = len(orjson.dumps(raw))
                if size > limit:
                    self.bad("oversize", f"{origin} item {i - 1}", f"{size} bytes > limit {limit}")
                    continue
            try:
                ev = AuditEvent(raw, self.config.cluster)
            except BadEvent as e:
                self.bad("bad-event", f"{origin} item {i - 1}", str(e), _sample(raw))
                continue
            except NotAudit:
                self.stats.ignored += 1
                continue
            out.extend(self.process_event(ev))
        return out

    def process_event(self, ev: AuditEvent) -> list[Finding]:
        st = self.stats
        st.events += 1
        audit_id = ev.audit_id
        if audit_id:
            key = (audit_id, ev.stage)  # (ev.key, inline)
            seen = self._seen
            n = len(seen)
            seen.add(key)  # (one lookup: a key already there leaves the size as it was)
            if len(seen) == n:
                st.duplicates += 1
                return []
            order = self._seen_order
            order.append(key)
            if len(order) > self.config.dedup_capacity:
                seen.discard(order.popleft())
        # the dispatch key: what the rules declare they match (rules.registry.rule's ``on``,
        # ``stages`` and ``when``), so an event meets only the functions that can match it
        facts = event_facts(ev, self.ip_lists.any_loaded)
        dk = (ev.stage, ev.verb, ev.resource, ev.subresource, facts)
        entry = self._dispatch.get(dk)
        if entry is None:
            if len(self._dispatch) >= self.MAX_CACHE_KEYS:
                self._dispatch.clear()  # attacker-chosen resource names must not grow it forever
            keyed = [d for d in self.detectors if d.accepts(ev.stage, ev.verb, ev.resource, ev.subresource)]
            entry = self._dispatch[dk] = (bool(keyed), tuple(d for d in keyed if d.applies(facts)))
        keyed_any, dets = entry
        if not keyed_any:
            return []
        st.evaluated += 1  # (an event some rule is registered for, whether or not its facts admit one)
        if not dets:
            return []
        out: list[Finding] = []
        specs, min_rank = self.specs, self._min_rank
        when = None  # the event's time for the dedup window, read at its first finding
        for d in dets:
            try:  # as rules.safe_call, inline: most detectors raise nothing for most events
                hits = d.fn(ev, self)
                # the rules that run on every exec return a list or None; the others, a generator
                if type(hits) is not list:
                    if hits is None:
                        continue
                    hits = list(hits)
                elif not hits:
                    continue
            except RULE_ERRORS as e:
                self.rule_error(d.name, ev, e)
                continue
            for h in hits:
                spec = specs.get(h.rule_id)
                if spec is None:
                    continue
                if min_rank and (h.severity or spec.severity).rank < min_rank:
                    if self.below_min_severity is not None:  # attack-sequence signals (detect/router.py)
                        self.below_min_severity(self._finding(spec, h, ev))
                    continue  # below --min-severity: not reported
                if when is None:
                    when = ev.epoch or time.time()
                    build = self._finding.build  # (a method call; calling the instance is slower)
                    store = self.store
                    # the in-memory store's fingerprints: a new one is admitted here, inline
                    # (FindingsStore.admit's first branch; test_admit_inline.py)
                    admitted, cap = store.memory_admissions() or (None, 0)
                f = build(spec, h, ev)
                fp = f._fingerprint
                if admitted is not None and fp is not None and fp not in admitted and len(admitted) < cap:
                    admitted[fp] = when
                elif not store.admit(f, when):
                    st.suppressed += 1
                    continue
                st.findings += 1
                out.append(f)
                for s in self.sinks:
                    s.submit(f)
        return out

    def flush(self) -> None:
        """Write batched state to the database (call periodically in long-running servers)."""
        self._first_seen.flush()
        self.store.flush()

    def close(self) -> None:
        try:
            self._first_seen.close()
            self.store.close()
        finally:
            for s in self.sinks:
                s.close()


def _sample(raw: dict[str, Any]) -> str:
    try:
        return orjson.dumps(raw)[:200].decode("utf-8", "replace")
    except TypeError:
        return repr(raw)[:200]
