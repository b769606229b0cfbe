"""Falco's JSON alert format, so `detect` findings reach falcosidekick and its outputs.

The fields are those of Falco's ``json_output`` and falcosidekick's ``types.FalcoPayload``
(falcosecurity/falcosidekick, types/types.go): ``output``, ``priority``, ``rule``, ``time``,
``output_fields``, ``source``, ``tags``, ``hostname``. falcosidekick rejects a payload (HTTP 400) whose
priority does not parse, whose rule is empty, whose time is zero or not RFC 3339, or whose
output_fields are empty (``FalcoPayload.Check``); every alert here has all four.

``source`` is ``k8saudit`` and the output fields use the names of Falco's k8saudit plugin
(``ka.user.name``, ``ka.verb``, ``ka.target.resource``...), so falcosidekick's templated fields and
the Falco rules' usual outputs line up; kubestrata's own fields are under ``kubestrata.*``.
"""

from __future__ import annotations

import socket
from typing import Any

import orjson

from kubestrata.detect.sinks import StreamSink, WebhookSink
from kubestrata.findings import Finding

SOURCE = "k8saudit"
# Falco priorities (falcosidekick types/priority.go), by kubestrata severity
PRIORITY = {
    "critical": "Critical",
    "high": "Error",
    "medium": "Warning",
    "low": "Notice",
    "info": "Informational",
}
FIELDS = {  # finding key -> k8saudit plugin field
    "auditID": "ka.auditid",
    "stage": "ka.stage",
    "user": "ka.user.name",
    "impersonatedUser": "ka.impuser.name",
    "verb": "ka.verb",
    "resource": "ka.target.resource",
    "subresource": "ka.target.subresource",
    "namespace": "ka.target.namespace",
    "name": "ka.target.name",
    "requestURI": "ka.uri",
    "userAgent": "ka.useragent",
    "sourceIPs": "ka.sourceips",
    "responseCode": "ka.response.code",
}


def _rfc3339(t: Any) -> str:
    s = str(t or "")
    return s if s.endswith("Z") or "+" in s[10:] else s + "Z"


def to_falco(finding: dict[str, Any], hostname: str | None = None) -> dict[str, Any]:
    """One kubestrata detect finding as a Falco alert."""
    fields: dict[str, Any] = {}
    for key, name in FIELDS.items():
        v = finding.get(key)
        if v is not None and v != []:
            fields[name] = v
    fields["kubestrata.rule_id"] = finding.get("ruleId")
    fields["kubestrata.severity"] = finding.get("severity")
    fields["kubestrata.fingerprint"] = finding.get("fingerprint")
    if finding.get("cluster"):
        fields["k8s.cluster.name"] = finding["cluster"]
    priority = PRIORITY.get(str(finding.get("severity")), "Warning")
    time = _rfc3339(finding.get("time"))
    target = "/".join(str(finding[k]) for k in ("namespace", "resource", "name") if finding.get(k))
    detail = " ".join(
        f"{k}={finding[k]}" for k in ("user", "verb", "requestURI") if finding.get(k) is not None
    )
    output = (
        f"{time}: {priority} {finding.get('message', '')} ({detail}{' target=' + target if target else ''})"
    )
    refs = finding.get("references") or {}
    tags = ["k8s", "kubestrata", str(finding.get("ruleId"))]
    tags += [f"mitre_{t.split()[0]}" for t in refs.get("mitre", [])]
    alert = {
        "output": output,
        "priority": priority,
        "rule": (refs.get("falco") or [finding.get("title") or finding.get("ruleId")])[0],
        "time": time,
        "output_fields": fields,
        "source": SOURCE,
        "tags": sorted(set(tags)),
        "hostname": hostname or socket.gethostname(),
    }
    if finding.get("source") in ("tetragon", "falco", "cloudtrail"):  # syscall / aws_cloudtrail names
        from kubestrata.detect.runtime.falco_fields import adapt

        adapt(alert, finding)
    return alert


class FalcoStreamSink(StreamSink):
    """Falco JSON alerts, a line each, to stdout."""

    name = "stdout"

    def encode(self, finding: Finding) -> bytes:
        return orjson.dumps(to_falco(finding.to_dict()))


class FalcosidekickSink(WebhookSink):
    """POST each finding as a Falco alert to falcosidekick (its main handler, ``POST /``)."""

    name = "falcosidekick"

    def encode(self, finding: Finding) -> bytes:
        return orjson.dumps(to_falco(finding.to_dict()))
