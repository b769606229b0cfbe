"""Fix patches: every violation's own patch applies alone; the combined patch fixes what it can and
names what it cannot."""

from __future__ import annotations

import copy

import jsonpatch
import pytest
import yaml

from kubestrata.pss import LevelVersion, evaluate_pod
from kubestrata.pss.fixes import remediate
from tests.conftest import shared_dir

ROOT = shared_dir() / "conformance" / "pss"
FAILS = sorted(ROOT.glob("*/v1.37/fail/*.yaml")) + sorted(ROOT.glob("*/v1.2[0-9]/fail/*.yaml"))


@pytest.mark.parametrize("path", FAILS, ids=lambda p: "/".join(p.parts[-4:]))
def test_remediation_of_denied_fixtures(path):
    level, version = path.parts[-4], path.parts[-3]
    pod = yaml.safe_load(path.read_text())
    lv = LevelVersion.parse(f"{level}:{version}")
    before = evaluate_pod(pod, level, version)
    assert not before.allowed
    for v in before.violations:
        assert v.path and v.check in {f.check for f in before.failures}
        if v.fix:
            jsonpatch.apply_patch(copy.deepcopy(pod), v.fix)  # each patch is valid on its own
    rem = remediate(pod, lv)
    fixed = jsonpatch.apply_patch(copy.deepcopy(pod), rem.patch)
    after = evaluate_pod(fixed, level, version)
    if rem.complete:
        assert after.allowed, after.message
    else:
        assert not after.allowed
        assert {v.check for v in rem.unfixed} == {f.check for f in after.failures}
        assert all(v.fix is None and v.fix_note for v in rem.unfixed)


def test_run_as_non_root_fix_is_flagged():
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
    rem = remediate(pod, LevelVersion.parse("restricted"))
    assert rem.complete
    assert any("image" in n for n in rem.notes if n.startswith("runAsNonRoot"))
    assert {
        "op": "add",
        "path": "/spec/securityContext",
        "value": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    } in rem.patch
