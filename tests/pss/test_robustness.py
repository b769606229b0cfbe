"""Whatever the shape of a pod's fields, evaluation never raises and never allows an invalid pod."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestrata.pss import evaluate_pod
from tests.pss.helpers import pod

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)

# places a check reads, with the containers' and pod's securityContext fields among them
PATHS = [
    ("spec", "hostNetwork"),
    ("spec", "hostUsers"),
    ("spec", "os"),
    ("spec", "volumes"),
    ("spec", "securityContext"),
    ("spec", "securityContext", "sysctls"),
    ("spec", "securityContext", "seccompProfile"),
    ("spec", "securityContext", "appArmorProfile"),
    ("spec", "securityContext", "runAsUser"),
    ("spec", "securityContext", "seLinuxOptions"),
    ("spec", "containers", 0),
    ("spec", "containers", 0, "securityContext"),
    ("spec", "containers", 0, "securityContext", "capabilities"),
    ("spec", "containers", 0, "securityContext", "capabilities", "add"),
    ("spec", "containers", 0, "securityContext", "privileged"),
    ("spec", "containers", 0, "securityContext", "procMount"),
    ("spec", "containers", 0, "ports"),
    ("spec", "containers", 0, "livenessProbe"),
    ("spec", "containers", 0, "lifecycle"),
    ("spec", "initContainers"),
    ("spec", "ephemeralContainers"),
    ("metadata", "annotations"),
    ("metadata",),
    ("spec",),
]


def _set(doc, path, value):
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(PATHS),
    JSON,
    st.sampled_from(["privileged", "baseline", "restricted"]),
    st.sampled_from(["v1.0", "v1.19", "v1.25", "v1.35", "latest"]),
)
def test_any_field_value_gives_a_verdict_or_a_field_error(path, value, level, version):
    p = copy.deepcopy(pod())
    p["metadata"]["annotations"] = {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}
    _set(p, path, value)
    r = evaluate_pod(p, level, version)  # must not raise
    if r.error is not None:
        assert not r.allowed and r.error.field and r.message.startswith("invalid pod spec: ")
    else:
        _ = r.message, r.violations  # explaining must not raise either
