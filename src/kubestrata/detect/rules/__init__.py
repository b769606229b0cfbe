"""Audit rules, one module per family; importing the package registers every rule.

Each rule function is registered (``registry.rule``) with the records (``RuleSpec``: title,
severity, description, MITRE, GuardDuty, Falco, Sigma and Elastic references) of the ids it
raises, beside the function, and a dispatch key, so an event only meets the functions that can
match it. Falco's lists are data (detect/data/falco_k8saudit_lists.yaml); every rule id has a
firing example and a near miss (detect/rules/examples.py, tests/detect/test_rule_examples.py).

Families, in registration order (an event's findings come in this order):
``falco_k8saudit``, ``falco_activity`` (KS-AUD-F*), ``guardduty`` (G01-G29), ``anomaly`` (G40-G47, first-seen),
``native_objects``, ``native_exec``, ``native_workloads``, ``native_access`` (KS-AUD-N*).
"""

from importlib import import_module

from kubestrata.detect.rules.guardduty import tactic_of
from kubestrata.detect.rules.helpers import parse_ip
from kubestrata.detect.rules.lists import ALLOWED_K8S_USERS
from kubestrata.detect.rules.registry import (
    DETECTORS,
    RULE_ERRORS,
    RULES,
    Detector,
    Hit,
    RuleContext,
    RuleSpec,
    dispatch_of,
    safe_call,
)

FAMILIES = (  # registration order: an event's findings come in this order
    "falco_k8saudit",
    "falco_activity",
    "guardduty",
    "anomaly",
    "native_objects",
    "native_exec",
    "native_workloads",
    "native_access",
)
for _family in FAMILIES:
    import_module(f"kubestrata.detect.rules.{_family}")
# families import helpers from each other, so import order is not registration order: sort (stable)
DETECTORS.sort(key=lambda d: FAMILIES.index(d.fn.__module__.rsplit(".", 1)[1]))

__all__ = [
    "ALLOWED_K8S_USERS",
    "DETECTORS",
    "RULES",
    "RULE_ERRORS",
    "Detector",
    "Hit",
    "RuleContext",
    "RuleSpec",
    "dispatch_of",
    "parse_ip",
    "safe_call",
    "tactic_of",
]
