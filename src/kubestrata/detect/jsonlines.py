"""A detect finding's JSON line (docs/json-schema.md, "detect"), written from precomputed parts.

``orjson.dumps(finding.to_dict())`` builds a 23-key dict per finding, most of whose values are the
same for every finding of a rule (title, severity, references) or of an event (the event's escaped
fields). Here those parts are serialised once (a rule's once per run, an event's once per event)
and a finding adds only its message, time, evidence and fingerprint. The bytes are exactly those of
``orjson.dumps(finding.to_dict())`` (tests/detect/test_finding_fast_path.py); values were escaped
when the finding was built, so nothing is escaped here.
"""

from __future__ import annotations

import orjson

from kubestrata.findings import EventRef, Finding, Severity

_dumps = orjson.dumps
_RULES_MAX = 4096
# (rule id, title, Severity) -> b'{"ruleId":...,"title":...,"severity":...,"message":'
_heads: dict[tuple[str, str, Severity], bytes] = {}
# rule id -> (title, Severity, references, head, tail) of its last finding: a finding of the same
# title, member and references dict (the factory's, which are its rule's) finds both without hashing
# a key (a member's hash is a Python call, Enum.__hash__) or looking its references' id up
_rules: dict[str, tuple[str, Severity, dict[str, list[str]], bytes, bytes]] = {}
# id(references) -> (references, b',"references":{...},"fingerprint":'): one dict per rule, shared by
# its findings (FindingFactory); held here so its id is not reused while it is cached
_tails: dict[int, tuple[dict[str, list[str]], bytes]] = {}
# the last (event, time) and its part: b',"time":...,"cluster":...,"responseCode":...,"evidence":'
_last_event: list[tuple[EventRef | None, str | None, bytes]] = [(None, None, b"")]


def json_line(f: Finding) -> bytes:
    """``orjson.dumps(f.to_dict())`` (without the newline)."""
    e = f.event
    if e is None or e.source != "k8saudit":
        return _dumps(f.to_dict())
    rule_id, title, severity, refs = f.rule_id, f.title, f.severity, f.references
    rule = _rules.get(rule_id)
    if rule is not None and rule[0] is title and rule[1] is severity and rule[2] is refs:
        head, tail = rule[3], rule[4]
    else:
        key = (rule_id, title, severity)  # (the member: its .value is an enum property lookup)
        known = _heads.get(key)
        if known is not None:
            head = known
        else:
            if len(_heads) >= _RULES_MAX:
                _heads.clear()
            head = _heads[key] = _dumps(
                {"ruleId": rule_id, "title": title, "severity": severity.value, "message": None}
            )[:-5]  # '...,"message":null}' without 'null}'
        known_tail = _tails.get(id(refs))
        if known_tail is None or known_tail[0] is not refs:
            if len(_tails) >= _RULES_MAX:
                _tails.clear()
            known_tail = _tails[id(refs)] = (
                refs,
                b"," + _dumps({"references": refs, "fingerprint": None})[1:-5],
            )
        tail = known_tail[1]
        if len(_rules) >= _RULES_MAX:
            _rules.clear()
        _rules[rule_id] = (title, severity, refs, head, tail)
    part = e._line_part  # (time, part) when the finding's builder wrote it (detect/factory.py)
    if part is not None and part[0] == f.time:
        middle = part[1]
    elif (last := _last_event[0])[0] is e and last[1] == f.time:
        middle = last[2]
    else:
        middle = b',"time":' + _dumps(f.time) + _event_part(e)
        _last_event[0] = (e, f.time, middle)
    evidence = f.evidence_json
    if evidence is None:
        evidence = _dumps([{"path": x.path, "value": x.observed} for x in f.evidence])
    fp = f._fingerprint  # (what the property returns when set; the property is a Python call)
    if fp is None:
        fp = f.fingerprint
    return b"".join((head, _dumps(f.message), middle, evidence, tail, _dumps(fp), b"}"))


def _event_part(e: EventRef) -> bytes:
    """b',"cluster":...,"responseCode":...,"evidence":' of Finding._event_record."""
    fields = e.record_fields()  # a new dict: the evidence key is added in place, not by a copy
    fields["evidence"] = None
    return b"," + _dumps(fields)[1:-5]
