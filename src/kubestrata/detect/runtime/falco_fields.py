"""Falco alert fields for runtime and CloudTrail findings (the `-o falco` / falcosidekick output).

falco_output.to_falco builds an alert with Falco's k8saudit field names; a runtime finding is a
syscall-source event and a CloudTrail finding an aws_cloudtrail-source one, so their fields take the
names of Falco's syscall fields (falco.org/docs/reference/rules/supported-fields: proc.*, container.*,
k8s.*, fd.*) and of the cloudtrail plugin (falcosecurity/plugins plugins/cloudtrail: ct.*).
"""

from __future__ import annotations

from typing import Any

SOURCES = {"tetragon": "syscall", "falco": "syscall", "cloudtrail": "aws_cloudtrail"}


def adapt(alert: dict[str, Any], finding: dict[str, Any]) -> None:
    source = SOURCES.get(str(finding.get("source")))
    if source is None:
        return
    keep = {k: v for k, v in alert["output_fields"].items() if k.startswith(("kubestrata.", "k8s.cluster"))}
    fields: dict[str, Any] = {}
    if source == "syscall":
        proc = finding.get("process") or {}
        ctr = finding.get("container") or {}
        net = finding.get("network") or {}
        for name, value in (
            ("proc.exepath", proc.get("binary")),
            ("proc.cmdline", finding.get("requestURI")),
            ("proc.cwd", proc.get("cwd")),
            ("proc.pid", proc.get("pid")),
            ("user.uid", proc.get("uid")),
            ("proc.pname", (proc.get("parent") or {}).get("binary")),
            ("container.id", ctr.get("id")),
            ("container.name", ctr.get("name")),
            ("container.image.repository", ctr.get("image")),
            ("k8s.ns.name", finding.get("namespace")),
            ("k8s.pod.name", finding.get("name")),
            ("fd.name", (finding.get("file") or {}).get("path") or net.get("socketPath")),
            ("fd.rip", net.get("destinationAddress")),
            ("fd.rport", net.get("destinationPort")),
            ("evt.hostname", finding.get("node")),
        ):
            if value not in (None, ""):
                fields[name] = value
    else:
        ct = finding.get("cloudtrail") or {}
        for name, value in (
            ("ct.name", ct.get("eventName")),
            ("ct.id", ct.get("eventID")),
            ("ct.user.arn", finding.get("user")),
            ("ct.region", ct.get("awsRegion")),
            ("ct.srcip", (finding.get("sourceIPs") or [None])[0]),
            ("ct.useragent", finding.get("userAgent")),
            ("ct.user.accountid", ct.get("accountId")),
        ):
            if value not in (None, ""):
                fields[name] = value
    alert["output_fields"] = {**fields, **keep}
    alert["source"] = source
    extra = {"container"} if source == "syscall" else {"aws", "cloudtrail"}
    alert["tags"] = sorted((set(alert["tags"]) - {"k8s"}) | extra)
    detail = " ".join(
        f"{k}={v}" for k, v in fields.items() if k in ("proc.cmdline", "k8s.pod.name", "ct.user.arn")
    )
    alert["output"] = f"{alert['time']}: {alert['priority']} {finding.get('message', '')} ({detail})"
