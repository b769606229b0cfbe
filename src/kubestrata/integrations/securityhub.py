"""Send ASFF findings to AWS Security Hub with BatchImportFindings through boto3.

Batches of 100 (the API's limit). Throttling and server errors of a whole call are retried by
botocore (standard retry mode, 5 attempts). Findings the service lists in ``FailedFindings`` are sent
again, up to ``attempts`` times with a growing pause, unless their error code says the finding
itself is wrong (``InvalidInput``, ``FindingSizeExceeded``, access errors): those would fail again.
The endpoint, region and credentials come from the usual AWS configuration (``AWS_PROFILE``,
``AWS_REGION``, ``AWS_ENDPOINT_URL_SECURITYHUB``...).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubestrata.errors import KubestrataError

BATCH = 100
PERMANENT = ("InvalidInput", "FindingSizeExceeded", "AccessDenied", "InvalidAccess")


@dataclass
class ImportSummary:
    sent: int = 0
    imported: int = 0
    calls: int = 0
    retried: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # Id, ErrorCode, ErrorMessage


def client(region: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    return session.client("securityhub", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def import_findings(
    sh: Any,
    findings: list[dict[str, Any]],
    *,
    attempts: int = 3,
    pause: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> ImportSummary:
    from botocore.exceptions import BotoCoreError, ClientError

    out = ImportSummary(sent=len(findings))
    for start in range(0, len(findings), BATCH):
        pending = findings[start : start + BATCH]
        for attempt in range(1, attempts + 1):
            try:
                resp = sh.batch_import_findings(Findings=pending)
            except ClientError as e:
                err = e.response.get("Error", {})
                raise KubestrataError(
                    f"Security Hub refused BatchImportFindings: {err.get('Code', '?')}: {err.get('Message', e)}"
                ) from None
            except BotoCoreError as e:
                raise KubestrataError(f"cannot reach Security Hub: {e}") from None
            out.calls += 1
            out.imported += int(resp.get("SuccessCount", 0))
            failed = resp.get("FailedFindings") or []
            by_id = {f["Id"]: f for f in pending}
            retry = []
            for ff in failed:
                code = str(ff.get("ErrorCode", ""))
                if attempt < attempts and ff.get("Id") in by_id and not code.startswith(PERMANENT):
                    retry.append(by_id[ff["Id"]])
                else:
                    out.failed.append(
                        {
                            "Id": str(ff.get("Id", "")),
                            "ErrorCode": code,
                            "ErrorMessage": str(ff.get("ErrorMessage", "")),
                        }
                    )
            if not retry:
                break
            out.retried += len(retry)
            pending = retry
            sleep(pause * attempt)
    return out
