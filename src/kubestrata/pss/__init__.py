"""Pod Security Standards: Pod Security Admission's decisions and messages, offline, at any version.

Stable public API (the admission webhook and other engines call these; keep signatures stable):

    evaluate_pod(pod, level, version="latest") -> PSSResult
        ``pod``: a Pod (dict or KubeObject), any of the eight controller kinds (its pod template is
        evaluated), a (metadata, spec) pair, or a PodView. ``level``: Level or "privileged"/"baseline"/"restricted";
        ``version``: Version or "latest"/"v1.N" (clamped to the newest known version, v1.37).
        PSSResult: .allowed, .message (PSA's exact denial text, '' when allowed), .warning (the
        "would violate ..." text of warnings and audit annotations), .forbidden_reason,
        .forbidden_detail, .failures [CheckFailure(check, reason, detail)], .violations
        [Violation(check, reason, detail, path, container, fix, fix_note)], .error (an InputError
        when the pod's fields have the wrong types; then allowed is False). Never raises for bad input.

    NamespacePolicy.from_labels(labels, defaults=None) -> NamespacePolicy
        PSA's api.PolicyToEvaluate: .policy (Policy(enforce, audit, warn) of LevelVersion), .errors
        (invalid labels: enforce fails closed to restricted, audit/warn open to privileged, a bad
        version means latest).

    evaluate_object(obj, policy, *, exemptions=None, username=None) -> ObjectResult | None
        A Pod or controller under a NamespacePolicy (or Policy, or one LevelVersion for all modes),
        as admission.go does: .allowed (controllers are always admitted), .pods_allowed, .message,
        .warnings, .audit_annotations, .exempt ("namespace" | "user" | "runtimeClass" | None),
        .error, .enforce (PSSResult), .summary(), .to_dict(). None for kinds without a pod template.

    load_pod_security_configuration(path) -> PodSecurityConfig(defaults: Policy, exemptions)
        A PodSecurityConfiguration file (pod-security.admission.config.k8s.io v1/v1beta1), alone or
        inside an AdmissionConfiguration.

    Level, Version, LevelVersion, Policy, MAX_MINOR, CHECKS (the versioned check table).
"""

from kubestrata.pss.api import (
    LATEST,
    Level,
    LevelVersion,
    NamespacePolicy,
    Policy,
    Version,
    parse_level,
    parse_version,
)
from kubestrata.pss.checks import CHECKS, CheckDef, Variant, Violation
from kubestrata.pss.config import (
    Exemptions,
    PodSecurityConfig,
    load_pod_security_configuration,
    parse_pod_security_configuration,
)
from kubestrata.pss.evaluate import ObjectResult, evaluate_object, evaluate_pod, pod_view
from kubestrata.pss.registry import MAX_MINOR, CheckFailure, PSSResult, checks_for, effective_minor

__all__ = [
    "CHECKS",
    "LATEST",
    "MAX_MINOR",
    "CheckDef",
    "CheckFailure",
    "Exemptions",
    "Level",
    "LevelVersion",
    "NamespacePolicy",
    "ObjectResult",
    "PSSResult",
    "Policy",
    "PodSecurityConfig",
    "Variant",
    "Version",
    "Violation",
    "checks_for",
    "effective_minor",
    "evaluate_object",
    "evaluate_pod",
    "load_pod_security_configuration",
    "parse_level",
    "parse_pod_security_configuration",
    "parse_version",
    "pod_view",
]
