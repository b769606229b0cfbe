"""Attack sequences: one high/critical finding when findings from audit logs, runtime events and
CloudTrail chain into an attack (GuardDuty Extended Threat Detection's AttackSequence:EKS/
CompromisedCluster correlates the same three sources over 24 hours).

Chains are data (data/sequences.yaml). The correlator sees every finding a detect run emits
(``observe``); the findings that belong to some chain step are kept as *signals* per cluster in a
``SignalStore``. After each new signal the chains it can extend are matched again over that
cluster's recent signals; a match with at least ``min_steps`` steps is emitted once, and again only
when it grows. Steps join on the cluster always and on ``identity`` (the acting user or IAM ARN) or
``pod`` (namespace/pod) where a chain says so.

State: ``MemorySignalStore`` (one process). Scale-out workers that each see part of the stream need
a shared store with the same four methods: signals per cluster in a sorted set scored by event
time and trimmed to the longest window (Redis ZADD/ZRANGEBYSCORE/ZREMRANGEBYSCORE), and the
"emitted" marks as a hash with HSET-if-greater semantics (a Lua script or WATCH/MULTI) so two
workers completing the same chain emit it once; or partition the stream by cluster so one worker
owns each cluster's signals.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import yaml

from kubestrata.detect.catalogue import RuleSpec
from kubestrata.detect.emit import build_finding
from kubestrata.errors import KubestrataError
from kubestrata.findings import Finding, Severity
from kubestrata.packagedata import load_yaml

JOIN_KEYS = ("identity", "pod", "workload")
RUNTIME_SOURCES = ("tetragon", "falco")
POSTURE_TIME = "(posture scan)"  # the time shown for a posture step: true whenever the events happened
DEFAULT_WINDOW = 86_400.0
SKEW = 300.0  # seconds steps of an ordered chain may be out of order (clock skew between sources)
MAX_CANDIDATES = 6  # per step, when searching a match (the most recent ones)
MAX_NODES = 500  # search budget per chain evaluation


@dataclass(frozen=True)
class Step:
    name: str
    rules: frozenset[str]
    same: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chain:
    id: str
    title: str
    severity: Severity
    guardduty: str
    description: str
    steps: tuple[Step, ...]
    min_steps: int
    window: float = DEFAULT_WINDOW
    ordered: bool = True

    @property
    def rules(self) -> frozenset[str]:
        return frozenset().union(*(st.rules for st in self.steps))

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(k for k in JOIN_KEYS if any(k in st.same for st in self.steps))

    @property
    def spec(self) -> RuleSpec:
        return RuleSpec(self.id, self.title, self.severity, self.description,
                        guardduty=(self.guardduty,) if self.guardduty else ())  # fmt: skip


def load_chains(path: str | Path | None = None) -> list[Chain]:
    """The chains of a YAML file (the built-in ones by default); KubestrataError names the bad field."""
    where = str(path or "detect/data/sequences.yaml")
    try:
        if path is None:  # the built-in chains: libyaml when PyYAML has it
            doc = load_yaml("kubestrata.detect", "data/sequences.yaml")
        else:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise KubestrataError(f"cannot read attack sequences {where}: {e}") from None
    if not isinstance(doc, list):
        raise KubestrataError(f"{where}: expected a list of chains")
    chains: list[Chain] = []
    for i, c in enumerate(doc):
        at = f"{where}: chains[{i}]"
        if not isinstance(c, dict):
            raise KubestrataError(f"{at}: expected a mapping")
        try:
            steps = []
            for j, s in enumerate(c["steps"]):
                same = tuple(s.get("same") or ())
                bad = [k for k in same if k not in JOIN_KEYS]
                if bad:
                    raise KubestrataError(f"{at}.steps[{j}].same: unknown join key {bad[0]!r} "
                                          f"(one of {', '.join(JOIN_KEYS)})")  # fmt: skip
                if not s.get("rules"):
                    raise KubestrataError(f"{at}.steps[{j}].rules: empty")
                steps.append(Step(str(s["name"]), frozenset(map(str, s["rules"])), same))
            chain = Chain(
                id=str(c["id"]),
                title=str(c["title"]),
                severity=Severity.parse(str(c.get("severity", "high"))),
                guardduty=str(c.get("guardduty") or ""),
                description=" ".join(str(c.get("description", "")).split()),
                steps=tuple(steps),
                min_steps=int(c.get("min_steps", len(steps))),
                window=float(c.get("window", DEFAULT_WINDOW)),
                ordered=bool(c.get("ordered", True)),
            )
        except KeyError as e:
            raise KubestrataError(f"{at}: missing {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise KubestrataError(f"{at}: {e}") from None
        if not 1 <= chain.min_steps <= len(chain.steps):
            raise KubestrataError(f"{at}.min_steps: must be between 1 and {len(chain.steps)}")
        chains.append(chain)
    return chains


class Signal(NamedTuple):
    time: float
    rule_id: str
    fingerprint: str
    time_text: str
    identity: str
    pod: str
    message: str
    workload: str = ""  # namespace/workload name (a posture finding's object, a pod's owner)


def signal_of(finding: dict[str, Any]) -> tuple[str, Signal] | None:
    """(cluster, signal) of a detect finding, or None without a usable time."""
    t = _time(finding.get("time"))
    if t is None:
        return None
    pod = ""
    if finding.get("resource") == "pods" and finding.get("name"):
        pod = f"{finding.get('namespace') or ''}/{finding['name']}"
    # a runtime finding's user is a process uid inside some container, not an API identity
    identity = "" if finding.get("source") in RUNTIME_SOURCES else str(finding.get("user") or "")
    ctr = finding.get("container")
    workload = (ctr.get("workload") if isinstance(ctr, dict) else "") or ""
    if pod and not workload:
        workload = f"{finding.get('namespace') or ''}/{workload_of_pod(str(finding['name']))}"
    elif workload:
        workload = f"{finding.get('namespace') or ''}/{workload}"
    return str(finding.get("cluster") or ""), Signal(
        t, str(finding["ruleId"]), str(finding.get("fingerprint") or ""), str(finding.get("time")),
        identity, pod, str(finding.get("message") or ""), workload,
    )  # fmt: skip


def signal_of_finding(f: Finding) -> tuple[str, Signal] | None:
    """``signal_of(f.to_dict())`` for an audit finding, read from its fields without building its
    JSON record (every finding of a chain's rules is a signal); other findings go through the record."""
    e = f.event
    if e is None or e.source != "k8saudit":
        return signal_of(f.to_dict())
    last = _last_event[0]
    if last[0] is not e or last[1] != f.time:  # (an event's findings share its reference and time)
        t = _time(f.time)
        if t is None:
            return None
        pod = workload = ""
        if e.resource == "pods" and e.name:
            pod = f"{e.namespace}/{e.name}"
            workload = f"{e.namespace}/{workload_of_pod(e.name)}"
        last = _last_event[0] = (e, f.time, t, pod, workload)
    _, text, t, pod, workload = last
    # (Signal's own __new__ is a Python function: the tuple made directly, field for field)
    return e.cluster, _new_signal(
        Signal, (t, f.rule_id, f.fingerprint, str(text), e.user, pod, f.message, workload)
    )


_new_signal = tuple.__new__
_NO_EVENT = object()  # (no finding's event: Correlator.observe_event's "no event yet")


# the last event's (reference, time text, time, pod, workload): one tuple, safe across threads
_last_event: list[tuple[Any, Any, float, str, str]] = [(None, None, 0.0, "", "")]


_POD_SUFFIX = re.compile(r"(?:-[0-9a-f]{6,10})?-[0-9a-z]{5}$|-\d+$")


def workload_of_pod(name: str) -> str:
    """The owner name a controller-made pod name implies: Deployment ``web-7d4b9c6f5-x2x7q`` ->
    ``web``, DaemonSet ``aws-node-7xk2p`` -> ``aws-node``, StatefulSet ``db-0`` -> ``db`` (a
    heuristic for sensors that do not report the workload; Tetragon does)."""
    if "\n" in name or not name.isascii():
        return _POD_SUFFIX.sub("", name) or name
    # _POD_SUFFIX's match, read from the last two dash-separated parts (it can start nowhere else)
    head, dash, last = name.rpartition("-")
    if not dash:
        return name
    if len(last) == 5 and not last.strip(_ALNUM):
        rest, dash, mid = head.rpartition("-")
        if dash and 6 <= len(mid) <= 10 and not mid.strip(_HEX):
            return rest or name  # the leftmost match: from the dash before a hash
        return head or name
    if last.isdigit():
        return head or name
    return name


_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"
_HEX = "0123456789abcdef"


def _time(v: Any) -> float | None:
    if not isinstance(v, str) or not v:
        return None
    last = _last_time[0]
    if v == last[0]:
        return last[1]  # an event's findings share its time
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    _last_time[0] = (v, t)
    return t


_last_time: list[tuple[str, float]] = [("", 0.0)]  # the last time parsed (one tuple: safe across threads)


class SignalStore(Protocol):
    def add(self, cluster: str, signal: Signal) -> None: ...
    def between(
        self, cluster: str, start: float, end: float, rules: frozenset[str] | None = None, limit: int = 0
    ) -> list[Signal]: ...
    def emitted(self, key: str) -> tuple[int, float] | None: ...
    def mark(self, key: str, steps: int, first: float) -> None: ...


class _ClusterSignals:
    """One cluster's signals: sorted lists per rule as of the last settle, and the ones added since."""

    __slots__ = (
        "by_rule", "pending", "waiting", "fps", "newest", "size", "trimmed_at", "latest", "records", "floor"
    )  # fmt: skip

    def __init__(self) -> None:
        # rule id -> its signals in order; a key for every rule added since (its list may wait in pending)
        self.by_rule: dict[str, list[Signal]] = {}
        # rule id -> its signals added since the last settle, in arrival order (the keys: the rules
        # of the pending signals)
        self.pending: dict[str, list[Signal]] = {}
        self.waiting = 0  # signals in pending
        self.fps: set[str] = set()  # fingerprints of the kept and pending signals
        # the latest time of the kept signals (the pending ones' too once settled)
        self.newest = float("-inf")
        self.size = 0  # signals in the per-rule lists
        self.trimmed_at = float("-inf")  # the newest time when the age bound was last applied
        # rule id -> the latest time of its signals added, kept or not, but for those dropped when
        # added (below floor): at least that of any it keeps, which is what recent needs (of a
        # rule with pending signals: as of the last settle, which a query of the rule makes first)
        self.latest: dict[str, float] = {}
        # rules whose lists (per-rule or pending) may hold signal records, Correlator.observe_event's
        # for a rule no chain can match with in the cluster: made Signals when read
        self.records: set[str] = set()
        # at the cap as of the last settle, the earliest time kept (else -inf): a new signal earlier
        # than it is one of the cap's excess at the next settle, whatever else comes (the kept ones
        # stay until then, each later than it), so the store drops it at once (see ``add``)
        self.floor = float("-inf")


_first = operator.itemgetter(0)
_rule = operator.itemgetter(1)
_fingerprint = operator.itemgetter(2)


def _earliest(runs: list[list[Signal]], k: int) -> list[int]:
    """How many of each run (sorted, not empty) are among the ``k`` earliest signals of all, the
    runs merged in order (an earlier run's signal before an equal later one's)."""
    if k >= sum(map(len, runs)):
        return [len(r) for r in runs]
    if len(runs) == 1:
        return [k]
    # the k-th earliest time; each run's signals before it are among its first k
    t = sorted(map(_first, itertools.chain.from_iterable(r[:k] for r in runs)))[k - 1]
    cuts = [bisect.bisect_left(r, t, key=_first) for r in runs]
    need = k - sum(cuts)  # (at least one of the signals at time t)
    at_t = [
        (x, i)
        for i, r in enumerate(runs)
        for x in r[cuts[i] : bisect.bisect_right(r, t, cuts[i], key=_first)]
    ]
    at_t.sort()  # whole signals, then the run: what merging the runs yields first
    for _, i in at_t[:need]:
        cuts[i] += 1
    return cuts


def _sort(signals: list[Signal]) -> None:
    """``signals.sort()``, faster: by time alone (a float compares quickly, a signal field by field),
    then each run of equal times by whole signals (both sorts stable, so ties keep their order)."""
    signals.sort(key=_first)
    if len(set(map(_first, signals))) == len(signals):
        return
    times = list(map(_first, signals))
    for t, k in Counter(times).items():
        if k > 1:
            i = bisect.bisect_left(times, t)
            signals[i : i + k] = sorted(signals[i : i + k])


@functools.lru_cache(maxsize=64)
def _get(keys: tuple[str, ...]) -> Any:
    """The values of these join keys of a signal, as one value per key set (operator.attrgetter)."""
    return operator.attrgetter(*keys)


class MemorySignalStore:
    """Signals per cluster in time order, bounded in count and age.

    Adding is amortised O(1) whatever the order of the times: a signal waits in its cluster's
    pending list and is merged into the sorted per-rule lists, and the bounds applied, when a query
    needs it (or every ``SETTLE_EVERY`` signals). That is exact: the signals kept after any sequence
    of adds are the ``max_per_cluster`` latest of those within ``max_age`` of the newest, which is
    what trimming after every add keeps, and a repeated fingerprint settles first so it is compared
    with the signals trimming after every add would have kept. A cluster at its cap drops a new
    signal earlier than every kept one when it is added, as trimming after that add would: in a
    stream of shuffled times most signals are such, and they never wait, sort or merge."""

    SETTLE_EVERY = 2048  # signals a cluster may hold beyond its bounds until they are applied

    def __init__(
        self, max_per_cluster: int = 5_000, max_age: float = DEFAULT_WINDOW, max_marks: int = 100_000
    ):
        self.max_per_cluster = max_per_cluster
        self.max_age = max_age
        self.max_marks = max_marks
        self._clusters: dict[str, _ClusterSignals] = {}
        self._marks: dict[str, tuple[int, float]] = {}
        self.rule_keys = 0  # (cluster, rule) pairs that have had a signal: grows with rules()
        # bounds that can empty a cluster: the newest signal may go, so settle after every add
        self._settle_every = self.SETTLE_EVERY if max_per_cluster >= 1 and max_age >= 0 else 1

    def add(self, cluster: str, signal: Signal) -> None:
        c = self._clusters.get(cluster)
        if c is None:
            c = self._clusters[cluster] = _ClusterSignals()
        fp = signal[2]  # (the fingerprint, and below the rule: read by index, the cheaper way)
        fps = c.fps
        if fp and fp in fps:
            self._settle(c)  # the earlier signal may be past a bound: then this one is new
            if fp in fps:
                return  # the same finding again (a repeat the dedup window let through)
        rid = signal[1]
        latest = c.latest
        if signal[0] < c.floor and rid in latest:
            # what the next settle would drop, dropped now (no query could see it: a query of its
            # rule settles first); a new rule takes the usual way, which gives it its key
            return
        fps.add(fp)
        waiting = c.pending.get(rid)
        if waiting is None:
            waiting = c.pending[rid] = []
            if rid not in latest:
                c.by_rule[rid] = []
                c.latest[rid] = signal[0]
                self.rule_keys += 1
        waiting.append(signal)
        c.waiting += 1
        if c.waiting >= self._settle_every:
            self._settle(c)

    def _settle(self, c: _ClusterSignals) -> None:
        """Merge the pending signals into the per-rule lists, and drop what is past a bound: older
        than max_age before the newest, and the earliest beyond max_per_cluster.

        What a bound drops goes before merging: each rule's list and its pending signals (sorted)
        are two runs, merging keeps a listed signal before an equal pending one, and the earliest
        of all are a head of each run, found by time (the excess-th earliest time among the runs'
        heads) and, among the signals of that time, by whole signals. A cluster at its cap merges
        only what stays (out of order times: most pending signals may be past the cap)."""
        if not c.waiting:
            return
        by_rule, latest = c.by_rule, c.latest
        added, c.pending = c.pending, {}
        waited, c.waiting = c.waiting, 0
        newest = c.newest
        for rid, new in added.items():
            if len(new) > 1:
                _sort(new)  # stable: equal signals keep their arrival order
            top = new[-1][0]
            if top > latest[rid]:
                latest[rid] = top
            if top > newest:
                newest = top
        c.size += waited
        oldest = newest - self.max_age
        # a list can hold signals too old only where one was added, unless the newest time moved on
        aged = by_rule if newest > c.trimmed_at else added
        c.newest = c.trimmed_at = newest
        gone: list[list[Signal]] = []  # runs of signals dropped
        runs: list[list[Signal]] = []  # each rule's list, then its pending signals
        for rid, rl in by_rule.items():
            if rl:
                if rid in aged and rl[0][0] < oldest:
                    cut = bisect.bisect_left(rl, (oldest,))
                    gone.append(rl[:cut])
                    del rl[:cut]
                runs.append(rl)
            waited_rid = added.get(rid)
            if waited_rid:
                if waited_rid[0][0] < oldest:
                    cut = bisect.bisect_left(waited_rid, (oldest,))
                    gone.append(waited_rid[:cut])
                    del waited_rid[:cut]
                runs.append(waited_rid)
        excess = c.size - sum(map(len, gone)) - self.max_per_cluster
        if excess > 0:
            runs = [r for r in runs if r]
            cuts = _earliest(runs, excess)
            for r, k in zip(runs, cuts, strict=True):
                if k:
                    gone.append(r[:k])
                    del r[:k]
        for rid, new in added.items():
            if not new:
                continue
            rl = by_rule[rid]
            if len(new) < 64:
                # a few (a query settles after each signal while a chain is live): each inserted in
                # O(log n) comparisons, where sorting would compare along the whole list
                for s in new:
                    if rl and s < rl[-1]:
                        bisect.insort(rl, s)
                    else:
                        rl.append(s)
            elif rl and new[0] < rl[-1]:
                # what precedes the earliest new one stays in place: the rest and the new sorted
                at = bisect.bisect_right(rl, new[0])
                tail = rl[at:] + new
                tail.sort()  # two sorted runs: merged in linear time
                rl[at:] = tail
            else:
                rl += new
        if gone:
            fps = c.fps
            for g in gone:
                c.size -= len(g)
                fps.difference_update(map(_fingerprint, g))
            c.newest = c.trimmed_at = max((rl[-1][0] for rl in by_rule.values() if rl), default=float("-inf"))
        c.floor = (
            min((rl[0][0] for rl in by_rule.values() if rl), default=float("-inf"))
            if c.size >= self.max_per_cluster
            else float("-inf")
        )

    def between(
        self, cluster: str, start: float, end: float, rules: frozenset[str] | None = None, limit: int = 0
    ) -> list[Signal]:
        """Signals of the cluster in [start, end] in time order: of these rules only when given, the
        latest ``limit`` of them when limit > 0."""
        c = self._clusters.get(cluster)
        out: list[Signal] = []
        if c is None or (rules is not None and rules.isdisjoint(c.by_rule)):
            return out  # (a cluster's signals come from a few rules)
        if c.waiting:
            self._settle(c)
        by_rule = c.by_rule
        if rules is None:
            for rid in list(c.records):
                self.read_records(cluster, rid)
            lst = sorted(itertools.chain.from_iterable(by_rule.values()))
            window = lst[bisect.bisect_left(lst, (start,)) : bisect.bisect_right(lst, (end, "\uffff"))]
            return window[-limit:] if limit else window
        for rid in rules:
            rl = by_rule.get(rid)
            if rl:
                hi = bisect.bisect_right(rl, (end, "\uffff"))
                lo = bisect.bisect_left(rl, (start,), 0, hi)
                if limit:
                    lo = max(lo, hi - limit)
                part = rl[lo:hi]
                out += _read(rl, lo, part) if rid in c.records and tuple in map(type, part) else part
        out.sort()
        return out[-limit:] if limit else out

    def rules(self, cluster: str) -> Collection[str]:
        """The rules of every signal the cluster has had (its signals of some may be gone since)."""
        c = self._clusters.get(cluster)
        return c.latest.keys() if c is not None else ()

    def recent(
        self, cluster: str, start: float, end: float, rules: frozenset[str], limit: int
    ) -> list[Signal]:
        """Signals, in no order, that include ``between(cluster, start, end, rules, limit)``: per
        rule, the latest ``limit`` in [start, end] of its list, not settled unless a pending signal
        is of these rules. A settle then would only drop an earlier part of each list (signals past
        the age bound or the earliest beyond the cap), so the latest of a list in a range include
        the latest of what settling keeps, and those include between's."""
        c = self._clusters.get(cluster)
        out: list[Signal] = []
        if c is None:
            return out
        if c.waiting and not rules.isdisjoint(c.pending):
            self._settle(c)
        latest, by_rule = c.latest, c.by_rule
        for rid in rules:
            t = latest.get(rid)
            if t is not None and t >= start:
                rl = by_rule[rid]
                hi = bisect.bisect_right(rl, (end, "\uffff"))
                lo = bisect.bisect_left(rl, (start,), max(0, hi - limit), hi)
                part = rl[lo:hi]
                out += _read(rl, lo, part) if rid in c.records and tuple in map(type, part) else part
        return out

    def read_records(self, cluster: str, rule_id: str) -> None:
        """Every signal record of the rule in the cluster made its Signal (a chain of the rule can
        match now: its signals are read)."""
        c = self._clusters.get(cluster)
        if c is not None and rule_id in c.records:
            c.records.discard(rule_id)
            for rl in (c.by_rule.get(rule_id), c.pending.get(rule_id)):
                if rl:
                    _read(rl, 0, rl[:])

    def emitted(self, key: str) -> tuple[int, float] | None:
        return self._marks.get(key)

    def mark(self, key: str, steps: int, first: float) -> None:
        if len(self._marks) >= self.max_marks:
            self._marks.clear()
        self._marks[key] = (steps, first)


def _read(rl: list[Any], lo: int, part: list[Any]) -> list[Signal]:
    """``part``, the slice of ``rl`` from ``lo``, each signal record (Correlator.observe_event's)
    in it replaced by its Signal, in the list too: a signal read twice is the same object."""
    for i, x in enumerate(part):
        if type(x) is tuple:
            part[i] = rl[lo + i] = _signal_of_record(x)
    return part


def _signal_of_record(r: tuple[float, str, str, str, str, str, str, str]) -> Signal:
    """The Signal of a record ``(time, rule id, fingerprint, time text, identity, namespace, pod
    name or "", message)``: what observe_event would have made (signal_of_finding's)."""
    t, rid, fp, text, user, ns, name, message = r
    if name:
        return _new_signal(
            Signal, (t, rid, fp, text, user, f"{ns}/{name}", message, f"{ns}/{workload_of_pod(name)}")
        )
    return _new_signal(Signal, (t, rid, fp, text, user, "", message, ""))


def _incident_key(chain: Chain, cluster: str, joined: str) -> str:
    """The key of an incident's emitted mark: one incident per chain, cluster and join value."""
    return "\x1f".join((chain.id, cluster, joined))


class Correlator:
    def __init__(self, chains: list[Chain] | None = None, store: SignalStore | None = None,
                 enabled: set[str] | None = None) -> None:  # fmt: skip
        self.chains = [c for c in (chains if chains is not None else load_chains())
                       if enabled is None or c.id in enabled]  # fmt: skip
        longest = max((c.window for c in self.chains), default=DEFAULT_WINDOW)
        self.store = store if store is not None else MemorySignalStore(max_age=longest + SKEW)
        self._by_rule: dict[str, list[Chain]] = {}
        for c in self.chains:
            for rid in set().union(*(s.rules for s in c.steps)):
                self._by_rule.setdefault(rid, []).append(c)
        self.signals = 0
        self.sequences = 0
        # posture facts (a scan's findings): timeless, per cluster and workload
        self._posture: dict[str, dict[str, list[Signal]]] = {}
        # the rules a cluster has had signals and posture facts of (the signals' from the store, when
        # it keeps them): chains with too few steps of these are not evaluated
        self._rules_of = self.store.rules if isinstance(self.store, MemorySignalStore) else None
        # the store when it is a MemorySignalStore, whose usual add observe_event makes in place
        self._memory = self.store if type(self.store) is MemorySignalStore else None
        # _may_match's look at a step's latest signals: between's, or a superset found cheaper
        self._recent = self.store.recent if isinstance(self.store, MemorySignalStore) else self.store.between
        self._posture_rules: dict[str, set[str]] = {}
        # _chains_for per cluster and rule, as of the store's rule_keys (cleared by a posture rule too)
        self._live: dict[str, dict[str, list[Chain]]] = {}  # cluster -> rule -> its chains
        self._live_at = -1
        # observe_event's last cluster in a MemorySignalStore: (name, its signals, its _live dict,
        # the store's rule_keys then: the dict is _live's only while they have not grown)
        self._at: tuple[Any, Any, Any, int] = (None, None, None, -1)
        self._bound_plans: dict[tuple[str, str], Any] = {}

    def add_posture(
        self, cluster: str, rule_id: str, workload: str, fingerprint: str, message: str
    ) -> list[dict[str, Any]]:
        """A posture finding about a workload (from a scan): true at any time, so it can be the
        step of a chain whatever the events' times; returns the chains it completes with the
        signals already seen."""
        if rule_id not in self._by_rule:
            return []
        facts = self._posture.setdefault(cluster, {}).setdefault(workload, [])
        if any(f.rule_id == rule_id for f in facts) or len(facts) >= 64:
            return []
        facts.append(Signal(0.0, rule_id, fingerprint, "", "", "", message, workload))
        self._posture_rules.setdefault(cluster, set()).add(rule_id)
        self._live.clear()
        self._at = (None, None, None, -1)
        out: list[dict[str, Any]] = []
        for chain in self._by_rule[rule_id]:
            others = frozenset(chain.rules - {rule_id})
            seen = self.store.between(cluster, float("-inf"), float("inf"), others)
            for sig in [x for x in seen if x.workload == workload][-MAX_CANDIDATES:]:
                out += self._evaluate([chain], cluster, sig)
        return out

    def _candidates(
        self, cluster: str, lo: float, hi: float, rules: frozenset[str], s: Signal
    ) -> list[Signal]:
        """The latest signals of a step, plus the latest that share the new signal's pod,
        identity or workload (in a busy cluster its partners may be older than the latest few),
        plus the posture facts about its workload (dated at the new signal's time)."""
        facts = self._posture.get(cluster, {}).get(s.workload, ()) if s.workload else ()
        posture = [f._replace(time=s.time, time_text=POSTURE_TIME) for f in facts if f.rule_id in rules]
        wide = self.store.between(cluster, lo, hi, rules, 4 * MAX_CANDIDATES)
        latest = wide[-MAX_CANDIDATES:]
        pod, identity, workload = s.pod, s.identity, s.workload  # sharing its pod, identity or workload
        kin = [
            x
            for x in wide
            if (pod and x.pod == pod)
            or (identity and x.identity == identity)
            or (workload and x.workload == workload)
        ][-MAX_CANDIDATES:]
        return sorted(set(latest) | set(kin) | set(posture)) if kin or posture else latest

    def observe(self, finding: dict[str, Any] | Finding) -> list[dict[str, Any]]:
        """Sequence findings completed or grown by this finding (usually none): its JSON record or
        the finding itself."""
        if isinstance(finding, Finding):
            if finding.rule_id not in self._by_rule:
                return []
            sig = signal_of_finding(finding)
        else:
            sig = signal_of(finding) if finding.get("ruleId", "") in self._by_rule else None
        if sig is None:
            return []
        cluster, s = sig
        self.signals += 1
        store = self.store
        store.add(cluster, s)
        chains = self._by_rule[s.rule_id] if self._rules_of is None else self._live_chains(cluster, s.rule_id)
        return self._evaluate(chains, cluster, s) if chains else []

    def _live_chains(self, cluster: str, rule_id: str) -> list[Chain]:
        """_chains_for(cluster, rule_id), remembered until the store has a signal of a (cluster,
        rule) it had none of (its rule_keys grow): then a chain's steps may have candidates."""
        lc = self._live_of(cluster)
        chains = lc.get(rule_id)
        if chains is None:
            chains = lc[rule_id] = self._chains_live(cluster, rule_id)
        return chains

    def _chains_live(self, cluster: str, rule_id: str) -> list[Chain]:
        """_chains_for(cluster, rule_id); when it is none, the rule's signals may be kept as records
        (observe_event), and when it is some, the records of their rules are made Signals: those
        chains' steps are read. (A rule that has had a signal shares each chain's liveness with
        every other such rule of the chain: _chains_for counts the same steps for both. So a
        chain's rules have no records while it can match, and matching reads no record.)"""
        chains = self._chains_for(cluster, rule_id)
        memory = self._memory
        c = memory._clusters.get(cluster) if memory is not None else None
        if c is not None:
            if not chains:
                c.records.add(rule_id)
            elif c.records:
                for chain in chains:
                    for r in chain.rules & c.records:
                        memory.read_records(cluster, r)  # type: ignore[union-attr]
        return chains

    def observe_event(self, findings: list[Finding], text: str, t: float | None) -> list[dict[str, Any]]:
        """``observe`` of each finding in turn, the sequences of all in order: the findings an audit
        event raised, whose time ``text`` (its timestamp) reads as ``t`` (detect.event.parse_time).
        One loop: an audit finding's signal made in place, from what its event's findings share
        (the event's reference, time, pod and workload: worked out once per reference), and given
        to the store in place when it is a MemorySignalStore and the signal would only wait in it
        (MemorySignalStore.add's usual case: a new fingerprint of a rule with pending signals)."""
        by_rule = self._by_rule
        memory = self._memory
        last_wait = memory._settle_every - 1 if memory is not None else 0  # (then add settles)
        out: list[dict[str, Any]] = []
        # (the rest set at an event's first finding, before any use: last is no event, cluster none)
        last: Any = _NO_EVENT
        ftext: Any = None
        pod: str | None  # (and workload: made when a signal is, from ns and name)
        cluster: Any = None
        c: Any = None  # the cluster's signals in a MemorySignalStore
        live: Any  # its chains per rule (_live_chains's)
        n = 0
        for f in findings:
            rid = f.rule_id
            if rid not in by_rule:
                continue  # (most findings in a real stream: no chain's step)
            e = f.event
            if e is not last or f.time != ftext:
                if e is None or e.source != "k8saudit":
                    out += self.observe(f)
                    last = _NO_EVENT
                    cluster = None  # (its signal may have grown the store's rule_keys: look again)
                    continue
                ftext = f.time
                w = t if ftext == text and t is not None and ftext else _time(ftext)
                if w is None:
                    last = _NO_EVENT  # no usable time: no signal (signal_of_finding's None)
                    continue
                if type(ftext) is not str:
                    ftext = str(ftext)
                when = w
                last = e
                user = e.user
                ns = e.namespace
                name = e.name if e.resource == "pods" else ""
                pod = None
                if e.cluster is not cluster:
                    cluster = e.cluster
                    at = self._at
                    if at[0] == cluster and at[3] == memory.rule_keys:  # type: ignore[union-attr]
                        c, live = at[1], at[2]  # (as the last call left them)
                    else:
                        c = memory._clusters.get(cluster) if memory is not None else None
                        if c is not None:
                            live = self._live_of(cluster)
                            self._at = (cluster, c, live, self._live_at)
            fp = f._fingerprint
            if fp is None:
                fp = f.fingerprint
            n += 1
            if (
                c is not None
                and fp
                and fp not in c.fps
                and ((waiting := c.pending.get(rid)) is not None or (when < c.floor and rid in c.latest))
                and c.waiting < last_wait
            ):
                # MemorySignalStore.add's way when the signal only waits or is dropped: no settle, no
                # new rule (a rule with no pending signal is in latest: its key is there already)
                chains = live.get(rid)
                if chains is None:
                    chains = live[rid] = self._chains_live(cluster, rid)
                if not chains:
                    if when < c.floor:
                        continue  # (add's drop: the next settle would drop it)
                    c.fps.add(fp)
                    c.waiting += 1
                    # no chain can match with it now: the signal's record, made a Signal when read
                    waiting.append((when, rid, fp, ftext, user, ns, name, f.message))  # type: ignore[union-attr]
                    continue
                if waiting is not None:
                    c.fps.add(fp)
                    c.waiting += 1
            else:
                waiting = None
            if pod is None:
                pod, workload = (f"{ns}/{name}", f"{ns}/{workload_of_pod(name)}") if name else ("", "")
            # (Signal's own __new__ is a Python function: the tuple made directly, field for field)
            s = _new_signal(Signal, (when, rid, fp, ftext, user, pod, f.message, workload))
            if waiting is not None:
                waiting.append(s)
            else:
                self.store.add(cluster, s)
                chains = by_rule[rid] if self._rules_of is None else self._live_chains(cluster, rid)
                if memory is not None:
                    c = memory._clusters.get(cluster)
                    live = self._live_of(cluster)
                    self._at = (cluster, c, live, self._live_at)
            if chains:
                out += self._evaluate(chains, cluster, s)
        self.signals += n
        return out

    def _live_of(self, cluster: str) -> dict[str, list[Chain]]:
        """_live_chains's chains per rule of a cluster, valid until the store's rule_keys grow."""
        if self._live_at != self.store.rule_keys:  # type: ignore[attr-defined]
            self._live.clear()
            self._live_at = self.store.rule_keys  # type: ignore[attr-defined]
        lc = self._live.get(cluster)
        if lc is None:
            lc = self._live[cluster] = {}
        return lc

    def _chains_for(self, cluster: str, rule_id: str) -> list[Chain]:
        """The chains a signal of this rule could make match in this cluster: those with at least
        min_steps steps that hold the rule or a rule the cluster has had a signal or posture fact of
        (a step of none has no candidate but the new signal, whatever the window)."""
        assert self._rules_of is not None
        had = {*self._rules_of(cluster), *self._posture_rules.get(cluster, ())}
        return [
            c for c in self._by_rule[rule_id]
            if sum(1 for st in c.steps if rule_id in st.rules or not had.isdisjoint(st.rules)) >= c.min_steps
        ]  # fmt: skip

    def _may_match(
        self, chain: Chain, cluster: str, lo: float, hi: float, s: Signal
    ) -> tuple[int, int] | None:
        """None when no match of the chain with the new signal can reach min_steps, else the most
        steps it can have and the first step it can start at: _best_match's search bounded from
        above, without gathering the candidates (most of a signal's cost).

        A step counts when the new signal can stand at it (it has the step's join keys), or when
        it has a signal or posture fact in the window that could stand beside the new one at one
        of the new one's steps: the step's join keys set, equal to the new signal's where both
        steps join on a key (or the new one's step is the first, which binds every key it has),
        another event than the new one's, within the window of it, and, in an ordered chain, not
        more than SKEW on the wrong side of it. Every step of a match has such a candidate, and
        the candidates of a step (_candidates) are among the latest 4 * MAX_CANDIDATES signals of
        its rules in [lo, hi], which are among the latest of those in any narrower range."""
        own_steps, partners = self._bound_plan(chain, s.rule_id)
        own = [p for p, same in own_steps if all(getattr(s, k) for k in same)]
        if not own:
            return None  # the new signal can stand at none of its steps: no match contains it
        n = len(chain.steps)
        need = chain.min_steps - len(own)
        if need <= 0:
            return n, 0
        left = n - len(own)
        start = own[0]
        t, window = s.time, chain.window
        ek = (t, s.pod, s.identity)
        facts = self._posture.get(cluster, {}).get(s.workload, ()) if s.workload else ()
        recent = self._recent
        for j, rules, same, by_own in partners:
            if j in own:
                continue
            left -= 1
            # per step the new signal stands at: the times a partner may have, the keys it must share
            ways = []
            for p, after, shared in by_own:
                if p not in own:
                    continue
                a, b = max(lo, t - window), min(hi, t + window)
                if after is True:
                    a = max(a, t - SKEW)
                elif after is False:
                    b = min(b, t + SKEW)
                if a > b:
                    continue
                if shared is None:  # the first step: the new signal binds every key it has
                    shared = tuple(k for k in same if getattr(s, k))
                get = _get(shared) if shared else None
                ways.append((a, b, get(s) if get else None, get))
            if ways and self._partner(cluster, rules, same, ways, ek, facts, t, recent):
                need -= 1
                start = min(start, j)
                if need <= 0:
                    return chain.min_steps + left, start
            if left < need:
                return None
        return None

    def _surely_kept_back(self, chain: Chain, cluster: str, s: Signal, most: int, start: int) -> bool:
        """Whether _evaluate would not emit whatever match _best_match finds (of at most ``most``
        steps, from step ``start`` on): the chain was emitted for its key (the new signal's join
        value when the match can start nowhere before the new signal's one step) within a window
        of the new signal, which the match's first step is not later than, and the match cannot
        complete a chain emitted incomplete."""
        k = chain.join_keys[0] if chain.join_keys else ""
        if k:
            own = [p for p, st in enumerate(chain.steps) if s.rule_id in st.rules]
            if len(own) != 1 or start != own[0] or not getattr(s, k):
                return False
            joined = getattr(s, k)
        else:
            joined = ""
        prev = self.store.emitted(_incident_key(chain, cluster, joined))
        n = len(chain.steps)
        return prev is not None and s.time <= prev[1] + chain.window and (prev[0] >= n or most < n)

    def _bound_plan(
        self, chain: Chain, rule_id: str
    ) -> tuple[tuple[tuple[int, tuple[str, ...]], ...], tuple[Any, ...]]:
        """_may_match's view of a chain for a signal of this rule, computed once: the steps of the
        rule with their join keys; per step, for each of those (p): whether the step comes after
        p (None in an unordered chain) and the join keys both share (None when p is the first)."""
        plan = self._bound_plans.get((chain.id, rule_id))
        if plan is None:
            steps = chain.steps
            own = tuple((p, st.same) for p, st in enumerate(steps) if rule_id in st.rules)
            partners = tuple(
                (j, st.rules, st.same, tuple(
                    (p, (j > p) if chain.ordered else None,
                     tuple(k for k in st.same if k in steps[p].same) if p else None)
                    for p, _ in own if p != j
                ))
                for j, st in enumerate(steps)
            )  # fmt: skip
            plan = self._bound_plans[(chain.id, rule_id)] = (own, partners)
        return plan

    @staticmethod
    def _partner(
        cluster: str,
        rules: frozenset[str],
        same: tuple[str, ...],
        ways: list[tuple[float, float, Any, Any]],
        ek: tuple[float, str, str],
        facts: Any,
        t: float,
        recent: Any,
    ) -> bool:
        """Whether a signal of these rules (or a posture fact, dated t) can stand beside the new
        one in one of these ways (a time range, keys and the values they must have)."""
        start, end = min(w[0] for w in ways), max(w[1] for w in ways)
        found = recent(cluster, start, end, rules, 4 * MAX_CANDIDATES)
        if facts:
            found = found + [f._replace(time=t, time_text=POSTURE_TIME) for f in facts if f.rule_id in rules]
        for x in found:
            xt = x.time
            if xt < start or xt > end:
                continue
            for a, b, values, get in ways:
                if a <= xt <= b and (get is None or get(x) == values):
                    if all(getattr(x, k) for k in same) and (xt, x.pod, x.identity) != ek:
                        return True
        return False

    def _evaluate(self, chains: list[Chain], cluster: str, s: Signal) -> list[dict[str, Any]]:
        out = []
        for chain in chains:
            lo, hi = s.time - chain.window - SKEW, s.time + chain.window + SKEW
            bound = self._may_match(chain, cluster, lo, hi, s)
            if bound is None or self._surely_kept_back(chain, cluster, s, *bound):
                continue  # _best_match would find no match of min_steps, or none emitted
            cands = [self._candidates(cluster, lo, hi, st.rules, s) for st in chain.steps]
            match = _best_match(chain, cands, s)
            if match is None or sum(1 for m in match if m) < chain.min_steps:
                continue
            steps = [(chain.steps[i], m) for i, m in enumerate(match) if m is not None]
            first = min(m.time for _, m in steps)
            # one incident per chain, cluster and its first join key (the identity or the pod): raised
            # at min_steps, raised again when every step has matched, and anew a window later
            k = chain.join_keys[0] if chain.join_keys else ""
            joined = next((getattr(m, k) for _, m in steps if getattr(m, k)), "") if k else ""
            key = _incident_key(chain, cluster, joined)
            prev = self.store.emitted(key)
            complete = len(steps) == len(chain.steps)
            if (
                prev is not None
                and first <= prev[1] + chain.window
                and not (complete and prev[0] < len(steps))
            ):
                continue
            self.store.mark(key, len(steps), first)
            self.sequences += 1
            out.append(sequence_finding(chain, cluster, steps))
        return out


def _best_match(chain: Chain, cands: list[list[Signal]], new: Signal) -> list[Signal | None] | None:
    """The match with the most steps that includes ``new`` (bounded depth-first search over the
    latest candidates of each step)."""
    n = len(chain.steps)
    for i, st in enumerate(chain.steps):
        if new.rule_id in st.rules and new not in cands[i]:
            cands[i] = [*cands[i][1:], new]
    if sum(1 for c in cands if c) < chain.min_steps:
        return None  # not enough steps have any candidate: no search
    best: list[Signal | None] | None = None
    best_n = 0
    budget = [MAX_NODES]
    taken: set[tuple[float, str, str]] = set()
    last_new = max(i for i, st in enumerate(chain.steps) if new.rule_id in st.rules)
    has_new = [False]

    def dfs(
        i: int,
        chosen: list[Signal | None],
        bound: dict[str, str],
        lo: float,
        hi: float,
        last: float,
        got: int,
    ) -> None:
        nonlocal best, best_n
        budget[0] -= 1
        if i > last_new and not has_new[0]:
            return  # every match must contain the new signal
        if i == n:
            if new in chosen and got > best_n:
                best, best_n = list(chosen), got
            return
        if budget[0] <= 0 or got + (n - i) <= best_n or best_n == n:
            return
        st = chain.steps[i]
        for s in cands[i]:
            # two findings of one event (same time, pod and actor) are one observation, not two steps
            ek = (s.time, s.pod, s.identity)
            if ek in taken:
                continue
            if chain.ordered and s.time < last - SKEW:
                continue
            nlo, nhi = min(lo, s.time), max(hi, s.time)
            if nhi - nlo > chain.window:
                continue
            ok, nb = True, bound
            for k in JOIN_KEYS:
                v = getattr(s, k)
                if k in st.same:
                    if not v or (bound.get(k) and bound[k] != v):
                        ok = False
                        break
                if v and k not in bound:
                    nb = {**nb, k: v}
            if not ok:
                continue
            chosen.append(s)
            taken.add(ek)
            was = has_new[0]
            has_new[0] = was or s is new
            dfs(i + 1, chosen, nb, nlo, nhi, max(last, s.time) if chain.ordered else last, got + 1)
            has_new[0] = was
            taken.discard(ek)
            chosen.pop()
        chosen.append(None)
        dfs(i + 1, chosen, bound, lo, hi, last, got)
        chosen.pop()

    dfs(0, [], {}, float("inf"), float("-inf"), float("-inf"), 0)
    return best


def sequence_finding(chain: Chain, cluster: str, steps: list[tuple[Step, Signal]]) -> dict[str, Any]:
    steps = sorted(steps, key=lambda x: x[1].time)
    last = [m for _, m in steps if m.time_text != POSTURE_TIME][-1]
    identity = next((s.identity for _, s in steps if s.identity), "")
    pod = next((s.pod for _, s in steps if s.pod), "")
    ns, _, name = pod.partition("/")
    story = " -> ".join(f"{st.name} ({s.rule_id} {s.time_text})" for st, s in steps)
    evidence = [
        (f"steps[{i}]", {"step": st.name, "ruleId": s.rule_id, "time": s.time_text, "fingerprint": s.fingerprint,
                         "message": s.message})
        for i, (st, s) in enumerate(steps)
    ]  # fmt: skip
    first_fp = min(steps, key=lambda x: x[1].time)[1].fingerprint
    return build_finding(
        chain.spec,
        message=f"{chain.title}: {len(steps)} of {len(chain.steps)} steps: {story}",
        time=last.time_text,
        cluster=cluster,
        source="sequence",
        subject={"user": identity or None, "verb": "sequence", "resource": "pods" if pod else None,
                 "namespace": ns or None, "name": name or None},
        evidence=evidence,
        fingerprint_parts=(first_fp, str(len(steps))),
        extra={"sequence": {"id": chain.id, "guardduty": chain.guardduty, "steps": len(steps),
                            "of": len(chain.steps)}},
    )  # fmt: skip
