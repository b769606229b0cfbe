"""moto's ThreadedMotoServer as STS for presigned (query-signed) requests.

moto 5 routes a request by its Authorization header and takes the caller's access key from it, so a
query-signed GetCallerIdentity (the IAM authenticator's token) lands in its S3 backend, and moto never
checks signatures. Real STS does both. This subclass puts a thin WSGI layer in front of moto's own app
that does what STS does with query authentication: it recomputes the SigV4 signature with the secret moto
issued for that access key (botocore's signer), answers 403 SignatureDoesNotMatch / InvalidClientTokenId /
ExpiredToken as STS does, and hands moto an equivalent Authorization header so moto attributes the call.
Everything behind it is moto unchanged.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


def _secret_for(access_key: str) -> tuple[str, str] | None:
    """(secret, session token) moto issued for an access key (assumed-role sessions, IAM user keys)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account in list(sts_backends.keys()):
        for backend in list(sts_backends[account].values()):
            for role in backend.assumed_roles:
                if role.access_key_id == access_key:
                    return role.secret_access_key, role.session_token
    for account in list(iam_backends.keys()):
        for backend in list(iam_backends[account].values()):
            for user in backend.users.values():
                for key in user.access_keys:
                    if key.access_key_id == access_key:
                        return key.secret_access_key, ""
    return None


def _error(start_response: Any, code: str, message: str, status: str = "403 Forbidden") -> list[bytes]:
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>0</RequestId></ErrorResponse>"
    ).encode()
    start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


class QueryAuthSTS:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.fail_with: tuple[str, str, str] | None = None  # (status, code, message) to simulate outages
        self.fail_actions: dict[str, tuple[str, str, str]] = {}  # the same for form-encoded POST actions
        self.calls = 0
        self.posts: list[dict[str, str]] = []  # form parameters of every POST action, as sent on the wire

    def _post(self, environ: dict[str, Any], start_response: Any) -> Any:
        import io

        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if "Action" in params:
            self.posts.append(params)
            if params["Action"] in self.fail_actions:
                status, code, message = self.fail_actions[params["Action"]]
                return _error(start_response, code, message, status)
        return self.app(environ, start_response)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        qs = environ.get("QUERY_STRING", "")
        ctype = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
            return self._post(environ, start_response)
        if "X-Amz-Credential=" not in qs or environ.get("HTTP_AUTHORIZATION"):
            return self.app(environ, start_response)
        self.calls += 1
        if self.fail_with is not None:
            status, code, message = self.fail_with
            return _error(start_response, code, message, status)
        params = urllib.parse.parse_qsl(qs, keep_blank_values=True)
        p = dict(params)
        cred = p.get("X-Amz-Credential", "").split("/")
        if len(cred) != 5:
            return _error(start_response, "IncompleteSignature", "bad credential scope", "400 Bad Request")
        access_key, _, region, service, _ = cred
        found = _secret_for(access_key)
        if found is None:
            return _error(start_response, "InvalidClientTokenId", "The security token included is invalid.")
        secret, session_token = found
        signed_at = dt.datetime.strptime(p.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        if dt.datetime.now(dt.UTC) > signed_at + dt.timedelta(minutes=15):
            return _error(start_response, "ExpiredToken", "Signature expired")
        host = environ.get("HTTP_HOST", "")
        signed = p.get("X-Amz-SignedHeaders", "").split(";")
        headers = {h: environ.get("HTTP_" + h.upper().replace("-", "_"), "") for h in signed}
        headers["host"] = host
        unsigned = [(k, v) for k, v in params if k != "X-Amz-Signature"]
        req = AWSRequest(
            "GET",
            f"https://{host}/?" + urllib.parse.urlencode(unsigned, quote_via=urllib.parse.quote),
            headers,
        )
        req.context["timestamp"] = p["X-Amz-Date"]
        auth = SigV4QueryAuth(Credentials(access_key, secret, session_token or None), service, region, 60)
        want = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
        if want != p.get("X-Amz-Signature"):
            return _error(
                start_response,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        environ["HTTP_AUTHORIZATION"] = (
            f"AWS4-HMAC-SHA256 Credential={p['X-Amz-Credential']}, "
            f"SignedHeaders={p.get('X-Amz-SignedHeaders', '')}, Signature={want}"
        )
        return self.app(environ, start_response)


class QueryAuthMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose STS also answers query-signed requests, as real STS does."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.sts: QueryAuthSTS | None = None

    def _server_entry(self) -> None:
        self.sts = QueryAuthSTS(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, self.sts, True)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"
