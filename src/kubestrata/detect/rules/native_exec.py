"""Our detections on exec commands (KS-AUD-N06..N08): kubectl cp, token reads, reverse shells,
download-and-run, metadata-service queries, host credential reads."""

from __future__ import annotations

from collections.abc import Iterator

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.helpers import exec_ok, exempt
from kubestrata.detect.rules.lists import (
    DOWNLOAD_AND_RUN,
    HOST_SECRETS,
    METADATA_SERVICE,
    REVERSE_SHELL,
    SA_TOKEN,
    SYSTEM_NAMESPACES,
)
from kubestrata.detect.rules.registry import ELASTIC, STARTED, Hit, RuleContext, RuleSpec, hit, rule
from kubestrata.findings import Severity


def _is_tar_to_stdout(cmd: list[str]) -> bool:
    if not cmd or not cmd[0].rsplit("/", 1)[-1] == "tar":
        return False
    args = cmd[1:]
    for i, a in enumerate(args):
        if a in ("-f", "--file") and i + 1 < len(args) and args[i + 1] == "-":
            return True
        if a.startswith("--file=") and a[7:] == "-":
            return True
        if not a.startswith("--") and a.lstrip("-").endswith("f") and "c" in a and i + 1 < len(args):
            if args[i + 1] == "-":
                return True
    return False


@rule(
    RuleSpec(
        "KS-AUD-N06",
        "Files copied out of a pod (kubectl cp)",
        Severity.MEDIUM,
        "An exec ran tar writing an archive to stdout, as kubectl cp from a pod does.",
        ("T1041",),
    ),
    RuleSpec(
        "KS-AUD-N07",
        "Service account token read through exec",
        Severity.HIGH,
        "An exec command read a projected service account token.",
        ("T1528", "T1552.007"),
        elastic=(ELASTIC + "credential_access_kubernetes_pod_exec_sensitive_file_access.toml",),
    ),
    RuleSpec(
        "KS-AUD-N08",
        "Suspicious command executed in a pod",
        Severity.HIGH,
        "An exec command looks like a reverse shell, a download-and-run, a metadata-service "
        "query or a read of host credentials.",
        ("T1609", "T1059"),
        elastic=(
            ELASTIC + "execution_kubernetes_pod_exec_potential_reverse_shell.toml",
            ELASTIC + "credential_access_kubernetes_pod_exec_cloud_instance_metadata.toml",
        ),
    ),
    on="create,get pods/exec",
    stages=STARTED,
)
def exec_command_rules(ev: AuditEvent, ctx: RuleContext) -> Iterator[Hit]:
    if not exec_ok(ev):
        return
    cmd = ev.exec_command()
    if not cmd:
        return
    text = " ".join(cmd)
    sys_ns = ev.namespace in SYSTEM_NAMESPACES
    ev_cmd = ("requestURI?command", cmd)
    if _is_tar_to_stdout(cmd) and not (sys_ns and exempt(ev, ctx, "KS-AUD-N06")):
        yield hit("KS-AUD-N06", f"tar to stdout in {ev.namespace}/{ev.name}", ev_cmd)
    if SA_TOKEN.search(text) and not (sys_ns and exempt(ev, ctx, "KS-AUD-N07")):
        yield hit("KS-AUD-N07", f"service account token read in {ev.namespace}/{ev.name}", ev_cmd)
    reasons = [
        why
        for rx, why in (
            (REVERSE_SHELL, "reverse shell"),
            (DOWNLOAD_AND_RUN, "download and run"),
            (METADATA_SERVICE, "cloud metadata service"),
            (HOST_SECRETS, "host credentials"),
        )
        if rx.search(text)
    ]
    if reasons:
        yield hit("KS-AUD-N08", f"{', '.join(reasons)} in {ev.namespace}/{ev.name}", ev_cmd)
