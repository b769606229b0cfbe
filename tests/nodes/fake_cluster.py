"""The fake API server (tests/kube/fake_apiserver.py) extended into a small simulated cluster for
rotation: the Eviction subresource with PodDisruptionBudget-driven 429s, node PATCH (cordon,
annotations) and DELETE, a ReplicaSet-like controller that recreates evicted pods on schedulable nodes
(Ready after a delay), and a node-group controller that replaces deleted nodes (Ready after a delay).

After every mutating request it checks the invariants the rotation promises and records violations:
every PDB keeps its desired healthy pods, and no pod is ever deleted directly.
"""

from __future__ import annotations

import copy
import json
import math
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from kubestrata.kube.selectors import LabelSelector
from tests.kube.fake_apiserver import FakeAPIServer, TLSFiles, _status

NOW = "2026-12-02T00:00:00Z"


def node(name: str, group: str, zone: str, created: str, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "labels": {"eks.amazonaws.com/nodegroup": group, "topology.kubernetes.io/zone": zone},
        },
        "spec": {"providerID": f"aws:///{zone}/i-{abs(hash(name)) % 10**8:08d}"},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def pod(
    name: str, ns: str, app: str, node_name: str, ready: bool = True, daemonset: bool = False
) -> dict[str, Any]:
    owner = {"kind": "DaemonSet" if daemonset else "ReplicaSet", "name": f"{app}-rs", "apiVersion": "apps/v1"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}, "ownerReferences": [owner]},
        "spec": {"nodeName": node_name},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pdb(name: str, ns: str, app: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }


def _scaled(v: Any, n: int) -> int:
    if isinstance(v, str) and v.endswith("%"):
        return math.ceil(float(v[:-1]) * n / 100)
    return int(v)


class FakeCluster(FakeAPIServer):
    def __init__(
        self,
        objects: list[dict[str, Any]],
        tls: TLSFiles,
        *,
        pod_ready_after: float = 0.15,
        node_ready_after: float = 0.15,
        replace_nodes: bool = True,
        pdb_forbidden: bool = False,
        pod_delete_hook: bool = True,
    ) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.pdbs: list[dict[str, Any]] = []
        self.nodepools: list[dict[str, Any]] | None = None
        for o in objects:
            k = o["kind"]
            if k == "Node":
                self.nodes[o["metadata"]["name"]] = copy.deepcopy(o)
            elif k == "Pod":
                self.pods[(o["metadata"]["namespace"], o["metadata"]["name"])] = copy.deepcopy(o)
            elif k == "PodDisruptionBudget":
                self.pdbs.append(o)
            elif k == "NodePool":
                self.nodepools = (self.nodepools or []) + [o]
        super().__init__([], tls)
        self.pod_ready_after = pod_ready_after
        self.node_ready_after = node_ready_after
        self.replace_nodes = replace_nodes
        self.pdb_forbidden = pdb_forbidden
        self.expected = {self._pdb_ref(b): len(self._matching(b)) for b in self.pdbs}
        self.violations: list[str] = []
        self.events: list[str] = []  # mutating requests, in order
        self.evictions_429 = 0
        self.group_size = self._group_counts()
        self.max_unavailable_seen: dict[str, int] = {}
        self._timers: list[tuple[float, Any]] = []
        self._seq = 0
        self.block_evictions: set[tuple[str, str]] = set()  # pods whose eviction always 500s
        outer = self

        base = self.httpd.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return "<invalid>"

            def do_GET(self) -> None:  # noqa: N802
                self._send(*outer.get(self.path, self.headers.get("Authorization", "")))

            def do_POST(self) -> None:  # noqa: N802
                self._send(*outer.mutate("POST", self.path, self._body(), self.headers))

            def do_PATCH(self) -> None:  # noqa: N802
                self._send(*outer.mutate("PATCH", self.path, self._body(), self.headers))

            def do_DELETE(self) -> None:  # noqa: N802
                self._send(*outer.mutate("DELETE", self.path, self._body(), self.headers))

        assert issubclass(Handler, BaseHTTPRequestHandler)
        self.httpd.RequestHandlerClass = Handler

    # --- simulation ------------------------------------------------------------------------------
    @staticmethod
    def _pdb_ref(b: dict[str, Any]) -> str:
        return f"{b['metadata']['namespace']}/{b['metadata']['name']}"

    def _matching(self, b: dict[str, Any]) -> list[dict[str, Any]]:
        sel = LabelSelector.parse(b["spec"].get("selector"))
        ns = b["metadata"]["namespace"]
        return [
            p for (pns, _), p in self.pods.items() if pns == ns and sel.matches(p["metadata"].get("labels"))
        ]

    @staticmethod
    def _ready(o: dict[str, Any]) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True" for c in o["status"].get("conditions", []))

    def _desired(self, b: dict[str, Any]) -> int:
        n = self.expected[self._pdb_ref(b)]
        spec = b["spec"]
        if "minAvailable" in spec:
            return _scaled(spec["minAvailable"], n)
        return n - _scaled(spec["maxUnavailable"], n)

    def _allowed(self, b: dict[str, Any]) -> int:
        healthy = sum(1 for p in self._matching(b) if self._ready(p))
        return healthy - self._desired(b)

    def _group_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes.values():
            g = n["metadata"]["labels"].get("eks.amazonaws.com/nodegroup", "-")
            out.setdefault(g, 0)
            if self._ready(n) and not n["spec"].get("unschedulable"):
                out[g] += 1
        return out

    def _tick(self) -> None:
        """Fire due timers (pods and nodes becoming Ready)."""
        now = time.monotonic()
        due = [t for t in self._timers if t[0] <= now]
        self._timers = [t for t in self._timers if t[0] > now]
        for _, fn in due:
            fn()

    def _check(self, what: str) -> None:
        for b in self.pdbs:
            if self._allowed(b) < 0:
                healthy = sum(1 for p in self._matching(b) if self._ready(p))
                self.violations.append(
                    f"after {what}: PDB {self._pdb_ref(b)} has {healthy} healthy, wants {self._desired(b)}"
                )
        counts = self._group_counts()
        for g, size in self.group_size.items():
            down = size - counts.get(g, 0)
            self.max_unavailable_seen[g] = max(self.max_unavailable_seen.get(g, 0), down)

    def _schedule_replacement_pod(self, old: dict[str, Any]) -> None:
        targets = sorted(
            (n for n in self.nodes.values() if self._ready(n) and not n["spec"].get("unschedulable")),
            key=lambda n: sum(
                1 for p in self.pods.values() if p["spec"]["nodeName"] == n["metadata"]["name"]
            ),
        )
        if not targets:
            return  # pending: nowhere to run
        self._seq += 1
        new = copy.deepcopy(old)
        new["metadata"]["name"] = f"{old['metadata']['labels']['app']}-r{self._seq}"
        new["spec"]["nodeName"] = targets[0]["metadata"]["name"]
        new["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        key = (new["metadata"]["namespace"], new["metadata"]["name"])
        self.pods[key] = new

        def ready() -> None:
            if key in self.pods:
                self.pods[key]["status"]["conditions"] = [{"type": "Ready", "status": "True"}]

        self._timers.append((time.monotonic() + self.pod_ready_after, ready))

    def _replace_node(self, old: dict[str, Any]) -> None:
        self._seq += 1
        lab = old["metadata"]["labels"]
        new = node(
            f"{lab['eks.amazonaws.com/nodegroup']}-new{self._seq}",
            lab["eks.amazonaws.com/nodegroup"],
            lab["topology.kubernetes.io/zone"],
            NOW,
            ready=False,
        )
        name = new["metadata"]["name"]
        self.nodes[name] = new

        def ready() -> None:
            if name in self.nodes:
                self.nodes[name]["status"]["conditions"] = [{"type": "Ready", "status": "True"}]

        self._timers.append((time.monotonic() + self.node_ready_after, ready))

    # --- API ---------------------------------------------------------------------------------------
    def _auth(self, auth: str) -> bool:
        scheme, _, token = auth.partition(" ")
        return scheme.lower() == "bearer" and token in self.tokens

    def get(self, raw_path: str, auth: str) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append({"method": "GET", "path": url.path, "query": query, "auth": auth})
            if not self._auth(auth):
                return 401, _status(401, "Unauthorized", "Unauthorized")
            self._tick()
            if url.path == "/api/v1/nodes":
                return 200, self._list("NodeList", "v1", self.nodes.values())
            if url.path == "/api/v1/pods":
                pods = list(self.pods.values())
                fs = query.get("fieldSelector", "")
                if fs.startswith("spec.nodeName="):
                    pods = [p for p in pods if p["spec"]["nodeName"] == fs.split("=", 1)[1]]
                return 200, self._list("PodList", "v1", pods)
            if url.path == "/apis/policy/v1/poddisruptionbudgets":
                if self.pdb_forbidden:
                    return 403, _status(
                        403,
                        "Forbidden",
                        'poddisruptionbudgets.policy is forbidden: User "rotator" cannot list resource '
                        '"poddisruptionbudgets" in API group "policy" at the cluster scope',
                    )
                return 200, self._list("PodDisruptionBudgetList", "policy/v1", self.pdbs)
            if url.path == "/apis/karpenter.sh/v1/nodepools":
                if self.nodepools is None:
                    return 404, _status(404, "NotFound", "the server could not find the requested resource")
                return 200, self._list("NodePoolList", "karpenter.sh/v1", self.nodepools)
        return self.handle(raw_path, auth)

    @staticmethod
    def _list(kind: str, api_version: str, items: Any) -> dict[str, Any]:
        return {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": "1"},
            "items": [
                {k: v for k, v in copy.deepcopy(i).items() if k not in ("kind", "apiVersion")} for i in items
            ],
        }

    def mutate(self, method: str, raw_path: str, body: Any, headers: Any) -> tuple[int, Any]:
        path = urlsplit(raw_path).path
        with self._lock:
            self.requests.append({"method": method, "path": path, "body": body})
            if not self._auth(headers.get("Authorization", "")):
                return 401, _status(401, "Unauthorized", "Unauthorized")
            self._tick()
            parts = [unquote(p) for p in path.strip("/").split("/")]
            # /api/v1/nodes/NAME
            if parts[:3] == ["api", "v1", "nodes"] and len(parts) == 4:
                name = parts[3]
                if name not in self.nodes:
                    return 404, _status(404, "NotFound", f'nodes "{name}" not found')
                if method == "PATCH":
                    if headers.get("Content-Type") != "application/merge-patch+json" or not isinstance(
                        body, dict
                    ):
                        return 415, _status(415, "UnsupportedMediaType", "expected a merge patch")
                    n = self.nodes[name]
                    ann = (body.get("metadata") or {}).get("annotations") or {}
                    n["metadata"].setdefault("annotations", {}).update(ann)
                    if "spec" in body:
                        n["spec"].update(body["spec"])
                    self.events.append(f"patch {name} {json.dumps(body, sort_keys=True)}")
                    self._check(f"patch node {name}")
                    return 200, n
                if method == "DELETE":
                    n = self.nodes.pop(name)
                    orphans = [k for k, p in self.pods.items() if p["spec"]["nodeName"] == name]
                    for k in orphans:  # the pod garbage collector removes pods of a deleted node
                        del self.pods[k]
                    self.events.append(f"delete node {name}")
                    self._check(f"delete node {name}")
                    if self.replace_nodes:
                        self._replace_node(n)
                    return 200, _status(200, "Success", "deleted") | {"status": "Success"}
            # /api/v1/namespaces/NS/pods/NAME[/eviction]
            if parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 6 and parts[4] == "pods":
                ns, name = parts[3], parts[5]
                key = (ns, name)
                if method == "DELETE" and len(parts) == 6:
                    self.violations.append(f"pod {ns}/{name} deleted directly")
                    return 403, _status(403, "Forbidden", "rotation must not delete pods")
                if method == "POST" and len(parts) == 7 and parts[6] == "eviction":
                    if not isinstance(body, dict) or body.get("kind") != "Eviction":
                        return 400, _status(400, "BadRequest", "body must be an Eviction")
                    if key not in self.pods:
                        return 404, _status(404, "NotFound", f'pods "{name}" not found')
                    if key in self.block_evictions:
                        return 500, _status(500, "InternalError", "webhook denied the eviction")
                    p = self.pods[key]
                    for b in self.pdbs:
                        if p in self._matching(b) and self._ready(p) and self._allowed(b) < 1:
                            self.evictions_429 += 1
                            return 429, _status(
                                429,
                                "TooManyRequests",
                                "Cannot evict pod as it would violate the pod's disruption budget.",
                                {
                                    "causes": [
                                        {
                                            "reason": "DisruptionBudget",
                                            "message": f"The disruption budget "
                                            f"{b['metadata']['name']} needs {self._desired(b)} healthy pods",
                                        }
                                    ]
                                },
                            )
                    del self.pods[key]
                    self.events.append(f"evict {ns}/{name}")
                    self._check(f"evict {ns}/{name}")
                    if p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet":
                        self._schedule_replacement_pod(p)
                    return 201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}
        return 404, _status(404, "NotFound", f"no route for {method} {path}")


def three_zone_cluster(
    old: str = "2026-10-01T00:00:00Z", young: str = "2026-11-28T00:00:00Z"
) -> list[dict[str, Any]]:
    """Two node groups across three zones; nine old nodes and three young ones; deployments with
    tight PDBs spread over the old nodes; one DaemonSet."""
    objs: list[dict[str, Any]] = []
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    names = []
    for g in ("workers", "batch"):
        for zi, z in enumerate(zones):
            for i in range(2 if g == "workers" else 1):
                name = f"{g}-{z[-1]}{i}"
                created = old if not (g == "batch" and zi == 2) else young
                if g == "workers" and i == 1 and zi == 1:
                    created = "2026-09-01T00:00:00Z"  # the oldest
                objs.append(node(name, g, z, created))
                names.append(name)
    apps = {
        "web": (6, {"minAvailable": 5}),
        "api": (4, {"maxUnavailable": 1}),
        "cache": (3, {"minAvailable": "60%"}),
    }
    k = 0
    for app, (replicas, spec) in apps.items():
        for i in range(replicas):
            objs.append(pod(f"{app}-{i}", "shop", app, names[k % len(names)]))
            k += 1
        objs.append(pdb(f"{app}-pdb", "shop", app, **spec))
    for n in names:
        objs.append(pod(f"agent-{n}", "kube-system", "agent", n, daemonset=True))
    return objs
