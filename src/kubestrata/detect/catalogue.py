"""The rule catalogue: what each detection is, how bad, and what it corresponds to elsewhere.

Ids: KS-AUD-F* Falco k8saudit parity (falcosecurity/plugins plugins/k8saudit/rules/
k8s_audit_rules.yaml), KS-AUD-G* GuardDuty EKS audit-log finding types (reference §1.1),
KS-AUD-N* our own detections for attacks neither covers (Sigma / Elastic / Panther equivalents).
Each record is written beside its rule function in detect/rules/ (one module per family); this
module gathers them, in id order.
"""

from __future__ import annotations

from kubestrata.detect.rules import RULES, RuleSpec
from kubestrata.detect.rules.falco_k8saudit import FALCO_PRIORITY
from kubestrata.detect.rules.guardduty import GD_SOURCE_TECHNIQUE, GD_SOURCES, GD_TACTICS

CATALOGUE: dict[str, RuleSpec] = dict(sorted(RULES.items()))

__all__ = ["CATALOGUE", "FALCO_PRIORITY", "GD_SOURCES", "GD_SOURCE_TECHNIQUE", "GD_TACTICS", "RuleSpec"]
