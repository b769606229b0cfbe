"""Shared helpers for the netpol tests."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_paths, load_text
from kubestrata.netpol.engine import Network, Options
from kubestrata.netpol.sets import ALL, NONE, PortSet


def network_from_dir(path: Path, options: Options | None = None) -> Network:
    lr = load_paths([path])
    assert not lr.errors, lr.errors
    return Network(Cluster(lr.objects), options)


def network_from_docs(docs: list[dict], options: Options | None = None) -> Network:
    text = yaml.safe_dump_all(docs)
    return Network(Cluster(load_text(text, "test.yaml").objects), options)


_ITEM = re.compile(r"(TCP|UDP|SCTP)(?::\[([0-9,\-]+)\])?")


def parse_explain_portset(text: str) -> PortSet:
    """``TCP, UDP, SCTP`` / ``TCP:[8080], UDP:[1-52,54-65535]`` as np-guard's explain prints them."""
    m: dict[str, list[tuple[int, int]]] = {}
    for proto, ranges in _ITEM.findall(text):
        if not ranges:
            m.setdefault(proto, []).append((1, 65535))
            continue
        for r in ranges.split(","):
            lo, _, hi = r.partition("-")
            m.setdefault(proto, []).append((int(lo), int(hi or lo)))
    return PortSet.from_map({k: tuple(v) for k, v in m.items()})


def parse_explain(text: str) -> dict[tuple[str, str], tuple[PortSet, bool]]:
    """pair -> (allowed ports, has a denied part) from an np-guard explain golden."""
    out: dict[tuple[str, str], tuple[PortSet, bool]] = {}
    pair = None
    default_section = False
    for line in text.splitlines():
        if line.startswith("# All Connections due to the system default"):
            default_section = True
            pair = None
            continue
        if default_section:
            if " => " in line and not line.startswith("#"):
                a, b = line.strip().split(" => ")
                out[(a, b)] = (ALL, False)
            continue
        m = re.match(r"^Connections between (.+) => (.+):$", line)
        if m:
            pair = (m.group(1), m.group(2))
            out[pair] = (NONE, False)
            continue
        if pair is None:
            continue
        s = line.strip()
        if s.startswith("Allowed ") and "due to" in s:
            allowed, denied = out[pair]
            out[pair] = (allowed | parse_explain_portset(s[len("Allowed ") : s.index(" due to")]), denied)
        elif s.startswith("Denied ") and "due to" in s:
            out[pair] = (out[pair][0], True)
    return out
