"""The Pod Security Standards checks, one module per upstream policy/check_*.go file, and CHECKS, the
versioned table (id, level, variants by minimum minor version, override ids) that registry.py
inflates per version exactly as upstream's registry.go does. Each module's docstring quotes the
standard's "Restricted Fields / Allowed Values" for its control.
"""

from __future__ import annotations

from kubestrata.pss.api import Level
from kubestrata.pss.checks.allow_privilege_escalation import (
    allow_privilege_escalation_1_8,
    allow_privilege_escalation_1_25,
)
from kubestrata.pss.checks.apparmor import app_armor_profile_1_0
from kubestrata.pss.checks.base import CheckDef, Rule, Variant, Violation, go_quote, set_patch
from kubestrata.pss.checks.capabilities_baseline import CAPABILITIES_ALLOWED_1_0, capabilities_baseline_1_0
from kubestrata.pss.checks.capabilities_restricted import (
    capabilities_restricted_1_22,
    capabilities_restricted_1_25,
)
from kubestrata.pss.checks.host_namespaces import host_namespaces_1_0
from kubestrata.pss.checks.host_ports import host_ports_1_0
from kubestrata.pss.checks.host_probes_and_lifecycle import host_probes_and_host_lifecycle_1_34
from kubestrata.pss.checks.hostpath_volumes import host_path_volumes_1_0
from kubestrata.pss.checks.privileged import privileged_1_0
from kubestrata.pss.checks.proc_mount import proc_mount_1_0, proc_mount_1_35, proc_mount_restricted_1_35
from kubestrata.pss.checks.restricted_volumes import restricted_volumes_1_0
from kubestrata.pss.checks.run_as_non_root import run_as_non_root_1_0, run_as_non_root_1_35
from kubestrata.pss.checks.run_as_user import run_as_user_1_23, run_as_user_1_35
from kubestrata.pss.checks.seccomp_baseline import seccomp_profile_baseline_1_0, seccomp_profile_baseline_1_19
from kubestrata.pss.checks.seccomp_restricted import (
    seccomp_profile_restricted_1_19,
    seccomp_profile_restricted_1_25,
)
from kubestrata.pss.checks.selinux import se_linux_options_1_0, se_linux_options_1_31
from kubestrata.pss.checks.sysctls import sysctls_1_0, sysctls_1_27, sysctls_1_29, sysctls_1_32, sysctls_1_37
from kubestrata.pss.checks.windows_host_process import windows_host_process_1_0

__all__ = [
    "CAPABILITIES_ALLOWED_1_0",
    "CHECKS",
    "CheckDef",
    "Rule",
    "Variant",
    "Violation",
    "go_quote",
    "set_patch",
]

B, R, V = Level.BASELINE, Level.RESTRICTED, Variant

# fmt: off
CHECKS: tuple[CheckDef, ...] = (
    CheckDef("appArmorProfile", B, (V(0, app_armor_profile_1_0),)),
    CheckDef("capabilities_baseline", B, (V(0, capabilities_baseline_1_0),)),
    CheckDef("hostNamespaces", B, (V(0, host_namespaces_1_0),)),
    CheckDef("hostPathVolumes", B, (V(0, host_path_volumes_1_0),)),
    CheckDef("hostPorts", B, (V(0, host_ports_1_0),)),
    CheckDef("hostProbesAndHostLifecycle", B, (V(34, host_probes_and_host_lifecycle_1_34),)),
    CheckDef("privileged", B, (V(0, privileged_1_0),)),
    CheckDef("procMount", B, (V(0, proc_mount_1_0), V(35, proc_mount_1_35))),
    CheckDef("seLinuxOptions", B, (V(0, se_linux_options_1_0), V(31, se_linux_options_1_31))),
    CheckDef("seccompProfile_baseline", B, (V(0, seccomp_profile_baseline_1_0), V(19, seccomp_profile_baseline_1_19))),
    CheckDef("sysctls", B, (V(0, sysctls_1_0), V(27, sysctls_1_27), V(29, sysctls_1_29), V(32, sysctls_1_32),
                            V(37, sysctls_1_37))),
    CheckDef("windowsHostProcess", B, (V(0, windows_host_process_1_0),)),
    CheckDef("allowPrivilegeEscalation", R, (V(8, allow_privilege_escalation_1_8),
                                             V(25, allow_privilege_escalation_1_25))),
    CheckDef("capabilities_restricted", R, (V(22, capabilities_restricted_1_22, ("capabilities_baseline",)),
                                            V(25, capabilities_restricted_1_25, ("capabilities_baseline",)))),
    CheckDef("procMount_restricted", R, (V(35, proc_mount_restricted_1_35, ("procMount",)),)),
    CheckDef("restrictedVolumes", R, (V(0, restricted_volumes_1_0, ("hostPathVolumes",)),)),
    CheckDef("runAsNonRoot", R, (V(0, run_as_non_root_1_0), V(35, run_as_non_root_1_35))),
    CheckDef("runAsUser", R, (V(23, run_as_user_1_23), V(35, run_as_user_1_35))),
    CheckDef("seccompProfile_restricted", R, (V(19, seccomp_profile_restricted_1_19, ("seccompProfile_baseline",)),
                                              V(25, seccomp_profile_restricted_1_25, ("seccompProfile_baseline",)))),
)
# fmt: on
