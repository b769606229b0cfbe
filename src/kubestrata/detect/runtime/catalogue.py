"""Runtime rule catalogue (KS-RUN-*): data only; the matching is in rules.py.

Each rule names the Amazon GuardDuty Runtime Monitoring finding type it corresponds to
(docs.aws.amazon.com/guardduty/latest/ug/findings-runtime-monitoring.html; reference notes
runtime-cloudtrail.md §3 and threat-detection.md §1.2) and the Falco rules that raise the same
behaviour (falcosecurity/rules c72713e: rules/falco_rules.yaml = stable, falco-incubating_rules.yaml,
falco-sandbox_rules.yaml). Severities follow GuardDuty's defaults where AWS states them
(ReverseShell, CryptoMinerExecuted, CGroupsReleaseAgentModified High; NewBinaryExecuted,
ContainerMountsHostDirectory, ProcessInjection.Ptrace Medium; PtraceAntiDebugging Low); the others
are ours and docs/detect.md says so.
"""

from __future__ import annotations

from kubestrata.detect.catalogue import RuleSpec
from kubestrata.findings import Severity

H, M, L = Severity.HIGH, Severity.MEDIUM, Severity.LOW


def _r(
    id_: str,
    title: str,
    sev: Severity,
    desc: str,
    mitre: tuple[str, ...],
    gd: tuple[str, ...] = (),
    falco: tuple[str, ...] = (),
) -> RuleSpec:
    return RuleSpec(id_, title, sev, desc, mitre, guardduty=tuple(gd), falco=tuple(falco))


RUNTIME_RULES: list[RuleSpec] = [
    _r("KS-RUN-01", "New binary executed in a container", M,
       "A container ran an executable that is not part of its image: Falco reports it on the overlayfs "
       "upper layer (proc.is_exe_upper_layer), Tetragon saw this container write the file before running "
       "it, or it runs from a writable scratch directory (/tmp, /var/tmp).",
       ("T1105",), gd=("Execution:Runtime/NewBinaryExecuted",),
       falco=("Drop and execute new binary in container", "Container Drift Detected (chmod)",
              "Container Drift Detected (open+create)")),
    _r("KS-RUN-02", "Reverse shell", H,
       "A shell's standard streams go to a network connection: bash/sh with /dev/tcp redirection, nc/ncat "
       "-e/-c, socat exec:, a scripting one-liner wiring a socket to a shell, or a shell process itself "
       "connecting out.",
       ("T1059.004",), gd=("Execution:Runtime/ReverseShell",),
       falco=("Redirect STDOUT/STDIN to Network Connection in Container",
              "Netcat Remote Code Execution in Container", "Reverse Shell from Web Server")),
    _r("KS-RUN-03", "Crypto miner executed", H,
       "A known mining binary (Falco's miner_binaries list) ran, or a process was started with a Stratum "
       "pool URL (stratum+tcp://, stratum+ssl://).",
       ("T1496",), gd=("Impact:Runtime/CryptoMinerExecuted",),
       falco=("Detect crypto miners using the Stratum protocol", "Known Cryptominer Process Executed")),
    _r("KS-RUN-04", "Connection to a mining pool port", H,
       "An outbound connection to a port used almost only by Stratum mining pools (3333-3336, 3357, 14433, "
       "14444, 45560, 45700; a subset of Falco's miner_ports without the generic web ports).",
       ("T1496",), gd=("CryptoCurrency:Runtime/BitcoinTool.B",),
       falco=("Detect outbound connections to common miner pool ports",)),
    _r("KS-RUN-05", "cgroup release_agent written (container escape)", H,
       "A write to a cgroup v1 release_agent file: the notify_on_release container escape runs that "
       "file's command on the host as root.",
       ("T1611",), gd=("PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",),
       falco=("Detect release_agent File Container Escapes",)),
    _r("KS-RUN-06", "Container runtime socket accessed", H,
       "A container connected to (or a command in it named) the Docker, containerd or CRI-O socket: "
       "whoever talks to it can start a privileged container on the node.",
       ("T1611", "T1610"), gd=("PrivilegeEscalation:Runtime/DockerSocketAccessed",),
       falco=()),
    _r("KS-RUN-07", "Host device or directory mounted in a container", M,
       "mount ran in a container with a block device (/dev/sd*, nvme, xvd, vd, dm-, root) or a host path as "
       "source: the node's filesystem becomes readable and writable from the pod.",
       ("T1611",), gd=("PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",),
       falco=("Mount Launched in Privileged Container",)),
    _r("KS-RUN-08", "Host namespaces entered from a container", H,
       "nsenter targeting PID 1 (the host's init when the pod shares the host PID namespace) or chroot into "
       "a mounted host root: the process leaves the container.",
       ("T1611",), falco=("Change thread namespace",)),
    _r("KS-RUN-09", "runc binary overwritten", H,
       "A write to the runc binary or to /proc/self/exe (CVE-2019-5736): the next container start runs "
       "the attacker's code as root on the host.",
       ("T1611",), gd=("PrivilegeEscalation:Runtime/RuncContainerEscape",)),
    _r("KS-RUN-10", "Process injection with ptrace", M,
       "ptrace ATTACH, SEIZE, POKETEXT/POKEDATA or SETREGS on another process.",
       ("T1055.008",), gd=("DefenseEvasion:Runtime/ProcessInjection.Ptrace",),
       falco=("PTRACE attached to process",)),
    _r("KS-RUN-11", "ptrace anti-debugging", L,
       "A process called ptrace(PTRACE_TRACEME) to stop debuggers attaching: common in malware.",
       ("T1622",), gd=("DefenseEvasion:Runtime/PtraceAntiDebugging",),
       falco=("PTRACE anti-debug attempt",)),
    _r("KS-RUN-12", "Process memory written through /proc", H,
       "A write to /proc/<pid>/mem: code injection into another process without ptrace.",
       ("T1055.009",), gd=("DefenseEvasion:Runtime/ProcessInjection.Proc",)),
    _r("KS-RUN-13", "Fileless execution", H,
       "A process ran from memory: a memfd or deleted file (Tetragon binary_properties.file, Falco "
       "proc.is_exe_from_memfd), /proc/self/fd/N, or tmpfs /dev/shm.",
       ("T1620",), gd=("DefenseEvasion:Runtime/FilelessExecution",),
       falco=("Fileless execution via memfd_create", "Execution from /dev/shm")),
    _r("KS-RUN-14", "Sensitive file modified", M,
       "A write to account, sudo, PAM or SSH authorized_keys files, or to /etc/ld.so.preload (high: every "
       "process then loads the named library).",
       ("T1098.004", "T1548.003", "T1574.006"), gd=("Persistence:Runtime/SensitiveFileModified",),
       falco=("Write below etc", "Create Symlink Over Sensitive Files")),
    _r("KS-RUN-15", "Instance metadata or pod credentials endpoint contacted", M,
       "A container contacted the EC2 instance metadata service (169.254.169.254, fd00:ec2::254), the EKS "
       "Pod Identity agent (169.254.170.23, fd00:ec2::23) or the container credentials endpoint "
       "(169.254.170.2): node or pod credentials. GuardDuty's nearest type is the DNS-based "
       "UnauthorizedAccess:Runtime/MetadataDNSRebind.",
       ("T1552.005",),
       falco=("Contact EC2 Instance Metadata Service From Container",
              "Contact cloud metadata service from container")),
    _r("KS-RUN-16", "Kubernetes or cloud client launched in a container", M,
       "kubectl, helm, crictl, docker, aws, gcloud, az or eksctl ran inside a container: an attacker using "
       "the pod's credentials against the cluster or the cloud account.",
       ("T1609", "T1059"),
       falco=("Kubernetes Client Tool Launched in Container",)),
    _r("KS-RUN-17", "Suspicious tool launched in a container", M,
       "A scanner, sniffer, tunnel or container-escape toolkit ran in a container (nmap, masscan, socat, "
       "ncat, tcpdump, chisel, peirates, cdk ...).",
       ("T1046", "T1040"), gd=("Execution:Runtime/SuspiciousTool",),
       falco=("Launch Suspicious Network Tool in Container",)),
]  # fmt: skip

RUNTIME_CATALOGUE: dict[str, RuleSpec] = {r.id: r for r in RUNTIME_RULES}
# Falco rule name -> our rule id: an alert of this rule is that finding even without its fields.
# Broader Falco rules ("Write below etc", "Change thread namespace", "Contact cloud metadata service")
# are references only: their alerts are judged on their fields like any other event.
FALCO_RULE_IDS: dict[str, str] = {
    name: r.id
    for r in RUNTIME_RULES
    for name in r.falco
    if name not in ("Write below etc", "Create Symlink Over Sensitive Files", "Change thread namespace")
}
