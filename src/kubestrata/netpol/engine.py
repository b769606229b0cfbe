"""The reachability engine: equivalence classes of pods, per-protocol port interval sets, tiers.

Pods fall into classes by (namespace, labels, named ports, address block, hostNetwork): every policy
treats all pods of a class alike, so the engine evaluates classes, never pairs of pods. Peer sets are
bitmasks over "columns" (pod classes, then disjoint external address blocks); a class's policy
verdict in one direction is a short list of (column mask, allowed PortSet) atoms, built by splitting
masks rule by rule. A connection needs the source's egress verdict AND the destination's ingress
verdict.

Network is built in three layers, one module each: compile.py (policies, endpoints, classes and
masks), reachability.py (verdict atoms, connections, the full map) and explain.py (why, rule by
rule). The tiers' precedence is described in reachability.py.
"""

from __future__ import annotations

from kubestrata.netpol.compile import PROBE_NAMESPACE, CompiledNetwork, Options, PodClass
from kubestrata.netpol.explain import Explanation, PortVerdict, Reason
from kubestrata.netpol.model import resolve_ports
from kubestrata.netpol.reachability import Matrix

__all__ = [
    "PROBE_NAMESPACE",
    "CompiledNetwork",
    "Matrix",
    "Network",
    "Options",
    "PodClass",
    "Reason",
    "PortVerdict",
    "resolve_ports",
]


class Network(Explanation):
    """A snapshot's policies, endpoints and classes, ready for queries (see the module docstring)."""
