"""Every check has pass and fail examples beside it; fail examples raise it, pass examples do not."""

from __future__ import annotations

import datetime as dt

import pytest

from kubestrata.checks import load_builtin_checks
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_paths
from kubestrata.scan import run_scan

REGISTRY = load_builtin_checks()
# Examples are judged at a fixed date, so that time-dependent checks (node age, EKS version support)
# give the same verdict on every run; their behaviour over time is tested with injected clocks.
EXAMPLES_CLOCK = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
CHECKS = list(REGISTRY)


def _examples(chk, prefix):
    d = chk.meta.examples_dir
    return sorted(d.glob(f"{prefix}*.yaml")) if d.is_dir() else []


@pytest.mark.parametrize("chk", CHECKS, ids=[c.meta.id for c in CHECKS])
def test_every_check_has_pass_and_fail_examples(chk):
    assert _examples(chk, "pass"), f"{chk.meta.id} has no pass example in {chk.meta.examples_dir}"
    assert _examples(chk, "fail"), f"{chk.meta.id} has no fail example in {chk.meta.examples_dir}"


@pytest.mark.parametrize("chk", CHECKS, ids=[c.meta.id for c in CHECKS])
def test_metadata_is_complete(chk):
    m = chk.meta
    assert m.title and m.rationale and m.remediation
    assert m.references, f"{m.id} maps to no framework"


def _run(path, chk):
    loaded = load_paths([path])
    assert not loaded.errors, loaded.errors
    return run_scan(Cluster(loaded.objects), checks=[chk], now=EXAMPLES_CLOCK)


EXAMPLE_CASES = [(c, p) for c in CHECKS for p in _examples(c, "fail") + _examples(c, "pass")]


@pytest.mark.parametrize("chk,path", EXAMPLE_CASES, ids=[f"{c.meta.id}/{p.name}" for c, p in EXAMPLE_CASES])
def test_example(chk, path):
    result = _run(path, chk)
    assert not result.coverage.gaps, result.coverage.gaps
    hits = [f for f in result.findings if f.rule_id == chk.meta.id]
    if path.name.startswith("fail"):
        assert hits, f"{chk.meta.id} did not fire on {path.name}"
        for f in hits:
            assert f.evidence and f.evidence[0].path, "a finding must name its field path"
    else:
        assert not hits, [f.message for f in hits]
