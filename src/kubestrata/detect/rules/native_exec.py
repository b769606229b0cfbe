"""Our detections on exec commands (KS-AUD-N06..N08): kubectl cp, token reads, reverse shells,
download-and-run, metadata-service queries, host credential reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.helpers import exempt
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


def _is_tar_to_stdout(cmd: Sequence[str]) -> bool:
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


def _command(ev: AuditEvent, ctx: RuleContext, rule_id: str) -> list[str]:
    """The command of an exec that went through, unless a control-plane identity ran it in a
    system namespace; else []."""
    code = ev.code  # (exec_ok, inline: every exec meets these rules)
    if not (code is None or code == 101 or 200 <= code < 300):
        return []
    if ev.namespace in SYSTEM_NAMESPACES and exempt(ev, ctx, rule_id):
        return []
    return ev.exec_command()


_SUSPICIOUS = (
    (REVERSE_SHELL, "reverse shell"),
    (DOWNLOAD_AND_RUN, "download and run"),
    (METADATA_SERVICE, "cloud metadata service"),
    (HOST_SECRETS, "host credentials"),
)


class _Verdict(NamedTuple):
    """What the exec rules find in one command: tar to stdout, a token read, suspicious patterns."""

    tar_to_stdout: bool
    token_read: bool
    suspicious: tuple[str, ...]


def _judge(cmd: tuple[str, ...]) -> _Verdict:
    text = " ".join(cmd)
    return _Verdict(
        _is_tar_to_stdout(cmd),
        bool(cmd and SA_TOKEN.search(text)),
        tuple(why for rx, why in _SUSPICIOUS if rx.search(text)),
    )


# ``sh -c ...`` repeats from event to event: a command seen before is not searched again. A dict
# of verdicts by command (bounded: clients choose commands), not an lru_cache: a hit is one lookup
_VERDICTS: dict[tuple[str, ...], _Verdict] = {}
_REMEMBERED_TEXT_MAX = 4096  # longer commands are judged anew each time (bounded memory)
_REMEMBERED_MAX = 4096


def _verdict(ev: AuditEvent) -> _Verdict:
    """The verdict on the event's exec command, once per event."""
    memo = ev.memo
    v: _Verdict | None = memo.get(_verdict)
    if v is None:
        cmd = tuple(ev.exec_command())
        v = _VERDICTS.get(cmd)
        if v is None:
            v = _judge(cmd)
            if len(" ".join(cmd)) < _REMEMBERED_TEXT_MAX:
                if len(_VERDICTS) >= _REMEMBERED_MAX:
                    _VERDICTS.clear()
                _VERDICTS[cmd] = v
        memo[_verdict] = v
    return v


EXEC_ON = "create,get pods/exec"
# The exec rules run on every exec and rarely fire: each returns its hits as a list, or None, instead
# of being a generator (a generator object and its iteration per rule and event cost more than the rule)


@rule(
    RuleSpec("KS-AUD-N06", "Files copied out of a pod (kubectl cp)", Severity.MEDIUM,
             "An exec ran tar writing an archive to stdout, as kubectl cp from a pod does.", ("T1041",)),
    on=EXEC_ON, stages=STARTED,
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
    on=EXEC_ON, stages=STARTED,
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
    on=EXEC_ON, stages=STARTED,
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
