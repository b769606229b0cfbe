"""Runtime rules over RuntimeEvent (events.py): GuardDuty Runtime Monitoring equivalents.

``RuntimeRules.evaluate(ev)`` returns the hits of one event. The usual event (a benign exec) costs a
few set look-ups and one substring scan of the arguments; regular expressions run only on the rare
candidates. The only state is the per-container set of files written (for KS-RUN-01), bounded.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from kubestrata.detect.rules.registry import Hit  # a rule fired: audit and runtime rules alike
from kubestrata.detect.runtime.catalogue import FALCO_RULE_IDS
from kubestrata.detect.runtime.events import CONNECT, EXEC, FILE, SYSCALL, RuntimeEvent
from kubestrata.findings import Severity

SHELLS = frozenset(("sh", "bash", "dash", "zsh", "ash", "ksh", "mksh", "busybox", "fish", "tcsh", "csh"))
# falcosecurity/rules falco-sandbox_rules.yaml list miner_binaries
MINERS = frozenset(("xmrig", "xmr-stak", "minerd", "minergate", "cpuminer", "ccminer", "ethminer", "cgminer",
                    "bfgminer", "sgminer", "claymore", "nbminer", "t-rex", "gminer", "lolminer",
                    "phoenixminer", "teamredminer", "nanominer", "bminer", "wildrig", "srbminer",
                    "xmrig-notls", "cpuminer-multi"))  # fmt: skip
POOL_PORTS = frozenset((3333, 3334, 3335, 3336, 3357, 14433, 14444, 45560, 45700))
RUNTIME_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
                   "/var/run/containerd/containerd.sock", "/var/run/crio/crio.sock", "/run/crio/crio.sock",
                   "/var/run/cri-dockerd.sock", "/run/k3s/containerd/containerd.sock")  # fmt: skip
# instance metadata (IMDS) and pod credential endpoints; the EKS Pod Identity agent's addresses are
# from the EKS user guide, "Set up the Amazon EKS Pod Identity Agent" (pod-id-agent-setup)
METADATA = {
    "169.254.169.254": "EC2 instance metadata service",
    "fd00:ec2::254": "EC2 instance metadata service (IPv6)",
    "169.254.170.23": "EKS Pod Identity agent",
    "fd00:ec2::23": "EKS Pod Identity agent (IPv6)",
    "169.254.170.2": "container credentials endpoint",
}
IMDS = frozenset(("169.254.169.254", "fd00:ec2::254"))
# SDKs in pods using Pod Identity call the agent all the time: a connection to it counts only from a
# hand tool (the exec rule still reports a command line naming it)
HAND_TOOLS = frozenset(("curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "python", "python3", "perl",
                        "ruby", "php", "sh", "bash", "dash", "ash", "busybox"))  # fmt: skip
CLIENTS = frozenset(("kubectl", "helm", "crictl", "ctr", "docker", "nerdctl", "podman", "aws", "gcloud", "az",
                     "eksctl", "kubelogin", "oc", "k9s"))  # fmt: skip
TOOLS = frozenset(("nmap", "masscan", "zmap", "socat", "ncat", "nc", "netcat", "nc.openbsd", "nc.traditional",
                   "tcpdump", "tshark", "ngrep", "mitmproxy", "hydra", "sqlmap", "nikto", "chisel", "frpc",
                   "ligolo", "proxychains", "proxychains4", "pspy", "pspy64", "linpeas.sh", "kube-hunter",
                   "peirates", "cdk", "deepce.sh", "amicontained", "botb", "kdigger", "ettercap",
                   "responder", "gost"))  # fmt: skip
NC = frozenset(("nc", "ncat", "netcat", "nc.openbsd", "nc.traditional", "busybox"))
# every argument string worth a closer look contains one of these (one scan of the arguments)
_ARG_MARKERS = ("/dev/tcp", "/dev/udp", "stratum", "release_agent", ".sock", "169.254.", "fd00:ec2",
                "socket", "exec:", "system:", "-e", "-c", "authorized_keys", "/etc/", "mkfifo")  # fmt: skip
_SENSITIVE = re.compile(
    r"^(?:/etc/(?:shadow|gshadow|passwd|group|sudoers|sudoers\.d/.+|ld\.so\.preload|pam\.d/.+|"
    r"security/.+|ssh/sshd_config)|/(?:root|home/[^/]+)/\.ssh/authorized_keys2?)$"
)
_REDIRECT_SENSITIVE = re.compile(
    r">>?\s*((?:/etc/(?:shadow|passwd|sudoers(?:\.d/\S+)?|ld\.so\.preload)|\S*/\.ssh/authorized_keys2?))\b"
)
_PROC_MEM = re.compile(r"^/proc/(?:\d+|self)/(?:task/\d+/)?mem$")
_RUNC = re.compile(r"^(?:/usr(?:/local)?/s?bin/runc|/proc/self/exe)$")
_DEVICE = re.compile(r"(?:^|\s)(/dev/(?:sd[a-z]+\d*|nvme\d+n\d+(?:p\d+)?|xvd[a-z]+\d*|vd[a-z]+\d*|hd[a-z]+\d*|"
                     r"dm-\d+|mapper/\S+|root))(?:\s|$)")  # fmt: skip
_SCRIPT_SHELL = re.compile(r"socket.*(?:subprocess|pty\.spawn|/bin/(?:ba)?sh|exec|dup2)", re.S)
_NC_EXEC = re.compile(r"(?:^|\s)(?:-e|-c|--exec|--sh-exec|--lua-exec)(?:\s|=|$)")
_NSENTER_HOST = re.compile(r"(?:^|\s)(?:-t\s*1|--target(?:=|\s+)1)(?:\s|$)")
PTRACE_INJECT = {4: "PTRACE_POKETEXT", 5: "PTRACE_POKEDATA", 13: "PTRACE_SETREGS", 16: "PTRACE_ATTACH",
                 0x4206: "PTRACE_SEIZE"}  # fmt: skip
LOOPBACK = ("127.", "::1", "0.0.0.0")


class RuntimeRules:
    MAX_CONTAINERS = 10_000
    MAX_WRITES = 256

    def __init__(self, enabled: set[str]) -> None:
        self.enabled = enabled
        self._written: OrderedDict[str, set[str]] = OrderedDict()  # container id -> paths written

    def evaluate(self, ev: RuntimeEvent) -> list[Hit]:
        hits: list[Hit] = []
        if ev.sensor_rule:
            rid = FALCO_RULE_IDS.get(ev.sensor_rule)
            if rid:
                hits.append(Hit(rid, f"Falco: {ev.sensor_rule} in {ev.where}: {ev.process.cmdline}",
                                [("falco.rule", ev.sensor_rule), ("proc.cmdline", ev.process.cmdline)]))  # fmt: skip
        kind = ev.kind
        if kind == EXEC:
            self._exec(ev, hits)
        elif kind == FILE:
            self._file(ev, hits)
        elif kind == CONNECT:
            self._connect(ev, hits)
        elif kind == SYSCALL:
            self._syscall(ev, hits)
        if len(hits) > 1:  # one hit per rule and event (a Falco alert and its fields may agree)
            seen: set[str] = set()
            unique = []
            for h in hits:
                if h.rule_id not in seen:
                    seen.add(h.rule_id)
                    unique.append(h)
            hits = unique
        return [h for h in hits if h.rule_id in self.enabled]

    # -- exec --

    def _exec(self, ev: RuntimeEvent, hits: list[Hit]) -> None:
        p = ev.process
        name, args, binary = p.name, p.args, p.binary
        in_ctr = ev.in_container
        proc_ev = [("process.binary", binary), ("process.arguments", args)]
        if in_ctr:
            if ev.exe_upper_layer:
                hits.append(Hit("KS-RUN-01", f"{binary} is not part of the image of {ev.where}",
                                [*proc_ev, ("proc.is_exe_upper_layer", True)]))  # fmt: skip
            elif binary in self._written.get(ev.container_id, ()):
                hits.append(Hit("KS-RUN-01", f"{ev.where} wrote {binary} and then ran it",
                                [*proc_ev, ("writtenInContainer", binary)]))  # fmt: skip
            elif binary.startswith(("/tmp/", "/var/tmp/")):
                hits.append(Hit("KS-RUN-01", f"{binary} ran from a writable directory in {ev.where}",
                                [*proc_ev, ("process.binary.directory", binary.rsplit("/", 1)[0])]))  # fmt: skip
            if name in CLIENTS:
                hits.append(Hit("KS-RUN-16", f"{name} launched in {ev.where}: {p.cmdline}", proc_ev))
            if name in TOOLS:
                hits.append(Hit("KS-RUN-17", f"{name} launched in {ev.where}: {p.cmdline}", proc_ev))
        if ev.exe_from_memfd or binary.startswith(("/proc/self/fd/", "memfd:", "/dev/shm/")):
            how = "from /dev/shm" if binary.startswith("/dev/shm/") else "from memory (memfd or deleted file)"
            hits.append(Hit("KS-RUN-13", f"{binary} executed {how} in {ev.where}",
                            [*proc_ev, ("binary_properties.file", bool(ev.exe_from_memfd))]))  # fmt: skip
        if name in MINERS:
            hits.append(Hit("KS-RUN-03", f"miner {name} started in {ev.where}", proc_ev))
        if in_ctr and name in ("mount", "nsenter", "chroot"):
            self._escape_cmd(ev, name, args, proc_ev, hits)
        if not args or not any(m in args for m in _ARG_MARKERS):
            return
        low = args.lower()
        if "stratum" in low and ("stratum+tcp://" in low or "stratum+ssl://" in low or "stratum2+tcp://" in low
                                 or "stratum+tls://" in low):  # fmt: skip
            hits.append(Hit("KS-RUN-03", f"{name} started with a Stratum pool URL in {ev.where}", proc_ev))
        self._reverse_shell_cmd(ev, name, args, proc_ev, hits)
        if "release_agent" in args and (">" in args or name in ("tee", "cp", "mv", "dd")):
            hits.append(Hit("KS-RUN-05", f"release_agent written by a command in {ev.where}", proc_ev))
        if ".sock" in args:
            sock = next((s for s in RUNTIME_SOCKETS if s in args), None)
            if sock and in_ctr:
                hits.append(Hit("KS-RUN-06", f"{name} used the container runtime socket {sock} in {ev.where}",
                                [*proc_ev, ("socket", sock)]))  # fmt: skip
        if in_ctr and ("169.254." in args or "fd00:ec2" in args):
            addr = next((a for a in METADATA if a in args), None)
            if addr:
                hits.append(Hit("KS-RUN-15", f"{name} contacted the {METADATA[addr]} ({addr}) from {ev.where}",
                                [*proc_ev, ("destination", addr)]))  # fmt: skip
        if "/etc/" in args or "authorized_keys" in args:
            m = _REDIRECT_SENSITIVE.search(args)
            if m and in_ctr:
                sev = Severity.HIGH if m.group(1).endswith("ld.so.preload") else None
                hits.append(Hit("KS-RUN-14", f"{m.group(1)} modified by a command in {ev.where}",
                                [*proc_ev, ("file", m.group(1))], sev))  # fmt: skip

    def _escape_cmd(
        self, ev: RuntimeEvent, name: str, args: str, proc_ev: list[tuple[str, Any]], hits: list[Hit]
    ) -> None:
        if name == "mount":
            m = _DEVICE.search(args)
            if m:
                hits.append(Hit("KS-RUN-07", f"mount of host device {m.group(1)} in {ev.where}",
                                [*proc_ev, ("device", m.group(1))]))  # fmt: skip
        elif name == "nsenter" and _NSENTER_HOST.search(args):
            hits.append(Hit("KS-RUN-08", f"nsenter into the namespaces of PID 1 from {ev.where}: {args}",
                            [*proc_ev, ("target", "1")]))  # fmt: skip
        elif name == "chroot" and args.split(" ", 1)[0].rstrip("/") in (
            "/host",
            "/hostfs",
            "/rootfs",
            "/node",
        ):
            hits.append(Hit("KS-RUN-08", f"chroot into the host root {args.split(' ', 1)[0]} from {ev.where}",
                            [*proc_ev, ("chroot", args.split(" ", 1)[0])]))  # fmt: skip

    def _reverse_shell_cmd(
        self, ev: RuntimeEvent, name: str, args: str, proc_ev: list[tuple[str, Any]], hits: list[Hit]
    ) -> None:
        why = ""
        if "/dev/tcp/" in args or "/dev/udp/" in args:
            why = "shell redirection to /dev/tcp"
        elif name in NC and _NC_EXEC.search(args) and (name != "busybox" or " nc " in f" {args} "):
            why = f"{name} executing a program for the connection"
        elif (
            name == "socat"
            and ("exec:" in args.lower() or "system:" in args.lower())
            and "tcp" in args.lower()
        ):
            why = "socat joining a TCP connection to a program"
        elif "socket" in args and name.startswith(("python", "perl", "ruby", "php", "node", "lua")):
            if _SCRIPT_SHELL.search(args):
                why = f"{name} one-liner wiring a socket to a shell"
        elif "mkfifo" in args and (" nc " in args or "ncat" in args or "openssl" in args):
            why = "named pipe between a shell and a network client"
        if why:
            hits.append(Hit("KS-RUN-02", f"reverse shell in {ev.where}: {why}", [*proc_ev, ("pattern", why)]))

    # -- files --

    def _file(self, ev: RuntimeEvent, hits: list[Hit]) -> None:
        path = ev.file_path
        if ev.access != "write":
            if path in RUNTIME_SOCKETS and ev.in_container:
                hits.append(Hit("KS-RUN-06", f"{ev.process.name} opened {path} in {ev.where}",
                                [("file.path", path), ("process.binary", ev.process.binary)]))  # fmt: skip
            return
        proc = ("process.binary", ev.process.binary)
        if ev.in_container and ev.container_id:
            w = self._written.get(ev.container_id)
            if w is None:
                if len(self._written) >= self.MAX_CONTAINERS:
                    self._written.popitem(last=False)
                w = self._written[ev.container_id] = set()
            if len(w) < self.MAX_WRITES:
                w.add(path)
        if path.endswith("release_agent"):
            hits.append(
                Hit("KS-RUN-05", f"{ev.process.name} wrote {path} in {ev.where}", [("file.path", path), proc])
            )
        elif _SENSITIVE.match(path):
            sev = Severity.HIGH if path == "/etc/ld.so.preload" else None
            hits.append(Hit("KS-RUN-14", f"{ev.process.name} modified {path} in {ev.where}",
                            [("file.path", path), proc], sev))  # fmt: skip
        elif _PROC_MEM.match(path):
            hits.append(
                Hit("KS-RUN-12", f"{ev.process.name} wrote {path} in {ev.where}", [("file.path", path), proc])
            )
        elif _RUNC.match(path):
            hits.append(
                Hit("KS-RUN-09", f"{ev.process.name} wrote {path} in {ev.where}", [("file.path", path), proc])
            )

    # -- network --

    def _connect(self, ev: RuntimeEvent, hits: list[Hit]) -> None:
        p = ev.process
        if ev.socket_path:
            if ev.socket_path in RUNTIME_SOCKETS and ev.in_container:
                hits.append(Hit("KS-RUN-06", f"{p.name} connected to {ev.socket_path} in {ev.where}",
                                [("socket.path", ev.socket_path), ("process.binary", p.binary)]))  # fmt: skip
            return
        addr, port = ev.daddr, ev.dport
        local = not addr or addr.startswith(LOOPBACK)
        dest = [("destination.address", addr), ("destination.port", port), ("process.binary", p.binary)]
        if addr in METADATA and ev.in_container and (addr in IMDS or p.name in HAND_TOOLS):
            hits.append(
                Hit("KS-RUN-15", f"{p.name} connected to the {METADATA[addr]} ({addr}) from {ev.where}", dest)
            )
        if port in POOL_PORTS and not local:
            hits.append(Hit("KS-RUN-04", f"{p.name} connected to {addr}:{port} (mining pool port) from {ev.where}",
                            dest))  # fmt: skip
        if p.name in SHELLS and ev.in_container and not local and addr not in METADATA:
            hits.append(Hit("KS-RUN-02", f"shell {p.binary} connected to {addr}:{port} from {ev.where}",
                            [*dest, ("pattern", "shell process with an outbound connection")]))  # fmt: skip

    # -- other calls --

    def _syscall(self, ev: RuntimeEvent, hits: list[Hit]) -> None:
        req = ev.ptrace_request
        if req is not None:
            if req in PTRACE_INJECT:
                hits.append(Hit("KS-RUN-10", f"{ev.process.name} called ptrace {PTRACE_INJECT[req]} in {ev.where}",
                                [("ptrace.request", PTRACE_INJECT[req]), ("process.binary", ev.process.binary)]))  # fmt: skip
            elif req == 0:
                hits.append(Hit("KS-RUN-11", f"{ev.process.name} called ptrace PTRACE_TRACEME in {ev.where}",
                                [("ptrace.request", "PTRACE_TRACEME"), ("process.binary", ev.process.binary)]))  # fmt: skip
        elif "mount" in ev.syscall and ev.in_container and ev.file_path.startswith("/dev/"):
            hits.append(Hit("KS-RUN-07", f"{ev.process.name} mounted {ev.file_path} in {ev.where}",
                            [("mount.source", ev.file_path), ("process.binary", ev.process.binary)]))  # fmt: skip
        elif "setns" in ev.syscall and ev.in_container and ev.process.name == "nsenter":
            pass  # judged on the nsenter exec (its arguments say which target)
