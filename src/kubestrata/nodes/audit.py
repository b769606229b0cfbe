"""`kubestrata nodes audit`: the CIS EKS worker-node section on a node, or over configz from outside.

Results are kube-bench's (PASS/FAIL/WARN/INFO per check, its JSON shape) and become kubestrata findings:
a FAIL is a finding at the check's severity, a WARN of an unscored check a low one; manual checks and
passes are not findings. A flag given twice with different values on the kubelet's command line fails
the checks that read it (kube-bench reads the first, the kubelet uses the last).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubestrata.errors import KubestrataError
from kubestrata.findings import Coverage, Evidence, Finding, GapReason, Layer, Severity
from kubestrata.kube.objects import ObjectRef, Source
from kubestrata.nodes import benchmarks
from kubestrata.nodes.host import Host, NativeAuditor, ShellAuditor
from kubestrata.nodes.kbformat.model import FAIL, WARN, AuditRun, BenchCheck, Controls, ControlsResult
from kubestrata.nodes.kbformat.parse import generate_default_env_audit, load_controls_file
from kubestrata.nodes.kbformat.run import run_controls

SEVERITY = {
    # eks-1.5.0 .. 1.8.0 numbering; older versions are mapped by flag below
    "--anonymous-auth": Severity.HIGH,
    "--authorization-mode": Severity.HIGH,
    "--read-only-port": Severity.HIGH,
    "--client-ca-file": Severity.MEDIUM,
    "--rotate-certificates": Severity.MEDIUM,
    "RotateKubeletServerCertificate": Severity.MEDIUM,
    "--protect-kernel-defaults": Severity.LOW,
    "--streaming-connection-idle-timeout": Severity.LOW,
    "--make-iptables-util-chains": Severity.LOW,
    "--event-qps": Severity.LOW,
    "--hostname-override": Severity.LOW,
    "permissions": Severity.MEDIUM,
    "root:root": Severity.MEDIUM,
}


@dataclass
class AuditReport:
    node: str
    benchmark: str
    benchmark_reason: str
    results: list[ControlsResult]
    findings: list[Finding] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)

    def to_dict(self) -> dict[str, Any]:
        from kubestrata.nodes.kbformat.output import kube_bench_json

        return {
            "node": self.node,
            "benchmark": self.benchmark,
            "benchmarkReason": self.benchmark_reason,
            "findings": [f.to_dict() for f in self.findings],
            "coverage": self.coverage.to_dict(),
            "kubeBench": kube_bench_json(self.results),
        }


def choose_benchmark(requested: str, kube_version: str | None) -> tuple[str, str]:
    """(benchmark, why) for ``--benchmark`` auto or a named version."""
    if requested != "auto":
        benchmarks.controls(requested)  # validates the name
        return requested, "given with --benchmark"
    if kube_version:
        return benchmarks.eks_benchmark(kube_version), f"Kubernetes {kube_version} (kube-bench's mapping)"
    return benchmarks.eks_benchmark(""), "Kubernetes version unknown: kube-bench's default"


def _duplicate_flags(host: Host) -> dict[str, list[str]]:
    if host.kubelet is None:
        return {}
    out = {}
    for name, values in host.kubelet.flags().items():
        if len(set(values)) > 1:
            out[name] = values
    gates = host.kubelet.flags().get("--feature-gates", [])
    seen: dict[str, set[str]] = {}
    for g in gates:
        for part in g.split(","):
            k, _, v = part.partition("=")
            seen.setdefault(k.strip(), set()).add(v.strip())
    for k, vals in seen.items():
        if len(vals) > 1:
            out[k] = sorted(vals)
    return out


def _apply_duplicates(result: ControlsResult, dups: dict[str, list[str]]) -> None:
    for g in result.groups:
        for r in g.results:
            if r.check.native.get("audit") != "cmdline" or r.check.tests is None:
                continue
            for item in r.check.tests.items:
                if item.flag in dups:
                    r.state = FAIL if r.check.scored else WARN
                    r.reason = (
                        f"{item.flag} is given {len(dups[item.flag])} times with different values "
                        f"({', '.join(dups[item.flag])}): ambiguous, kube-bench reads the first, the kubelet "
                        "uses the last"
                    )
                    break


def findings_from(results: list[ControlsResult], node: str, source: str) -> list[Finding]:
    out = []
    ref = ObjectRef("Node", "", node, "v1")
    for cr in results:
        for g in cr.groups:
            for r in g.results:
                c = r.check
                if (
                    r.state not in (FAIL, WARN)
                    or c.type == "manual"
                    or r.reason == "Test marked as a manual test"
                ):
                    continue
                key = c.tests.items[0].flag if c.tests and c.tests.items else ""
                sev = SEVERITY.get(key, Severity.MEDIUM) if r.state == FAIL else Severity.LOW
                msg = f"CIS EKS {c.id} ({cr.controls.version}): {c.text}"
                where = {
                    "flag": "the kubelet's command line",
                    "path": "the kubelet config",
                    "env": "the environment",
                }
                src = where.get(r.used[0], "") if r.used else ""
                if c.native.get("audit", "").startswith(("perms", "owner")):
                    src = "the file"
                detail = r.reason or (
                    f"{src or 'the audit'} gives {r.actual_value.strip()[:300]!r}; expected {r.expected_result}"
                    if r.actual_value.strip()
                    else f"expected {r.expected_result}"
                )
                out.append(
                    Finding(
                        rule_id=f"CIS-EKS-{c.id}",
                        title=c.text,
                        severity=sev,
                        layer=Layer.INFRASTRUCTURE,
                        message=f"{msg}: {detail}",
                        object=ref,
                        source=Source(source),
                        evidence=[
                            Evidence(key or c.id, r.actual_value.strip()[:500] or None, r.expected_result)
                        ],
                        remediation=c.remediation,
                        references={"cis-eks": [f"{c.id} ({cr.controls.version})"]},
                    )
                )
    return out


def audit_host(
    root: Path = Path("/"),
    proc: Path = Path("/proc"),
    benchmark: str = "auto",
    kube_version: str | None = None,
    kube_bench_cfg: Path | None = None,
    node_name: str | None = None,
) -> AuditReport:
    """Run the node section on one host (its file system at ``root``, its processes in ``proc``)."""
    host = Host.discover(root, proc)
    version = kube_version or host.kube_version()
    name, why = choose_benchmark(benchmark, version)
    node = node_name or _node_name(host) or socket.gethostname()
    cov = Coverage()
    if host.kubelet is None:
        cov.gap("kubelet", GapReason.MISSING_INPUT, f"no kubelet process in {proc}: every 3.2 check fails")
    elif host.config.host_path is None:
        cov.gap(
            "kubelet config",
            GapReason.MISSING_INPUT,
            "the kubelet names no --config and no candidate file exists: 3.2 checks read flags only",
        )
    if kube_bench_cfg is not None:
        ctrls = load_kube_bench_cfg(kube_bench_cfg, name)
        auditor: Any = ShellAuditor(host.variables(local=True))
    else:
        ctrls = [benchmarks.controls(name)]
        auditor = NativeAuditor(host)
    results = []
    dups = _duplicate_flags(host)
    for c in ctrls:
        c.detected_version = version or ""
        res = run_controls(c, auditor)
        for g in res.groups:
            for r in g.results:
                _show_commands(r, host, local=kube_bench_cfg is not None)
        if kube_bench_cfg is None:
            _apply_duplicates(res, dups)
        results.append(res)
        cov.evaluated["CIS EKS node check"] += sum(len(g.results) for g in res.groups)
    report = AuditReport(node, name, why, results, coverage=cov)
    report.findings = findings_from(results, node, str(root))
    return report


def _show_commands(r: Any, host: Host, local: bool) -> None:
    from kubestrata.nodes.host import substitute

    v = host.variables(local)
    r.audit = substitute(r.check.audit, v).strip()
    r.audit_config = substitute(r.check.audit_config, v).strip()
    r.audit_env = substitute(r.check.audit_env, v).strip()
    r.remediation = substitute(r.check.remediation, v)


def _node_name(host: Host) -> str | None:
    if host.kubelet is not None:
        return host.kubelet.flag("--hostname-override")
    return None


def load_kube_bench_cfg(cfg_dir: Path, benchmark: str) -> list[Controls]:
    """The node controls of a kube-bench cfg directory: ``DIR/<benchmark>/node.yaml`` when the
    directory is kube-bench's cfg/, else every ``*.yaml`` of type node in DIR itself."""
    from kubestrata.errors import KubestrataError

    if not cfg_dir.is_dir():
        raise KubestrataError(f"--kube-bench-cfg {cfg_dir}: not a directory")
    versioned = cfg_dir / benchmark / "node.yaml"
    files = (
        [versioned] if versioned.is_file() else sorted(cfg_dir.glob("*.yaml")) + sorted(cfg_dir.glob("*.yml"))
    )
    out = []
    for f in files:
        if f.name == "config.yaml":
            continue
        c = load_controls_file(f)
        generate_default_env_audit(c, "kubelet")
        if c.type == "node":
            out.append(c)
    if not out:
        raise KubestrataError(
            f"--kube-bench-cfg {cfg_dir}: no node controls ({benchmark}/node.yaml, or a *.yaml with type: node)"
        )
    return out


# --- from outside: the 3.2 checks over each node's configz ---------------------------------------------
class ConfigzAuditor:
    """No command line (the API shows none); the config is the node's configz KubeletConfiguration."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.text = json.dumps(config)

    def __call__(self, check: BenchCheck, which: str) -> AuditRun:
        if check.native.get(which) == "config":
            return AuditRun(self.text)
        return AuditRun()


def kubelet_group(version: str = "eks-1.8.0") -> Controls:
    """The benchmark's kubelet (3.2) group alone, for configz."""
    c = benchmarks.controls(version)
    c.groups = [g for g in c.groups if g.id == "3.2"]
    for g in c.groups:
        # hostname-override has no config equivalent: it cannot be judged from configz
        g.checks = [ch for ch in g.checks if ch.native.get("audit_config")]
    return c


def audit_configz(config: dict[str, Any], version: str = "eks-1.8.0") -> ControlsResult:
    return run_controls(kubelet_group(version), ConfigzAuditor(config))


def audit_cluster(
    kubeconfig: str | None,
    context: str | None,
    timeout: float,
    benchmark: str = "auto",
    kube_version: str | None = None,
) -> list[AuditReport]:
    """Every node's kubelet settings (3.2) from configz; the benchmark from each node's kubeletVersion."""
    from kubestrata.kube import live

    cov = Coverage()
    nodes_res = [r for r in live.RESOURCES if r.kind == "Node"]
    snap = live.collect_cluster(
        kubeconfig=kubeconfig,
        context=context,
        timeout=timeout,
        coverage=cov,
        progress=None,
        resources=nodes_res,
    )
    versions = {
        n.name: str(((n.raw.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or "")
        for n in snap.of_kind("Node")
    }
    reports = []
    for cfg in snap.of_kind("KubeletConfiguration"):
        node = cfg.name
        name, why = choose_benchmark(benchmark, kube_version or versions.get(node) or None)
        body = {k: v for k, v in cfg.raw.items() if k not in ("apiVersion", "kind", "metadata")}
        res = run_controls(kubelet_group(name), ConfigzAuditor(body))
        res.controls.detected_version = kube_version or versions.get(node, "")
        rep = AuditReport(node, name, why + "; kubelet settings over configz (3.1 needs the node)", [res])
        rep.coverage.evaluated["CIS EKS node check"] += sum(len(g.results) for g in res.groups)
        rep.findings = findings_from([res], node, snap.origin or "cluster")
        reports.append(rep)
    if not reports:
        detail = "; ".join(f"{g.subject}: {g.detail}" for g in cov.gaps) or "the cluster has no nodes"
        raise KubestrataError(f"no node's kubelet configuration could be read ({detail})")
    if cov.gaps:
        reports[0].coverage.gaps.extend(cov.gaps)
    return reports


# --- AWS Security Hub (ASFF), as kube-bench's --asff builds it (check/controls.go ASFF) ------------------
ASFF_TYPE = "Software and Configuration Checks/Industry and Regulatory Standards/CIS Kubernetes Benchmark"
ASFF_SEVERITY = {
    Severity.INFO: "INFORMATIONAL",
    Severity.LOW: "LOW",
    Severity.MEDIUM: "MEDIUM",
    Severity.HIGH: "HIGH",
    Severity.CRITICAL: "CRITICAL",
}


def asff(
    reports: list[AuditReport], account: str, region: str, cluster_arn: str, now: str | None = None
) -> dict[str, Any]:
    """``{"Findings": [...]}`` for ``aws securityhub batch-import-findings --cli-input-json``: one finding
    per FAIL or WARN result, with kube-bench's ids, generator ids, product ARN, types and product fields.
    Severity is the finding's (kube-bench labels every one HIGH)."""
    import datetime as dt

    product = f"arn:aws:securityhub:{region}::product/aqua-security/kube-bench"
    ts = now or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    by_rule: dict[tuple[str, str], Finding] = {
        (f.object.name if f.object else "", f.rule_id): f for r in reports for f in r.findings
    }
    out = []
    for rep in reports:
        for res in rep.results:
            ctl = res.controls
            for g in res.groups:
                for r in g.results:
                    if r.state not in (FAIL, WARN) or r.check.type == "manual":
                        continue
                    c = r.check
                    f = by_rule.get((rep.node, f"CIS-EKS-{c.id}"))
                    sev = ASFF_SEVERITY[f.severity] if f else "LOW"
                    out.append(
                        {
                            "SchemaVersion": "2018-10-08",
                            "Id": f"{product}{account}EKSnodeID+{c.id}+{cluster_arn}+{rep.node}",
                            "ProductArn": product,
                            "GeneratorId": f"{product}/cis-kubernetes-benchmark/{ctl.version}/{c.id}",
                            "AwsAccountId": account,
                            "Types": [ASFF_TYPE],
                            "CreatedAt": ts,
                            "UpdatedAt": ts,
                            "Severity": {"Label": sev},
                            "Confidence": 100,
                            "Title": f"{c.id} {c.text}",
                            "Description": c.text,
                            "Remediation": {
                                "Recommendation": {"Text": (r.remediation or c.remediation)[:511]}
                            },
                            "ProductFields": {
                                "Reason": r.reason[:1023],
                                "Actual result": r.actual_value[:1023],
                                "Expected result": r.expected_result,
                                "Section": f"{ctl.id} {ctl.text}",
                                "Subsection": f"{g.group.id} {g.group.text}",
                            },
                            "Resources": [{"Id": cluster_arn, "Type": ASFF_TYPE}],
                        }
                    )
    return {"Findings": out}
