"""Collect a Cluster snapshot from a live API server with the official ``kubernetes`` client.

Authentication is whatever the kubeconfig says (contexts, client certificates, tokens, exec credential
plugins such as ``aws eks get-token``) or the in-cluster service account. Every kind the checks need
is listed concurrently and paginated (``limit``/``continue``); the raw JSON is parsed with orjson and
kept in API wire format, with ``kind``/``apiVersion`` put back on each item (list items lack them).

A kind the credentials may not list (403) or that the server does not serve (404) becomes a coverage
gap, never a silent pass. Running out of time is an error that says how far the collection got.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import yaml

from kubestrata.errors import KubestrataError
from kubestrata.findings import Coverage, GapReason
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject, Source

PAGE_SIZE = 500
WORKERS = 8


@dataclass(frozen=True, slots=True)
class Resource:
    """One listable API resource: group ("" for core), version, plural, kind, namespaced."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """``plural.group`` as RBAC and kubectl name it (``deployments.apps``, ``pods``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{base}/{self.plural}"


# What the checks read: the nine workload kinds, identities and RBAC, network policy, aws-auth
# (ConfigMaps), nodes, services and admission configuration.
RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False),
    Resource("", "v1", "nodes", "Node", False),
    Resource("", "v1", "pods", "Pod", True),
    Resource("", "v1", "podtemplates", "PodTemplate", True),
    Resource("", "v1", "replicationcontrollers", "ReplicationController", True),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True),
    Resource("", "v1", "services", "Service", True),
    Resource("", "v1", "configmaps", "ConfigMap", True),
    Resource("apps", "v1", "deployments", "Deployment", True),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True),
    Resource("batch", "v1", "jobs", "Job", True),
    Resource("batch", "v1", "cronjobs", "CronJob", True),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", True),
    Resource(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
    ),
    Resource(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
    ),
    # volume encryption posture (checks/encryption.py)
    Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", False),
    Resource("", "v1", "persistentvolumes", "PersistentVolume", False),
)


class _Gap(Exception):
    def __init__(self, reason: GapReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _api_client(kubeconfig: str | None, context: str | None) -> Any:
    """An ApiClient from the kubeconfig (explicit, $KUBECONFIG or ~/.kube/config) or, when none
    exists and we run in a pod, from the in-cluster service account."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    explicit = kubeconfig or os.environ.get("KUBECONFIG")
    default = os.path.expanduser(config.KUBE_CONFIG_DEFAULT_LOCATION)
    try:
        if explicit or os.path.exists(default) or context:
            path = explicit or default
            if ":" in path and not os.path.exists(path):  # KUBECONFIG may list several files
                path = next((p for p in path.split(os.pathsep) if os.path.exists(p)), path)
            if not os.path.exists(path):
                raise KubestrataError(f"kubeconfig {path} does not exist")
            cfg = client.Configuration()
            config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
        else:
            raise KubestrataError(
                "no kubeconfig found (give --kubeconfig, set KUBECONFIG or create ~/.kube/config) "
                "and not running in a cluster"
            )
    except ConfigException as e:
        raise KubestrataError(f"cannot load Kubernetes credentials: {e}") from None
    except (OSError, ValueError, yaml.YAMLError) as e:  # unreadable files, malformed YAML, failed exec plugin
        raise KubestrataError(f"cannot load Kubernetes credentials: {e}") from None
    cfg.retries = 1
    cfg.connection_pool_maxsize = WORKERS
    return client.ApiClient(cfg)


def _status_message(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return doc["message"]
    return ""


def _why(e: Exception) -> str:
    """The cause of a urllib3 failure in a few words (not its pool, URL and object reprs)."""
    text = str(getattr(e, "reason", None) or e)
    for marker in ("Failed to establish a new connection:", "Caused by"):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return text.strip(" '\"()") or type(e).__name__


def _get(api: Any, path: str, query: list[tuple[str, Any]], deadline: float) -> tuple[int, bytes]:
    """One authenticated GET; returns status and body. Raises TimeoutError past the deadline and
    KubestrataError when the server cannot be reached at all."""
    import urllib3

    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    method, url, headers, _body, _post = api.param_serialize(
        "GET",
        path,
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    try:
        resp = api.call_api(method, url, header_params=headers, _request_timeout=(min(left, 10.0), left))
        body = resp.read()
    except urllib3.exceptions.HTTPError as e:
        if time.monotonic() >= deadline or "timed out" in str(e).lower():
            raise TimeoutError from None
        raise KubestrataError(f"cannot reach the API server {api.configuration.host}: {_why(e)}") from None
    except Exception as e:  # ApiException(status=0) for TLS errors, and the like
        reason = getattr(e, "reason", None) or str(e)
        raise KubestrataError(f"cannot talk to the API server: {reason}") from None
    return resp.status, body


def _list(api: Any, res: Resource, namespace: str | None, deadline: float) -> list[dict[str, Any]]:
    """Every item of one resource, page by page, in wire format with kind/apiVersion set."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    restarted = False
    while True:
        query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
        if token:
            query.append(("continue", token))
        status, body = _get(api, res.path(namespace), query, deadline)
        if status == 401:
            raise KubestrataError(
                f"the API server rejected the credentials (401 Unauthorized) listing {res.name}: "
                + (_status_message(body) or "check the kubeconfig user or refresh the token")
            )
        if status == 403:
            raise _Gap(GapReason.FORBIDDEN, _status_message(body) or f"list {res.name} is forbidden")
        if status == 404:
            raise _Gap(
                GapReason.NOT_FOUND,
                f"the API server does not serve {res.api_version} {res.plural} ({res.path(namespace)})",
            )
        if status == 410 and token and not restarted:
            # the continue token expired (etcd compaction): list again from the start, once
            items, token, restarted = [], None, True
            continue
        if not 200 <= status < 300:
            raise _Gap(GapReason.ERROR, f"HTTP {status} listing {res.name}: {_status_message(body)}")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise _Gap(GapReason.ERROR, f"listing {res.name} returned invalid JSON: {e}") from None
        page = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(page, list):
            raise _Gap(GapReason.ERROR, f"listing {res.name} returned no items list")
        for item in page:
            if isinstance(item, dict):
                # list items carry no kind/apiVersion on the wire; put them back first in the dict
                items.append({"apiVersion": res.api_version, "kind": res.kind, **item})
        meta = doc.get("metadata") or {}
        token = meta.get("continue") if isinstance(meta, dict) else None
        if not token:
            return items


KUBELET_CONFIG_API_VERSION = "kubelet.config.k8s.io/v1beta1"


def _kubelet_config(api: Any, node: str, deadline: float) -> dict[str, Any]:
    """The node's running kubelet configuration through the API server's node proxy (configz), as a
    KubeletConfiguration object named after the node."""
    status, body = _get(api, f"/api/v1/nodes/{quote(node, safe='')}/proxy/configz", [], deadline)
    if status == 403:
        raise _Gap(GapReason.FORBIDDEN, _status_message(body) or "get nodes/proxy is forbidden")
    if not 200 <= status < 300:
        raise _Gap(GapReason.ERROR, f"HTTP {status} from node {node}: {_status_message(body)}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise _Gap(GapReason.ERROR, f"node {node} returned invalid JSON: {e}") from None
    cfg = doc.get("kubeletconfig") if isinstance(doc, dict) else None
    if not isinstance(cfg, dict):
        raise _Gap(GapReason.ERROR, f"node {node} returned no kubeletconfig")
    return {
        "apiVersion": KUBELET_CONFIG_API_VERSION,
        "kind": "KubeletConfiguration",
        "metadata": {"name": node},
        **cfg,
    }


def collect_kubelet_configs(
    api: Any, nodes: list[str], deadline: float, coverage: Coverage
) -> list[dict[str, Any]]:
    """Every node's kubelet configuration, concurrently. Nodes that cannot be asked (nodes/proxy
    forbidden, kubelet unreachable) become one coverage gap per reason, not a pass."""
    configs: list[dict[str, Any]] = []
    failures: dict[GapReason, list[str]] = {}
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kubestrata-configz") as pool:
        futures = {pool.submit(_kubelet_config, api, n, deadline): n for n in nodes}
        for fut, node in futures.items():
            try:
                configs.append(fut.result())
            except _Gap as g:
                failures.setdefault(g.reason, []).append(f"{node}: {g.detail}")
            except TimeoutError:
                failures.setdefault(GapReason.TIMEOUT, []).append(f"{node}: no answer before the deadline")
    for reason, details in failures.items():
        coverage.gap(
            "KubeletConfiguration",
            reason,
            f"{len(details)} of {len(nodes)} nodes' kubelet configuration (nodes/proxy configz) not read; "
            f"first: {details[0]}",
        )
    return configs


def collect_cluster(
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    timeout: float = 60.0,
    coverage: Coverage | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    resources: Iterable[Resource] = RESOURCES,
    kubelet_configs: bool = True,
) -> Cluster:
    """List every resource the checks need from the API server into a Cluster snapshot.

    Forbidden (403) and unserved (404) kinds are recorded in ``coverage`` as gaps. Raises
    KubestrataError when the credentials cannot be loaded or are rejected, the server cannot be
    reached, or ``timeout`` seconds pass before every kind is listed. ``progress(done, total, what)`` is
    called as each kind is listed (the CLI draws it; the collector prints nothing).
    """
    coverage = coverage if coverage is not None else Coverage()
    resources = list(resources)
    api = _api_client(kubeconfig, context)
    server = str(api.configuration.host)
    deadline = time.monotonic() + timeout
    source = Source(server)
    done: dict[Resource, list[dict[str, Any]]] = {}
    failed: set[Resource] = set()
    lock = threading.Lock()

    def work(res: Resource) -> None:
        try:
            items = _list(api, res, namespace, deadline)
        except _Gap as g:
            with lock:
                coverage.gap(res.kind, g.reason, f"{res.name}: {g.detail}")
                failed.add(res)
            items = []
        with lock:
            done[res] = items
            n_done = len(done)
        if progress is not None:
            progress(n_done, len(resources), f"{res.name} ({len(items)})")

    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kubestrata-list")
    futures: list[Future[None]] = [pool.submit(work, r) for r in resources]
    try:
        finished, pending = wait(futures, timeout=max(timeout, 0.0), return_when=FIRST_EXCEPTION)
        errors = [e for e in (f.exception() for f in finished) if e is not None]
        fatal = [e for e in errors if not isinstance(e, TimeoutError)]
        if fatal:
            raise fatal[0]
        if pending or errors:
            missing = sorted(r.name for r in resources if r not in done)
            raise KubestrataError(
                f"timed out after {timeout:g}s listing from the API server {server} "
                f"({len(done)} of {len(resources)} kinds listed; still waiting for "
                f"{', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}); "
                "check connectivity or raise --timeout"
            )
        extra: list[dict[str, Any]] = []
        nodes = [
            str((n.get("metadata") or {}).get("name") or "")
            for r in done
            if r.kind == "Node"
            for n in done[r]
        ]
        if kubelet_configs and nodes:
            extra = collect_kubelet_configs(api, [n for n in nodes if n], deadline, coverage)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        api.close()

    objects = [KubeObject(raw, source) for r in resources for raw in done.get(r, [])]
    objects.extend(KubeObject(raw, source) for raw in extra)
    snap = Cluster(objects, origin=server)
    snap.missing_kinds = {r.kind for r in resources if r in failed}
    return snap
