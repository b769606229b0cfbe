"""AWS Security Groups for Pods as an extra layer.

Which groups a pod gets comes from SecurityGroupPolicy objects (amazon-vpc-resource-controller-k8s
``filterPodSecurityGroups``): SGPs of the pod's namespace; podSelector and serviceAccountSelector must
both match when both are set (the SA selector reads the ServiceAccount's labels); the result is the
de-duplicated union of every match; hostNetwork pods get none.

What the groups allow comes from EC2, not from manifests: pass the JSON of
``aws ec2 describe-security-groups`` (``--security-groups FILE``). A pod with groups then needs the NP
verdict AND a security-group rule: an ingress rule of one of its groups matching the source (CIDR,
or another pod holding a referenced group), an egress rule matching the destination. Groups are
stateful (replies are allowed) and allow-only. ICMP and prefix-list rules are not modelled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kubestrata.errors import InputError
from kubestrata.netpol import sets
from kubestrata.netpol.sets import ALL, NONE, Intervals, PortSet

_PROTO = {"tcp": "TCP", "6": "TCP", "udp": "UDP", "17": "UDP", "sctp": "SCTP", "132": "SCTP"}


@dataclass(frozen=True, slots=True)
class SGRule:
    ports: PortSet
    ips: Intervals
    groups: frozenset[str]


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    group_id: str
    ingress: tuple[SGRule, ...]
    egress: tuple[SGRule, ...]


def _rule(perm: dict, fld: str, file: str) -> SGRule | None:
    proto = str(perm.get("IpProtocol", "")).lower()
    if proto in ("-1", "all"):
        ports = ALL
    elif proto in _PROTO:
        lo, hi = perm.get("FromPort", -1), perm.get("ToPort", -1)
        if not isinstance(lo, int) or not isinstance(hi, int):
            raise InputError("FromPort/ToPort must be integers", file=file, field=fld)
        if lo in (-1, 0) and hi in (-1, 65535):
            lo, hi = sets.PORT_MIN, sets.PORT_MAX
        ports = PortSet.of(_PROTO[proto], max(lo, sets.PORT_MIN), min(hi, sets.PORT_MAX))
    else:
        return None  # icmp / icmpv6: connections of a protocol we do not model
    ivs = []
    for i, r in enumerate(perm.get("IpRanges") or []):
        try:
            ivs.append(sets.cidr_interval(str(r.get("CidrIp"))))
        except ValueError:
            raise InputError(
                f"invalid CIDR {r.get('CidrIp')!r}", file=file, field=f"{fld}.IpRanges[{i}]"
            ) from None
    for i, r in enumerate(perm.get("Ipv6Ranges") or []):
        try:
            ivs.append(sets.cidr_interval(str(r.get("CidrIpv6"))))
        except ValueError:
            raise InputError(
                f"invalid CIDR {r.get('CidrIpv6')!r}", file=file, field=f"{fld}.Ipv6Ranges[{i}]"
            ) from None
    groups = frozenset(str(p.get("GroupId")) for p in perm.get("UserIdGroupPairs") or [] if p.get("GroupId"))
    return SGRule(ports, sets.normalize(ivs), groups)


def load_security_groups(path: str) -> dict[str, SecurityGroup]:
    """Parse ``aws ec2 describe-security-groups`` JSON (``{"SecurityGroups": [...]}``)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", file=path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start}); expected JSON", file=path) from None
    except json.JSONDecodeError as e:
        raise InputError(f"not JSON: {e}", file=path) from None
    groups = doc.get("SecurityGroups") if isinstance(doc, dict) else None
    if not isinstance(groups, list):
        raise InputError(
            "expected the output of `aws ec2 describe-security-groups`", file=path, field="SecurityGroups"
        )
    out: dict[str, SecurityGroup] = {}
    for i, g in enumerate(groups):
        gid = g.get("GroupId") if isinstance(g, dict) else None
        if not isinstance(gid, str):
            raise InputError("GroupId is required", file=path, field=f"SecurityGroups[{i}].GroupId")
        ing = [
            _rule(p, f"SecurityGroups[{i}].IpPermissions[{j}]", path)
            for j, p in enumerate(g.get("IpPermissions") or [])
        ]
        eg = [
            _rule(p, f"SecurityGroups[{i}].IpPermissionsEgress[{j}]", path)
            for j, p in enumerate(g.get("IpPermissionsEgress") or [])
        ]
        out[gid] = SecurityGroup(gid, tuple(r for r in ing if r), tuple(r for r in eg if r))
    return out


def blocks(groups: dict[str, SecurityGroup]) -> list[Intervals]:
    return [r.ips for g in groups.values() for r in (*g.ingress, *g.egress) if r.ips]


__all__ = ["NONE", "SGRule", "SecurityGroup", "blocks", "load_security_groups"]
