"""The rule registry: each rule function is registered with the catalogue records of the ids it
raises (passed explicitly to ``rule``, beside the function) and a dispatch key (verbs, resource,
subresource, stages), so that an event only meets the functions that can match it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from kubestrata.detect.event import RESPONSE_COMPLETE, RESPONSE_STARTED, AuditEvent
from kubestrata.errors import InputError
from kubestrata.findings import Severity

if TYPE_CHECKING:
    from kubestrata.detect.objects import ObjectMemory
    from kubestrata.detect.pipeline import DetectConfig, IPLists
    from kubestrata.detect.rules.facts import Fact
    from kubestrata.detect.state import FirstSeen

COMPLETE = frozenset({RESPONSE_COMPLETE})
STARTED = frozenset({RESPONSE_STARTED})

SIGMA = "SigmaHQ/sigma:rules/application/kubernetes/audit/"
ELASTIC = "elastic/detection-rules:rules/integrations/kubernetes/"


@dataclass(frozen=True)
class RuleSpec:
    """What a rule id is, how bad, and what it corresponds to elsewhere."""

    id: str
    title: str
    severity: Severity
    description: str
    mitre: tuple[str, ...] = ()
    guardduty: tuple[str, ...] = ()
    falco: tuple[str, ...] = ()  # current name first, then names used by older rule files
    sigma: tuple[str, ...] = ()
    elastic: tuple[str, ...] = ()
    enabled: bool = True  # False: silent until configured (as Falco ships it)
    extra: dict[str, str] = field(default_factory=dict)

    def references(self) -> dict[str, list[str]]:
        refs = {
            "mitre": list(self.mitre),
            "guardduty": list(self.guardduty),
            "falco": list(self.falco),
            "sigma": list(self.sigma),
            "elastic": list(self.elastic),
        }
        return {k: v for k, v in refs.items() if v}


class RuleContext(Protocol):
    """What a rule may ask of the engine running it (kubestrata.detect.pipeline.Pipeline)."""

    config: DetectConfig
    ip_lists: IPLists
    learning: bool  # record first-seen state, raise no anomaly findings
    objects: ObjectMemory  # the last state of objects seen in this stream

    def first_seen(self, dimension: str, key: str) -> bool: ...

    # what first_seen asks about the keys of the request's own user (every engine's, the fleet
    # worker's too: detect/worker.py), for rules/anomaly.py's memo of groups of known keys
    @property
    def first_seen_state(self) -> FirstSeen: ...

    def count(self, rule_id: str, key: str, ev: AuditEvent, distinct: str = "") -> int | None: ...

    def rule_error(self, name: str, ev: AuditEvent, err: Exception) -> None: ...


@dataclass(slots=True)
class Hit:
    rule_id: str
    message: str
    evidence: list[tuple[str, Any]]
    severity: Severity | None = None


RuleFn = Callable[[AuditEvent, RuleContext], Iterable[Hit] | None]


@dataclass(frozen=True, slots=True)
class Detector:
    name: str
    ids: tuple[str, ...]
    verbs: frozenset[str] | None  # None = any
    resources: frozenset[str] | None
    subresources: frozenset[str] | None  # frozenset({""}) = no subresource; None = any
    stages: frozenset[str] | None  # None = every stage
    fn: RuleFn
    when: int | None = None  # a Fact mask: the rule raises nothing on an event with none of them

    def applies(self, facts: int) -> bool:
        """Whether the rule can fire on an event with these facts (rules.facts.event_facts)."""
        return self.when is None or bool(self.when & facts)

    def accepts(self, stage: str, verb: str, resource: str, subresource: str) -> bool:
        return (
            (self.stages is None or not stage or stage in self.stages)
            and (self.verbs is None or verb in self.verbs)
            and (self.resources is None or resource in self.resources)
            and (self.subresources is None or subresource in self.subresources)
        )


DETECTORS: list[Detector] = []  # in registration order: an event's findings come in this order
RULES: dict[str, RuleSpec] = {}  # every registered rule id's record


def _set(spec: str) -> frozenset[str] | None:
    return None if spec == "*" else frozenset(spec.split(","))


def rule(
    *specs: RuleSpec | str,
    on: str = "* *",
    stages: frozenset[str] | None = COMPLETE,
    when: Fact | None = None,
) -> Callable[[RuleFn], RuleFn]:
    """Register fn for the rule ids it raises: each id's record (a RuleSpec) where the id is
    defined, or the id alone when another function defined it already. ``on`` is
    "verbs resource[/subresource]" with commas for alternatives and * for any, e.g.
    "create,get pods/exec,attach"; a resource without "/" matches only requests without a
    subresource, "pods/*" any subresource. ``when``: event facts (rules.facts.Fact) of which an
    event must have one for fn to raise anything; the pipeline does not call fn on other events."""
    ids: list[str] = []
    for s in specs:
        if isinstance(s, RuleSpec):
            if s.id in RULES:
                raise ValueError(f"{s.id}: registered twice")
            RULES[s.id] = s
            ids.append(s.id)
        elif s in RULES:
            ids.append(s)
        else:
            raise ValueError(f"{s}: no record; pass its RuleSpec where the rule is defined")

    def deco(fn: RuleFn) -> RuleFn:
        verbs, target = on.split(" ", 1)
        res, slash, sub = target.partition("/")
        subs: frozenset[str] | None
        if res == "*" and not sub:
            subs = None
        elif not slash:
            subs = frozenset({""})
        else:
            subs = _set(sub)
        if when is not None and subs != frozenset({"exec"}):
            from kubestrata.detect.rules.facts import EXEC_ONLY  # (facts imports this module)

            if when & EXEC_ONLY:
                raise ValueError(f"{fn.__name__}: exec facts are computed for an exec subresource only")
        DETECTORS.append(
            Detector(fn.__name__, tuple(ids), _set(verbs), _set(res), subs, stages, fn,
                     None if when is None else int(when))
        )  # fmt: skip
        return fn

    return deco


def dispatch_of(rule_id: str) -> dict[str, Any]:
    """The dispatch key of a catalogue rule: verbs, resources, subresources and stages it can
    match (None = any; "" in subresources = requests without one), over every detector that can
    raise it."""
    ds = [d for d in DETECTORS if rule_id in d.ids]
    if not ds:
        raise KeyError(rule_id)

    def union(field: str) -> list[str] | None:
        values = [getattr(d, field) for d in ds]
        return None if any(v is None for v in values) else sorted(set().union(*values))

    return {
        "verbs": union("verbs"),
        "resources": union("resources"),
        "subresources": union("subresources"),
        "stages": union("stages"),
        "function": ", ".join(d.name for d in ds),
    }


def hit(rule_id: str, message: str, *evidence: tuple[str, Any], severity: Severity | None = None) -> Hit:
    return Hit(rule_id, message, list(evidence), severity)


# what a rule raises on a malformed request object: the event's fault, not the engine's
RULE_ERRORS = (InputError, AttributeError, TypeError, ValueError, KeyError)


def safe_call(d: Detector, ev: AuditEvent, ctx: RuleContext) -> list[Hit]:
    """Run one detector; a malformed request object is the event's fault, not the engine's."""
    try:
        return list(d.fn(ev, ctx) or ())
    except RULE_ERRORS as e:
        ctx.rule_error(d.name, ev, e)
        return []
