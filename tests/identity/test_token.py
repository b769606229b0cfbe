"""The IAM authenticator's token rules and the STS round trip, with boto3-signed tokens and moto as STS."""

from __future__ import annotations

import base64
import datetime as dt
import re
import urllib.parse
from pathlib import Path

import pytest
import yaml

from kubestrata.access.model import AccessModel
from kubestrata.identity.authenticator import AccessMapper, Authenticator
from kubestrata.identity.token import (
    PREFIX,
    TokenError,
    make_token,
    parse_token,
    verify_host,
)
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.objects import KubeObject
from tests.identity.conftest import ACCOUNT, assume

DATA = Path(__file__).parent / "data"
CLUSTER = "demo"
BASE_QUERY = (
    "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
    "ASIAAAAAAAAAAAAAAAAA%2F20220601%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=900"
    "&X-Amz-Security-Token=XXXXXXXXXXXXX&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=999999"
)


def to_token(url: str) -> str:
    return PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def from_token(token: str) -> str:
    body = token[len(PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def now_date(minutes_ago: float = 0) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).strftime("%Y%m%dT%H%M%SZ")


def aws_auth_model(role_arn: str, username: str, groups: list[str]) -> AccessModel:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aws-auth", "namespace": "kube-system"},
        "data": {"mapRoles": yaml.safe_dump([{"rolearn": role_arn, "username": username, "groups": groups}])},
    }
    return AccessModel(Cluster([KubeObject(cm)]))


@pytest.fixture(scope="module")
def dev_session(moto):
    return assume(moto, "dev", "alice@example.com")


@pytest.fixture
def authenticator(moto):
    model = aws_auth_model(
        f"arn:aws:iam::{ACCOUNT}:role/dev", "dev:{{SessionName}}", ["developers", "acct-{{AccountID}}"]
    )
    return Authenticator(CLUSTER, AccessMapper(model), sts_endpoint=moto.url, timeout=5)


def build_vector(v: dict, session) -> str:
    if "token" in v:
        return v["token"]
    if "token_repeat" in v:
        r = v["token_repeat"]
        return r["prefix"] + r["char"] * (r["length"] - len(r["prefix"]))
    if "url" in v:
        base = BASE_QUERY.format(date=now_date())
        return to_token(v["url"].replace("{base}", base).replace("{date}", now_date()))
    m = v["mutate"]
    token, _ = make_token(m.get("cluster_id", CLUSTER), session=session)
    if "cut_token_chars" in m:
        return token[: -m["cut_token_chars"]]
    if m.get("bad_base64_length"):
        body = token[len(PREFIX) :]
        while len(body) % 4 != 1:
            body = body[:-1]
        return PREFIX + body
    url = from_token(token)
    if "cut_url_before" in m:
        return to_token(url[: url.index(m["cut_url_before"])].rstrip("&"))
    parts = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if "signed_minutes_ago" in m:
        params = [(k, now_date(m["signed_minutes_ago"]) if k == "X-Amz-Date" else v) for k, v in params]
    for k, val in (m.get("set") or {}).items():
        params = [(pk, val if pk == k else pv) for pk, pv in params]
    params += list((m.get("add") or {}).items())
    host = m.get("host", parts.netloc)
    return to_token(f"https://{host}/?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote))


BAD = yaml.safe_load((DATA / "bad_tokens.yaml").read_text())


@pytest.mark.parametrize("vector", BAD, ids=[v["name"] for v in BAD])
def test_bad_token_vector_rejected_with_its_rule(vector, authenticator, dev_session):
    token = build_vector(vector, dev_session)
    r = authenticator.authenticate(token)
    assert not r.authenticated
    assert r.rule == vector["rule"], r.status
    assert vector["reason"] in r.status["error"]
    assert r.status["error"].endswith(f"[rule: {vector['rule']}]")
    assert r.code == 403


def test_every_rule_has_a_vector():
    rules = {v["rule"] for v in BAD}
    assert {
        "length", "prefix", "base64", "url", "scheme", "host", "path", "query", "parameter", "multi-valued",
        "duplicate-parameter", "action", "version", "signed-header", "expires", "date", "expired",
        "sts-rejected",
    } <= rules  # fmt: skip


HOSTS = yaml.safe_load((DATA / "sts_hosts.yaml").read_text())


@pytest.mark.parametrize("partition,host,valid,region", HOSTS, ids=[f"{h[0]}:{h[1]}:{h[3]}" for h in HOSTS])
def test_sts_host_allow_list(partition, host, valid, region):
    if valid:
        verify_host(host, partition, region)
    else:
        with pytest.raises(TokenError) as e:
            verify_host(host, partition, region)
        assert e.value.rule == "host"


def test_boto3_token_has_the_get_token_shape(dev_session):
    token, expires = make_token(CLUSTER, session=dev_session, region="eu-west-1")
    url = from_token(token)
    assert "=" not in token[len(PREFIX) :]
    assert url.startswith("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert q["X-Amz-Expires"] == "60"
    assert q["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    signed = dt.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert expires == signed + dt.timedelta(minutes=14)
    p = parse_token(token)
    assert p.region == "eu-west-1" and p.access_key_id == q["X-Amz-Credential"].split("/")[0]


def test_mapped_role_session_gets_the_authenticator_review(authenticator, dev_session):
    token, _ = make_token(CLUSTER, session=dev_session)
    r = authenticator.authenticate(token)
    assert r.authenticated, r.status
    user = r.status["user"]
    ident = r.identity
    assert user["username"] == "dev:alice-example.com"  # {{SessionName}} turns @ into -
    assert user["groups"] == ["developers", f"acct-{ACCOUNT}"]
    assert re.fullmatch(rf"aws-iam-authenticator:{ACCOUNT}:AROA\w+", user["uid"])
    extra = user["extra"]
    assert extra["arn"] == [f"arn:aws:sts::{ACCOUNT}:assumed-role/dev/alice@example.com"]
    assert extra["canonicalArn"] == [f"arn:aws:iam::{ACCOUNT}:role/dev"]
    assert extra["sessionName"] == ["alice@example.com"]
    assert extra["accessKeyId"] == [dev_session.get_credentials().access_key]
    assert extra["principalId"] == [ident.user_id] and ident.user_id.startswith("AROA")


def test_unmapped_role_is_refused_after_sts(moto, authenticator):
    other = assume(moto, "stranger", "bob")
    r = authenticator.authenticate(make_token(CLUSTER, session=other)[0])
    assert not r.authenticated and r.code == 403 and r.rule == "unmapped"
    assert f"arn:aws:iam::{ACCOUNT}:role/stranger" in r.status["error"]


def test_cached_for_the_token_lifetime_and_never_past_it(moto, dev_session):
    now = [dt.datetime.now(dt.UTC)]
    model = aws_auth_model(f"arn:aws:iam::{ACCOUNT}:role/dev", "dev", ["developers"])
    a = Authenticator(CLUSTER, AccessMapper(model), sts_endpoint=moto.url, clock=lambda: now[0])
    token, _ = make_token(CLUSTER, session=dev_session)
    calls = moto.sts.calls
    assert a.authenticate(token).authenticated
    assert a.authenticate(token).authenticated
    assert moto.sts.calls == calls + 1 and a.sts_calls == 1  # the second answer came from the cache
    now[0] += dt.timedelta(minutes=15, seconds=2)
    r = a.authenticate(token)
    assert not r.authenticated and r.rule == "expired"
    assert moto.sts.calls == calls + 1


@pytest.mark.parametrize(
    "fail,rule,code",
    [
        (("503 Service Unavailable", "ServiceUnavailable", "down"), "sts-rejected", 403),
        (("400 Bad Request", "Throttling", "Rate exceeded"), "sts-throttled", 429),
    ],
)
def test_sts_outage_answers_unauthenticated_with_reason(moto, dev_session, fail, rule, code):
    model = aws_auth_model(f"arn:aws:iam::{ACCOUNT}:role/dev", "dev", [])
    a = Authenticator(CLUSTER, AccessMapper(model), sts_endpoint=moto.url)
    token, _ = make_token(CLUSTER, session=dev_session)
    moto.sts.fail_with = fail
    try:
        r = a.authenticate(token)
    finally:
        moto.sts.fail_with = None
    assert not r.authenticated and r.rule == rule and r.code == code
    assert fail[1] in r.status["error"]
    assert a.authenticate(token).authenticated  # failures are not cached


def test_sts_unreachable_is_a_reason_not_a_crash(dev_session):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    model = aws_auth_model(f"arn:aws:iam::{ACCOUNT}:role/dev", "dev", [])
    a = Authenticator(CLUSTER, AccessMapper(model), sts_endpoint=f"http://127.0.0.1:{port}", timeout=2)
    r = a.authenticate(make_token(CLUSTER, session=dev_session)[0])
    assert not r.authenticated and r.rule == "sts-unreachable" and r.code == 403
    assert "error during GET" in r.status["error"]
