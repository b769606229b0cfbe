"""ASFF output and Security Hub import: the document validates against botocore's official Security Hub
service model (the BatchImportFindings input shape), and findings are imported into moto's Security Hub
on loopback through boto3, in batches of 100, with FailedFindings retried."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import boto3
import orjson
import pytest
from botocore.exceptions import ParamValidationError
from botocore.session import get_session
from botocore.validate import ParamValidator
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.findings import Finding, Layer, Severity
from kubestrata.integrations import securityhub
from kubestrata.report import asff
from kubestrata.scan import ScanResult
from tests.conftest import EXAMPLES

ARN = "arn:aws:eks:eu-west-1:123456789012:cluster/prod"
TARGET = asff.AwsTarget.from_arn(ARN)
NOW = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
INPUT_SHAPE = (
    get_session().get_service_model("securityhub").operation_model("BatchImportFindings").input_shape
)
runner = CliRunner()


def _validate(doc: dict) -> None:
    report = ParamValidator().validate(doc, INPUT_SHAPE)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def test_the_validator_rejects_a_broken_finding():
    good = {"Findings": asff.to_findings(_one(), TARGET, NOW)[:1]}
    _validate(good)
    for field, value in [("Severity", {"Label": 3}), ("Resources", "x"), ("CreatedAt", 5)]:
        bad = copy.deepcopy(good)
        bad["Findings"][0][field] = value
        with pytest.raises(ParamValidationError):
            _validate(bad)
    bad = copy.deepcopy(good)
    del bad["Findings"][0]["AwsAccountId"]
    with pytest.raises(ParamValidationError):
        _validate(bad)


def _one() -> ScanResult:
    from tests.report.conftest import build_result

    return build_result()


def test_document_validates_and_maps_every_finding_and_gap(result):
    doc = json.loads(asff.render(result, TARGET, NOW))
    _validate(doc)
    found = doc["Findings"]
    assert len(found) == len(result.findings) + len(result.coverage.gaps)
    by_id = {f["Id"]: f for f in found}
    assert len(by_id) == len(found)  # unique ids
    for f in result.findings:
        x = by_id[f"{ARN}/kubestrata/{f.fingerprint}"]
        assert x["AwsAccountId"] == "123456789012" and x["Region"] == "eu-west-1"
        assert x["ProductArn"] == "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
        assert x["GeneratorId"] == f"kubestrata/{f.rule_id}"
        assert x["Severity"]["Label"] == asff.LABEL[f.severity]
        assert x["CreatedAt"] == "2026-03-01T12:00:00.123Z"
        assert x["Resources"][-1] == {
            "Type": "AwsEksCluster",
            "Id": ARN,
            "Partition": "aws",
            "Region": "eu-west-1",
        }
        other = x["Resources"][0]["Details"]["Other"]
        assert (other["kind"], other["name"]) == (f.object.kind, f.object.name)
        assert x["Workflow"]["Status"] == ("SUPPRESSED" if f.suppressed else "NEW")
        assert len(x["Title"]) <= 256 and len(x["Description"]) <= 1024
        if f.evidence:
            assert json.loads(x["ProductFields"]["kubestrata/Evidence"])[0]["path"] == f.evidence[0].path
    gaps = [f for f in found if f["GeneratorId"] == "kubestrata/coverage"]
    assert len(gaps) == len(result.coverage.gaps) > 0
    assert all(g["Compliance"]["Status"] == "NOT_AVAILABLE" for g in gaps)


def test_render_writes_the_document_to_findings_builds(result):
    """render splices pre-written parts (a check's template, an object's resources); the text must
    be what serialising to_findings' dicts gives, byte for byte, whatever a finding carries."""
    assert any(f.suppressed for f in result.findings) and result.coverage.gaps
    cluster_level = Finding(
        "KS-X-001", "Cluster-level", Severity.HIGH, Layer.CLUSTER, "no object", remediation="",
        references={"cis": ["1.2.3"]},
    )  # fmt: skip
    fixed = dataclasses.replace(result.findings[0], fix=[{"op": "add", "path": "/a", "value": "\x1b"}])
    variants = [
        result,
        ScanResult(),
        ScanResult(findings=[cluster_level]),
        ScanResult(findings=[cluster_level, fixed, *result.findings[:3]], coverage=result.coverage),
    ]
    for r in variants:
        text = asff.render(r, TARGET, NOW)
        assert text == orjson.dumps({"Findings": asff.to_findings(r, TARGET, NOW)}).decode() + "\n"
        assert json.loads(text)["Findings"] == asff.to_findings(r, TARGET, NOW)


def test_arn_parsing_refuses_what_is_not_an_eks_cluster():
    assert (TARGET.partition, TARGET.region, TARGET.account, TARGET.cluster_name) == (
        "aws", "eu-west-1", "123456789012", "prod",
    )  # fmt: skip
    for bad in ["arn:aws:s3:::bucket", "arn:aws:eks:eu-west-1:12:cluster/x", "prod"]:
        with pytest.raises(ValueError):
            asff.AwsTarget.from_arn(bad)


# --- Security Hub (moto) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _client(url: str):
    return boto3.client("securityhub", endpoint_url=url, region_name="eu-west-1")


def _stored(url: str) -> list[dict]:
    c = _client(url)
    out, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = c.get_findings(MaxResults=100, **kw)
        out.extend(page["Findings"])
        token = page.get("NextToken")
        if not token:
            return out


def _many(result: ScanResult, n: int, cluster: str) -> list[dict]:
    t = asff.AwsTarget.from_arn(f"arn:aws:eks:eu-west-1:123456789012:cluster/{cluster}")
    base = asff.to_findings(result, t, NOW)
    return [{**base[i % len(base)], "Id": f"{t.cluster_arn}/kubestrata/n{i}"} for i in range(n)]


def test_imports_in_batches_of_100(moto_url, aws_env, result):
    findings = _many(result, 250, "batches")
    calls = []

    class Counting:
        def __init__(self, c):
            self.c = c

        def batch_import_findings(self, Findings):  # noqa: N803 - boto3 spelling
            calls.append(len(Findings))
            return self.c.batch_import_findings(Findings=Findings)

    out = securityhub.import_findings(Counting(_client(moto_url)), findings)
    assert calls == [100, 100, 50]
    assert (out.sent, out.imported, out.calls, out.failed) == (250, 250, 3, [])
    stored = {f["Id"] for f in _stored(moto_url) if ":cluster/batches/" in f["Id"]}
    assert stored == {f["Id"] for f in findings}


class FlakyProxy:
    """A loopback proxy in front of moto that, on its first BatchImportFindings call, withholds the first
    ``n`` findings from moto and reports them as FailedFindings with a transient error code, the way
    Security Hub reports a partial failure."""

    def __init__(self, upstream: str, n: int) -> None:
        self.n, self.upstream, self.calls = n, urlsplit(upstream), 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                proxy.calls += 1
                held = []
                if proxy.calls == 1 and self.path.endswith("/findings/import"):
                    held, body["Findings"] = body["Findings"][: proxy.n], body["Findings"][proxy.n :]
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "host")}
                conn.request("POST", self.path, json.dumps(body), hdrs)
                resp = conn.getresponse()
                data = json.loads(resp.read() or b"{}")
                if held:
                    data["FailedCount"] = data.get("FailedCount", 0) + len(held)
                    data.setdefault("FailedFindings", []).extend(
                        {"Id": f["Id"], "ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
                        for f in held
                    )
                raw = json.dumps(data).encode()
                self.send_response(resp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_failed_findings_are_retried_and_invalid_ones_reported(moto_url, aws_env, result):
    proxy = FlakyProxy(moto_url, 7)
    try:
        findings = _many(result, 30, "retry")
        findings[20] = {**findings[20], "Resources": []}  # moto: InvalidInput, never retried
        out = securityhub.import_findings(_client(proxy.url), findings, sleep=lambda s: None)
    finally:
        proxy.close()
    assert out.calls == 2 and out.retried == 7
    assert out.imported == 29
    assert [f["Id"] for f in out.failed] == [findings[20]["Id"]] and out.failed[0][
        "ErrorCode"
    ] == "InvalidInput"
    stored = {f["Id"] for f in _stored(moto_url) if ":cluster/retry/" in f["Id"]}
    assert stored == {f["Id"] for i, f in enumerate(findings) if i != 20}


def test_scan_security_hub_end_to_end(moto_url, aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", moto_url)
    arn = "arn:aws:eks:eu-west-1:123456789012:cluster/cli"
    res = runner.invoke(
        app,
        ["scan", str(EXAMPLES / "demo-cluster"), "--security-hub", "--cluster-arn", arn, "-o", "json",
         "--output-file", "/dev/null", "--fail-on", "never"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Security Hub imported" in res.output
    stored = [f for f in _stored(moto_url) if f["Id"].startswith(arn + "/")]
    n = int(res.output.split("imported ")[1].split(" of ")[0])
    assert len(stored) == n > 0
    res = runner.invoke(app, ["scan", str(EXAMPLES / "demo-cluster"), "--security-hub"])
    assert res.exit_code == 2 and "needs the EKS cluster ARN" in res.output


def test_cluster_arn_comes_from_the_eks_snapshot(tmp_path):
    snap = tmp_path / "eks.yaml"
    snap.write_text(
        "apiVersion: kubestrata.io/v1alpha1\nkind: EKSClusterAccess\nmetadata: {name: prod, namespace: kube-system}\n"
        f"cluster: {{name: prod, arn: '{ARN}'}}\n"
    )
    res = runner.invoke(
        app, ["scan", str(EXAMPLES / "demo-cluster"), str(snap), "-o", "asff", "--fail-on", "never"]
    )
    doc = json.loads(res.stdout)
    assert doc["Findings"] and all(f["Id"].startswith(ARN + "/") for f in doc["Findings"])
    res = runner.invoke(app, ["scan", str(EXAMPLES / "demo-cluster"), "-o", "asff", "--fail-on", "never"])
    assert "no EKS cluster ARN" in res.stderr


def test_finding_type_follows_references():
    f = Finding("KS-X", "t", Severity.LOW, Layer.CLUSTER, "m")
    assert asff._types(f) == [asff.POSTURE_TYPE]
    f.references = {"cis-eks": ["4.1"]}
    assert asff._types(f) == [asff.CIS_TYPE]
