"""IRSA for self-managed clusters: the OIDC discovery document and JWKS of the service-account signing key,
which IAM fetches to trust the cluster's issuer (``aws iam create-open-id-connect-provider --url ISSUER``).

The apiserver is started with ``--service-account-issuer=ISSUER`` and ``--service-account-signing-key-file``;
this serves (or writes, for static hosting) ``ISSUER/.well-known/openid-configuration`` and the JWKS at
``ISSUER/keys`` (EKS's path; ``/openid/v1/jwks``, the apiserver's, is served too). Key ids follow the
apiserver: base64url(SHA-256(DER public key)), so tokens the apiserver signs name a kid found here.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from kubestrata.identity.jwt import ALGORITHMS, KeySet, algorithm_for

JWKS_PATHS = ("/keys", "/openid/v1/jwks")
CACHE_CONTROL = "public, max-age=3600"


def check_issuer(issuer: str) -> str:
    u = urllib.parse.urlsplit(issuer)
    if u.scheme != "https" or not u.netloc or u.query or u.fragment:
        raise ValueError(f"issuer must be an https URL without query or fragment, got {issuer!r}")
    return issuer.rstrip("/")


def discovery(issuer: str, keys: KeySet) -> dict[str, Any]:
    issuer = check_issuer(issuer)
    algs = sorted({algorithm_for(k) for k in keys.keys.values()}, key=ALGORITHMS.index)
    return {
        "issuer": issuer,
        "jwks_uri": issuer + JWKS_PATHS[0],
        "authorization_endpoint": "urn:kubernetes:programmatic_authorization",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs or ["RS256"],
        "claims_supported": ["sub", "iss"],
    }


def write_static(out: Path, issuer: str, keys: KeySet) -> list[Path]:
    """The two documents as files under ``out`` (upload the tree to the issuer's web root)."""
    written = []
    for rel, doc in ((".well-known/openid-configuration", discovery(issuer, keys)), ("keys", keys.jwks())):
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(doc, indent=2) + "\n")
        written.append(p)
    return written


def create_oidc_app(issuer: str, keys: KeySet) -> Any:
    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    # the issuer's path prefix (https://host/prefix) is where the documents live
    prefix = urllib.parse.urlsplit(check_issuer(issuer)).path.rstrip("/")
    disc = orjson.dumps(discovery(issuer, keys))
    jwks = orjson.dumps(keys.jwks())
    headers = {"Cache-Control": CACHE_CONTROL}

    async def configuration(request: Request) -> Response:
        return Response(disc, media_type="application/json", headers=headers)

    async def keyset(request: Request) -> Response:
        return Response(jwks, media_type="application/jwk-set+json", headers=headers)

    routes = [Route(prefix + "/.well-known/openid-configuration", configuration, methods=["GET"])]
    routes += [Route(prefix + p, keyset, methods=["GET"]) for p in JWKS_PATHS]
    return Starlette(routes=routes)
