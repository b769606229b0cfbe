"""What the node audit reads from a host: the running kubelet's command line (from /proc), its config
and kubeconfig files (paths from its flags, else kube-bench's candidate lists), their modes and owners.

Two auditors feed the check engine (kubestrata.nodes.kbformat): ``NativeAuditor`` answers the built-in
benchmark's audit sources by reading files itself (no shell, no ``ps``/``stat``/``cat``), and
``ShellAuditor`` runs a user's kube-bench check files' commands through /bin/sh, as kube-bench does,
with kube-bench's variables ($kubeletbin, $kubeletconf, $kubeletkubeconfig, ...) filled in.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubestrata.nodes.kbformat.model import AuditRun, BenchCheck

# kube-bench cfg/config.yaml node.kubelet candidates (the EKS AMI and Bottlerocket paths first)
CONFIG_CANDIDATES = (
    "/etc/kubernetes/kubelet/kubelet-config.json",
    "/etc/kubernetes/kubelet/config.json",
    "/etc/kubernetes/kubelet/config",
    "/etc/kubernetes/kubelet-config.yaml",
    "/var/lib/kubelet/config.yaml",
    "/var/lib/kubelet/config.yml",
    "/home/kubernetes/kubelet-config.yaml",
    "/etc/default/kubeletconfig.json",
)
KUBECONFIG_CANDIDATES = (
    "/var/lib/kubelet/kubeconfig",
    "/etc/kubernetes/kubelet/kubeconfig",
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/kubelet-kubeconfig.conf",
    "/etc/kubernetes/kubelet-kubeconfig",
    "/etc/kubernetes/kubeconfig-kubelet",
)
SERVICE_CANDIDATES = (
    "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf",
    "/etc/systemd/system/kubelet.service",
    "/lib/systemd/system/kubelet.service",
)
CA_CANDIDATES = ("/etc/kubernetes/pki/ca.crt",)


@dataclass
class KubeletProcess:
    pid: int
    argv: list[str]

    @property
    def args(self) -> list[str]:
        """The arguments after the kubelet program (skipping an interpreter running a kubelet script)."""
        for i, a in enumerate(self.argv):
            if os.path.basename(a) == "kubelet":
                return self.argv[i + 1 :]
        return self.argv[1:]

    @property
    def program(self) -> str:
        for a in self.argv:
            if os.path.basename(a) == "kubelet":
                return a
        return self.argv[0] if self.argv else "kubelet"

    @property
    def cmdline(self) -> str:
        """As ``ps -f`` shows it: the argument vector joined by spaces."""
        return " ".join(self.argv)

    def flags(self) -> dict[str, list[str]]:
        """``--name`` -> every value given (``--name=v``, ``--name v`` or a bare boolean ``--name``)."""
        out: dict[str, list[str]] = {}
        args = self.args
        i = 0
        while i < len(args):
            a = args[i]
            if a.startswith("-") and len(a) > 1:
                name, eq, value = a.lstrip("-").partition("=")
                if not eq:
                    nxt = args[i + 1] if i + 1 < len(args) else None
                    if nxt is not None and not nxt.startswith("-") and name not in _BOOL_FLAGS:
                        value, i = nxt, i + 1
                    else:
                        value = "true"
                out.setdefault("--" + name, []).append(value)
            i += 1
        return out

    def flag(self, name: str) -> str | None:
        values = self.flags().get(name)
        return values[-1] if values else None  # pflag: the last one wins


_BOOL_FLAGS = frozenset(
    {
        "anonymous-auth",
        "rotate-certificates",
        "make-iptables-util-chains",
        "protect-kernel-defaults",
        "authentication-token-webhook",
        "rotate-server-certificates",
        "fail-swap-on",
    }
)


def find_kubelet(proc: Path) -> KubeletProcess | None:
    """The kubelet process in a /proc tree: the process whose command name is ``kubelet`` (what
    ``ps -C kubelet`` selects). The oldest (lowest pid) if several."""
    found: list[KubeletProcess] = []
    try:
        entries = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return None
    for p in entries:
        try:
            comm = (p / "comm").read_text().strip()
            if comm != "kubelet":
                continue
            raw = (p / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile, or not ours to read
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
        if argv:
            found.append(KubeletProcess(int(p.name), argv))
    return min(found, key=lambda k: k.pid) if found else None


def _names(path: Path) -> dict[int, str]:
    """uid/gid -> name from a passwd/group file (``name:x:id:...``)."""
    out: dict[int, str] = {}
    try:
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split(":")
            if len(parts) >= 3 and parts[2].isdigit():
                out.setdefault(int(parts[2]), parts[0])
    except OSError:
        pass
    return out


@dataclass
class HostFile:
    """One file the audit looks at: its host path, where it came from, and what stat says."""

    role: str  # "config" or "kubeconfig"
    host_path: str | None  # as the host names it; None when no candidate exists
    origin: str  # "--config flag", "candidate", ...
    local: Path | None = None
    exists: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    error: str | None = None


@dataclass
class Host:
    """A node's file system (mounted at ``root``) and process table (``proc``)."""

    root: Path = Path("/")
    proc: Path = Path("/proc")
    kubelet: KubeletProcess | None = None
    config: HostFile = field(default_factory=lambda: HostFile("config", None, "none"))
    kubeconfig: HostFile = field(default_factory=lambda: HostFile("kubeconfig", None, "none"))
    users: dict[int, str] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=dict)

    def local(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    @classmethod
    def discover(cls, root: Path = Path("/"), proc: Path = Path("/proc")) -> Host:
        h = cls(root=root, proc=proc)
        h.kubelet = find_kubelet(proc)
        h.users = _names(h.local("/etc/passwd"))
        h.groups = _names(h.local("/etc/group"))
        h.config = h._file("config", "--config", CONFIG_CANDIDATES)
        h.kubeconfig = h._file("kubeconfig", "--kubeconfig", KUBECONFIG_CANDIDATES)
        return h

    def _file(self, role: str, flag: str, candidates: tuple[str, ...]) -> HostFile:
        named = self.kubelet.flag(flag) if self.kubelet else None
        if named:
            hf = HostFile(role, named, f"the kubelet's {flag} flag")
        else:
            hit = next((c for c in candidates if self.local(c).exists()), None)
            hf = HostFile(role, hit, "kube-bench's candidate paths" if hit else "none")
        if hf.host_path is None:
            return hf
        hf.local = self.local(hf.host_path)
        try:
            st = hf.local.stat()
        except FileNotFoundError:
            return hf
        except OSError as e:
            hf.error = f"cannot stat {hf.host_path}: {e.strerror or e}"
            return hf
        hf.exists = True
        hf.mode, hf.uid, hf.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        return hf

    def owner(self, hf: HostFile) -> str:
        """``stat -c %U:%G``: names from the host's passwd/group, UNKNOWN when it has none."""
        assert hf.uid is not None and hf.gid is not None
        return f"{self.users.get(hf.uid, 'UNKNOWN')}:{self.groups.get(hf.gid, 'UNKNOWN')}"

    def variables(self, local: bool = False) -> dict[str, str]:
        """kube-bench's node variables, filled from what was found on this host (``local``: file paths
        as this process sees them, under ``root``, for commands that run here)."""
        svc = next((c for c in SERVICE_CANDIDATES if self.local(c).exists()), SERVICE_CANDIDATES[0])
        v = {
            "kubeletbin": "kubelet",
            "kubeletconf": self.config.host_path or CONFIG_CANDIDATES[0],
            "kubeletkubeconfig": self.kubeconfig.host_path or KUBECONFIG_CANDIDATES[0],
            "kubeletsvc": svc,
            "kubeletcafile": (self.kubelet.flag("--client-ca-file") if self.kubelet else None)
            or CA_CANDIDATES[0],
            "proxykubeconfig": "/var/lib/kube-proxy/kubeconfig",
            "proxyconf": "/var/lib/kube-proxy/config",
            "proxybin": "kube-proxy",
        }
        if local and self.root != Path("/"):
            v = {k: (str(self.local(p)) if p.startswith("/") else p) for k, p in v.items()}
        return v

    def kube_version(self) -> str | None:
        """The kubelet's Kubernetes version (``kubelet --version``, as kube-bench asks it)."""
        if self.kubelet is None:
            return None
        prog = self.kubelet.program
        if not prog.startswith("/"):
            return None
        exe = self.local(prog)
        if not exe.exists():
            exe = Path(prog)  # the process runs in this mount namespace
        if not exe.exists():
            return None
        try:
            out = subprocess.run(
                [str(exe), "--version"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        m = re.search(r"v?(\d+\.\d+)(\.\d+)?", out)
        return m.group(0) if m else None


def substitute(text: str, variables: dict[str, str]) -> str:
    """kube-bench replaces ``$name`` with the variable's value (longest names first)."""
    for name in sorted(variables, key=len, reverse=True):
        text = text.replace("$" + name, variables[name])
    return text


class NativeAuditor:
    """Answers the built-in checks' audit sources from a discovered Host."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._config: AuditRun | None = None

    def __call__(self, check: BenchCheck, which: str) -> AuditRun:
        source = check.native.get(which, "")
        h = self.host
        if source == "cmdline":
            if h.kubelet is None:
                return AuditRun(
                    error=f"no kubelet process found in {h.proc} (is the host's PID namespace shared?)"
                )
            return AuditRun(h.kubelet.cmdline)
        if source == "config":
            return self.config()
        kind, _, role = source.partition(":")
        if kind in ("perms", "owner"):
            hf = h.config if role == "config" else h.kubeconfig
            what = "kubelet config file" if role == "config" else "kubelet kubeconfig"
            if hf.error:
                return AuditRun(error=hf.error)
            if hf.host_path is None:
                return AuditRun(
                    error=f"no {what} found (the kubelet names none and no candidate path exists)"
                )
            if not hf.exists:
                return AuditRun(error=f"the {what} {hf.host_path} ({hf.origin}) does not exist")
            if kind == "perms":
                return AuditRun(f"permissions={hf.mode:o}\n")
            return AuditRun(h.owner(hf) + "\n")
        return AuditRun(error=f"no native audit source {source!r} for check {check.id}")

    def config(self) -> AuditRun:
        if self._config is None:
            self._config = self._read_config()
        return self._config

    def _read_config(self) -> AuditRun:
        hf = self.host.config
        if hf.host_path is None:
            # no --config and no candidate file: the kubelet runs on flags and defaults; kube-bench
            # tolerates a missing audit_config when the process was found
            return AuditRun(error="no kubelet config file found", not_found=True)
        if hf.error:
            return AuditRun(error=hf.error)
        if not hf.exists:
            return AuditRun(error=f"the kubelet config file {hf.host_path} ({hf.origin}) does not exist")
        try:
            text = hf.local.read_text(encoding="utf-8")  # type: ignore[union-attr]
        except (OSError, UnicodeDecodeError) as e:
            return AuditRun(
                error=f"cannot read the kubelet config file {hf.host_path}: {getattr(e, 'strerror', None) or e}"
            )
        try:
            doc = json.loads(text)
        except ValueError:
            try:
                doc = yaml.safe_load(text)
            except yaml.YAMLError as e:
                return AuditRun(
                    error=f"the kubelet config file {hf.host_path} is neither JSON nor YAML: {' '.join(str(e).split())}"
                )
        if not isinstance(doc, dict):
            return AuditRun(
                error=f"the kubelet config file {hf.host_path} is not a KubeletConfiguration mapping "
                f"(got {type(doc).__name__})"
            )
        drop_dir = self.host.kubelet.flag("--config-dir") if self.host.kubelet else None
        if not drop_dir:
            return AuditRun(text)
        return self._merge_drop_ins(doc, drop_dir)

    def _merge_drop_ins(self, doc: dict[str, Any], drop_dir: str) -> AuditRun:
        """The kubelet's --config-dir (EKS AL2023's nodeadm uses it): every ``*.conf`` in lexical order
        overrides the config file, field by field (mappings merge, other values replace). kube-bench
        reads the main file only; the merged result is what the kubelet runs with."""
        local = self.host.local(drop_dir)
        try:
            files = sorted(p for p in local.iterdir() if p.name.endswith(".conf") and p.is_file())
        except FileNotFoundError:
            files = []  # the kubelet accepts a --config-dir that does not exist yet
        except OSError as e:
            return AuditRun(error=f"cannot list the kubelet --config-dir {drop_dir}: {e.strerror or e}")
        merged: dict[str, Any] = doc
        for f in files:
            host_path = f"{drop_dir.rstrip('/')}/{f.name}"
            try:
                text = f.read_text(encoding="utf-8")
                try:
                    part = json.loads(text)
                except ValueError:
                    part = yaml.safe_load(text)
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
                return AuditRun(
                    error=f"cannot read the kubelet drop-in {host_path}: {' '.join(str(e).split())}"
                )
            if not isinstance(part, dict):
                return AuditRun(
                    error=f"the kubelet drop-in {host_path} is not a KubeletConfiguration mapping"
                )
            merged = _deep_merge(merged, part)
        return AuditRun(json.dumps(merged))


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class ShellAuditor:
    """Runs a check's commands with /bin/sh (stdin), stdout and stderr together, as kube-bench does."""

    def __init__(self, variables: dict[str, str], timeout: float = 30.0) -> None:
        self.variables = variables
        self.timeout = timeout

    def command(self, check: BenchCheck, which: str) -> str:
        return substitute(getattr(check, which), self.variables).strip()

    def __call__(self, check: BenchCheck, which: str) -> AuditRun:
        cmd = self.command(check, which)
        if not cmd:
            return AuditRun()
        try:
            # a wide COLUMNS so that `ps -f` does not cut the kubelet's command line at 80 columns
            env = {**os.environ, "COLUMNS": "65535"}
            p = subprocess.run(
                ["/bin/sh"],
                input=cmd,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return AuditRun(error=f"failed to run: {cmd!r}: timed out after {self.timeout:g}s")
        out = p.stdout + p.stderr
        if p.returncode != 0:
            return AuditRun(
                out,
                error=f"failed to run: {cmd!r}, output: {out!r}, error: exit status {p.returncode}",
                not_found=p.returncode == 127 or "No such file or directory" in out,
            )
        return AuditRun(out)
