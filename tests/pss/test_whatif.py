"""Owner roll-up, shared results between replicas, rollout counts and version bumps."""

from __future__ import annotations

import copy

from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.pss import LATEST, Level, LevelVersion, Version
from kubestrata.pss.whatif import collect_entities, owner_of, rollout, version_bump, what_if_label
from tests.pss.helpers import pod


def obj(kind, name, ns="ns", owner=None, **extra):
    meta = {"name": name, "namespace": ns}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True, "uid": owner[1]}]
    return KubeObject({"apiVersion": "v1", "kind": kind, "metadata": meta, **extra})


def test_owner_roll_up():
    cj = obj("CronJob", "nightly", spec={"jobTemplate": {"spec": {"template": {"spec": pod()["spec"]}}}})
    job = obj("Job", "nightly-290", owner=("CronJob", "nightly"), spec={"template": {"spec": pod()["spec"]}})
    p = obj("Pod", "nightly-290-abc", owner=("Job", "nightly-290"), spec=pod()["spec"])
    stray = obj("Pod", "web-5d8f-xyz", owner=("ReplicaSet", "web-5d8f"), spec=pod()["spec"])
    stray.raw["metadata"]["labels"] = {"pod-template-hash": "5d8f"}
    c = Cluster([cj, job, p, stray])
    assert owner_of(p, c) == ("CronJob", "nightly")
    assert owner_of(stray, c) == ("Deployment", "web")  # ReplicaSet not in the input
    # the Job is judged through its CronJob: not an entity of its own
    kinds = sorted(e.obj.kind for e in collect_entities(c))
    assert kinds == ["CronJob", "Pod", "Pod"]


def test_replicas_share_results_but_are_each_type_checked():
    spec = pod({"securityContext": None})["spec"]
    pods = [obj("Pod", f"r-{i}", owner=("ReplicaSet", "r"), spec=copy.deepcopy(spec)) for i in range(3)]
    bad = copy.deepcopy(spec)
    bad["containers"][0]["securityContext"]["privileged"] = "yes"  # same owner, invalid type
    pods.append(obj("Pod", "r-bad", owner=("ReplicaSet", "r"), spec=bad))
    ents = collect_entities(Cluster(pods))
    assert [e.error is not None for e in ents] == [False, False, False, True]
    assert ents[0].shared is ents[1].shared is ents[2].shared
    (rep,) = what_if_label(Cluster(pods), LevelVersion(Level.RESTRICTED, LATEST), "ns")
    assert rep.pods_denied == 3 and rep.invalid and "privileged" in rep.invalid[0]
    # a different spec under the same owner (a rollout in progress) is evaluated on its own
    other = copy.deepcopy(spec)
    other["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    ents = collect_entities(Cluster([*pods[:3], obj("Pod", "r-new", owner=("ReplicaSet", "r"), spec=other)]))
    lv = LevelVersion(Level.RESTRICTED, LATEST)
    assert [e.evaluate(lv).allowed for e in ents] == [False, False, False, True]


def test_rollout_counts_windows_pods_per_level():
    # from v1.25 restricted exempts Windows pods from the checks that override baseline ones, so a
    # Windows pod with an unconfined seccomp profile fails baseline but passes restricted
    win = {
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}},
        "containers": [{"name": "iis", "image": "iis"}],
    }
    c = Cluster([obj("Pod", "w", spec=win)])
    (row,) = rollout(c, LATEST)
    assert (row.baseline_denied, row.restricted_denied) == (1, 0)


def test_version_bump_uses_namespace_level_by_default():
    spec = pod()["spec"]
    spec["securityContext"]["sysctls"] = [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]
    spec["containers"][0]["livenessProbe"] = {"tcpSocket": {"host": "10.0.0.1", "port": 1}}
    ns = KubeObject(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "ns", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}},
        }
    )
    c = Cluster([ns, obj("Pod", "p", spec=spec)])
    (ch,) = version_bump(c, Version(28), Version(34))
    assert ch.level is Level.BASELINE and ch.new_checks == ["hostProbesAndHostLifecycle"]
    assert not ch.newly_denied  # the sysctl already failed at v1.28
    (ch,) = version_bump(c, Version(33), Version(34))
    assert ch.newly_denied
    assert version_bump(c, Version(29), Version(33)) == []
