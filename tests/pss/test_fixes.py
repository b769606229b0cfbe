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


def test_combined_patch_is_deterministic_and_in_document_order():
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    code = (
        "import json; from kubestrata.pss import LevelVersion; from kubestrata.pss.fixes import remediate;"
        "p={'kind':'Pod','spec':{'hostNetwork':True,'hostPID':True,'hostIPC':True,'containers':[{'name':'a'}],"
        "'securityContext':{'sysctls':[{'name':'x'},{'name':'kernel.shm_rmid_forced'},{'name':'y'}]}}};"
        "print(json.dumps(remediate(p, LevelVersion.parse('baseline')).patch))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONPATH": str(REPO_ROOT / "src"), "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3, 4)
    }
    assert len(outs) == 1
    import json

    assert json.loads(outs.pop()) == [
        {"op": "remove", "path": "/spec/hostNetwork"},
        {"op": "remove", "path": "/spec/hostPID"},
        {"op": "remove", "path": "/spec/hostIPC"},
        {
            "op": "replace",
            "path": "/spec/securityContext/sysctls",
            "value": [{"name": "kernel.shm_rmid_forced"}],
        },
    ]
