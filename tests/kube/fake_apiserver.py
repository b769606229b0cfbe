"""A small fake Kubernetes API server on loopback HTTPS that answers list requests in the real wire
format: ``<Kind>List`` documents whose items carry no kind/apiVersion, ``limit``/``continue``
pagination with opaque tokens and ``remainingItemCount``, ``Status`` bodies for 401/403/404, bearer
token authentication. It serves objects given as manifests, and records every request."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import re
import ssl
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# The real REST paths, written out independently of kubestrata.kube.live: kind -> (group, version,
# plural, namespaced)
API = {
    "Namespace": ("", "v1", "namespaces", False),
    "Node": ("", "v1", "nodes", False),
    "Pod": ("", "v1", "pods", True),
    "PodTemplate": ("", "v1", "podtemplates", True),
    "ReplicationController": ("", "v1", "replicationcontrollers", True),
    "ServiceAccount": ("", "v1", "serviceaccounts", True),
    "Service": ("", "v1", "services", True),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Secret": ("", "v1", "secrets", True),
    "PersistentVolume": ("", "v1", "persistentvolumes", False),
    "StorageClass": ("storage.k8s.io", "v1", "storageclasses", False),
    "Deployment": ("apps", "v1", "deployments", True),
    "ReplicaSet": ("apps", "v1", "replicasets", True),
    "StatefulSet": ("apps", "v1", "statefulsets", True),
    "DaemonSet": ("apps", "v1", "daemonsets", True),
    "Job": ("batch", "v1", "jobs", True),
    "CronJob": ("batch", "v1", "cronjobs", True),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "v1", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies", True),
    "Ingress": ("networking.k8s.io", "v1", "ingresses", True),
    "ValidatingWebhookConfiguration": (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        False,
    ),
    "MutatingWebhookConfiguration": (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        False,
    ),
    "PolicyReport": ("wgpolicyk8s.io", "v1alpha2", "policyreports", True),
    "ClusterPolicyReport": ("wgpolicyk8s.io", "v1alpha2", "clusterpolicyreports", False),
}
BY_ROUTE = {(g, v, p): (k, ns) for k, (g, v, p, ns) in API.items()}
CORE = re.compile(r"^/api/(?P<v>v1)(?:/namespaces/(?P<ns>[^/]+))?/(?P<p>[a-z]+)$")
GROUP = re.compile(r"^/apis/(?P<g>[^/]+)/(?P<v>[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<p>[a-z]+)$")
# one namespaced object, for PUT (replace)
OBJECT = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))/namespaces/(?P<ns>[^/]+)/(?P<p>[a-z]+)/(?P<name>[^/]+)$"
)
ITEM = re.compile(
    r"^/apis/(?P<g>[^/]+)/(?P<v>[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<p>[a-z]+)/(?P<name>[^/]+)$"
)
CONFIGZ = re.compile(r"^/api/v1/nodes/(?P<node>[^/]+)/proxy/configz$")


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


class TLSFiles:
    """A self-signed certificate for 127.0.0.1 (CA and server in one), on disk for the server."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="kubestrata-fake-api-")
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.cert = Path(self.dir.name) / "tls.crt"
        self.key = Path(self.dir.name) / "tls.key"
        self.cert.write_bytes(self.cert_pem)
        self.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up (the timeout test) closes mid-response: not a server failure
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeAPIServer:
    def __init__(
        self,
        objects: list[dict[str, Any]],
        tls: TLSFiles,
        *,
        tokens: tuple[str, ...] = ("test-token",),
        forbidden: tuple[str, ...] = (),
        absent: tuple[str, ...] = (),
        delay: float = 0.0,
    ) -> None:
        self.store: dict[str, list[dict[str, Any]]] = {}
        for o in objects:
            self.store.setdefault(o["kind"], []).append(o)
        self.tokens = tokens
        self.forbidden = set(forbidden)  # plurals
        self.absent = set(absent)  # plurals
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        # PUT (replace) support: called as put_hook(namespace, name) before each PUT is handled, so a
        # test can play a concurrent writer or a deletion; put_forbidden holds "namespace/name"s
        self.put_hook: Any = None
        self.put_forbidden: set[str] = set()
        self._rv = 5000
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self._answer(*server.handle(self.path, self.headers.get("Authorization", "")))

            def do_PATCH(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth, ctype = self.headers.get("Authorization", ""), self.headers.get("Content-Type", "")
                self._answer(*server.write("PATCH", self.path, auth, ctype, body))

            def do_DELETE(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(
                    *server.write("DELETE", self.path, self.headers.get("Authorization", ""), "", b"")
                )

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                code, body = server.handle_put(self.path, self.headers.get("Authorization", ""), raw)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls.cert, tls.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeAPIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- the API ------------------------------------------------------------------------------
    def handle(self, raw_path: str, auth: str) -> tuple[int, dict[str, Any]]:
        url = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append({"path": url.path, "query": query, "auth": auth})
        if self.delay:
            time.sleep(self.delay)
        scheme, _, token = auth.partition(" ")
        # the API server's bearer authenticator takes the scheme case-insensitively
        if scheme.lower() != "bearer" or token not in self.tokens:
            return 401, _status(401, "Unauthorized", "Unauthorized")
        cz = CONFIGZ.match(url.path)
        if cz:
            return self._configz(unquote(cz.group("node")))
        m = CORE.match(url.path) or GROUP.match(url.path)
        if not m:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        group = m.groupdict().get("g") or ""
        version, plural = m.group("v"), m.group("p")
        ns = unquote(m.group("ns")) if m.group("ns") else None
        route = BY_ROUTE.get((group, version, plural))
        if route is None or plural in self.absent:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        kind, namespaced = route
        if plural in self.forbidden:
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            return 403, _status(
                403,
                "Forbidden",
                f'{plural}{"." + group if group else ""} is forbidden: User "system:serviceaccount:scan:kubestrata" '
                f'cannot list resource "{plural}" in API group "{group}" {scope}',
                {"group": group, "kind": plural},
            )
        want = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if "=" in p)
        items = [
            {k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
            for o in self.store.get(kind, [])
            if (not (namespaced and ns) or (o.get("metadata") or {}).get("namespace", "default") == ns)
            and all((o.get("metadata") or {}).get("labels", {}).get(k) == v for k, v in want.items())
        ]
        offset = 0
        if "continue" in query:
            offset = json.loads(base64.urlsafe_b64decode(query["continue"]))["offset"]
        limit = int(query.get("limit", "0")) or len(items) or 1
        page = items[offset : offset + limit]
        meta: dict[str, Any] = {"resourceVersion": "4242"}
        if offset + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"offset": offset + limit}).encode()
            ).decode()
            meta["remainingItemCount"] = len(items) - offset - limit
        list_version = f"{group}/{version}" if group else version
        return 200, {"kind": f"{kind}List", "apiVersion": list_version, "metadata": meta, "items": page}

    def handle_put(self, raw_path: str, auth: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Replace one namespaced object, with the API server's optimistic concurrency: the body's
        metadata.resourceVersion must be the stored one (409 Conflict otherwise)."""
        url = urlsplit(raw_path)
        with self._lock:
            self.requests.append({"path": url.path, "method": "PUT", "auth": auth})
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return 401, _status(401, "Unauthorized", "Unauthorized")
        m = OBJECT.match(url.path)
        route = BY_ROUTE.get((m.group("g") or "", m.group("cv") or m.group("v"), m.group("p"))) if m else None
        if not m or route is None:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        kind, plural = route[0], m.group("p")
        ns, name = unquote(m.group("ns")), unquote(m.group("name"))
        if self.put_hook is not None:
            self.put_hook(ns, name)
        if f"{ns}/{name}" in self.put_forbidden:
            return 403, _status(
                403,
                "Forbidden",
                f'{plural} "{name}" is forbidden: User "system:serviceaccount:scan:kubestrata" cannot update '
                f'resource "{plural}" in API group "" in the namespace "{ns}"',
            )
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return 400, _status(400, "BadRequest", "the body of the request was not valid JSON")
        meta = body.get("metadata") or {}
        if meta.get("name") != name or meta.get("namespace", ns) != ns:
            return 400, _status(400, "BadRequest", "the name of the object does not match the URL")
        with self._lock:
            objs = self.store.get(kind, [])
            i = next(
                (
                    j
                    for j, o in enumerate(objs)
                    if (o.get("metadata") or {}).get("name") == name
                    and (o.get("metadata") or {}).get("namespace", "default") == ns
                ),
                None,
            )
            if i is None:
                return 404, _status(404, "NotFound", f'{plural} "{name}" not found')
            om = objs[i].get("metadata") or {}
            if meta.get("resourceVersion") and meta["resourceVersion"] != om.get("resourceVersion"):
                return 409, _status(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                )
            self._rv += 1
            new = {**body, "metadata": {**meta, "resourceVersion": str(self._rv)}}
            objs[i] = new
        return 200, new

    def bump(self, kind: str, namespace: str, name: str) -> None:
        """Another writer updated the object (a new resourceVersion)."""
        with self._lock:
            for o in self.store.get(kind, []):
                m = o.get("metadata") or {}
                if m.get("name") == name and m.get("namespace", "default") == namespace:
                    self._rv += 1
                    m["resourceVersion"] = str(self._rv)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self.store[kind] = [
                o
                for o in self.store.get(kind, [])
                if not (
                    (o.get("metadata") or {}).get("name") == name
                    and (o.get("metadata") or {}).get("namespace", "default") == namespace
                )
            ]

    def write(
        self, method: str, raw_path: str, auth: str, ctype: str, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Server-side apply (PATCH, application/apply-patch+yaml; replaces the stored object, records
        the field manager) and DELETE of one object."""
        url = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append(
                {"method": method, "path": url.path, "query": query, "auth": auth, "ctype": ctype}
            )
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return 401, _status(401, "Unauthorized", "Unauthorized")
        m = ITEM.match(url.path)
        route = BY_ROUTE.get((m.group("g"), m.group("v"), m.group("p"))) if m else None
        if m is None or route is None or m.group("p") in self.absent:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        kind, namespaced = route
        ns, name = unquote(m.group("ns") or ""), unquote(m.group("name"))
        with self._lock:
            objs = self.store.setdefault(kind, [])
            idx = next(
                (i for i, o in enumerate(objs)
                 if o["metadata"]["name"] == name and o["metadata"].get("namespace", "") == ns),
                None,
            )  # fmt: skip
            if method == "DELETE":
                if idx is None:
                    return 404, _status(404, "NotFound", f'{m.group("p")} "{name}" not found')
                return 200, objs.pop(idx)
            if ctype != "application/apply-patch+yaml" or not query.get("fieldManager"):
                return 415, _status(415, "UnsupportedMediaType", f"expected server-side apply, got {ctype}")
            try:
                obj = json.loads(body)
            except ValueError as e:
                return 400, _status(400, "BadRequest", f"body is not JSON/YAML: {e}")
            meta = obj.get("metadata") or {}
            if obj.get("kind") != kind or meta.get("name") != name or meta.get("namespace", "") != ns:
                return 400, _status(400, "BadRequest", "kind, name or namespace differ from the URL")
            meta["managedFields"] = [{"manager": query["fieldManager"], "operation": "Apply"}]
            if idx is None:
                objs.append(obj)
                return 201, obj
            objs[idx] = obj
            return 200, obj

    def _configz(self, node: str) -> tuple[int, dict[str, Any]]:
        """The kubelet's /configz through the node proxy: the KubeletConfiguration named after the node."""
        if "nodes/proxy" in self.forbidden:
            return 403, _status(
                403,
                "Forbidden",
                f'nodes "{node}" is forbidden: User "system:serviceaccount:scan:kubestrata" '
                'cannot get resource "nodes/proxy" in API group "" at the cluster scope',
            )
        for cfg in self.store.get("KubeletConfiguration", []):
            if cfg.get("metadata", {}).get("name") == node:
                body = {k: v for k, v in cfg.items() if k not in ("kind", "apiVersion", "metadata")}
                return 200, {"kubeletconfig": body}
        return 503, _status(
            503, "ServiceUnavailable", f"error trying to reach service: dial tcp {node}:10250"
        )


def write_kubeconfig(path: Path, server: str, tls: TLSFiles, exec_script: Path | None = None) -> Path:
    """A real kubeconfig: contexts for a token user, an exec-plugin user and a bad token."""
    import yaml

    users: list[dict[str, Any]] = [
        {"name": "token-user", "user": {"token": "test-token"}},
        {"name": "bad-user", "user": {"token": "wrong-token"}},
    ]
    if exec_script is not None:
        users.append(
            {
                "name": "exec-user",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": sys.executable,
                        "args": [str(exec_script)],
                        "interactiveMode": "Never",
                    }
                },
            }
        )
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "fake",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(tls.cert_pem).decode(),
                },
            }
        ],
        "users": users,
        "contexts": [
            {"name": "fake", "context": {"cluster": "fake", "user": "token-user"}},
            {"name": "fake-bad", "context": {"cluster": "fake", "user": "bad-user"}},
        ]
        + (
            [{"name": "fake-exec", "context": {"cluster": "fake", "user": "exec-user"}}]
            if exec_script
            else []
        ),
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(doc))
    return path
