"""The compiled network resolves a pod selector with a per-namespace label index (mask operations);
it must select exactly the classes LabelSelector.matches accepts, one class at a time."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.kube.selectors import LabelSelector, Requirement
from kubestrata.netpol.compile import bit_indices
from tests.netpol.helpers import network_from_docs

KEYS = ["app", "tier", "team"]
VALUES = ["a", "b", "1", 1, True]  # non-string values (hostile manifests) match no In value

labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
requirement = st.one_of(
    st.builds(
        lambda k, op, vs: Requirement(k, op, frozenset(vs)),
        st.sampled_from(KEYS),
        st.sampled_from(["In", "NotIn"]),
        st.lists(st.sampled_from(["a", "b", "1", "True"]), min_size=1, max_size=3),
    ),
    st.builds(
        lambda k, op: Requirement(k, op), st.sampled_from(KEYS), st.sampled_from(["Exists", "DoesNotExist"])
    ),
)
selector = st.one_of(
    st.just(LabelSelector(None)),
    st.builds(lambda rs: LabelSelector(tuple(rs)), st.lists(requirement, max_size=3)),
)


def _docs(pod_labels: list[dict]) -> list[dict]:
    docs: list[dict] = [
        {  # a policy whose selector reads every key, so classes keep all of them
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "np", "namespace": "x"},
            "spec": {"podSelector": {"matchExpressions": [{"key": k, "operator": "Exists"} for k in KEYS]}},
        }
    ]
    for i, lab in enumerate(pod_labels):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"p{i}", "namespace": "xy"[i % 2], "labels": lab},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            }
        )
    return docs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(labels, min_size=1, max_size=12), st.lists(selector, min_size=1, max_size=6))
def test_indexed_selection_equals_matching_each_class(pod_labels, selectors) -> None:
    net = network_from_docs(_docs(pod_labels))
    for sel in selectors:
        for ns in ("x", "y", "z"):
            want = 0
            for i in bit_indices(net.ns_mask.get(ns, 0)):
                if sel.matches(net.classes[i].labels):
                    want |= 1 << i
            assert net._sel_mask(None, ns, sel) == want, (sel, ns)
