"""A fake Kubernetes API server on loopback HTTPS serving ``policies.cedar.k8s.aws/v1alpha1`` (a
cluster-scoped custom resource) with the real list and watch wire formats: a ``PolicyList`` with
``metadata.resourceVersion``; ``?watch=true&resourceVersion=N`` answers 200 with a chunked stream of
JSON lines ``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": ...}``, ending
after ``timeoutSeconds``; a resourceVersion older than the compaction point gets the API server's
``ERROR`` event carrying a 410 ``Expired`` Status. Tests can drop every open watch connection
mid-stream (no terminating chunk) and compact history. TLS and kubeconfig helpers are those of
tests/kube/fake_apiserver.py."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.kube.fake_apiserver import TLSFiles, _QuietServer, _status, write_kubeconfig

PATH = "/apis/cedar.k8s.aws/v1alpha1/policies"

__all__ = ["FakePolicyAPI", "TLSFiles", "policy", "write_kubeconfig"]


def policy(name: str, content: str) -> dict[str, Any]:
    return {
        "apiVersion": "cedar.k8s.aws/v1alpha1",
        "kind": "Policy",
        "metadata": {"name": name},
        "spec": {"content": content},
    }


class FakePolicyAPI:
    """``path``/``list_kind`` serve another cluster-scoped kind the same way (namespaces:
    ``/api/v1/namespaces``, ``NamespaceList``)."""

    def __init__(
        self, tls: TLSFiles, token: str = "test-token", path: str = PATH, list_kind: str = "PolicyList"
    ) -> None:
        self.token = token
        self.path, self.list_kind = path, list_kind
        self.objects: dict[str, dict[str, Any]] = {}
        self.rv = 100
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.compacted = 0  # watches from a resourceVersion below this get 410
        self.drop_generation = 0
        self.fail_lists = 0  # answer this many list requests with 500
        self.requests: list[dict[str, str]] = []
        self.cond = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send_json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                url = urlsplit(self.path)
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with api.cond:
                    api.requests.append({"path": url.path, **q})
                if self.headers.get("Authorization", "") != f"Bearer {api.token}":
                    return self._send_json(401, _status(401, "Unauthorized", "Unauthorized"))
                if url.path != api.path:
                    return self._send_json(
                        404, _status(404, "NotFound", "the server could not find the requested resource")
                    )
                if q.get("watch") in ("true", "1"):
                    return self._watch(q)
                with api.cond:
                    if api.fail_lists > 0:
                        api.fail_lists -= 1
                        return self._send_json(500, _status(500, "InternalError", "etcd is sad"))
                    items = [copy.deepcopy(o) for o in api.objects.values()]
                    rv = str(api.rv)
                for it in items:
                    it.pop("apiVersion", None), it.pop("kind", None)
                return self._send_json(
                    200,
                    {
                        "apiVersion": "cedar.k8s.aws/v1alpha1" if api.list_kind == "PolicyList" else "v1",
                        "kind": api.list_kind,
                        "metadata": {"resourceVersion": rv},
                        "items": items,
                    },
                )

            def _chunk(self, doc: dict[str, Any]) -> None:
                data = json.dumps(doc).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _watch(self, q: dict[str, str]) -> None:
                start = int(q.get("resourceVersion") or api.rv)
                deadline = time.monotonic() + float(q.get("timeoutSeconds") or 60)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                with api.cond:
                    gen = api.drop_generation
                    expired = start < api.compacted
                if expired:
                    self._chunk(
                        {
                            "type": "ERROR",
                            "object": _status(
                                410, "Expired", f"too old resource version: {start} ({api.compacted})"
                            ),
                        }
                    )
                    self.wfile.write(b"0\r\n\r\n")
                    return
                sent = start
                while True:
                    with api.cond:
                        pending = [e for e in api.events if e[0] > sent]
                        if not pending and api.drop_generation == gen:
                            api.cond.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
                            pending = [e for e in api.events if e[0] > sent]
                        dropped = api.drop_generation != gen
                    if dropped:
                        # the connection dies mid-stream: no terminating chunk
                        self.close_connection = True
                        self.connection.close()
                        return
                    for rv, typ, obj in pending:
                        self._chunk({"type": typ, "object": obj})
                        sent = rv
                    if time.monotonic() >= deadline:
                        self.wfile.write(b"0\r\n\r\n")
                        return

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls.cert, tls.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakePolicyAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop_watches()
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- what tests do to the cluster -----------------------------------------------------------
    def _record(self, typ: str, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, typ, copy.deepcopy(obj)))
        self.cond.notify_all()

    def put(self, obj: dict[str, Any]) -> None:
        """Create or update a Policy (ADDED or MODIFIED)."""
        obj = copy.deepcopy(obj)
        name = obj["metadata"]["name"]
        with self.cond:
            old = self.objects.get(name)
            obj["metadata"]["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
            self.objects[name] = obj
            self._record("MODIFIED" if old else "ADDED", obj)

    def delete(self, name: str) -> None:
        with self.cond:
            obj = self.objects.pop(name)
            self._record("DELETED", obj)

    def drop_watches(self) -> None:
        with self.cond:
            self.drop_generation += 1
            self.cond.notify_all()

    def compact(self) -> None:
        """Forget history: watches from any resourceVersion seen so far get 410 Expired."""
        with self.cond:
            self.compacted = self.rv + 1
            self.rv += 1
            self.cond.notify_all()

    def count(self, **match: str) -> int:
        with self.cond:
            return sum(all(r.get(k) == v for k, v in match.items()) for r in self.requests)
