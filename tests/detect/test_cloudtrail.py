"""CloudTrail EKS rules (KS-CT-*): AWS's own CreateCluster example, stratus-red-team's access-entry
shapes, log files (plain and gzip), an S3 trail bucket on a moto server, and LookupEvents through a
botocore Stubber (moto has no LookupEvents; the Stubber checks every request and response against
botocore's cloudtrail model)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.detect.cloudtrail import lookup_eks_events
from kubestrata.detect.pipeline import DetectConfig, Pipeline
from kubestrata.detect.router import DetectRouter, feed_file
from tests.conftest import moto_endpoint

DATA = Path(__file__).parent / "data" / "cloudtrail"
runner = CliRunner()
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def _router(**kw: Any) -> DetectRouter:
    return DetectRouter(Pipeline(DetectConfig(cluster="prod", **kw)), sequences=False)


def _findings(path: Path, **kw: Any) -> tuple[DetectRouter, list[dict[str, Any]]]:
    r = _router(**kw)
    out: list[dict[str, Any]] = []
    orig = r._emit

    def keep(f: dict[str, Any], acc: list[Any]) -> None:
        orig(f, acc)
        out.extend(d for d in (x.to_dict() for x in acc) if d not in out)

    r._emit = keep  # type: ignore[method-assign]
    feed_file(r, str(path))
    return r, out


def test_aws_docs_create_cluster_record() -> None:
    r, found = _findings(DATA / "aws-docs-createcluster.json")
    assert r.extra.cloudtrail_records == 1 and r.stats.bad_total == 0
    by = {f["ruleId"]: f for f in found}
    assert set(by) == {"KS-CT-01", "KS-CT-02"}  # no publicAccessCidrs given: the default 0.0.0.0/0
    f = by["KS-CT-01"]
    assert f["cluster"] == "test" and f["user"] == "arn:aws:iam::111122223333:user/username"
    assert (
        f["verb"] == "CreateCluster" and f["sourceIPs"] == ["205.251.233.178"] and f["source"] == "cloudtrail"
    )
    assert f["cloudtrail"]["eventID"] == "eab22523-174a-499c-9dd6-91e7be3ff8e3"
    ev = dict((e["path"], e["value"]) for e in f["evidence"])
    assert ev["auditLogging"] == "off" and ev["secretsEncryption"] == "none"


def test_eks_rules_pass_and_near_miss() -> None:
    r, found = _findings(DATA / "eks-records.json")
    assert r.stats.bad_total == 0
    assert r.extra.cloudtrail_other_services == 1 and r.extra.cloudtrail_failed_calls == 1
    assert r.extra.duplicates == 1  # the repeated eventID
    got: dict[str, list[dict[str, Any]]] = {}
    for f in found:
        got.setdefault(f["ruleId"], []).append(f)
    # access entry + admin policy (stratus-red-team shapes; the principal ARN arrives URL-encoded)
    assert [f["evidence"][0]["value"] for f in got["KS-CT-05"]] == ["arn:aws:iam::111122223333:role/backdoor"]
    admin = got["KS-CT-04"]
    assert [(f["severity"], f["evidence"][0]["value"]) for f in admin] == [
        ("high", "arn:aws:iam::111122223333:role/backdoor"),
        ("medium", "arn:aws:iam::111122223333:role/web-admin"),  # namespace scope
    ]  # the view policy and the denied call raise nothing
    logs = got["KS-CT-03"]
    assert [(f["severity"], f["evidence"][0]["value"]) for f in logs] == [
        ("high", ["audit", "authenticator"]),
        ("medium", ["scheduler"]),
    ]  # turning logs on raises nothing
    assert len(got["KS-CT-02"]) == 1 and got["KS-CT-02"][0]["evidence"][0]["value"] == ["0.0.0.0/0"]
    assert len(got["KS-CT-12"]) == 2
    assert len(got["KS-CT-06"]) == 1 and len(got["KS-CT-07"]) == 1
    assert [f["severity"] for f in got["KS-CT-08"]] == ["high", "medium"]
    assert len(got["KS-CT-09"]) == 1 and len(got["KS-CT-10"]) == 1
    assert [f["cluster"] for f in got["KS-CT-11"]] == ["staging"]
    created = got["KS-CT-01"][0]
    assert created["cluster"] == "staging" and [e["path"] for e in created["evidence"]] == ["eventName"]
    assert all(f["user"] == "arn:aws:sts::111122223333:assumed-role/ci-deployer/i-0abc" for f in found)


def test_gzip_log_object_and_bad_records(tmp_path: Path) -> None:
    doc = json.loads((DATA / "eks-records.json").read_text())
    doc["Records"][1:1] = [{"eventSource": "eks.amazonaws.com", "eventName": 7, "eventTime": "x"}, "oops"]
    name = tmp_path / "111122223333_CloudTrail_eu-west-1_20261127T0910Z_abcdefghijklmnop.json.gz"
    name.write_bytes(gzip.compress(json.dumps(doc).encode()))
    r, found = _findings(name)
    assert r.stats.bad["bad-cloudtrail-record"] == 2
    assert {f["ruleId"] for f in found} >= {"KS-CT-04", "KS-CT-05"}
    (tmp_path / "broken.json.gz").write_bytes(gzip.compress(b'{"Records": [')[:-4])
    r2, _ = _findings(tmp_path / "broken.json.gz")
    assert r2.stats.bad_total == 1


def test_s3_trail_bucket_via_moto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    with moto_endpoint() as url:
        s3 = boto3.client("s3", endpoint_url=url, region_name="eu-west-1")
        s3.create_bucket(Bucket="trail", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        prefix = "org/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/27/"
        doc = json.loads((DATA / "eks-records.json").read_text())
        s3.put_object(Bucket="trail", Key=prefix + "111122223333_CloudTrail_eu-west-1_20261127T0910Z_aaaa.json.gz",
                      Body=gzip.compress(json.dumps({"Records": doc["Records"][:5]}).encode()))  # fmt: skip
        s3.put_object(Bucket="trail", Key=prefix + "111122223333_CloudTrail_eu-west-1_20261127T0915Z_bbbb.json.gz",
                      Body=gzip.compress(json.dumps({"Records": doc["Records"][5:]}).encode()))  # fmt: skip
        s3.put_object(Bucket="trail", Key=prefix + "junk_CloudTrail_eu-west-1_20261127T0920Z_cccc.json.gz",
                      Body=b"not gzip")  # fmt: skip
        s3.put_object(Bucket="trail", Key="org/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/27/d.json.gz",
                      Body=b"{}")  # fmt: skip
        r = runner.invoke(app, ["detect", "replay", "s3://trail/org/AWSLogs/", "--endpoint-url", url, "--region",
                                "eu-west-1", "-o", "json", "--fail-on", "never", "--cluster-name", "prod",
                                "--stats", str(tmp_path / "s.json")], env=AWS_ENV)  # fmt: skip
        assert r.exit_code == 0, r.output
        found = json.loads(r.stdout)
        assert {f["ruleId"] for f in found} >= {"KS-CT-04", "KS-CT-05", "KS-CT-03", "KS-CT-11"}
        stats = json.loads((tmp_path / "s.json").read_text())
        assert stats["badByReason"] == {"bad-cloudtrail-object": 1}  # the junk object, the digest skipped
        assert stats["cloudtrailRecords"] == 20
        r = runner.invoke(app, ["detect", "replay", "s3://nope/x", "--endpoint-url", url], env=AWS_ENV)
        assert r.exit_code == 2 and "cannot read s3://nope/x" in r.output and "Traceback" not in r.output


def _lookup_page(records: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "Events": [
            {
                "EventId": rec["eventID"],
                "EventName": rec["eventName"],
                "ReadOnly": "false",
                "AccessKeyId": "ASIAEXAMPLEKEY",
                "EventTime": datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00")),
                "EventSource": "eks.amazonaws.com",
                "Username": "i-0abc",
                "Resources": [{"ResourceType": "AWS::EKS::Cluster", "ResourceName": "prod"}],
                "CloudTrailEvent": json.dumps(rec),
            }
            for rec in records
        ]
    }
    if token:
        page["NextToken"] = token
    return page


def _stubbed_client(pages: list[dict[str, Any]], start: datetime) -> tuple[Any, Stubber]:
    client = boto3.client(
        "cloudtrail", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    attrs = [{"AttributeKey": "EventSource", "AttributeValue": "eks.amazonaws.com"}]
    token = None
    for page in pages:
        expected: dict[str, Any] = {"LookupAttributes": attrs, "MaxResults": 50, "StartTime": start}
        if token:
            expected["NextToken"] = token
        stub.add_response("lookup_events", page, expected)
        token = page.get("NextToken")
    return client, stub


def test_lookup_events_pages_through_the_seam() -> None:
    recs = [r for r in json.loads((DATA / "eks-records.json").read_text())["Records"]
            if r.get("eventSource") == "eks.amazonaws.com"]  # fmt: skip
    start = datetime(2026, 11, 27, tzinfo=UTC)
    pages = [_lookup_page(recs[:3], "t1"), _lookup_page(recs[3:], None)]
    client, stub = _stubbed_client(pages, start)
    r = _router()
    with stub:
        for page in lookup_eks_events(client, start, sleep=lambda s: None):
            r.process_obj(page, "lookup")
        stub.assert_no_pending_responses()
    assert r.extra.cloudtrail_records == len(recs) - 1  # the duplicate eventID
    assert r.stats.bad_total == 0


def test_cloudtrail_command_uses_lookup_events(monkeypatch: pytest.MonkeyPatch) -> None:
    import kubestrata.cli.detect_cloudtrail as cli_detect

    recs = json.loads((DATA / "eks-records.json").read_text())["Records"][:2]
    start = datetime(2026, 11, 27, tzinfo=UTC)
    client, stub = _stubbed_client([_lookup_page(recs, None)], start)
    monkeypatch.setattr(cli_detect, "aws_client", lambda *a: client)
    with stub:
        r = runner.invoke(app, ["detect", "cloudtrail", "--start-time", "2026-11-27T00:00:00Z", "-o", "json",
                                "--cluster-name", "prod"])  # fmt: skip
    assert r.exit_code == 1, r.output  # a high finding: --fail-on high
    assert {f["ruleId"] for f in json.loads(r.stdout)} == {"KS-CT-04", "KS-CT-05"}
    r = runner.invoke(app, ["detect", "cloudtrail", "--start-time", "yesterday"])
    assert r.exit_code == 2 and "--start-time" in r.output


def test_bad_lookup_event_is_counted() -> None:
    r = _router()
    r.process_obj({"Events": [{"EventId": "1", "CloudTrailEvent": "{nope"}, {"EventId": "2"}]}, "lookup")
    assert r.stats.bad["bad-cloudtrail-record"] == 2


def test_user_agent_is_escaped() -> None:
    rec = json.loads((DATA / "eks-records.json").read_text())["Records"][0]
    rec["userAgent"] = "aws-cli\x1b[2J\u202e"
    r = _router()
    out: list[dict[str, Any]] = []
    r._emit = lambda f, acc: out.append(f)  # type: ignore[method-assign]
    r.process_obj(rec, "x")
    assert out and out[0]["userAgent"] == "aws-cli\\x1b[2J\\u202e"


def test_cloudtrail_through_a_cloudwatch_subscription_payload() -> None:
    """A trail delivered to CloudWatch Logs and on through a subscription filter (Kinesis, Lambda):
    base64 of gzip of {"messageType": "DATA_MESSAGE", "logEvents": [{"message": <record JSON>}]}."""
    import base64

    recs = json.loads((DATA / "eks-records.json").read_text())["Records"][:2]
    payload = {"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "aws-cloudtrail-logs",
               "logStream": "111122223333_CloudTrail_eu-west-1", "subscriptionFilters": ["detect"],
               "logEvents": [{"id": str(i), "timestamp": 1795770000000 + i, "message": json.dumps(r)}
                             for i, r in enumerate(recs)] + [{"id": "9", "timestamp": 0, "message": "{broken"}]}  # fmt: skip
    line = base64.b64encode(gzip.compress(json.dumps(payload).encode()))
    r = _router()
    found = [f.to_dict() for f in r.process_line(line, "kinesis")]
    assert {f["ruleId"] for f in found} == {"KS-CT-04", "KS-CT-05"}
    assert r.stats.bad_total == 1 and r.extra.cloudtrail_records == 2
    control = {"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "1", "timestamp": 0,
                                                                "message": "CWL CONTROL MESSAGE: Checking health of destination"}]}  # fmt: skip
    r2 = _router()
    assert r2.process_line(base64.b64encode(gzip.compress(json.dumps(control).encode())), "k") == []
    assert r2.stats.bad_total == 0


def test_watch_a_cloudtrail_log_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trail delivered to CloudWatch Logs (stream <account>_CloudTrail_<region>), followed by
    `detect watch --cloudwatch` on a moto server: the records become CloudTrail findings."""
    import time

    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    recs = json.loads((DATA / "eks-records.json").read_text())["Records"][:2]
    with moto_endpoint() as url:
        logs = boto3.client("logs", endpoint_url=url, region_name="eu-west-1")
        group, stream = "aws-cloudtrail-logs-111122223333", "111122223333_CloudTrail_eu-west-1"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": now + i, "message": json.dumps(r)} for i, r in enumerate(recs)])  # fmt: skip
        r = runner.invoke(app, ["detect", "watch", "--cloudwatch", "--log-group", group, "--stream-prefix",
                                "111122223333_CloudTrail_", "--region", "eu-west-1", "--endpoint-url", url,
                                "--cluster-name", "prod", "--once", "--state", ":memory:",
                                "--checkpoint", str(tmp_path / "c.ckpt")], env=AWS_ENV)  # fmt: skip
    assert r.exit_code == 0, r.output
    found = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert {f["ruleId"] for f in found} == {"KS-CT-04", "KS-CT-05"}
