"""Attack sequences (KS-SEQ-*, data/sequences.yaml): each chain fires on its bundled example in
examples/detect/, in any input order, names every step with the step finding's fingerprint and time,
and does not fire when the join keys or the window do not hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.detect.pipeline import DetectConfig, IPList, IPLists, Pipeline
from kubestrata.detect.router import DetectRouter
from kubestrata.detect.sequences import Correlator, MemorySignalStore, load_chains
from kubestrata.errors import KubestrataError

EX = Path(__file__).resolve().parents[2] / "examples" / "detect"
AUDIT, TETRAGON, FALCO, TRAIL = (str(EX / n) for n in
                                 ("attack.log", "runtime-tetragon.jsonl", "runtime-falco.jsonl", "cloudtrail-eks.json"))  # fmt: skip
runner = CliRunner()


def _run(*files: str, **kw: Any) -> list[dict[str, Any]]:
    tor = IPList.load(str(EX / "tor-exits.txt"))
    r = DetectRouter(Pipeline(DetectConfig(cluster="prod", ip_lists=IPLists(tor=tor), **kw)))
    out: list[dict[str, Any]] = []
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        if f.endswith(".json"):
            out += [x.to_dict() for x in r.process_obj(json.loads(data), f)]
        else:
            for line in data.splitlines():
                out += [x.to_dict() for x in r.process_line(line, f)]
    r.close()
    return out


def _seqs(found: list[dict[str, Any]], rid: str) -> list[dict[str, Any]]:
    return [f for f in found if f["ruleId"] == rid]


def test_compromised_cluster_across_audit_runtime_and_cloudtrail() -> None:
    found = _run(AUDIT, TETRAGON, TRAIL)
    seq = _seqs(found, "KS-SEQ-01")
    assert [s["sequence"]["steps"] for s in seq] == [3, 5]  # raised at min_steps, again when complete
    full = seq[-1]
    assert full["severity"] == "critical" and full["references"]["guardduty"] == [
        "AttackSequence:EKS/CompromisedCluster"
    ]
    steps = [e["value"] for e in full["evidence"]]
    assert [s["step"] for s in steps] == ["suspicious access", "secrets accessed", "command executed in a pod",
                                          "attacker activity in that pod", "cluster access granted"]  # fmt: skip
    by_fp = {f["fingerprint"]: f for f in found}
    for s in steps:  # every step names a finding of this run, with its time
        assert (
            by_fp[s["fingerprint"]]["ruleId"] == s["ruleId"] and by_fp[s["fingerprint"]]["time"] == s["time"]
        )
    assert steps[3]["ruleId"].startswith("KS-RUN-")
    assert (full["namespace"], full["name"]) == ("kube-system", "aws-node-7xk2p")
    assert full["user"] == "arn:aws:sts::111122223333:assumed-role/ci-deployer/i-0abc"


def test_order_of_inputs_does_not_matter() -> None:
    forward = {(f["ruleId"], f["sequence"]["steps"]) for f in _run(AUDIT, TETRAGON, TRAIL) if "sequence" in f}
    backward = {
        (f["ruleId"], f["sequence"]["steps"]) for f in _run(TRAIL, TETRAGON, AUDIT) if "sequence" in f
    }
    assert ("KS-SEQ-01", 5) in forward and ("KS-SEQ-01", 5) in backward


def test_container_breakout_from_runtime_events_alone() -> None:
    seq = _seqs(_run(TETRAGON), "KS-SEQ-02")
    assert [s["sequence"]["steps"] for s in seq] == [2, 3]
    assert {e["value"]["ruleId"] for e in seq[-1]["evidence"]} == {"KS-RUN-15", "KS-RUN-02", "KS-RUN-06"} or {
        e["value"]["step"] for e in seq[-1]["evidence"]} == {"foothold", "credential access", "escape attempt"}  # fmt: skip


def test_cryptojacking_audit_then_falco() -> None:
    seq = _seqs(_run(AUDIT, FALCO), "KS-SEQ-03")
    assert len(seq) == 1 and (seq[0]["namespace"], seq[0]["name"]) == ("kube-system", "node-debugger")
    assert [e["value"]["ruleId"][:6] for e in seq[0]["evidence"]] == ["KS-AUD", "KS-RUN"]


def test_privilege_escalation_from_audit_alone() -> None:
    seq = _seqs(_run(AUDIT), "KS-SEQ-04")
    assert len(seq) == 1 and seq[0]["sequence"]["steps"] == 3


def test_pod_join_is_required(tmp_path: Path) -> None:
    # the same runtime events, each in a pod of its own: no pod has two steps of a chain
    moved = []
    for i, line in enumerate(Path(TETRAGON).read_text().splitlines()):
        ev = json.loads(line)
        body = next(iter(v for k, v in ev.items() if k.startswith("process_")))
        if isinstance(body, dict) and "process" in body:
            body["process"]["pod"] = {**body["process"]["pod"], "name": f"aws-node-{i}"}
        moved.append(json.dumps(ev))
    (tmp_path / "moved.jsonl").write_text("\n".join(moved) + "\n")
    found = _run(str(tmp_path / "moved.jsonl"))
    assert {"KS-RUN-02", "KS-RUN-06", "KS-RUN-15"} <= {f["ruleId"] for f in found}
    assert _seqs(found, "KS-SEQ-02") == []


def test_identity_join_and_window() -> None:
    chains = load_chains()
    corr = Correlator(chains)

    def f(rid: str, t: str, user: str, fp: str) -> dict[str, Any]:
        return {"ruleId": rid, "time": t, "cluster": "c", "user": user, "fingerprint": fp, "message": rid}

    # KS-SEQ-04 steps by three different users: no sequence
    out = [*corr.observe(f("KS-AUD-N15", "2026-01-01T00:00:00Z", "a", "1")),
           *corr.observe(f("KS-AUD-G03", "2026-01-01T00:01:00Z", "b", "2")),
           *corr.observe(f("KS-AUD-N22", "2026-01-01T00:02:00Z", "c", "3"))]  # fmt: skip
    assert not out
    # the same user, but the last step two days later: outside the 24-hour window
    out = [*corr.observe(f("KS-AUD-N15", "2026-02-01T00:00:00Z", "u", "4")),
           *corr.observe(f("KS-AUD-G03", "2026-02-01T00:01:00Z", "u", "5")),
           *corr.observe(f("KS-AUD-N22", "2026-02-03T00:02:00Z", "u", "6"))]  # fmt: skip
    assert not out
    out = [*corr.observe(f("KS-AUD-N15", "2026-03-01T00:00:00Z", "v", "7")),
           *corr.observe(f("KS-AUD-G03", "2026-03-01T00:01:00Z", "v", "8")),
           *corr.observe(f("KS-AUD-N22", "2026-03-01T00:02:00Z", "v", "9"))]  # fmt: skip
    assert [s["ruleId"] for s in out] == ["KS-SEQ-04"]
    assert corr.observe(f("KS-AUD-N22", "2026-03-01T00:03:00Z", "v", "10")) == []  # the same incident


def test_no_sequences_flag_and_min_severity(tmp_path: Path) -> None:
    args = ["detect", "replay", AUDIT, TETRAGON, TRAIL, "--tor-exit-list", str(EX / "tor-exits.txt"),
            "--cluster-name", "prod", "-o", "json", "--fail-on", "never"]  # fmt: skip
    r = runner.invoke(app, [*args, "--min-severity", "critical"])
    assert r.exit_code == 0, r.output
    crit = json.loads(r.stdout)
    assert {f["ruleId"] for f in crit} == {
        "KS-SEQ-01",
        "KS-SEQ-04",
    }  # the steps themselves are below critical
    r = runner.invoke(app, [*args, "--no-sequences"])
    assert not [f for f in json.loads(r.stdout) if f["ruleId"].startswith("KS-SEQ")]


def test_bad_chain_files_name_the_field(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    for text, msg in [
        (
            "- id: X\n  title: t\n  steps: [{name: a, rules: [KS-RUN-01], same: [node]}]\n",
            "same: unknown join key 'node'",
        ),
        ("- id: X\n  title: t\n  min_steps: 5\n  steps: [{name: a, rules: [KS-RUN-01]}]\n", "min_steps"),
        ("- id: X\n  steps: []\n", "missing 'title'"),
        ("{a: [1\n", "cannot read attack sequences"),
    ]:
        p.write_text(text)
        with pytest.raises(KubestrataError, match=msg.replace("[", r"\[")):
            load_chains(p)


def test_signal_store_is_bounded() -> None:
    store = MemorySignalStore(max_per_cluster=10, max_age=100.0)
    from kubestrata.detect.sequences import Signal

    for i in range(50):
        store.add("c", Signal(float(i), "KS-RUN-02", str(i), "", "", "ns/p", ""))
    kept = store.between("c", 0, 1000)
    assert len(kept) == 10 and kept[0].time == 40.0
    store.add("c", Signal(500.0, "KS-RUN-02", "x", "", "", "ns/p", ""))
    assert [s.time for s in store.between("c", 0, 1000)] == [500.0]  # older than max_age dropped


SCAN = str(EX / "demo-cluster-scan.json")


@pytest.mark.parametrize("order", ["scan-first", "events-first"])
def test_posture_scan_and_runtime_join_on_the_workload(order: str) -> None:
    files = (SCAN, TETRAGON) if order == "scan-first" else (TETRAGON, SCAN)
    seq = _seqs(_run(*files), "KS-SEQ-05")
    assert len(seq) == 1
    steps = [e["value"] for e in seq[0]["evidence"]]
    assert (
        steps[0]["ruleId"] == "KS-WL-001" and steps[0]["time"] == "(posture scan)"
    )  # aws-node is privileged
    assert steps[1]["ruleId"].startswith("KS-RUN-") and seq[0]["time"] == steps[1]["time"]
    assert (seq[0]["namespace"], seq[0]["name"]) == ("kube-system", "aws-node-7xk2p")


def test_posture_of_another_workload_does_not_join(tmp_path: Path) -> None:
    doc = json.loads(Path(SCAN).read_text())
    for f in doc["findings"]:
        if (f.get("object") or {}).get("name") == "aws-node":
            f["object"]["name"] = "aws-node-legacy"
    (tmp_path / "scan.json").write_text(json.dumps(doc))
    assert _seqs(_run(str(tmp_path / "scan.json"), TETRAGON), "KS-SEQ-05") == []


def test_bad_scan_report_is_counted() -> None:
    r = DetectRouter(Pipeline(DetectConfig(cluster="prod")))
    assert r.process_obj({"schemaVersion": 1, "tool": {}, "findings": "x"}, "scan") == []
    r.process_obj({"schemaVersion": 1, "tool": {}, "findings": [{"ruleId": "KS-WL-001"}, 7]}, "scan")
    assert r.stats.bad_total == 3


def test_workload_of_pod_names() -> None:
    from kubestrata.detect.sequences import workload_of_pod

    assert workload_of_pod("web-7d4b9c6f5-x2x7q") == "web"
    assert workload_of_pod("aws-node-7xk2p") == "aws-node"
    assert workload_of_pod("db-0") == "db"
    assert workload_of_pod("node-debugger") == "node-debugger"


def test_every_signal_record_is_the_one_finding_model_key_for_key():
    # runtime, CloudTrail and sequence findings travel as kubestrata Findings (store, sinks, report);
    # their JSON line is the record the engine built, key for key and in order
    from kubestrata.detect.emit import as_finding

    found = _run(AUDIT, TETRAGON, FALCO, TRAIL)
    signals = [f for f in found if f.get("source") in ("tetragon", "falco", "cloudtrail", "sequence")]
    assert {f["source"] for f in signals} == {"tetragon", "falco", "cloudtrail", "sequence"}
    for rec in signals:
        again = as_finding(rec).to_dict()
        assert list(again) == list(rec) and again == rec


SIGNAL_RULES = ["KS-AUD-N15", "KS-AUD-G03", "KS-AUD-N22", "KS-AUD-F11", "KS-AUD-G10", "KS-RUN-02",
                "KS-RUN-15", "KS-RUN-03", "KS-AUD-G43", "KS-CT-04", "KS-AUD-F01"]  # fmt: skip


def _signal_stream(seed: int, n: int) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        pod = rng.choice(["", "web-7d4b9c6f5-x2x7q", "db-0", "api-abcde"])
        out.append({
            "ruleId": rng.choice(SIGNAL_RULES), "time": f"2026-01-01T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
            "cluster": rng.choice(["", "prod"]), "user": rng.choice(["", "u", "v"]), "fingerprint": str(i),
            "resource": "pods" if pod else "secrets", "namespace": rng.choice(["", "ns"]), "name": pod or "s",
            "message": "m", "source": rng.choice([None, "tetragon"]),
        })  # fmt: skip
    return out


def _plain(c: Correlator) -> Correlator:
    """The correlator searching every chain of a signal's rule (no bound, no skipped chain)."""
    c._may_match = lambda *a: (99, -1)  # type: ignore[method-assign]
    c._surely_kept_back = lambda *a: False  # type: ignore[method-assign]
    c._chains_for = lambda cluster, rule_id: c._by_rule[rule_id]  # type: ignore[method-assign]
    return c


@pytest.mark.parametrize("seed", range(6))
def test_skipping_chains_that_cannot_match_changes_no_sequence(seed: int) -> None:
    """Correlator._chains_for and _may_match (a chain is not searched when too few of its steps
    can have a candidate) give the sequences a full search of every chain gives."""
    fast = Correlator(store=MemorySignalStore(max_per_cluster=60))
    full = _plain(Correlator(store=MemorySignalStore(max_per_cluster=60)))
    for f in _signal_stream(seed, 400):
        assert [s["fingerprint"] for s in fast.observe(f)] == [s["fingerprint"] for s in full.observe(f)]
    assert fast.sequences == full.sequences > 0


_BOUND_CHAINS = """
- {id: T-1, title: t1, min_steps: 3, window: 600, steps: [
    {name: a, rules: [A, B], same: [identity]}, {name: b, rules: [B, C], same: [identity]},
    {name: c, rules: [D], same: [pod]}, {name: d, rules: [E, A]}]}
- {id: T-2, title: t2, min_steps: 2, ordered: false, window: 300, steps: [
    {name: a, rules: [A, P]}, {name: b, rules: [C, E], same: [identity, pod]},
    {name: c, rules: [D, B], same: [workload]}]}
- {id: T-3, title: t3, min_steps: 2, steps: [
    {name: a, rules: [E], same: [pod]}, {name: b, rules: [P, C], same: [workload]},
    {name: c, rules: [A], same: [identity]}]}
- {id: T-4, title: t4, min_steps: 1, steps: [{name: a, rules: [B]}, {name: b, rules: [Q], same: [pod]}]}
- {id: T-5, title: t5, min_steps: 2, window: 900, steps: [
    {name: a, rules: [F]}, {name: b, rules: [G], same: [identity]}, {name: c, rules: [H], same: [identity]}]}
"""


@pytest.mark.parametrize("seed", range(40))
def test_may_match_never_skips_a_match(seed: int, tmp_path: Path) -> None:
    skipped, searched, sequences, _ = _bound_run(seed, tmp_path)
    assert skipped > 0 and searched > 0 and sequences > 0


def test_matches_surely_kept_back_are_skipped(tmp_path: Path) -> None:
    assert sum(_bound_run(seed, tmp_path)[3] for seed in range(4)) > 0


def _bound_run(seed: int, tmp_path: Path) -> tuple[int, int, int, int]:
    """Hostile streams (rules in two steps of a chain, join keys on the first step, unordered
    chains, out-of-order times around the skew and the window, events sharing time and actor,
    empty keys, posture facts, caps that bite): wherever _may_match or _chains_for skips a chain,
    the plain search (_candidates, _best_match) finds no match of min_steps; and the sequences
    (with the matches _surely_kept_back skips as certain not to be emitted) are those of the
    correlator that searches every chain."""
    import random

    from kubestrata.detect.sequences import SKEW, Signal, _best_match

    rng = random.Random(seed)
    path = tmp_path / "chains.yaml"
    path.write_text(_BOUND_CHAINS)
    chains = load_chains(path) + (load_chains() if seed % 2 else [])
    cap = rng.choice([5, 40, 5000])
    fast = Correlator(chains, MemorySignalStore(max_per_cluster=cap))
    full = _plain(Correlator(chains, MemorySignalStore(max_per_cluster=cap)))
    rules = ["A", "B", "C", "D", "E", "P", "Q", "F", "G", "H", "H", "KS-AUD-F50", "KS-AUD-F11", "KS-AUD-G03", "KS-RUN-02",
             "KS-AUD-N14", "KS-AUD-G02", "KS-AUD-G43"]  # fmt: skip
    skipped = searched = sequences = 0
    kept_back = [0]
    surely_kept_back = fast._surely_kept_back

    def counted(*a: Any) -> bool:
        kept_back[0] += surely_kept_back(*a)
        return surely_kept_back(*a)

    fast._surely_kept_back = counted  # type: ignore[method-assign]
    t = 1_767_225_600.0
    for i in range(300):
        t += rng.choice([0.0, 0.0, 1.0, 30.0, 200.0])
        when = t + rng.choice([0.0, 0.0, -SKEW, SKEW, -SKEW - 1, -350.0, -700.0, 90_000.0])
        cluster = rng.choice(["", "prod"])
        if rng.random() < 0.05:
            kind, workload = rng.choice(["P", "D", "KS-WL-001"]), rng.choice(["ns/web", "ns/db", ""])
            args = (cluster, kind, workload, f"p{i}", "m")
            assert fast.add_posture(*args) == full.add_posture(*args)
            continue
        sig = Signal(when, rng.choice(rules), rng.choice([str(i), str(i), "", str(rng.randrange(20))]), "x",
                     rng.choice(["", "u", "v"]), rng.choice(["", "ns/web-1", "ns/db-0"]), "m",
                     rng.choice(["", "ns/web", "ns/db"]))  # fmt: skip
        if sig.rule_id not in fast._by_rule:
            continue
        fast.store.add(cluster, sig)
        full.store.add(cluster, sig)
        # the bound, chain by chain, against the plain search over the store as the signal finds it
        live = fast._chains_for(cluster, sig.rule_id)
        for chain in fast._by_rule[sig.rule_id]:
            lo, hi = sig.time - chain.window - SKEW, sig.time + chain.window + SKEW
            cands = [fast._candidates(cluster, lo, hi, st.rules, sig) for st in chain.steps]
            match = _best_match(chain, cands, sig)
            if match is not None and sum(1 for m in match if m) >= chain.min_steps:
                assert chain in live and fast._may_match(chain, cluster, lo, hi, sig), (chain.id, sig)
                searched += 1
            elif chain not in live or not fast._may_match(chain, cluster, lo, hi, sig):
                skipped += 1
        got = fast._evaluate(live, cluster, sig)
        assert got == full._evaluate(full._by_rule[sig.rule_id], cluster, sig)
        sequences += len(got)
    return skipped, searched, sequences, kept_back[0]


def test_signal_of_a_finding_equals_signal_of_its_record() -> None:
    from kubestrata.detect.sequences import signal_of, signal_of_finding

    found = DetectRouter(Pipeline(DetectConfig(cluster="prod")), sequences=False)
    with open(AUDIT, "rb") as fh:
        findings = [f for line in fh for f in found.process_line(line, "a")]
    assert len(findings) > 10
    for f in findings:
        assert signal_of_finding(f) == signal_of(f.to_dict())


class _TrimEveryAdd:
    """The signal store as it was before settling was batched: one sorted list per cluster, trimmed
    after every add (the model MemorySignalStore must agree with)."""

    def __init__(self, max_per_cluster: int, max_age: float) -> None:
        self.max_per_cluster, self.max_age = max_per_cluster, max_age
        self.signals: dict[str, list[Any]] = {}
        self.fps: dict[str, set[str]] = {}

    def add(self, cluster: str, signal: Any) -> None:
        import bisect

        lst = self.signals.setdefault(cluster, [])
        fps = self.fps.setdefault(cluster, set())
        if signal.fingerprint and signal.fingerprint in fps:
            return
        bisect.insort(lst, signal)
        fps.add(signal.fingerprint)
        cut = bisect.bisect_left(lst, (lst[-1].time - self.max_age,))
        gone = lst[: max(cut, len(lst) - self.max_per_cluster)]
        del lst[: len(gone)]
        for g in gone:
            fps.discard(g.fingerprint)

    def between(self, cluster: str, start: float, end: float, rules: Any = None, limit: int = 0) -> list[Any]:
        out = [s for s in self.signals.get(cluster, []) if start <= s.time <= end
               and (rules is None or s.rule_id in rules)]  # fmt: skip
        return out[-limit:] if limit else out


@pytest.mark.parametrize("seed", range(24))
def test_signal_store_keeps_what_trimming_after_every_add_keeps(seed: int) -> None:
    """Out-of-order times, repeated and empty fingerprints, ties, several clusters and rules, bounds
    that bite (a cap of 0 and a negative age too), queries often or seldom (a few or many signals
    past the cap at a settle): every query answers as the trim-every-add model."""
    import random

    from kubestrata.detect.sequences import Signal

    rng = random.Random(seed)
    cap, age = rng.choice([(0, 50.0), (1, 50.0), (7, 30.0), (40, 100.0), (40, 1e9), (5, -1.0)])
    store, model = MemorySignalStore(max_per_cluster=cap, max_age=age), _TrimEveryAdd(cap, age)
    store.SETTLE_EVERY = rng.choice([1, 3, 16, 64, 1024])  # type: ignore[misc]
    asks = 0.3 if seed % 2 else 0.01
    # now and then no query nor repeated fingerprint for a long while: a settle meets hundreds of
    # one rule's signals at once (sorted and merged as a batch) and hundreds past the cap
    quiet = seed % 4 == 0
    if quiet:
        cap, age, asks = ((5000, 1e9) if seed % 8 == 0 else (90, 400.0)) + (0.003,)
        store, model = MemorySignalStore(max_per_cluster=cap, max_age=age), _TrimEveryAdd(cap, age)
        store.SETTLE_EVERY = 1024  # type: ignore[misc]
    store._settle_every = min(store._settle_every, store.SETTLE_EVERY)
    rules = ["A", "B"] if quiet else ["A", "B", "C", "D"]
    base = 0.0
    for i in range(3000 if quiet else 1200):
        base += rng.choice([0.0, 0.5, 2.0, 10.0])
        t = base + rng.choice([0.0, -5.0, -40.0, -200.0, 3.0])  # mostly in order, some late
        fp = rng.choice(["", str(i)] if quiet else ["", str(i), str(rng.randrange(40))])
        sig = Signal(t, rng.choice(rules), fp, "", rng.choice(["", "u"]), "", "m")
        cluster = "prod" if quiet else rng.choice(["", "prod"])
        store.add(cluster, sig)
        model.add(cluster, sig)
        if rng.random() < asks:
            lo = base - rng.choice([0.0, 20.0, 1000.0])
            hi = lo + rng.choice([0.0, 10.0, 1e6])
            want = (
                frozenset(rng.sample(rules, rng.randrange(1, min(4, len(rules) + 1))))
                if rng.random() < 0.8
                else None
            )
            limit = rng.choice([0, 1, 3])
            if want is not None and rng.random() < 0.5:  # (the superset, found without settling)
                recent = store.recent(cluster, lo, hi, want, limit or 24)
                assert set(recent) >= set(model.between(cluster, lo, hi, want, limit or 24))
                assert all(lo <= s.time <= hi and s.rule_id in want for s in recent)
                continue
            got = store.between(cluster, lo, hi, want, limit)
            assert got == model.between(cluster, lo, hi, want, limit)
            # settled, each rule's list is the model's signals of that rule, object for object
            store._settle(store._clusters[cluster])  # (between did unless no rule asked for was there)
            for rid, rl in store._clusters[cluster].by_rule.items():
                assert [id(x) for x in rl] == [id(x) for x in model.signals[cluster] if x.rule_id == rid]
    for cluster in ("", "prod"):
        assert store.between(cluster, float("-inf"), float("inf")) == model.between(
            cluster, float("-inf"), float("inf")
        )


_PART = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=5, max_size=11),  # replica set hashes and near ones
    st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=6),  # pod suffixes
    st.text(alphabet="0123456789٣", min_size=0, max_size=3),  # ordinals (Unicode digits too)
    st.text(alphabet=st.sampled_from(list("-a0f9gzZ5\né")), max_size=6),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_PART, max_size=4).map("-".join))
def test_workload_of_pod_equals_its_pattern(name: str) -> None:
    from kubestrata.detect.sequences import _POD_SUFFIX, workload_of_pod

    assert workload_of_pod(name) == (_POD_SUFFIX.sub("", name) or name)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, -0.0, 1.0, 1.5, 2.0, 1e9, -3.0]),
            st.sampled_from(["A", "B"]),
            st.sampled_from(["", "1", "2"]),
            st.sampled_from(["", "u"]),
        ),
        max_size=60,
    )
)
def test_signals_sorted_by_time_then_ties_equal_sorted(parts: list[tuple[float, str, str, str]]) -> None:
    """sequences._sort (by time, then runs of equal times whole) orders as list.sort, ties in place."""
    from kubestrata.detect.sequences import Signal, _sort

    signals = [Signal(t, r, fp, "", who, "", "m") for t, r, fp, who in parts]
    signals += [Signal(*s) for s in signals[::3]]  # equal, another object: list.sort keeps their order
    got = list(signals)
    _sort(got)
    want = sorted(signals)
    assert got == want and [id(s) for s in got] == [id(s) for s in want]


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(st.text(max_size=30), st.sampled_from(["2026-11-27T10:28:32.896580Z", "2026-11-27T10:28:32Z"]))
)
def test_an_event_time_lent_to_the_correlator_is_what_it_would_parse(text: str) -> None:
    """The router lends an audit event's parsed time (AuditEvent.epoch: detect.event.parse_time)
    to the correlator in place of its _time (Correlator.observe_event): both must read every text
    alike."""
    from kubestrata.detect import sequences
    from kubestrata.detect.event import parse_time

    sequences._last_time[0] = ("", 0.0)
    assert sequences._time(text) == parse_time(text)


def test_a_match_joined_by_an_earlier_step_is_not_taken_as_kept_back(tmp_path: Path) -> None:
    """A chain emitted for identity u; a later signal of u whose best match starts at an earlier
    step with identity v (a step that does not join on it) is another incident (key v), emitted
    though u's mark would keep it back."""
    from kubestrata.detect.sequences import Signal

    path = tmp_path / "chains.yaml"
    path.write_text("""
- {id: T-6, title: t6, min_steps: 2, window: 900, steps: [
    {name: a, rules: [I]}, {name: b, rules: [F]}, {name: c, rules: [G]}, {name: d, rules: [H], same: [identity]}]}
""")
    fast, full = Correlator(load_chains(path)), _plain(Correlator(load_chains(path)))
    t0 = 1_767_225_600.0
    stream = [(100, "G", "u"), (110, "H", "u"), (500, "F", "v"), (600, "G", "u")]
    got = []
    for i, (dt, rule, who) in enumerate(stream):
        sig = Signal(t0 + dt, rule, str(i), "x", who, "", "m")
        for c in (fast, full):
            c.store.add("", sig)
        seqs = fast._evaluate(fast._by_rule[rule], "", sig)
        assert seqs == full._evaluate(full._by_rule[rule], "", sig)
        got.append([s["subject"]["user"] if "subject" in s else s.get("user") for s in seqs])
    assert got == [[], ["u"], [], ["v"]]


def _finding_stream(seed: int, n: int) -> list[tuple[list[Any], str, float | None]]:
    """Findings as audit events hand them to the correlator, event by event, with the event's time
    text and parsed time: several findings sharing an event (and its reference), of chain rules and
    others, repeated and empty fingerprints, fingerprints left to be computed, times out of order
    around the skew and the window, a finding's time text other than its event's, unparseable and
    missing times, pods (controller-made names and not), clusters, runtime and other sources."""
    import random

    from kubestrata.detect.event import parse_time
    from kubestrata.findings import EventRef, Finding, Layer, Severity

    rng = random.Random(seed)
    rules = ["A", "B", "C", "D", "E", "P", "Q", "F", "G", "H", "KS-AUD-F50", "KS-AUD-F11", "KS-AUD-G03",
             "KS-AUD-N14", "KS-AUD-G02", "KS-AUD-G43", "KS-AUD-F01", "NOT-A-STEP"]  # fmt: skip
    t0 = 1_767_225_600
    out = []
    for i in range(n):
        t0 += rng.choice([0, 0, 1, 30, 200])
        when = t0 + rng.choice([0, 0, -300, 300, -301, -350, -700, 90_000])
        text = rng.choice([
            _iso(when)[:19] + "Z",
            "", "not a time", "2026-01-01T00:00:00.123456+01:00",
        ]) if rng.random() < 0.1 else _iso(when)  # fmt: skip
        source = rng.choice(["k8saudit"] * 8 + ["tetragon", "sequence"])
        name = rng.choice(["", "web-7d4b9c6f5-x2x7q", "db-0", "api-abcde", "x"])
        ref = EventRef(source, f"id{i}", "ResponseComplete", cluster=rng.choice(["", "prod", "prod"]),
                       user=rng.choice(["", "u", "v"]), verb="create",
                       resource=rng.choice(["pods", "pods", "secrets"]), namespace=rng.choice(["", "ns"]),
                       name=name)  # fmt: skip
        found = []
        for j in range(rng.choice([1, 1, 2, 3])):
            fp = rng.choice([f"{i}.{j}", f"{i}.{j}", "", str(rng.randrange(30)), None])
            ftime = text if rng.random() < 0.9 else rng.choice([_iso(when + 5), None, ""])
            f = Finding(rng.choice(rules), "t", Severity.HIGH, Layer.CLUSTER, f"m{i}", time=ftime,
                        event=rng.choice([ref, ref, ref, None]), _fingerprint=fp)  # fmt: skip
            found.append(f)
        out.append((found, text, parse_time(text)))
    return out


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("seed", range(16))
def test_observe_event_equals_observing_each_finding(seed: int, tmp_path: Path) -> None:
    """Correlator.observe_event (one loop: the signal made in place, a MemorySignalStore's usual add
    made in place) gives the sequences, in order, the signal count and the store that observing each
    finding in turn gives (signal_of_finding, MemorySignalStore.add), with caps and settles that bite."""
    from kubestrata.detect import sequences

    path = tmp_path / "chains.yaml"
    path.write_text(_BOUND_CHAINS)
    chains = load_chains(path) + load_chains()
    cap, every = [(5, 3), (40, 16), (5000, 64), (0, 1), (40, 2048)][seed % 5]
    fast, each = _two_correlators(chains, cap, every)
    seqs = 0
    for found, text, t in _finding_stream(seed, 400):
        sequences._last_time[0] = ("", 0.0)
        want = [s for f in found for s in each.observe(f)]
        sequences._last_time[0] = ("", 0.0)
        got = fast.observe_event(found, text, t)
        assert got == want
        seqs += len(got)
    assert fast.signals == each.signals > 0
    assert fast.sequences == each.sequences
    assert seqs > 0 or seed % 5 == 3
    for cluster in ("", "prod"):
        everything = (cluster, float("-inf"), float("inf"))
        assert fast.store.between(*everything) == each.store.between(*everything)
    assert fast.store._marks == each.store._marks  # type: ignore[attr-defined]


def _two_correlators(
    chains: list, cap: int, every: int, age: float | None = None, plain: type | None = None
) -> tuple[Correlator, Correlator]:
    """Two correlators over memory stores of this cap (and age bound), settling at least every
    ``every`` signals: the one fed by the fast path, and the one it is compared with (over a store
    of class ``plain`` when given)."""
    bounds = (cap,) if age is None else (cap, age)
    stores = (MemorySignalStore(*bounds), (plain or MemorySignalStore)(*bounds))
    pair = tuple(Correlator(chains, store) for store in stores)
    for c in pair:
        c.store._settle_every = min(c.store._settle_every, every)  # type: ignore[attr-defined]
    return pair  # type: ignore[return-value]


_DEAD_CHAINS = """
- {id: T-7, title: t7, min_steps: 3, steps: [
    {name: a, rules: [R1]}, {name: b, rules: [R2], same: [identity]}, {name: c, rules: [R3], same: [pod]}]}
"""


@pytest.mark.parametrize("seed", range(12))
def test_signal_records_read_as_the_signals_they_stand_for(seed: int, tmp_path: Path) -> None:
    """Signals of rules no chain can match with are kept as records (observe_event) and made
    Signals when read: long runs of them under caps and settles that bite, read by between and
    recent while they are records, then a rule that makes the chain live: every query, sequence
    and the store's content are those of a correlator observing each finding (Signals only)."""
    import random

    from kubestrata.detect import sequences
    from kubestrata.detect.sequences import Signal

    rng = random.Random(seed)
    path = tmp_path / "chains.yaml"
    path.write_text(_DEAD_CHAINS)
    chains = load_chains(path)
    cap, every = [(7, 3), (40, 16), (5000, 64), (40, 2048), (3, 1000)][seed % 5]
    fast, each = _two_correlators(chains, cap, every)
    stream = _finding_stream(seed, 500)
    live_at = rng.randrange(100, 450)
    rules = ["R1", "R2", "R3", "KS-AUD-F01"]
    seqs = records = 0
    for k, (found, text, t) in enumerate(stream):
        for f in found:
            f.rule_id = rng.choice(rules[:2] + rules[3:]) if k < live_at else rng.choice(rules)
        sequences._last_time[0] = ("", 0.0)
        want = [s for f in found for s in each.observe(f)]
        sequences._last_time[0] = ("", 0.0)
        got = fast.observe_event(found, text, t)
        assert got == want
        seqs += len(got)
        records += sum(type(x) is tuple for c in fast.store._clusters.values()  # type: ignore[attr-defined]
                       for rl in [*c.by_rule.values(), *c.pending.values()] for x in rl)  # fmt: skip
        if rng.random() < 0.2:
            cluster = rng.choice(["", "prod"])
            lo = t - rng.choice([0.0, 100.0, 1e6]) if t is not None else 0.0
            q = (cluster, lo, lo + rng.choice([50.0, 1e7]), frozenset(rng.sample(rules, 2)))
            limit = rng.choice([0, 1, 3, 24])
            b = fast.store.between(*q, limit)
            assert b == each.store.between(*q, limit) and all(type(x) is Signal for x in b)
            r = fast.store.recent(*q, limit or 24)  # type: ignore[attr-defined]
            assert sorted(r) == sorted(each.store.recent(*q, limit or 24)) and all(
                type(x) is Signal for x in r
            )  # type: ignore[attr-defined]
    assert records > 0 and (seqs > 0 or cap < 5000)
    assert fast.signals == each.signals and fast.sequences == each.sequences
    for cluster in ("", "prod"):
        everything = (cluster, float("-inf"), float("inf"))
        assert fast.store.between(*everything) == each.store.between(*everything)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from([0.0, 1.0, 2.0, 5.0]),
                st.sampled_from(["A", "B"]),
                st.sampled_from(["", "1", "2"]),
            ),
            max_size=8,
        ),  # fmt: skip
        min_size=1,
        max_size=5,
    ),
    st.integers(1, 45),
)
def test_earliest_of_runs_is_what_merging_them_yields_first(parts: list[Any], k: int) -> None:
    """sequences._earliest: how many of each sorted run are among the k first of the runs merged
    in order (a stable sort of their concatenation), equal signals in several runs too."""
    from kubestrata.detect.sequences import Signal, _earliest

    runs = [sorted(Signal(t, r, fp, "", "", "", "m") for t, r, fp in p) for p in parts]
    runs = [r for r in runs if r]
    if not runs:
        return
    tagged = sorted((s, i) for i, r in enumerate(runs) for s in r)  # (stable: a run's equal ones in order)
    first = [i for _, i in tagged[:k]]
    assert _earliest(runs, k) == [first.count(i) for i in range(len(runs))]


def test_a_chain_made_live_between_audit_events_is_matched(tmp_path: Path) -> None:
    """A runtime signal observed between two audit events (or between two findings of one call)
    makes a chain live for a rule whose signals were records: the next audit finding of that rule
    is matched, as observing each finding matches it."""
    from kubestrata.findings import EventRef, Finding, Layer, Severity

    path = tmp_path / "chains.yaml"
    path.write_text("""
- {id: T-8, title: t8, min_steps: 2, ordered: false, steps: [
    {name: a, rules: [RT]}, {name: b, rules: [R1], same: [pod]}]}
""")

    def audit(i: int, pod: str) -> Finding:
        ref = EventRef("k8saudit", f"id{i}", "ResponseComplete", cluster="p", user="u", verb="create",
                       resource="pods", namespace="ns", name=pod)  # fmt: skip
        return Finding("R1", "t", Severity.HIGH, Layer.CLUSTER, f"m{i}", time=f"2026-01-01T00:00:0{i}Z",
                       event=ref, _fingerprint=f"fp{i}")  # fmt: skip

    runtime = {"ruleId": "RT", "time": "2026-01-01T00:00:05Z", "cluster": "p", "source": "tetragon",
               "resource": "pods", "namespace": "ns", "name": "y", "fingerprint": "rt", "message": "m"}  # fmt: skip
    for together in (False, True):
        fast, each = Correlator(load_chains(path)), Correlator(load_chains(path))
        got = fast.observe_event([audit(1, "x")], "", None)
        want = each.observe(audit(1, "x"))
        if together:  # the runtime finding in the same call, before the audit one
            rt = Finding("RT", "t", Severity.HIGH, Layer.CLUSTER, "m", time="2026-01-01T00:00:05Z",
                         event=EventRef("tetragon", "r", "", cluster="p", resource="pods", namespace="ns",
                                        name="y"), _fingerprint="rt")  # fmt: skip
            got += fast.observe_event([rt, audit(2, "y")], "", None)
            want += each.observe(rt) + each.observe(audit(2, "y"))
        else:
            got += fast.observe(runtime)
            want += each.observe(runtime)
            got += fast.observe_event([audit(2, "y")], "", None)
            want += each.observe(audit(2, "y"))
        assert got == want
        assert [s["ruleId"] for s in got] == ["T-8"], together


class _NoFloor(MemorySignalStore):
    """The store without its drop at add: every signal waits for a settle (a subclass, so a
    Correlator over it takes no in-place add either: observe_event adds each signal through it)."""

    def _settle(self, c: Any) -> None:
        super()._settle(c)
        c.floor = float("-inf")


@pytest.mark.parametrize("seed", range(16))
def test_signals_dropped_below_the_floor_are_what_settling_drops(seed: int, tmp_path: Path) -> None:
    """A signal earlier than every kept one of a cluster at its cap is dropped when added (by
    observe_event in place, or MemorySignalStore.add): times shuffled over an hour, ties, repeated
    and empty fingerprints, many clusters, caps, age bounds and settle intervals that bite, queries
    in between, chains dead and made live, new rules at the cap: the sequences, queries, counts and
    contents equal those of a store that drops nothing until it settles."""
    import random

    from kubestrata.detect import sequences
    from kubestrata.detect.event import parse_time
    from kubestrata.detect.sequences import Signal
    from kubestrata.findings import EventRef, Finding, Layer, Severity

    rng = random.Random(seed)
    path = tmp_path / "chains.yaml"
    path.write_text(_DEAD_CHAINS + _BOUND_CHAINS)
    chains = load_chains(path)
    cap, every, age = [(5, 3, 1e9), (40, 16, 1e9), (200, 64, 1e9), (40, 2048, 1e9), (30, 1000, 900.0),
                       (1, 1, 1e9), (20, 7, 600.0), (30, 256, 1e9)][seed % 8]  # fmt: skip
    fast, plain = _two_correlators(chains, cap, every, age, _NoFloor)
    clusters = [f"c{i}" for i in range(rng.choice([1, 3, 9]))]
    rules = ["R1", "R2", "KS-AUD-F01", "A", "B", "C", "F", "G", "R3"]
    live_at = rng.randrange(300, 1800)
    t0 = 1_767_225_600.0
    dropped = seqs = 0
    for i in range(2000):
        # (times shuffled, on a coarse grid, in order, in order with many equal; or a few equal times
        # at once, out of order: a new signal often ties with the earliest kept)
        dt = rng.choice(
            [rng.uniform(0, 3600), rng.randrange(0, 3600, 30), i * 1.8, i * 1.8 - 300, i // 7 * 2]
        )
        if seed % 2:
            dt = i // 60 * 10 + rng.randrange(0, 120, 10)
        text = _iso(t0 + dt)
        when = parse_time(text)
        cluster = rng.choice(clusters)
        ref = EventRef("k8saudit", f"id{i}", "ResponseComplete", cluster=cluster, user=rng.choice(["", "u"]),
                       verb="create", resource="pods", namespace="ns",
                       name=rng.choice(["", "web-7d4b9c6f5-x2x7q", "db-0"]))  # fmt: skip
        found = []
        for j in range(rng.choice([1, 1, 2])):
            rid = rng.choice(rules[:3] if i < live_at else rules)
            fp = rng.choice([f"{i}.{j}", f"{i}.{j}", f"{i}.{j}", "", str(rng.randrange(50))])
            found.append(Finding(rid, "t", Severity.HIGH, Layer.CLUSTER, f"m{i}", time=text, event=ref,
                                 _fingerprint=fp))  # fmt: skip
        kept = fast.store._clusters.get(cluster)  # type: ignore[attr-defined]
        dropped += len(found) if kept is not None and when < kept.floor else 0
        sequences._last_time[0] = ("", 0.0)
        want = plain.observe_event(found, text, when)
        sequences._last_time[0] = ("", 0.0)
        got = fast.observe_event(found, text, when) if i % 5 else [s for f in found for s in fast.observe(f)]
        assert got == want
        seqs += len(got)
        if rng.random() < 0.05:
            q = (cluster, when - rng.choice([0.0, 600.0, 1e6]), when + rng.choice([0.0, 1e6]),
                 frozenset(rng.sample(rules, 3)))  # fmt: skip
            limit = rng.choice([0, 1, 24])
            assert fast.store.between(*q, limit) == plain.store.between(*q, limit)
            r = fast.store.recent(*q, limit or 24)  # type: ignore[attr-defined]
            assert sorted(r) == sorted(plain.store.recent(*q, limit or 24))  # type: ignore[attr-defined]
            assert all(type(x) is Signal for x in r)
    assert dropped > 0 and (seqs > 0 or cap < 40)
    assert fast.signals == plain.signals and fast.sequences == plain.sequences
    assert fast.store._marks == plain.store._marks  # type: ignore[attr-defined]
    for cluster in clusters:
        everything = (cluster, float("-inf"), float("inf"))
        assert fast.store.between(*everything) == plain.store.between(*everything)
        assert fast.store.rules(cluster) == plain.store.rules(cluster)  # type: ignore[attr-defined]
