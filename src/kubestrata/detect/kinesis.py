"""A Kinesis Data Streams reader for CloudWatch Logs subscription records (an EKS cluster's audit
log group subscribed to a stream).

Each record's Data is gzip-compressed JSON ``{"messageType": "DATA_MESSAGE", "logEvents":
[{"id", "timestamp", "message"}], ...}`` (CONTROL_MESSAGE records carry no data); boto3 hands the
bytes already base64-decoded (reference: shared/reference/runtime-cloudtrail.md §5, AWS
PutSubscriptionFilter and GetRecords docs). The payload is passed whole to ``handle`` (the
pipeline's and the publisher's ``process_line``/``publish_line`` unwrap it), so one decoder serves
the file, CloudWatch and Kinesis paths.

Position: the last fully handled SequenceNumber per shard, in a checkpoint file written after
``after_batch`` returns (the publisher's flush: Redis has the events), so a restart resumes with
AFTER_SEQUENCE_NUMBER and repeats at most one batch (at least once). Closed parent shards are
read to their end before their children (a resharded stream keeps per-identity order).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from kubestrata.errors import KubestrataError

log = logging.getLogger("kubestrata.detect.kinesis")


class ShardCheckpoint:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.seq: dict[str, str] = {}
        self.closed: set[str] = set()  # shards read to their end
        if path and os.path.exists(path):
            try:
                doc = orjson.loads(Path(path).read_bytes())
                self.seq = {str(k): str(v) for k, v in doc["shards"].items()}
                self.closed = {str(s) for s in doc.get("closed", [])}
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise KubestrataError(
                    f"checkpoint {path} is unreadable; move it away to start over"
                ) from None

    def save(self) -> None:
        if not self.path:
            return
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(self.path)), prefix=".ckpt-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps({"shards": self.seq, "closed": sorted(self.closed)}))
        os.replace(tmp, self.path)


class KinesisReader:
    def __init__(
        self,
        client: Any,
        stream_name: str,
        checkpoint: str | None = None,
        start: str = "TRIM_HORIZON",
        limit: int = 1000,
    ) -> None:
        if start not in ("TRIM_HORIZON", "LATEST"):
            raise KubestrataError("Kinesis start position must be TRIM_HORIZON or LATEST")
        self.client = client
        self.stream = stream_name
        self.ckpt = ShardCheckpoint(checkpoint)
        self.start = start
        self.limit = limit
        self.records = 0

    def _shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamName": self.stream}
        while True:
            try:
                resp = self.client.list_shards(**kwargs)
            except Exception as e:  # botocore ClientError / EndpointConnectionError
                raise KubestrataError(f"ListShards on {self.stream}: {e}") from None
            shards.extend(resp.get("Shards", []))
            token = resp.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    def poll_once(self, handle: Callable[[bytes, str], Any], after_batch: Callable[[], None]) -> int:
        """Every shard to its current end; ``handle(data, origin)`` per record. Returns records read."""
        shards = self._shards()
        known = {s["ShardId"] for s in shards}
        n = 0
        for shard in shards:
            sid = shard["ShardId"]
            parent = shard.get("ParentShardId")
            if sid in self.ckpt.closed or (parent in known and parent not in self.ckpt.closed):
                continue  # done, or its parent still has records to give first
            n += self._read_shard(sid, handle, after_batch)
        return n

    def _read_shard(
        self, sid: str, handle: Callable[[bytes, str], Any], after_batch: Callable[[], None]
    ) -> int:
        kwargs: dict[str, Any] = {"StreamName": self.stream, "ShardId": sid}
        if sid in self.ckpt.seq:
            kwargs.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=self.ckpt.seq[sid]
            )
        else:
            kwargs["ShardIteratorType"] = self.start
        try:
            it = self.client.get_shard_iterator(**kwargs)["ShardIterator"]
        except Exception as e:
            raise KubestrataError(f"GetShardIterator on {self.stream}/{sid}: {e}") from None
        n = 0
        while it:
            try:
                resp = self.client.get_records(ShardIterator=it, Limit=self.limit)
            except Exception as e:
                raise KubestrataError(f"GetRecords on {self.stream}/{sid}: {e}") from None
            recs = resp.get("Records", [])
            for rec in recs:
                handle(rec["Data"], f"kinesis:{self.stream}/{sid}/{rec['SequenceNumber']}")
            if recs:
                after_batch()  # the events are safe downstream: only now move the position
                self.ckpt.seq[sid] = recs[-1]["SequenceNumber"]
                self.ckpt.save()
                n += len(recs)
            it = resp.get("NextShardIterator")
            if it is None:  # a closed shard, read to its end
                self.ckpt.closed.add(sid)
                self.ckpt.save()
            elif not recs or resp.get("MillisBehindLatest", 0) == 0:
                break
        self.records += n
        return n

    def run(
        self,
        handle: Callable[[bytes, str], Any],
        stop: threading.Event,
        interval: float = 1.0,
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        while not stop.is_set():
            try:
                self.poll_once(handle, after_batch or (lambda: None))
            except KubestrataError as e:
                log.warning("%s; retrying in %.0fs", e, interval)
            stop.wait(interval)


def kinesis_client(
    region: str | None = None, endpoint_url: str | None = None, profile: str | None = None
) -> Any:
    import boto3

    session = boto3.session.Session(profile_name=profile, region_name=region)
    return session.client("kinesis", endpoint_url=endpoint_url)
