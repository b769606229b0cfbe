"""Carrying a rotation plan out against a live API server, per node: annotate and cordon, evict through
the Eviction API, wait for the pods to go, delete the Node (terminating its instance when asked), wait
for the replacement; and reading the cluster state a plan starts from."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kubestrata.errors import KubestrataError
from kubestrata.nodes.rotate.model import (
    ANNOTATION,
    NodeStep,
    RotationPlan,
    evictable,
    meta_of,
    node_group,
    node_ready,
    node_schedulable,
)


class RotationError(KubestrataError):
    """The run stopped: what happened, at which node; rerunning resumes from the node annotations."""


@dataclass
class Response:
    status: int
    body: Any


# A REST call: (method, path, query, body) -> Response
Requester = Callable[[str, str, list[tuple[str, str]] | None, Any], Response]


@dataclass
class Timing:
    poll: float = 2.0
    eviction_timeout: float = 600.0
    drain_timeout: float = 900.0
    replacement_timeout: float = 1200.0


@dataclass
class ClusterState:
    nodes: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    pdbs: list[dict[str, Any]]
    nodepools: list[dict[str, Any]]
    notes: list[str]


def _status_message(r: Response) -> str:
    if isinstance(r.body, dict):
        return str(r.body.get("message") or r.body.get("reason") or "")
    return str(r.body)[:200]


def _list(
    req: Requester, path: str, what: str, query: list[tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        q = list(query or []) + [("limit", "500")] + ([("continue", token)] if token else [])
        r = req("GET", path, q, None)
        if r.status != 200 or not isinstance(r.body, dict):
            raise RotationError(
                f"cannot list {what} (HTTP {r.status}: {_status_message(r)}); refusing to rotate without them"
            )
        items.extend(i for i in r.body.get("items") or [] if isinstance(i, dict))
        token = (r.body.get("metadata") or {}).get("continue")
        if not token:
            return items


def read_state(req: Requester) -> ClusterState:
    """Nodes, pods and PDBs (all required), and Karpenter NodePools (optional)."""
    nodes = _list(req, "/api/v1/nodes", "nodes")
    pods = _list(req, "/api/v1/pods", "pods")
    pdbs = _list(req, "/apis/policy/v1/poddisruptionbudgets", "PodDisruptionBudgets")
    notes = []
    r = req("GET", "/apis/karpenter.sh/v1/nodepools", None, None)
    if r.status == 200 and isinstance(r.body, dict):
        nodepools = [i for i in r.body.get("items") or [] if isinstance(i, dict)]
    else:
        nodepools = []
        if r.status != 404:
            notes.append(f"Karpenter NodePools not readable (HTTP {r.status}): expireAfter not detected")
    return ClusterState(nodes, pods, pdbs, nodepools, notes)


class Rotator:
    """Executes a plan step by step against the API server (``req``), logging each action."""

    def __init__(
        self,
        req: Requester,
        log: Callable[[str], None],
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        run_id: str | None = None,
        terminate: Callable[[str], str] | None = None,
    ) -> None:
        self.req = req
        self.log = log
        self.t = timing or Timing()
        self.clock = clock
        self.sleep = sleep
        self.run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.terminate = terminate  # instance id -> what happened; for Auto Scaling group nodes

    # -- node operations
    def _annotate(self, node: str, phase: str, cordon: bool | None = None) -> None:
        value = json.dumps({"phase": phase, "run": self.run_id}, separators=(",", ":"))
        patch: dict[str, Any] = {"metadata": {"annotations": {ANNOTATION: value}}}
        if cordon is not None:
            patch["spec"] = {"unschedulable": cordon}
        r = self.req("PATCH", f"/api/v1/nodes/{quote(node, safe='')}", None, patch)
        if r.status != 200:
            raise RotationError(f"cannot mark node {node} {phase} (HTTP {r.status}: {_status_message(r)})")

    def _pods_on(self, node: str) -> list[dict[str, Any]]:
        return _list(
            req=self.req,
            path="/api/v1/pods",
            what=f"pods on {node}",
            query=[("fieldSelector", f"spec.nodeName={node}")],
        )

    def _evict(self, ns: str, name: str, node: str) -> None:
        deadline = self.clock() + self.t.eviction_timeout
        attempts = 0
        last = ""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": ns},
        }
        while True:
            attempts += 1
            r = self.req(
                "POST",
                f"/api/v1/namespaces/{quote(ns, safe='')}/pods/{quote(name, safe='')}/eviction",
                None,
                body,
            )
            if r.status in (200, 201):
                self.log(f"evicted pod {ns}/{name} from {node}")
                return
            if r.status == 404:
                self.log(f"pod {ns}/{name} is already gone")
                return
            last = f"HTTP {r.status}: {_status_message(r)}"
            if r.status == 429:
                if attempts == 1:
                    self.log(
                        f"eviction of {ns}/{name} must wait for its disruption budget ({_status_message(r)})"
                    )
            else:
                self.log(f"eviction of {ns}/{name} failed ({last}); retrying")
            if self.clock() >= deadline:
                raise RotationError(
                    f"stopped at node {node}: pod {ns}/{name} could not be evicted in "
                    f"{self.t.eviction_timeout:g}s ({attempts} attempts; last: {last}). The node stays cordoned; "
                    "fix the budget or the workload and rerun to resume"
                )
            self.sleep(self.t.poll)

    def _wait(self, what: str, done: Callable[[], bool], timeout: float, node: str) -> None:
        deadline = self.clock() + timeout
        while not done():
            if self.clock() >= deadline:
                raise RotationError(
                    f"stopped at node {node}: {what} did not happen within {timeout:g}s; rerun to resume"
                )
            self.sleep(self.t.poll)

    def _group_ready(self, group: str, exclude: str | None = None) -> int:
        nodes = _list(self.req, "/api/v1/nodes", "nodes")
        return sum(
            1
            for n in nodes
            if node_group(n) == group
            and node_ready(n)
            and node_schedulable(n)
            and meta_of(n).get("name") != exclude
            and not (meta_of(n).get("annotations") or {}).get(ANNOTATION)
        )

    # -- one node
    def rotate_node(self, step: NodeStep, min_healthy: int, baseline: int) -> None:
        node = step.node
        if step.resume not in ("cordoned", "drained"):
            others = self._group_ready(step.group, exclude=node)
            if others < min_healthy:
                self.log(
                    f"group {step.group} has {others} other ready node(s), below its minimum {min_healthy}: waiting"
                )
                self._wait(
                    f"group {step.group} reaching {min_healthy} other ready nodes",
                    lambda: self._group_ready(step.group, exclude=node) >= min_healthy,
                    self.t.replacement_timeout,
                    node,
                )
            self._annotate(node, "cordoned", cordon=True)
            self.log(f"cordoned node {node}")
        if step.resume != "drained":
            for p in self._pods_on(node):
                if evictable(p):
                    m = meta_of(p)
                    self._evict(str(m.get("namespace") or "default"), str(m.get("name")), node)
            self._wait(
                f"pods leaving node {node}",
                lambda: not any(evictable(p) for p in self._pods_on(node)),
                self.t.drain_timeout,
                node,
            )
            self._annotate(node, "drained")
            self.log(f"drained node {node}")
        if self.terminate is not None and not step.karpenter:
            iid = step.instance_id
            if iid is None:
                raise RotationError(
                    f"stopped at node {node}: no EC2 instance id in its providerID {step.provider_id!r} "
                    "to terminate; the node stays cordoned and drained"
                )
            self.log(f"terminating instance {iid} of node {node}: {self.terminate(iid)}")
        r = self.req("DELETE", f"/api/v1/nodes/{quote(node, safe='')}", None, None)
        if r.status not in (200, 202, 404):
            raise RotationError(f"cannot delete node {node} (HTTP {r.status}: {_status_message(r)})")
        self.log(f"deleted node {node}")
        self._wait(
            f"a replacement node in group {step.group} becoming Ready",
            lambda: self._group_ready(step.group) >= baseline,
            self.t.replacement_timeout,
            node,
        )
        self.log(f"group {step.group} is back to {baseline} ready node(s)")

    def run(self, p: RotationPlan) -> list[str]:
        """Rotate every step in order; stop at the first that fails. Returns the nodes rotated."""
        done = []
        for s in p.steps:
            if s.blocked:
                raise RotationError(f"stopped at node {s.node}: {s.blocked[0]}")
            g = p.groups.get(s.group, {"ready": 0, "minHealthy": 0})
            self.log(f"rotating node {s.node} (group {s.group}, zone {s.zone}, {s.age_days:.0f} days old)")
            # a node resumed while cordoned was not counted ready at planning time: its replacement is
            self.rotate_node(s, g["minHealthy"], baseline=g["ready"] + (1 if s.resume else 0))
            done.append(s.node)
        return done


def api_requester(
    kubeconfig: str | None, context: str | None, timeout: float = 30.0
) -> tuple[Requester, Any]:
    """A Requester over the official client's ApiClient (kubeconfig, exec plugins, in-cluster)."""
    import orjson
    import urllib3

    from kubestrata.kube.live import _api_client

    api = _api_client(kubeconfig, context)

    def req(method: str, path: str, query: list[tuple[str, str]] | None, body: Any) -> Response:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = (
                "application/merge-patch+json" if method == "PATCH" else "application/json"
            )
        m, url, hdrs, b, _ = api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            resp = api.call_api(m, url, header_params=hdrs, body=b, _request_timeout=(10.0, timeout))
            raw = resp.read()
        except urllib3.exceptions.HTTPError as e:
            raise RotationError(f"cannot reach the API server: {e}") from None
        except Exception as e:  # ApiException(status=0) for TLS errors and the like
            raise RotationError(f"cannot talk to the API server: {getattr(e, 'reason', None) or e}") from None
        try:
            doc = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            doc = raw.decode("utf-8", "replace")
        return Response(resp.status, doc)

    return req, api


def asg_terminator(region: str | None, profile: str | None, endpoint_url: str | None) -> Callable[[str], str]:
    """Terminate an instance in its Auto Scaling group without decrementing the desired capacity, so the
    group launches a replacement (what a managed node group does on its own updates)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.Session(profile_name=profile, region_name=region).client(
        "autoscaling", endpoint_url=endpoint_url
    )

    def terminate(instance_id: str) -> str:
        try:
            r = client.terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=False
            )
        except (BotoCoreError, ClientError) as e:
            raise RotationError(
                f"cannot terminate instance {instance_id} in its Auto Scaling group: {e}"
            ) from None
        act = r.get("Activity") or {}
        return str(act.get("Description") or act.get("StatusCode") or "terminating")

    return terminate
