"""Every check says what it deliberately does not cover (docs/checks.md, issue 11)."""

from __future__ import annotations

from kubestrata.checks import load_builtin_checks
from kubestrata.checks.limits import check_limits


def test_every_check_states_its_limits():
    ids = {c.meta.id for c in load_builtin_checks()}
    limits = check_limits()
    assert not ids - set(limits), (
        f"no 'does not cover' entry in checks/data/limits.yaml: {sorted(ids - set(limits))}"
    )
    assert not set(limits) - ids, f"entries for checks that do not exist: {sorted(set(limits) - ids)}"
    assert all(len(v) > 20 for v in limits.values())
