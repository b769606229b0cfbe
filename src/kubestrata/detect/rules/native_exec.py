"""Our detections on exec commands (KS-AUD-N06..N08): kubectl cp, token reads, reverse shells,
download-and-run, metadata-service queries, host credential reads."""

from __future__ import annotations

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.exec_commands import _verdict
from kubestrata.detect.rules.facts import Fact
from kubestrata.detect.rules.helpers import exempt
from kubestrata.detect.rules.lists import SYSTEM_NAMESPACES
from kubestrata.detect.rules.registry import ELASTIC, STARTED, Hit, RuleContext, RuleSpec, hit, rule
from kubestrata.findings import Severity


def _command(ev: AuditEvent, ctx: RuleContext, rule_id: str) -> list[str]:
    """The command of an exec that went through, unless a control-plane identity ran it in a
    system namespace; else []."""
    code = ev.code  # (exec_ok, inline: every exec meets these rules)
    if not (code is None or code == 101 or 200 <= code < 300):
        return []
    if ev.namespace in SYSTEM_NAMESPACES and exempt(ev, ctx, rule_id):
        return []
    return ev.exec_command()


EXEC_ON = "create,get pods/exec"
# The exec rules rarely fire: each returns its hits as a list, or None, instead of being a generator
# (a generator object and its iteration per rule and event cost more than the rule). Each declares
# the fact of the command it looks for (rules.facts: judged once per distinct command), so the
# pipeline calls none of them on the usual exec, whose command has none.


@rule(
    RuleSpec("KS-AUD-N06", "Files copied out of a pod (kubectl cp)", Severity.MEDIUM,
             "An exec ran tar writing an archive to stdout, as kubectl cp from a pod does.", ("T1041",)),
    on=EXEC_ON, stages=STARTED, when=Fact.EXEC_TAR_TO_STDOUT,
)  # fmt: skip
def files_copied_out(ev: AuditEvent, ctx: RuleContext) -> list[Hit] | None:
    cmd = _command(ev, ctx, "KS-AUD-N06")
    if cmd and _verdict(ev).tar_to_stdout:
        return [hit("KS-AUD-N06", f"tar to stdout in {ev.namespace}/{ev.name}", ("requestURI?command", cmd))]
    return None


@rule(
    RuleSpec("KS-AUD-N07", "Service account token read through exec", Severity.HIGH,
             "An exec command read a projected service account token.", ("T1528", "T1552.007"),
             elastic=(ELASTIC + "credential_access_kubernetes_pod_exec_sensitive_file_access.toml",)),
    on=EXEC_ON, stages=STARTED, when=Fact.EXEC_TOKEN_READ,
)  # fmt: skip
def token_read_through_exec(ev: AuditEvent, ctx: RuleContext) -> list[Hit] | None:
    cmd = _command(ev, ctx, "KS-AUD-N07")
    if cmd and _verdict(ev).token_read:
        return [
            hit(
                "KS-AUD-N07",
                f"service account token read in {ev.namespace}/{ev.name}",
                ("requestURI?command", cmd),
            )
        ]
    return None


@rule(
    RuleSpec("KS-AUD-N08", "Suspicious command executed in a pod", Severity.HIGH,
             "An exec command looks like a reverse shell, a download-and-run, a metadata-service "
             "query or a read of host credentials.", ("T1609", "T1059"),
             elastic=(ELASTIC + "execution_kubernetes_pod_exec_potential_reverse_shell.toml",
                      ELASTIC + "credential_access_kubernetes_pod_exec_cloud_instance_metadata.toml")),
    on=EXEC_ON, stages=STARTED, when=Fact.EXEC_SUSPICIOUS,
)  # fmt: skip
def suspicious_exec_command(ev: AuditEvent, ctx: RuleContext) -> list[Hit] | None:
    # no exemption: the control plane never execs a reverse shell
    code = ev.code  # (exec_ok, inline)
    reasons = _verdict(ev).suspicious if code is None or code == 101 or 200 <= code < 300 else ()
    if reasons:
        cmd = ev.exec_command()
        return [
            hit(
                "KS-AUD-N08", f"{', '.join(reasons)} in {ev.namespace}/{ev.name}", ("requestURI?command", cmd)
            )
        ]
    return None
