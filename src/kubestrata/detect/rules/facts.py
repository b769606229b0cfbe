"""Event facts a rule may declare as its precondition, beside its dispatch key.

``rule(..., on="* *", when=Fact.ANONYMOUS | Fact.PUBLIC_SOURCE)`` says: this rule raises nothing
on an event that has none of these facts. Rules registered for every verb and resource would
otherwise run on every event, and on a real audit log nearly every event is a read by a
control-plane identity from a private address, which none of them can match; the pipeline
dispatches on the event's facts too, so such an event meets no rule function at all.

The exec facts say what the exec rules look for in the command (rules.exec_commands, judged once
per distinct command) and whether the pod is in kube-system: every exec meets six rule functions, of
which the usual one (``sh -c ...`` into an application pod) can fire only two. They are computed
for requests to an ``exec`` subresource only (so that no other request pays for them, nor splits
the pipeline's dispatch keys), and only a rule registered for that subresource alone may declare
them (registry.rule refuses the others).

A declaration is a claim about the rule's own condition; tests/detect/test_prefilter.py runs every
rule over generated events lacking the facts it declares and fails if one fires.
"""

from __future__ import annotations

from enum import IntFlag

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.exec_commands import _REMEMBERED_MAX, _REMEMBERED_TEXT_MAX, _judge
from kubestrata.detect.rules.helpers import is_public
from kubestrata.detect.rules.registry import RULE_ERRORS


class Fact(IntFlag):
    ANONYMOUS = 1  # the user is system:anonymous
    NON_SYSTEM_USER = 2  # the user does not start with "system:" (Falco's non_system_user)
    PUBLIC_SOURCE = 4  # a sourceIPs entry is a public address (helpers.is_public; cloud ranges included)
    IP_LISTS = 8  # threat-intel or Tor IP lists are loaded (GuardDuty's IP sources can match)
    # of a request to an exec subresource only (below; on other requests they are never set):
    EXEC_IN_KUBE_SYSTEM = 16  # objectRef.namespace is kube-system
    # ... and of its command (AuditEvent.exec_command):
    EXEC_TAR_TO_STDOUT = 32  # a tar writing an archive to stdout (kubectl cp from a pod)
    EXEC_TOKEN_READ = 64  # names a projected token's path or variable (lists.SA_TOKEN)
    EXEC_SUSPICIOUS = 128  # a reverse shell, download-and-run, metadata-service query or host credentials


EXEC_FACTS = int(Fact.EXEC_TAR_TO_STDOUT | Fact.EXEC_TOKEN_READ | Fact.EXEC_SUSPICIOUS)  # of the command
# (registry.rule: only a rule of the exec subresource alone may declare these)
EXEC_ONLY = EXEC_FACTS | int(Fact.EXEC_IN_KUBE_SYSTEM)


_ANONYMOUS = int(Fact.ANONYMOUS)  # plain ints: IntFlag arithmetic is slow on the hot path
_NON_SYSTEM_USER = int(Fact.NON_SYSTEM_USER)
_PUBLIC_SOURCE = int(Fact.PUBLIC_SOURCE)
_IP_LISTS = int(Fact.IP_LISTS)
_EXEC_IN_KUBE_SYSTEM = int(Fact.EXEC_IN_KUBE_SYSTEM)
_EXEC_TAR_TO_STDOUT = int(Fact.EXEC_TAR_TO_STDOUT)
_EXEC_TOKEN_READ = int(Fact.EXEC_TOKEN_READ)
_EXEC_SUSPICIOUS = int(Fact.EXEC_SUSPICIOUS)


def event_facts(ev: AuditEvent, ip_lists_loaded: bool) -> int:
    """The facts (a Fact mask, as an int) the event has."""
    user = ev.user
    if user.startswith("system:"):
        facts = _ANONYMOUS if user == "system:anonymous" else 0
    else:
        facts = _NON_SYSTEM_USER
    for ip in ev.source_ips:
        if is_public(ip):  # (remembered per address: rules.helpers)
            facts |= _PUBLIC_SOURCE
            break
    if ip_lists_loaded:
        facts |= _IP_LISTS
    if ev.subresource == "exec":
        facts |= exec_facts(ev)
        if ev.namespace == "kube-system":
            facts |= _EXEC_IN_KUBE_SYSTEM
    return facts


def exec_facts(ev: AuditEvent) -> int:
    """The exec facts of the event's command (whatever its subresource)."""
    try:
        cmd = tuple(ev.exec_command())
    except RULE_ERRORS:
        # an exec_command that raises (a URI urlsplit refuses): every exec rule runs and meets the
        # error, as it did without the facts
        return EXEC_FACTS
    facts = _COMMAND_FACTS.get(cmd)
    if facts is None:
        v = _judge(cmd)
        facts = _EXEC_TAR_TO_STDOUT if v.tar_to_stdout else 0
        if v.token_read:
            facts |= _EXEC_TOKEN_READ
        if v.suspicious:
            facts |= _EXEC_SUSPICIOUS
        if len(" ".join(cmd)) < _REMEMBERED_TEXT_MAX:  # (bounded as exec_commands._VERDICTS)
            if len(_COMMAND_FACTS) >= _REMEMBERED_MAX:
                _COMMAND_FACTS.clear()
            _COMMAND_FACTS[cmd] = facts
    return facts


# the exec facts of each command seen (the verdict itself is computed again, by the rules that then
# run: rarely, as the usual command has none of these facts)
_COMMAND_FACTS: dict[tuple[str, ...], int] = {}
