"""Event facts a rule may declare as its precondition, beside its dispatch key.

``rule(..., on="* *", when=Fact.ANONYMOUS | Fact.PUBLIC_SOURCE)`` says: this rule raises nothing
on an event that has none of these facts. Rules registered for every verb and resource would
otherwise run on every event, and on a real audit log nearly every event is a read by a
control-plane identity from a private address, which none of them can match; the pipeline
dispatches on the event's facts too, so such an event meets no rule function at all.

A declaration is a claim about the rule's own condition; tests/detect/test_prefilter.py runs every
rule over generated events lacking the facts it declares and fails if one fires.
"""

from __future__ import annotations

from enum import IntFlag

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.helpers import is_public


class Fact(IntFlag):
    ANONYMOUS = 1  # the user is system:anonymous
    NON_SYSTEM_USER = 2  # the user does not start with "system:" (Falco's non_system_user)
    PUBLIC_SOURCE = 4  # a sourceIPs entry is a public address (helpers.is_public; cloud ranges included)
    IP_LISTS = 8  # threat-intel or Tor IP lists are loaded (GuardDuty's IP sources can match)


_ANONYMOUS = int(Fact.ANONYMOUS)  # plain ints: IntFlag arithmetic is slow on the hot path
_NON_SYSTEM_USER = int(Fact.NON_SYSTEM_USER)
_PUBLIC_SOURCE = int(Fact.PUBLIC_SOURCE)
_IP_LISTS = int(Fact.IP_LISTS)


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
    return facts
