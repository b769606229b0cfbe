"""Why a verdict is what it is (a mixin of engine.Network's last layer): one direction for one peer column,
walked tier by tier and rule by rule, as Reasons. Independent of the atoms the reachability path
builds, so each checks the other (tests/netpol)."""

from __future__ import annotations

from dataclasses import dataclass

from kubestrata.netpol.model import (
    ALLOW,
    DENY,
    INGRESS,
    PASS,
    TIER_ADMIN,
    TIER_BASELINE,
    TIER_NP,
    ParsedPolicy,
    ParsedRule,
    resolve_ports,
)
from kubestrata.netpol.reachability import Reachability
from kubestrata.netpol.sets import ALL, NONE, PortSet


@dataclass(frozen=True)
class Reason:
    """One step of a verdict: which tier and policy decided which ports, and how."""

    direction: str
    tier: str
    policy: str
    rule: str
    verdict: str  # allow / deny / pass / isolate / default
    ports: PortSet
    text: str


@dataclass
class PortVerdict:
    """The ports one direction allows toward one peer, and the steps that decided it."""

    allowed: PortSet
    reasons: list[Reason]


class Explanation(Reachability):
    """The explain path over the compiled network."""

    # --- explanation -----------------------------------------------------------------------------
    def verdict(self, c: int, direction: str, col: int) -> PortVerdict:
        """One direction for one peer column, step by step (the explain path; independent of atoms)."""
        bit = 1 << col
        sel = self.selecting[c]
        reasons: list[Reason] = []
        decided, allow, deny = self._explain_tier(TIER_ADMIN, sel, c, direction, col, bit, reasons)
        nps = [p for p in sel if p.tier == TIER_NP and p.affects(direction)]
        if nps:
            np_allowed = NONE
            for p in nps:
                hit = False
                for rule in p.rules(direction):
                    ports = self._ports_for(rule, c, direction, col, bit)
                    if ports is None:
                        continue
                    hit = True
                    if ports.empty:
                        reasons.append(
                            Reason(
                                direction,
                                TIER_NP,
                                p.display,
                                _rule_label(rule),
                                "none",
                                ports,
                                f"{p.display} {_rule_label(rule)} selects the peer, but its named "
                                "ports have no match on the destination pod",
                            )
                        )
                        continue
                    np_allowed = np_allowed | ports
                    reasons.append(
                        Reason(
                            direction,
                            TIER_NP,
                            p.display,
                            _rule_label(rule),
                            ALLOW,
                            ports,
                            f"{p.display} allows {ports} by {_rule_label(rule)}",
                        )
                    )
                if not hit:
                    why = " (no rules defined)" if not p.rules(direction) else ""
                    reasons.append(
                        Reason(
                            direction,
                            TIER_NP,
                            p.display,
                            "",
                            "isolate",
                            NONE,
                            f"{p.display} selects the pod, but the peer is not allowed by any "
                            f"{direction.capitalize()} rule{why}",
                        )
                    )
            final = allow | (np_allowed - deny)
        else:
            strict = self.options.aws_strict and self._selectable(self.classes[c])
            bdecided, ballow, bdeny = self._explain_tier(TIER_BASELINE, sel, c, direction, col, bit, reasons)
            rest = ballow if strict else ALL - bdeny
            final = allow | (rest - deny)
            undecided = ALL - decided - bdecided
            if not undecided.empty:
                if strict:
                    txt = "no NetworkPolicy selects the pod: AWS strict mode default (deny all)"
                else:
                    txt = "no NetworkPolicy selects the pod: system default (allow all)"
                reasons.append(
                    Reason(direction, "default", "", "", "deny" if strict else ALLOW, undecided, txt)
                )
        if self._sg_active(c):
            sg_allowed = NONE
            for gid, m, ports in self._sg_rules(c, direction):
                if m & bit:
                    sg_allowed = sg_allowed | ports
                    reasons.append(
                        Reason(
                            direction, "aws-sg", gid, "", ALLOW, ports, f"security group {gid} allows {ports}"
                        )
                    )
            if sg_allowed.empty:
                groups = ", ".join(self.classes[c].groups)
                reasons.append(
                    Reason(
                        direction,
                        "aws-sg",
                        groups,
                        "",
                        "deny",
                        NONE,
                        f"no {direction} rule of security groups {groups} matches the peer",
                    )
                )
            final = final & sg_allowed
        return PortVerdict(final, reasons)

    def _explain_tier(
        self,
        tier: str,
        sel: list[ParsedPolicy],
        c: int,
        direction: str,
        col: int,
        bit: int,
        reasons: list[Reason],
    ) -> tuple[PortSet, PortSet, PortSet]:
        """The (admin or baseline) tier's first-match walk for one peer column: the ports it decides,
        allows and denies, with a Reason per rule that decides something."""
        decided = allow = deny = NONE
        for p in (p for p in sel if p.tier == tier):
            for rule in p.rules(direction):
                ports = self._ports_for(rule, c, direction, col, bit)
                if ports is None:
                    continue
                newly = ports - decided
                if newly.empty:
                    continue
                decided = decided | newly
                if rule.action == ALLOW:
                    allow = allow | newly
                elif rule.action == DENY:
                    deny = deny | newly
                reasons.append(
                    Reason(
                        direction,
                        tier,
                        p.display,
                        _rule_label(rule),
                        rule.action,
                        newly,
                        f"{p.display} {_verb(rule.action)} {newly} by {_rule_label(rule)}",
                    )
                )
        return decided, allow, deny

    def _ports_for(self, rule: ParsedRule, c: int, direction: str, col: int, bit: int) -> PortSet | None:
        if not (self.rule_mask(rule) & bit):
            return None
        if rule.ports is None:
            return ALL
        dst_ports = (
            self.classes[c].ports
            if direction == INGRESS
            else (self.classes[col].ports if col < self.nclasses else ())
        )
        return resolve_ports(rule.ports, dst_ports)


def _verb(action: str) -> str:
    return {ALLOW: "allows", DENY: "denies", PASS: "passes"}.get(action, action)


def _rule_label(rule: ParsedRule) -> str:
    nm = f" '{rule.name}'" if rule.name else ""
    return f"{rule.direction.capitalize()} rule #{rule.index}{nm}"
