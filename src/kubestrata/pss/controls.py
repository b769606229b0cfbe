"""The Pod Security Standards' control names (as https://kubernetes.io/docs/concepts/security/
pod-security-standards/ titles them) next to the Pod Security Admission check ids that implement them,
so that findings, exclusions and reports can say "Capabilities" as well as ``capabilities_baseline``."""

from __future__ import annotations

CONTROL_NAMES: dict[str, str] = {
    # baseline
    "windowsHostProcess": "HostProcess",
    "hostNamespaces": "Host Namespaces",
    "privileged": "Privileged Containers",
    "capabilities_baseline": "Capabilities",
    "hostPathVolumes": "HostPath Volumes",
    "hostPorts": "Host Ports",
    "hostProbesAndHostLifecycle": "Host Probes / Lifecycle Hooks",
    "appArmorProfile": "AppArmor",
    "seLinuxOptions": "SELinux",
    "procMount": "/proc Mount Type",
    "seccompProfile_baseline": "Seccomp",
    "sysctls": "Sysctls",
    # restricted
    "restrictedVolumes": "Volume Types",
    "allowPrivilegeEscalation": "Privilege Escalation",
    "runAsNonRoot": "Running as Non-root",
    "runAsUser": "Running as Non-root user",
    "seccompProfile_restricted": "Seccomp",
    "capabilities_restricted": "Capabilities",
    "procMount_restricted": "/proc Mount Type",
}


def control_name(check_id: str) -> str:
    """The PSS control a PSA check id implements ("Capabilities" for capabilities_baseline)."""
    return CONTROL_NAMES.get(check_id, check_id)


def check_ids(name_or_id: str) -> set[str]:
    """Every PSA check id a control name (case-insensitive) or a check id stands for."""
    if name_or_id in CONTROL_NAMES:
        return {name_or_id}
    want = name_or_id.strip().lower()
    return {cid for cid, n in CONTROL_NAMES.items() if n.lower() == want}
