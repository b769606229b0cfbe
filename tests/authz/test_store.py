"""Policy loading: sources, stable ids, rejection of bad policies, atomic reload, tiers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubestrata.authz import Authorizer, PolicyLoadError, PolicyStore
from tests.authz.conftest import sar

PERMIT = (
    '@id("p") permit (principal is k8s::User, action == k8s::Action::"get", resource is k8s::Resource);\n'
)
FORBID = 'forbid (principal, action == k8s::Action::"get", resource is k8s::Resource);\n'
POLICY_OBJ = """apiVersion: cedar.k8s.aws/v1alpha1
kind: Policy
metadata:
  name: objpolicy
spec:
  content: |
    permit (principal, action == k8s::Action::"list", resource is k8s::Resource);
    @id("second")
    permit (principal, action == k8s::Action::"watch", resource is k8s::Resource);
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ignored
"""


def test_directory_of_cedar_files_and_policy_objects(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.cedar").write_text(PERMIT)
    (tmp_path / "objects.yaml").write_text(POLICY_OBJ)
    (tmp_path / ".hidden.cedar").write_text("garbage")
    store = PolicyStore([tmp_path])
    snap = store.load()
    assert sorted(p.id for t in snap.tiers for p in t.policies.values()) == [
        "Policy/objpolicy#0",
        "Policy/objpolicy#1",
        "sub/a.cedar#0",
    ]
    assert snap.policy("Policy/objpolicy#1").describe() == 'Policy/objpolicy#1 (@id "second")'
    assert store.ready and store.reloads == 1
    assert Authorizer(store).review(sar("u", "watch"))["status"]["reason"] == (
        'allowed by Cedar policy Policy/objpolicy#1 (@id "second")'
    )


def test_parse_error_names_the_file_and_keeps_previous_set(tmp_path: Path) -> None:
    f = tmp_path / "a.cedar"
    f.write_text(PERMIT)
    store = PolicyStore([tmp_path])
    first = store.load()
    f.write_text(PERMIT + "permit (principal, action, resource) when { ;")
    with pytest.raises(PolicyLoadError) as e:
        store.load()
    assert f"{f}: Cedar parse error in policy a.cedar#1 (line 2)" in str(e.value)
    assert store.snapshot is first and store.rejections == 1
    assert Authorizer(store).review(sar("u"))["status"]["allowed"] is True


def test_validation_error_names_object_and_index(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        POLICY_OBJ.replace(
            'permit (principal, action == k8s::Action::"watch", resource is k8s::Resource);',
            'forbid (principal, action, resource is k8s::Resource) when { resource.name == "x" };',
        )
    )
    with pytest.raises(PolicyLoadError) as e:
        PolicyStore([tmp_path]).load()
    (problem,) = e.value.problems
    assert "Policy/objpolicy" in problem and "policy Policy/objpolicy#1:" in problem
    assert "optional attribute `name`" in problem


def test_reference_demo_policies_two_rejected(conformance: Path) -> None:
    """The reference project's demo: exactly the two policies its own notes flag fail validation."""
    with pytest.raises(PolicyLoadError) as e:
        PolicyStore([conformance / "cedar" / "demo"]).load()
    flagged = {p.split(": policy ")[1].split(":")[0] for p in e.value.problems}
    assert flagged == {"Policy/combined-policy#1", "Policy/self-node-policy#0", "Policy/self-node-policy#1"}


def test_templates_duplicates_and_missing_paths_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "t.cedar").write_text("permit (principal == ?principal, action, resource);")
    (tmp_path / "a.yaml").write_text(POLICY_OBJ)
    (tmp_path / "b.yaml").write_text(POLICY_OBJ)
    with pytest.raises(PolicyLoadError) as e:
        PolicyStore([tmp_path, tmp_path / "missing"]).load()
    text = str(e.value)
    assert "templates are not supported" in text
    assert "duplicate policy source Policy/objpolicy" in text
    assert "missing: no such file or directory" in text


def test_reload_if_changed(tmp_path: Path) -> None:
    f = tmp_path / "a.cedar"
    f.write_text(PERMIT)
    store = PolicyStore([tmp_path])
    store.load()
    assert store.reload_if_changed() is False
    f.write_text(PERMIT + FORBID)
    os.utime(f, ns=(1, 1))  # a different mtime even on coarse clocks
    assert store.reload_if_changed() is True
    assert store.snapshot.generation == 2
    assert Authorizer(store).review(sar("u"))["status"]["denied"] is True


def test_first_tier_with_an_explicit_decision_wins(tmp_path: Path) -> None:
    (tmp_path / "t1").mkdir()
    (tmp_path / "t2").mkdir()
    (tmp_path / "t1" / "policy.cedar").write_text(PERMIT)
    (tmp_path / "t2" / "policy.cedar").write_text(FORBID)  # same file name, different directory
    store = PolicyStore([[tmp_path / "t1"], [tmp_path / "t2"]])
    store.load()
    a = Authorizer(store)
    assert a.review(sar("u", "get"))["status"]["allowed"] is True  # earlier permit beats later forbid
    swapped = PolicyStore([[tmp_path / "t2"], [tmp_path / "t1"]])
    swapped.load()
    assert Authorizer(swapped).review(sar("u", "get"))["status"] == {
        "allowed": False,
        "denied": True,
        "reason": "denied by Cedar policy t2/policy.cedar#0",
    }
    # nothing in tier 1 matches list: tier 2 is asked and has nothing either
    assert Authorizer(store).review(sar("u", "list"))["status"] == {"allowed": False}


def test_decisions_during_reloads_see_one_whole_snapshot(tmp_path: Path) -> None:
    """Readers in threads while a writer swaps between two sets: every answer comes from one set."""
    import threading

    allow = PERMIT
    deny = PERMIT + FORBID
    f = tmp_path / "a.cedar"
    f.write_text(allow)
    store = PolicyStore([tmp_path])
    store.load()
    authz = Authorizer(store)
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                st = authz.review(sar("u"))["status"]
                seen.append("denied" if st.get("denied") else "allowed" if st["allowed"] else "other")
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(20):
        f.write_text(deny if i % 2 == 0 else allow)
        store.load()
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert set(seen) <= {"allowed", "denied"} and seen
