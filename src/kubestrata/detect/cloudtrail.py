"""CloudTrail records of the EKS API: reading them (log files, S3 objects, LookupEvents) and
turning one record into the fields the CloudTrail rules (cloudtrail_rules.py) read.

Record fields: cloudtrail-event-reference-record-contents.html (``eventVersion``, ``userIdentity``,
``eventTime``, ``eventSource``, ``eventName``, ``awsRegion``, ``sourceIPAddress``, ``userAgent``,
``errorCode``, ``requestParameters``, ``responseElements``, ``eventID`` ...). Log files are gzip JSON
``{"Records": [...]}`` under ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`` (reference note
runtime-cloudtrail.md §4). LookupEvents returns each record as a JSON *string* in
``Events[].CloudTrailEvent``. Records of other services are ignored (counted), not bad.
"""

from __future__ import annotations

import gzip
import io
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubestrata.detect.decode import loads
from kubestrata.detect.event import BadEvent

EKS_SOURCE = "eks.amazonaws.com"
MAX_OBJECT_BYTES = 512 * 1024 * 1024  # a CloudTrail object is a few MB; refuse a runaway decompression


def is_cloudtrail(obj: dict[str, Any]) -> bool:
    return (
        "Records" in obj
        or ("eventSource" in obj and "eventName" in obj and "eventTime" in obj)
        or ("Events" in obj and isinstance(obj.get("Events"), list))
    )


class NotEks(Exception):
    """A well-formed record of another AWS service."""


@dataclass(slots=True)
class TrailRecord:
    raw: dict[str, Any]
    event_id: str
    event_name: str
    time: str
    region: str
    account: str
    actor: str  # userIdentity.arn (assumed-role session ARN: the same string EKS audit logs show)
    actor_type: str
    source_ip: str
    user_agent: str
    error: str
    cluster: str
    params: dict[str, Any]
    response: dict[str, Any]


def _s(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key)
    if v is None:
        return ""
    if type(v) is not str:
        raise BadEvent(f"{where}{key}: expected a string, got {type(v).__name__}")
    return v


def _d(d: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    v = d.get(key)
    if v is None:
        return {}
    if type(v) is not dict:
        raise BadEvent(f"{where}{key}: expected an object, got {type(v).__name__}")
    return v


def unquote(v: Any) -> str:
    """CloudTrail keeps URI parameters URL-encoded (``arn%3Aaws%3Aiam...``, stratus-red-team's
    AssociateAccessPolicy example)."""
    s = v if type(v) is str else ""
    return urllib.parse.unquote(s) if "%" in s else s


def record(raw: Any) -> TrailRecord:
    """One CloudTrail record (NotEks for other services, BadEvent naming the bad field)."""
    if type(raw) is not dict:
        raise BadEvent(f"expected a CloudTrail record object, got {type(raw).__name__}")
    if "EventId" in raw or "CloudTrailEvent" in raw:  # a LookupEvents item
        raw = lookup_event_record(raw, f"Events[{raw.get('EventId', '?')}]")
        if type(raw) is not dict:
            raise BadEvent("CloudTrailEvent: expected a JSON object")
    source = _s(raw, "eventSource", "")
    if source != EKS_SOURCE:
        if not source:
            raise BadEvent("eventSource: missing")
        raise NotEks(source)
    ident = _d(raw, "userIdentity", "")
    params = _d(raw, "requestParameters", "")
    response = _d(raw, "responseElements", "")
    name = _s(raw, "eventName", "")
    if not name:
        raise BadEvent("eventName: missing")
    t = _s(raw, "eventTime", "")
    if not t:
        raise BadEvent("eventTime: missing")
    resp_obj = next((v for v in response.values() if type(v) is dict), {})
    cluster = unquote(params.get("name") or params.get("clusterName")) or unquote(
        resp_obj.get("clusterName") or (resp_obj.get("name") if "cluster" in response else "")
    )
    return TrailRecord(
        raw=raw,
        event_id=_s(raw, "eventID", "") or _s(raw, "requestID", ""),
        event_name=name,
        time=t,
        region=_s(raw, "awsRegion", ""),
        account=_s(raw, "recipientAccountId", "") or _s(ident, "accountId", "userIdentity."),
        actor=_s(ident, "arn", "userIdentity.")
        or _s(ident, "principalId", "userIdentity.")
        or _s(ident, "invokedBy", "userIdentity."),
        actor_type=_s(ident, "type", "userIdentity."),
        source_ip=_s(raw, "sourceIPAddress", ""),
        user_agent=_s(raw, "userAgent", ""),
        error=_s(raw, "errorCode", ""),
        cluster=cluster,
        params=params,
        response=response,
    )


def iter_records(obj: Any) -> Iterator[Any]:
    """Raw records from a log file document, a single record, or a LookupEvents response page."""
    if type(obj) is not dict:
        raise BadEvent(f"expected a JSON object, got {type(obj).__name__}")
    if "Records" in obj:
        recs = obj["Records"]
        if type(recs) is not list:
            raise BadEvent(f"Records: expected a list, got {type(recs).__name__}")
        yield from recs
    elif "Events" in obj:
        evs = obj["Events"]
        if type(evs) is not list:
            raise BadEvent(f"Events: expected a list, got {type(evs).__name__}")
        yield from evs  # record() unwraps each item's CloudTrailEvent
    else:
        yield obj


def lookup_event_record(e: Any, where: str = "Events[]") -> Any:
    """The record inside one LookupEvents ``Events`` item (its ``CloudTrailEvent`` JSON string)."""
    if type(e) is not dict or type(e.get("CloudTrailEvent")) is not str:
        raise BadEvent(f"{where}.CloudTrailEvent: expected a JSON string")
    try:
        return loads(e["CloudTrailEvent"])
    except BadEvent as err:
        raise BadEvent(f"{where}.CloudTrailEvent: {err}") from None


# -- sources --------------------------------------------------------------------------------


def read_object(data: bytes) -> Any:
    """A CloudTrail log object's document (gzip or plain JSON)."""
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
                data = g.read(MAX_OBJECT_BYTES + 1)
        except (OSError, EOFError) as e:
            raise BadEvent(f"bad gzip: {e}") from None
        if len(data) > MAX_OBJECT_BYTES:
            raise BadEvent(f"more than {MAX_OBJECT_BYTES} bytes after decompression")
    return loads(data)


def parse_s3_url(url: str) -> tuple[str, str]:
    p = urllib.parse.urlparse(url)
    if p.scheme != "s3" or not p.netloc:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    return p.netloc, p.path.lstrip("/")


def iter_s3_objects(s3: Any, bucket: str, prefix: str) -> Iterator[tuple[str, bytes]]:
    """(key, body) of each CloudTrail log object under the prefix, in key order (keys embed the
    delivery time, so this is roughly time order). Digest and Insights files are skipped."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents") or []:
            key = obj["Key"]
            if not key.endswith((".json.gz", ".json")) or "/CloudTrail-Digest/" in key:
                continue
            if "/CloudTrail-Insight/" in key:
                continue
            if obj.get("Size", 0) > MAX_OBJECT_BYTES:
                raise BadEvent(f"s3://{bucket}/{key}: {obj['Size']} bytes, larger than a CloudTrail log file")
            yield key, s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def lookup_eks_events(
    client: Any,
    start: datetime | None = None,
    end: datetime | None = None,
    max_pages: int = 1000,
    sleep: Callable[[float], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """LookupEvents pages for eventSource eks.amazonaws.com (management events, last 90 days).

    ``client`` is a boto3 CloudTrail client (moto lacks LookupEvents, so tests pass a botocore
    Stubber-wrapped client). AWS allows two lookups per second per account: ``sleep`` paces pages."""
    kwargs: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "EventSource", "AttributeValue": EKS_SOURCE}],
        "MaxResults": 50,
    }
    if start is not None:
        kwargs["StartTime"] = start
    if end is not None:
        kwargs["EndTime"] = end
    for n in range(max_pages):
        page = client.lookup_events(**kwargs)
        yield page
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token
        if sleep is not None and n:
            sleep(0.5)
