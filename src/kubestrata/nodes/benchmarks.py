"""The CIS Amazon EKS Benchmark worker-node section (3) for every version kube-bench ships, as data in
kube-bench's check model, and kube-bench's choice of version from the Kubernetes version.

Written from kube-bench's cfg/eks-{1.0.1,1.1.0,1.2.0,1.5.0,1.7.0,1.8.0}/node.yaml (aquasecurity/kube-bench,
2026-06): the same ids, titles, audit sources, tests and scoring, so a result here means what kube-bench's
result means. The differences between versions are spelled out below. Audit commands keep kube-bench's
text (with its variables) so the kube-bench JSON shows the command an operator would run; kubestrata's
native auditor reads the same data itself (``BenchCheck.native``).
"""

from __future__ import annotations

import re

from kubestrata.nodes.kbformat.model import BenchCheck, Controls, Group, TestItem, Tests

VERSIONS = ("eks-1.0.1", "eks-1.1.0", "eks-1.2.0", "eks-1.5.0", "eks-1.7.0", "eks-1.8.0")

PS = "/bin/ps -fC $kubeletbin"
CAT = "/bin/cat $kubeletconf"


def eks_benchmark(kube_version: str) -> str:
    """kube-bench cmd/util.go eksBenchmark: the benchmark for a Kubernetes ``major.minor``."""
    m = re.match(r"^v?(\d+)\.(\d+)", kube_version.strip())
    mm = f"{m.group(1)}.{m.group(2)}" if m else ""
    if mm in ("1.15", "1.16", "1.17", "1.18", "1.19"):
        return "eks-1.0.1"
    if mm in ("1.29", "1.30", "1.31"):
        return "eks-1.7.0"
    if mm in ("1.32", "1.33", "1.34"):
        return "eks-1.8.0"
    return "eks-1.5.0"


def _file_checks(scored: bool) -> list[BenchCheck]:
    tag = "(Automated)" if scored else "(Manual)"
    out = []
    for n, var, what, owner_text in (
        (1, "kubeletkubeconfig", "kubeconfig", "the kubelet kubeconfig file"),
        (3, "kubeletconf", "config", "the kubelet configuration file"),
    ):
        perms_text = (
            f"Ensure that the kubeconfig file permissions are set to 644 or more restrictive {tag}"
            if what == "kubeconfig"
            else f"Ensure that the kubelet configuration file has permissions set to 644 or more restrictive {tag}"
        )
        out.append(
            BenchCheck(
                id=f"3.1.{n}",
                text=perms_text,
                audit=f"/bin/sh -c 'if test -e ${var}; then stat -c permissions=%a ${var}; fi' ",
                tests=Tests([TestItem(flag="permissions", op="bitmask", value="644")]),
                remediation=f"chmod 644 ${var} (or more restrictive) on each worker node.",
                scored=scored,
                native={"audit": f"perms:{what}"},
            )
        )
        out.append(
            BenchCheck(
                id=f"3.1.{n + 1}",
                text=f"Ensure that {owner_text} ownership is set to root:root {tag}",
                audit=f"/bin/sh -c 'if test -e ${var}; then stat -c %U:%G ${var}; fi' ",
                tests=Tests([TestItem(flag="root:root")]),
                remediation=f"chown root:root ${var} on each worker node.",
                scored=scored,
                native={"audit": f"owner:{what}"},
            )
        )
    return out


def _kubelet(
    cid: str,
    text: str,
    items: list[TestItem],
    scored: bool,
    remediation: str,
    bin_op: str = "",
    config: bool = True,
) -> BenchCheck:
    return BenchCheck(
        id=cid,
        text=text,
        audit=PS + (" " if not config else ""),
        audit_config=CAT if config else "",
        tests=Tests(items, bin_op),
        remediation=remediation,
        scored=scored,
        native={"audit": "cmdline", **({"audit_config": "config"} if config else {})},
    )


def _item(flag: str, path: str, op: str = "", value: str = "", set_: bool = True) -> TestItem:
    return TestItem(flag=flag, path=path, set=set_, op=op, value=value)


def _or_unset(flag: str, path: str, op: str, value: str, first_set: bool = True) -> list[TestItem]:
    return [_item(flag, path, op, value, first_set), _item(flag, path, set_=False)]


FIX_FILE = (
    "Set it in the kubelet config file (/etc/kubernetes/kubelet/kubelet-config.json on EKS AMIs) and make "
    "sure /etc/systemd/system/kubelet.service.d/10-kubelet-args.conf does not override it with a flag; "
    "restart the kubelet."
)


def _anon(cid: str, text: str, scored: bool) -> BenchCheck:
    return _kubelet(
        cid,
        text,
        [_item("--anonymous-auth", "{.authentication.anonymous.enabled}", "eq", "false")],
        scored,
        '"authentication": {"anonymous": {"enabled": false}} (or --anonymous-auth=false). ' + FIX_FILE,
    )


def _authz(cid: str, scored: bool) -> BenchCheck:
    return _kubelet(
        cid,
        "Ensure that the --authorization-mode argument is not set to AlwaysAllow (Automated)",
        [_item("--authorization-mode", "{.authorization.mode}", "nothave", "AlwaysAllow")],
        scored,
        '"authorization": {"mode": "Webhook"} with "authentication": {"webhook": {"enabled": true}}. '
        + FIX_FILE,
    )


def _client_ca(cid: str, text: str, scored: bool) -> BenchCheck:
    return _kubelet(
        cid,
        text,
        [_item("--client-ca-file", "{.authentication.x509.clientCAFile}")],
        scored,
        '"authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}}. ' + FIX_FILE,
    )


def _ro_port(cid: str, text: str, scored: bool) -> BenchCheck:
    return _kubelet(
        cid,
        text,
        [_item("--read-only-port", "{.readOnlyPort}", "eq", "0")],
        scored,
        '"readOnlyPort": 0 (or --read-only-port=0). ' + FIX_FILE,
    )


def _streaming(cid: str, text: str, scored: bool) -> BenchCheck:
    return _kubelet(
        cid,
        text,
        # kube-bench tests `noteq 0`, which passes "0s", the way the config file and configz spell a zero
        # duration; any non-zero digit is the honest test (and still a valid kube-bench regex op)
        _or_unset(
            "--streaming-connection-idle-timeout", "{.streamingConnectionIdleTimeout}", "regex", "[1-9]"
        ),
        scored,
        '"streamingConnectionIdleTimeout": "4h0m0s" (any non-zero duration). ' + FIX_FILE,
        "or",
    )


def _protect_kernel(cid: str) -> BenchCheck:
    return _kubelet(
        cid,
        "Ensure that the --protect-kernel-defaults argument is set to true (Automated)",
        [_item("--protect-kernel-defaults", "{.protectKernelDefaults}", "eq", "true")],
        True,
        '"protectKernelDefaults": true. ' + FIX_FILE,
    )


def _iptables(cid: str, text: str) -> BenchCheck:
    return _kubelet(
        cid,
        text,
        _or_unset("--make-iptables-util-chains", "{.makeIPTablesUtilChains}", "eq", "true"),
        True,
        '"makeIPTablesUtilChains": true (the default). ' + FIX_FILE,
        "or",
    )


def _hostname_override(cid: str) -> BenchCheck:
    return _kubelet(
        cid,
        "Ensure that the --hostname-override argument is not set (Manual)",
        [TestItem(flag="--hostname-override", set=False)],
        False,
        "Remove --hostname-override from the kubelet's arguments and restart the kubelet.",
        config=False,
    )


def _event_qps(cid: str, op: str, scored: bool, or_unset: bool) -> BenchCheck:
    items = (
        _or_unset("--event-qps", "{.eventRecordQPS}", op, "0")
        if or_unset
        else [_item("--event-qps", "{.eventRecordQPS}", op, "0")]
    )
    return _kubelet(
        cid,
        "Ensure that the --eventRecordQPS argument is set to 0 or a level which ensures appropriate event "
        "capture (Automated)",
        items,
        scored,
        '"eventRecordQPS": a level that captures the events you need (0 means unlimited). ' + FIX_FILE,
        "or" if or_unset else "",
    )


def _rotate_certs(cid: str, text: str, scored: bool) -> BenchCheck:
    return _kubelet(
        cid,
        text,
        _or_unset("--rotate-certificates", "{.rotateCertificates}", "eq", "true"),
        scored,
        '"rotateCertificates": true (the default on EKS AMIs). ' + FIX_FILE,
        "or",
    )


def _server_cert(cid: str, text: str, scored: bool) -> BenchCheck:
    return _kubelet(
        cid,
        text,
        [
            _item(
                "RotateKubeletServerCertificate",
                "{.featureGates.RotateKubeletServerCertificate}",
                "eq",
                "true",
            )
        ],
        scored,
        '"featureGates": {"RotateKubeletServerCertificate": true}. ' + FIX_FILE,
    )


def _old(version: str) -> list[Group]:
    """eks-1.0.1, eks-1.1.0 and eks-1.2.0: eleven kubelet items, file items manual."""
    v101, v110 = version == "eks-1.0.1", version == "eks-1.1.0"
    old_text = v101 or v110
    kubelet = [
        _anon(
            "3.2.1",
            "Ensure that the --anonymous-auth argument is set to false (Automated)"
            if old_text
            else "Ensure that the Anonymous Auth is Not Enabled (Automated)",
            True,
        ),
        _authz("3.2.2", True),
        _client_ca(
            "3.2.3",
            "Ensure that the --client-ca-file argument is set as appropriate (Manual)"
            if old_text
            else "Ensure that a Client CA File is Configured (Manual)",
            False,
        ),
        _ro_port(
            "3.2.4",
            "Ensure that the --read-only-port argument is set to 0 (Manual)"
            if old_text
            else "Ensure that the --read-only-port is disabled (Manual)",
            False,
        ),
        _streaming(
            "3.2.5",
            "Ensure that the --streaming-connection-idle-timeout argument is not set to 0 "
            + ("(Manual)" if old_text else "(Automated)"),
            not old_text,
        ),
        _protect_kernel("3.2.6"),
        _iptables("3.2.7", "Ensure that the --make-iptables-util-chains argument is set to true (Automated)"),
        _hostname_override("3.2.8"),
        _event_qps("3.2.9", "eq" if old_text else "gte", False, False),
        _rotate_certs(
            "3.2.10",
            "Ensure that the --rotate-certificates argument is not set to false (Manual)"
            if old_text
            else "Ensure that the --rotate-certificates argument is not present or is set to true (Manual)",
            False,
        ),
        _server_cert(
            "3.2.11", "Ensure that the RotateKubeletServerCertificate argument is set to true (Manual)", False
        ),
    ]
    groups = [
        Group("3.1", "Worker Node Configuration Files", checks=_file_checks(False)),
        Group("3.2", "Kubelet", checks=kubelet),
    ]
    if not v101:
        groups.append(
            Group(
                "3.3",
                "Container Optimized OS",
                checks=[
                    BenchCheck(
                        id="3.3.1",
                        text="Prefer using Container-Optimized OS when possible (Manual)"
                        if v110
                        else "Prefer using a container-optimized OS when possible (Manual)",
                        type="manual",
                        remediation="No remediation",
                        scored=False,
                    )
                ],
            )
        )
    return groups


def _new(version: str) -> list[Group]:
    """eks-1.5.0, eks-1.7.0 and eks-1.8.0: nine kubelet items, all automated and scored."""
    a = "(Automated)"
    kubelet = [
        _anon("3.2.1", f"Ensure that the Anonymous Auth is Not Enabled {a}", True),
        _authz("3.2.2", True),
        _client_ca("3.2.3", f"Ensure that a Client CA File is Configured {a}", True),
        _ro_port("3.2.4", f"Ensure that the --read-only-port is disabled {a}", True),
        _streaming(
            "3.2.5", f"Ensure that the --streaming-connection-idle-timeout argument is not set to 0 {a}", True
        ),
        _iptables("3.2.6", f"Ensure that the --make-iptables-util-chains argument is set to true {a}"),
        # eks-1.5.0 fails an unset eventRecordQPS (no "or unset" item); 1.7.0 and 1.8.0 accept it
        _event_qps("3.2.7", "gte", True, or_unset=version != "eks-1.5.0"),
        _rotate_certs(
            "3.2.8",
            f"Ensure that the --rotate-certificates argument is not present or is set to true {a}",
            True,
        ),
        _server_cert(
            "3.2.9", f"Ensure that the RotateKubeletServerCertificate argument is set to true {a}", True
        ),
    ]
    return [
        Group("3.1", "Worker Node Configuration Files", checks=_file_checks(True)),
        Group("3.2", "Kubelet", checks=kubelet),
    ]


def controls(version: str) -> Controls:
    """The worker-node controls of one benchmark version (a fresh object each call)."""
    if version not in VERSIONS:
        from kubestrata.errors import KubestrataError

        raise KubestrataError(f"unknown benchmark {version!r}; expected auto or one of {', '.join(VERSIONS)}")
    old = version in ("eks-1.0.1", "eks-1.1.0", "eks-1.2.0")
    return Controls(
        id="3",
        version=version,
        text="Worker Node Security Configuration" if old else "Worker Nodes",
        type="node",
        groups=_old(version) if old else _new(version),
    )
