"""CloudWatch Logs subscription -> Kinesis Data Streams, on moto's server: moto's logs backend
writes the real subscription record (gzip JSON with logEvents[]) into the stream when log events are
put, as CloudWatch Logs does. The reader resumes from its checkpoint; the CLI publishes to Redis and
a worker turns the events into findings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import orjson
import pytest
from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.detect.kinesis import KinesisReader
from kubestrata.detect.pipeline import Pipeline
from tests.conftest import moto_endpoint, reset_moto
from tests.detect.helpers import event

GROUP = "/aws/eks/kinesis-test/cluster"  # not test_cloudwatch's group: moto's state is per process
STREAM = "eks-audit"
KEYS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                 ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
        monkeypatch.setenv(k, v)
    reset_moto()  # another module's moto server may have left its AWS behind
    with moto_endpoint() as url:
        kinesis = boto3.client("kinesis", endpoint_url=url, **KEYS)
        kinesis.create_stream(StreamName=STREAM, ShardCount=2)
        arn = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["StreamARN"]
        logs = boto3.client("logs", endpoint_url=url, **KEYS)
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName="kube-apiserver-audit-aaaa")
        logs.put_subscription_filter(logGroupName=GROUP, filterName="to-kinesis", filterPattern="",
                                     destinationArn=arn, roleArn="arn:aws:iam::123456789012:role/cwl")  # fmt: skip
        yield url


def _put(url: str, names: list[str]) -> None:
    logs = boto3.client("logs", endpoint_url=url, **KEYS)
    now = int(time.time() * 1000)  # moto drops old timestamps from the subscription record
    evs = [event("create", "namespaces", namespace=None, name=n, code=201) for n in names]
    logs.put_log_events(logGroupName=GROUP, logStreamName="kube-apiserver-audit-aaaa",
                        logEvents=[{"timestamp": now + i, "message": orjson.dumps(e).decode()}
                                   for i, e in enumerate(evs)])  # fmt: skip


def test_reader_decodes_subscription_records_and_resumes(aws: str, tmp_path: Path) -> None:
    client = boto3.client("kinesis", endpoint_url=aws, **KEYS)
    _put(aws, ["a0", "a1", "a2"])
    ckpt = str(tmp_path / "kinesis.ckpt")
    pipe = Pipeline()
    raw: list[bytes] = []
    found: list[dict] = []

    def handle(data: bytes, origin: str) -> None:
        raw.append(data)
        found.extend(f.to_dict() for f in pipe.process_line(data, origin))

    assert KinesisReader(client, STREAM, ckpt).poll_once(handle, lambda: None) == 1
    assert raw[0][:2] == b"\x1f\x8b"  # the record as CloudWatch Logs writes it: gzip
    assert pipe.stats.events == 3 and pipe.stats.bad_total == 0
    assert sorted(f["name"] for f in found if f["ruleId"] == "KS-AUD-F14") == ["a0", "a1", "a2"]
    # a restarted reader: only what arrived since
    _put(aws, ["b0"])
    again = KinesisReader(client, STREAM, ckpt)
    assert again.poll_once(handle, lambda: None) == 1
    assert pipe.stats.events == 4
    assert again.poll_once(handle, lambda: None) == 0


def test_a_record_that_is_not_a_subscription_payload_is_counted(aws: str) -> None:
    client = boto3.client("kinesis", endpoint_url=aws, **KEYS)
    client.put_record(StreamName=STREAM, Data=b"\x1f\x8bnot really gzip", PartitionKey="x")
    pipe = Pipeline()
    KinesisReader(client, STREAM).poll_once(pipe.process_line, lambda: None)
    assert pipe.stats.bad["invalid-json"] == 1 and pipe.stats.events == 0


def test_publish_from_kinesis_then_worker(aws: str, redis_url: str, tmp_path: Path) -> None:
    _put(aws, ["n0", "n1"])
    runner = CliRunner()
    ckpt = str(tmp_path / "k.ckpt")
    args = ["detect", "publish", "--kinesis", STREAM, "--endpoint-url", aws, "--region", "us-east-1",
            "--checkpoint", ckpt, "--once", "--redis", redis_url, "--cluster-name", "prod"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "2 events published" in r.stderr
    r = runner.invoke(app, args)  # from the checkpoint: nothing again
    assert "0 events published" in r.stderr
    r = runner.invoke(app, ["detect", "worker", "--redis", redis_url, "--state", str(tmp_path / "s.db"),
                            "--idle-exit", "1", "--lease-ttl", "2"])  # fmt: skip
    assert r.exit_code == 0, r.output
    found = [orjson.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert sorted(f["name"] for f in found if f["ruleId"] == "KS-AUD-F14") == ["n0", "n1"]
    assert all(f["cluster"] == "prod" for f in found)
