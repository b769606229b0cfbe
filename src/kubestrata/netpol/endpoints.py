"""Pods as the policy engine sees them: from workload templates (one representative per workload,
replicas noted) and from real Pods (status IPs, owner workload)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubestrata.errors import InputError
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import CONTROLLER_KINDS, pod_template, service_account_name
from kubestrata.netpol import sets
from kubestrata.textsafe import printable


@dataclass(slots=True)
class Endpoint:
    """A workload (or a bare Pod) whose pods share namespace, labels and container ports."""

    namespace: str
    name: str
    kind: str
    labels: dict[str, str]
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, number) of named container ports
    ips: tuple[int, ...] = ()
    host_network: bool = False
    service_account: str = "default"
    replicas: int = 1
    objs: list[KubeObject] = field(default_factory=list)

    @property
    def label(self) -> str:
        # names come from untrusted manifests: a newline or escape sequence must not forge output lines
        return printable(f"{self.namespace}/{self.name}[{self.kind}]")

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def _labels(labels: dict[str, Any]) -> dict[str, Any]:
    # a list or mapping label value (the API server rejects it) must not break class keys: as a
    # string it equals no selector value
    return {
        k: v if v is None or isinstance(v, str | int | float | bool) else str(v) for k, v in labels.items()
    }


def _named_ports(
    spec: dict[str, Any], spec_path: str, include_init: bool
) -> tuple[tuple[str, str, int], ...]:
    """Named container ports; the first container declaring a name wins (as np-guard and kube-proxy
    resolve it). Init and sidecar containers count only when asked (np-guard: regular containers)."""
    fields = ("initContainers", "containers") if include_init else ("containers",)
    out: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    for fld in fields:
        items = spec.get(fld) or []
        if not isinstance(items, list):
            raise InputError(f"expected a list, got {type(items).__name__}", field=f"{spec_path}.{fld}")
        for i, c in enumerate(items):
            if not isinstance(c, dict):
                raise InputError("expected a container mapping", field=f"{spec_path}.{fld}[{i}]")
            ports = c.get("ports") or []
            if not isinstance(ports, list):
                raise InputError("expected a list", field=f"{spec_path}.{fld}[{i}].ports")
            for p in ports:
                if not isinstance(p, dict):
                    continue
                name, num = p.get("name"), p.get("containerPort")
                if isinstance(name, str) and name and isinstance(num, int) and name not in seen:
                    seen.add(name)
                    out.append((name, str(p.get("protocol") or "TCP"), num))
    return tuple(out)


def _replicas(obj: KubeObject) -> int:
    spec = obj.raw.get("spec") or {}
    if obj.kind in ("DaemonSet", "CronJob"):
        return 1
    key = "parallelism" if obj.kind == "Job" else "replicas"
    v = spec.get(key) if isinstance(spec, dict) else None
    return v if isinstance(v, int) and v >= 0 else 1


def _controller(obj: KubeObject) -> tuple[str, str]:
    for ref in obj.metadata.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True and ref.get("kind") != "Node":
            return str(ref.get("kind") or "Pod"), str(ref.get("name") or "")
    return "", ""


def collect_endpoints(
    cluster: Cluster, *, include_init_ports: bool = False, resolve_owners: bool = False
) -> tuple[list[Endpoint], list[InputError]]:
    """Workloads and Pods of the snapshot; Pods sharing a controller owner merge into one endpoint
    named after the owner (np-guard's peer naming). Returns endpoints and per-object errors.

    ``resolve_owners`` (live snapshots): follow ReplicaSet -> Deployment and Job -> CronJob when the
    intermediate object is in the snapshot, skip finished pods (phase Succeeded/Failed hold no
    address), and drop a workload's template when its real pods are present, so each workload
    appears once, under the name people use."""
    out: list[Endpoint] = []
    seen_owners: set[tuple[str, str, str]] = set()
    errors: list[InputError] = []
    by_owner: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], Endpoint] = {}
    for obj in cluster.real_objects():
        if obj.kind != "Pod" and obj.kind not in CONTROLLER_KINDS:
            continue
        if obj.kind == "PodTemplate":
            continue
        try:
            tpl = pod_template(obj)
            if tpl is None:
                continue
            ports = _named_ports(tpl.spec, tpl.spec_path, include_init_ports)
        except InputError as e:
            errors.append(
                InputError(
                    f"{obj.kind} {obj.namespace}/{obj.name}: {e.detail}",
                    file=obj.source.file,
                    document=obj.source.document,
                    field=e.field,
                )
            )
            continue
        host_net = tpl.spec.get("hostNetwork") is True
        sa = service_account_name(tpl.spec)
        if obj.kind != "Pod":
            out.append(
                Endpoint(
                    obj.namespace,
                    obj.name,
                    obj.kind,
                    _labels(tpl.labels),
                    ports,
                    (),
                    host_net,
                    sa,
                    _replicas(obj),
                    [obj],
                )
            )
            continue
        raw_status = obj.raw.get("status")
        status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
        if resolve_owners and status.get("phase") in ("Succeeded", "Failed"):
            continue
        ips: list[int] = []
        for entry in status.get("podIPs") or []:
            if isinstance(entry, dict) and isinstance(entry.get("ip"), str):
                try:
                    ips.append(sets.ip_value(entry["ip"]))
                except ValueError:
                    pass
        if not ips and isinstance(status.get("podIP"), str):
            try:
                ips.append(sets.ip_value(status["podIP"]))
            except ValueError:
                pass
        owner_kind, owner_name = _controller(obj)
        if resolve_owners and owner_name:
            seen_owners.add((obj.namespace, owner_kind, owner_name))
            mid = (
                cluster.get(owner_kind, obj.namespace, owner_name)
                if owner_kind in ("ReplicaSet", "Job")
                else None
            )
            if mid is not None:
                up_kind, up_name = _controller(mid)
                if (owner_kind, up_kind) in (("ReplicaSet", "Deployment"), ("Job", "CronJob")) and up_name:
                    owner_kind, owner_name = up_kind, up_name
                    seen_owners.add((obj.namespace, owner_kind, owner_name))
        if not owner_name:
            out.append(
                Endpoint(
                    obj.namespace,
                    obj.name,
                    "Pod",
                    _labels(obj.labels),
                    ports,
                    tuple(ips),
                    host_net,
                    sa,
                    1,
                    [obj],
                )
            )
            continue
        # Pods of one owner with different labels stay apart (they may be selected differently);
        # they share the owner's name in output.
        key = (obj.namespace, owner_kind, owner_name, tuple(sorted(obj.labels.items())))
        ep = by_owner.get(key)
        if ep is None:
            ep = by_owner[key] = Endpoint(
                obj.namespace,
                owner_name,
                owner_kind,
                _labels(obj.labels),
                ports,
                tuple(ips),
                host_net,
                sa,
                0,
                [],
            )
            out.append(ep)
        else:
            ep.ips = ep.ips + tuple(ips)
        ep.replicas += 1
        ep.objs.append(obj)
    if resolve_owners and seen_owners:
        out = [
            e
            for e in out
            if not (
                e.kind != "Pod"
                and e.ips == ()
                and (e.namespace, e.kind, e.name) in seen_owners
                and e.objs
                and e.objs[0].kind == e.kind
            )
        ]
    return out, errors
