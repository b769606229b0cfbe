"""Cedar decision latency: 1,000 policies, sliced vs whole set, and cedarpy's own floor.

    python bench/cedar.py [--policies 1000] [--requests 5000] [--out bench/out/cedar.json]

Measures `Authorizer.decide` (SubjectAccessReview dict in, verdict out: parsing, entity JSON, slicing,
cedarpy call, mapping) with time.perf_counter_ns per call, after a warm-up pass over the same review
stream (so memoised slices are warm, as in a running server; the cold first pass is reported too).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import cedarpy  # noqa: E402

from kubestrata.authz import AdmissionPolicyEvaluator, Authorizer, PolicyStore  # noqa: E402
from kubestrata.authz.authorizer import request_entities  # noqa: E402
from kubestrata.authz.entities import sar_to_request  # noqa: E402
from kubestrata.authz.synthetic import policy_set, review  # noqa: E402


def admission_request(rnd: random.Random) -> dict:
    user = f"user-{rnd.randrange(200)}"

    def cm(owner: str) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"owner": owner}},
            "data": {"k": "v"},
        }

    return {
        "uid": "b",
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "namespace": "ns1",
        "name": "c",
        "operation": "UPDATE",
        "userInfo": {
            "username": user,
            "groups": [f"team-{rnd.randrange(50)}" for _ in range(rnd.randint(0, 3))],
        },
        "object": cm(user),
        "oldObject": cm(rnd.choice([user, "someone"])),
    }


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def timed(fn, items) -> list[float]:
    out = []
    for it in items:
        t = time.perf_counter_ns()
        fn(it)
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def summary(xs: list[float]) -> dict[str, float]:
    return {
        "median_us": round(statistics.median(xs), 1),
        "p90_us": round(pct(xs, 90), 1),
        "p99_us": round(pct(xs, 99), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--out", default="bench/out/cedar.json")
    args = ap.parse_args()

    text = policy_set(args.policies, seed=1)
    t = time.perf_counter()
    store = PolicyStore.from_text(text, "bench.cedar")
    load_s = time.perf_counter() - t
    rnd = random.Random(42)
    reviews = [review(rnd) for _ in range(args.requests)]
    sliced = Authorizer(store)
    whole = Authorizer(store, sliced=False)

    results: dict[str, object] = {
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
        "cedarpy": getattr(cedarpy, "__version__", "4.12.2"),
        "policies": args.policies,
        "requests": args.requests,
        "load_and_validate_s": round(load_s, 3),
    }
    results["sliced_cold_first_pass"] = summary(timed(sliced.decide, reviews))
    results["sliced_warm"] = summary(timed(sliced.decide, reviews))
    results["whole_set"] = summary(timed(whole.decide, reviews[: min(2000, len(reviews))]))

    # where the time goes, warm: parsing the review, building entity JSON, the cedarpy call on a slice
    tier = store.snapshot.tiers[0]
    reqs = [sar_to_request(r) for r in reviews]
    results["parse_review"] = summary(timed(sar_to_request, reviews))
    results["request_entities"] = summary(timed(request_entities, reqs))
    results["slice_lookup"] = summary(timed(tier.index.slice, reqs))
    ents = [request_entities(r) for r in reqs]
    pairs = list(zip(reqs, ents, strict=True))
    results["cedarpy_on_slice"] = summary(timed(lambda p: tier.evaluate(p[0], p[1]), pairs))
    trivial = cedarpy.PolicySet.from_str("permit (principal, action, resource) when { false };")
    results["cedarpy_floor_one_policy"] = summary(
        timed(lambda p: cedarpy.is_authorized(p[0].as_cedarpy(), trivial, p[1]), pairs)
    )
    sizes = [len(tier.index.slice(r)) for r in reqs]
    results["slice_size"] = {"median": statistics.median(sizes), "max": max(sizes)}
    # the reviews whose slice is non-empty are the ones that reach cedarpy; report them on their own
    reaching = [rv for rv, r in zip(reviews, reqs, strict=True) if tier.index.slice(r)]
    results["reaching_cedarpy_share"] = round(len(reaching) / len(reviews), 3)
    results["sliced_warm_reaching_cedarpy"] = summary(timed(sliced.decide, reaching))
    results["whole_set_reaching_cedarpy"] = summary(timed(whole.decide, reaching[:1000]))
    # admission: ConfigMap UPDATEs by synthetic users against the same 1,000-policy store
    admission = AdmissionPolicyEvaluator(store)
    admission_whole = AdmissionPolicyEvaluator(store, sliced=False)
    adm = [admission_request(rnd) for _ in range(min(2000, args.requests))]
    timed(admission.evaluate, adm)  # warm the slice memo
    results["admission_sliced_warm"] = summary(timed(admission.evaluate, adm))
    results["admission_whole_set"] = summary(timed(admission_whole.evaluate, adm[:500]))
    print(json.dumps(results, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
