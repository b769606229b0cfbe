"""``k8s-aws-v1.`` tokens: made with boto3 as ``aws eks get-token`` makes them, verified with every rule of
aws-iam-authenticator's ``tokenVerifier.Verify`` (pkg/token/token.go), then proven by sending the presigned
GetCallerIdentity to STS.

A token is ``k8s-aws-v1.`` + base64url (no padding) of a presigned
``GET https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-...`` whose
signature covers the header ``x-k8s-aws-id: <cluster id>``. The verifier re-sends the GET with *its own*
cluster id in that header, so a token signed for another cluster fails STS's signature check: the cluster
id is never in the URL, only in the signature. Messages keep the upstream wording ("input token was not
properly formatted: ...", "sts getCallerIdentity failed: ...") so logs read the same.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import http.client
import json
import re
import ssl
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kubestrata.eks.arn import ArnError, canonicalize, parse_arn

PREFIX = "k8s-aws-v1."
MAX_TOKEN_BYTES = 4096
CLUSTER_ID_HEADER = "x-k8s-aws-id"
LIFETIME = dt.timedelta(
    minutes=15
)  # presigned STS URLs live 15 min after X-Amz-Date, whatever X-Amz-Expires says
CLIENT_EXPIRY_MARGIN = dt.timedelta(minutes=1)  # the client reports expiry one minute early
PRESIGN_EXPIRES = 60  # set by every client "for legacy reasons" and ignored by STS
STS_VERSION = "2011-06-15"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
ALLOWED_PARAMETERS = frozenset(
    {
        "action",
        "version",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-signedheaders",
    }
)
# pkg/endpoints/partitions.go: the STS domain and dual-stack domain of each partition
PARTITION_DOMAINS: dict[str, tuple[str, str]] = {
    "aws": ("amazonaws.com", "api.aws"),
    "aws-cn": ("amazonaws.com.cn", "api.amazonwebservices.com.cn"),
    "aws-us-gov": ("amazonaws.com", "api.aws"),
    "aws-iso": ("c2s.ic.gov", ""),
    "aws-iso-b": ("sc2s.sgov.gov", ""),
    "aws-iso-e": ("cloud.adc-e.uk", ""),
    "aws-iso-f": ("csp.hci.ic.gov", ""),
    "aws-eusc": ("amazonaws.eu", "api.amazonwebservices.eu"),
}
_REGION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?$")


class TokenError(Exception):
    """A token the authenticator rejects before (or instead of) asking STS; ``rule`` names the rule."""

    kind = "format"

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        self.message = message
        super().__init__(f"input token was not properly formatted: {message}")


class STSError(Exception):
    """STS did not confirm the token (unreachable, non-200, unparseable or unusable answer)."""

    kind = "sts"

    def __init__(self, rule: str, message: str, throttled: bool = False) -> None:
        self.rule = rule
        self.message = message
        self.throttled = throttled
        what = "was throttled" if throttled else "failed"
        super().__init__(f"sts getCallerIdentity {what}: {message}")


@dataclass(frozen=True, slots=True)
class Presigned:
    """A token that passed every rule that can be checked without STS."""

    url: str
    host: str
    region: str  # "global" for sts.amazonaws.com
    access_key_id: str
    signed_at: dt.datetime

    @property
    def expires_at(self) -> dt.datetime:
        return self.signed_at + LIFETIME


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """What STS said about the caller (token.Identity upstream)."""

    arn: str
    canonical_arn: str
    account: str
    user_id: str  # AROA... / AIDA... without the session
    session_name: str
    access_key_id: str
    sts_endpoint: str


# -- host allow-list -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _sdk_partitions() -> list[dict[str, Any]]:
    """botocore's partitions.json: which partition a region belongs to (regions, then regionRegex)."""
    import os

    import botocore

    with open(os.path.join(os.path.dirname(botocore.__file__), "data", "partitions.json"), "rb") as fh:
        return list(json.load(fh)["partitions"])


def _resolve_partition(region: str) -> dict[str, Any]:
    parts = _sdk_partitions()
    for p in parts:
        if region in p.get("regions", {}):
            return p
    for p in parts:
        if re.match(p["regionRegex"], region):
            return p
    return next(p for p in parts if p["id"] == "aws")  # the SDK falls back to the commercial format


def sts_region(host: str) -> str:
    if not host:
        raise ValueError("host is empty")
    parts = host.split(".")
    if len(parts) < 3:
        raise ValueError(f"invalid host format: {host}")
    if host == "sts.amazonaws.com":
        return "global"
    return parts[1]


@lru_cache(maxsize=1024)
def verify_host(host: str, partition: str = "aws", region: str = "") -> str:
    """The STS region of ``host`` when it is an STS endpoint of ``partition`` (verifySTSHostnameFormat).

    Accepted: the global endpoint (aws only), ``sts[-fips].<region>.<domain>`` and the dual-stack
    domain for regions the SDK resolves into the verifier's partition, and the default hostnames of the
    verifier's own region (regions newer than the SDK's table).
    """
    try:
        host_region = sts_region(host)
    except ValueError as e:
        raise TokenError("host", f"could not parse region for pre-signed URL {host}, {e}") from None
    if host_region == "global":
        if partition == "aws":
            return host_region
        raise TokenError("host", f"global endpoint unsupported in partition {partition}")
    if not _REGION.match(host_region):
        raise TokenError("host", f"invalid region identifier format provided: {host_region}")
    if partition not in PARTITION_DOMAINS:
        raise TokenError("host", f"partition {partition} not valid")
    sdk = _resolve_partition(host_region)["outputs"]
    resolved = set()
    for svc in ("sts", "sts-fips") if sdk.get("supportsFIPS") else ("sts",):
        resolved.add(f"{svc}.{host_region}.{sdk['dnsSuffix']}")
        if sdk.get("supportsDualStack"):
            resolved.add(f"{svc}.{host_region}.{sdk['dualStackDnsSuffix']}")
    domain, dual = PARTITION_DOMAINS[partition]
    if host not in resolved:
        # regions the SDK does not know yet, but the verifier was told it runs in
        if region and _REGION.match(region):
            if host in {f"sts.{region}.{domain}", *([f"sts.{region}.{dual}"] if dual else [])}:
                return host_region
        raise TokenError("host", f"unexpected hostname {host!r} in pre-signed URL")
    actual = ".".join(host.split(".")[2:])
    if actual not in (domain, dual):
        raise TokenError("host", f"partition {{{partition}}} does not support hostname {host}")
    return host_region


# -- the rules -----------------------------------------------------------------------------------------


def decode_token(token: str) -> str:
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("length", "token is too large")
    if not token.startswith(PREFIX):
        raise TokenError("prefix", f'token is missing expected "{PREFIX}" prefix')
    body = token[len(PREFIX) :]
    # Go's RawURLEncoding: URL alphabet, no padding, no stray characters, no impossible length
    if "=" in body or len(body) % 4 == 1 or not re.fullmatch(r"[A-Za-z0-9_-]*", body):
        raise TokenError("base64", "illegal base64 data in token")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TokenError("base64", "illegal base64 data in token") from None


def parse_token(
    token: str, *, partition: str = "aws", region: str = "", now: dt.datetime | None = None
) -> Presigned:
    """Apply every rule that needs no STS call; raise TokenError naming the rule that fails."""
    url = decode_token(token)
    if any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise TokenError("url", "net/url: invalid control character in URL")
    try:
        parsed = urllib.parse.urlsplit(url)
        host = parsed.netloc
    except ValueError as e:
        raise TokenError("url", str(e)) from None
    if not parsed.scheme:
        raise TokenError("url", "missing protocol scheme")
    if parsed.scheme != "https":
        raise TokenError("scheme", f'unexpected scheme "{parsed.scheme}" in pre-signed URL')
    host_region = verify_host(host, partition, region)
    if parsed.path != "/":
        raise TokenError("path", "unexpected path in pre-signed URL")
    if parsed.fragment:
        raise TokenError("path", "unexpected fragment in pre-signed URL")
    params: dict[str, str] = {}
    exact: set[str] = set()
    for piece in parsed.query.split("&") if parsed.query else []:
        if ";" in piece:
            raise TokenError("query", "malformed query parameter")
        key, _, value = piece.partition("=")
        try:
            key = _unquote_strict(key)
            value = _unquote_strict(value)
        except ValueError:
            raise TokenError("query", "malformed query parameter") from None
        if key in exact:
            raise TokenError("multi-valued", "query parameter with multiple values not supported")
        low = key.lower()
        if low in params:
            raise TokenError("duplicate-parameter", f'duplicate query parameter found: "{key}"')
        exact.add(key)
        params[low] = value
    for low in params:
        if low not in ALLOWED_PARAMETERS:
            original = next(k for k in exact if k.lower() == low)
            raise TokenError("parameter", f'non-whitelisted query parameter "{original}"')
    if params.get("action") != "GetCallerIdentity":
        raise TokenError("action", "unexpected action parameter in pre-signed URL")
    if params.get("version") != STS_VERSION:
        raise TokenError("version", f"unexpected version parameter in pre-signed URL (want {STS_VERSION})")
    signed = params.get("x-amz-signedheaders", "").split(";")
    if not any(h.lower() == CLUSTER_ID_HEADER for h in signed):
        raise TokenError(
            "signed-header", f"client did not sign the {CLUSTER_ID_HEADER} header in the pre-signed URL"
        )
    raw_expires = params.get("x-amz-expires", "")
    try:
        expires = int(raw_expires, 10) if re.fullmatch(r"[+-]?\d+", raw_expires) else None
    except ValueError:
        expires = None
    if expires is None or expires < 0 or expires > 900:
        raise TokenError(
            "expires", f"invalid X-Amz-Expires parameter in pre-signed URL: {expires if expires else 0}"
        )
    date = params.get("x-amz-date", "")
    if not date:
        raise TokenError("date", "X-Amz-Date parameter must be present in pre-signed URL")
    try:
        signed_at = dt.datetime.strptime(date, DATE_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        raise TokenError(
            "date", f"error parsing X-Amz-Date parameter {date} into format 20060102T150405Z"
        ) from None
    now = now or dt.datetime.now(dt.UTC)
    if now > signed_at + LIFETIME:
        raise TokenError(
            "expired",
            f"X-Amz-Date parameter is expired (15 minute expiration) {signed_at:%Y-%m-%d %H:%M:%S} +0000 UTC",
        )
    access_key = params.get("x-amz-credential", "").split("/")[0]
    return Presigned(url, host, host_region, access_key, signed_at)


def _unquote_strict(s: str) -> str:
    """Go's url.QueryUnescape: every % must start a valid escape; + is a space."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", s):
        raise ValueError("invalid URL escape")
    return urllib.parse.unquote_plus(s, errors="strict")


# -- STS -----------------------------------------------------------------------------------------------


def call_sts(
    p: Presigned, cluster_id: str, *, endpoint: str | None = None, timeout: float = 10.0
) -> CallerIdentity:
    """Send the presigned GetCallerIdentity (with our cluster id in the signed header) and read the answer.

    ``endpoint`` (``https://host[:port]`` or ``http://`` for a loopback emulator) replaces where the
    request is sent; the Host header stays the token's host so the signature still verifies (a VPC
    endpoint or a proxy in front of STS). Redirects are never followed.
    """
    target = urllib.parse.urlsplit(endpoint or f"https://{p.host}")
    query = urllib.parse.urlsplit(p.url).query
    conn_cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    kwargs: dict[str, Any] = {"timeout": timeout}
    if target.scheme == "https":
        kwargs["context"] = ssl.create_default_context()
    conn = conn_cls(target.hostname or p.host, target.port, **kwargs)
    region = p.region
    try:
        conn.request(
            "GET",
            "/?" + query,
            headers={"Host": p.host, CLUSTER_ID_HEADER: cluster_id, "Accept": "application/json"},
        )
        resp = conn.getresponse()
        body = resp.read(1 << 20)
        status, ctype = resp.status, resp.getheader("Content-Type", "")
    except (OSError, http.client.HTTPException) as e:
        raise STSError(
            "sts-unreachable", f"error during GET: {e or type(e).__name__} on {region} endpoint"
        ) from None
    finally:
        conn.close()
    text = body.decode("utf-8", "replace")
    if status != 200:
        if "Throttling" in text:
            raise STSError("sts-throttled", text[:512], throttled=True)
        code = _error_code(text)
        hint = ""
        if code == "SignatureDoesNotMatch":
            hint = f" (the token was not signed for cluster id {cluster_id!r}, or it was altered)"
        raise STSError(
            "sts-rejected",
            f"error from AWS (expected 200, got {status}) on {region} endpoint{hint}. Body: {text[:512]}",
        )
    try:
        arn, account, user_id = _parse_identity(text, ctype)
    except (ValueError, ET.ParseError) as e:
        raise STSError("sts-response", str(e)) from None
    return identity_from_sts(arn, account, user_id, p.access_key_id, p.host)


def _error_code(text: str) -> str:
    m = re.search(r"<Code>([^<]{1,100})</Code>|\"Code\"\s*:\s*\"([^\"]{1,100})\"", text)
    return (m.group(1) or m.group(2)) if m else ""


def _parse_identity(text: str, content_type: str) -> tuple[str, str, str]:
    if "json" in content_type or text.lstrip().startswith("{"):
        doc = json.loads(text)
        result = (doc.get("GetCallerIdentityResponse") or {}).get("GetCallerIdentityResult") or {}
        return str(result.get("Arn") or ""), str(result.get("Account") or ""), str(result.get("UserId") or "")
    root = ET.fromstring(text)
    found: dict[str, str] = {}
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag in ("Arn", "Account", "UserId") and tag not in found:
            found[tag] = (el.text or "").strip()
    return found.get("Arn", ""), found.get("Account", ""), found.get("UserId", "")


def identity_from_sts(arn: str, account: str, user_id: str, access_key_id: str, host: str) -> CallerIdentity:
    """getIdentityFromSTSResponse: canonicalise the ARN; split assumed-role user ids into id and session."""
    try:
        canonical = canonicalize(arn)
        kind = parse_arn(arn).resource.split("/", 1)[0]
    except ArnError as e:
        raise STSError("sts-response", str(e)) from None
    session = ""
    if kind == "assumed-role":
        parts = user_id.split(":")
        if len(parts) != 2:
            raise STSError("sts-response", f'malformed UserID "{user_id}"')
        user_id, session = parts
    return CallerIdentity(arn, canonical, account, user_id, session, access_key_id, host)


# -- making tokens -------------------------------------------------------------------------------------


def make_token(cluster_id: str, *, session: Any = None, region: str | None = None) -> tuple[str, dt.datetime]:
    """A token and its expiry as ``aws eks get-token`` reports it (15 min after signing, minus 1 min).

    ``session`` is a boto3 Session (default: the environment's credentials); the STS client is made for
    the regional endpoint of ``region`` (default: the session's region, else us-east-1). No network.
    """
    import boto3

    session = session or boto3.session.Session()
    region = region or session.region_name or "us-east-1"
    client = session.client(
        "sts", region_name=region, endpoint_url=f"https://sts.{region}.{_dns_suffix(region)}"
    )

    def add_cluster_id(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster_id

    client.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_id)
    signed_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    url = client.generate_presigned_url(
        "get_caller_identity", Params={}, ExpiresIn=PRESIGN_EXPIRES, HttpMethod="GET"
    )
    token = PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    m = re.search(r"X-Amz-Date=(\d{8}T\d{6}Z)", url)
    if m:
        signed_at = dt.datetime.strptime(m.group(1), DATE_FORMAT).replace(tzinfo=dt.UTC)
    return token, signed_at + LIFETIME - CLIENT_EXPIRY_MARGIN


def _dns_suffix(region: str) -> str:
    return str(_resolve_partition(region)["outputs"]["dnsSuffix"])


def exec_credential(token: str, expires: dt.datetime) -> dict[str, Any]:
    """The client.authentication.k8s.io/v1beta1 ExecCredential kubectl reads (what get-token prints)."""
    return {
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {},
        "status": {"expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "token": token},
    }
