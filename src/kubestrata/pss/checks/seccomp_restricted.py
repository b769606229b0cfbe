"""Seccomp (restricted, check ``seccompProfile_restricted`` from v1.19, upstream
check_seccompProfile_restricted.go; overrides ``seccompProfile_baseline``).

Seccomp profile must be explicitly set to one of the allowed values. Both the Unconfined profile and
the absence of a profile are prohibited. From v1.25 pods with spec.os.name=windows are exempt.

Restricted Fields: spec.securityContext.seccompProfile.type,
spec.containers[*].securityContext.seccompProfile.type,
spec.initContainers[*].securityContext.seccompProfile.type,
spec.ephemeralContainers[*].securityContext.seccompProfile.type
Allowed Values: RuntimeDefault, Localhost
Container fields may be undefined/nil if the pod-level field is set appropriately. Conversely, the
pod-level field may be undefined/nil if all container-level fields are set (an invalid pod-level
value does not count as set).
"""

from __future__ import annotations

from kubestrata.pss.checks.base import windows_exempt
from kubestrata.pss.checks.seccomp_baseline import SeccompProfiles

seccomp_profile_restricted_1_19 = SeccompProfiles("seccompProfile_restricted", required=True)
seccomp_profile_restricted_1_25 = windows_exempt(seccomp_profile_restricted_1_19)
