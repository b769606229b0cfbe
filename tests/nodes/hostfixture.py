"""A real node file system for the audit: a directory tree with real modes and owners, and a real
process named ``kubelet`` (a shell script, so /proc shows its comm and command line)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

GOOD_CONFIG: dict[str, Any] = {
    "kind": "KubeletConfiguration",
    "apiVersion": "kubelet.config.k8s.io/v1beta1",
    "authentication": {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": True},
        "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
    },
    "authorization": {"mode": "Webhook"},
    "readOnlyPort": 0,
    "featureGates": {"RotateKubeletServerCertificate": True},
}
CONFIG = "/etc/kubernetes/kubelet/kubelet-config.json"
KUBECONFIG = "/var/lib/kubelet/kubeconfig"


class FakeNode:
    def __init__(self, root: Path, version: str = "v1.33.1-eks-1") -> None:
        self.root = root
        self.version = version
        self.proc: subprocess.Popen[bytes] | None = None
        for d in ("etc/kubernetes/kubelet", "var/lib/kubelet", "usr/bin"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "etc/passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nec2-user:x:1000:1000::/home/ec2-user:/bin/sh\n"
        )
        (root / "etc/group").write_text("root:x:0:\nec2-user:x:1000:\n")
        self.write_config(GOOD_CONFIG)
        self.write(KUBECONFIG, "apiVersion: v1\nkind: Config\n", 0o600)
        self.kubelet = root / "usr/bin/kubelet"
        self.kubelet.write_text(
            "#!/bin/sh\n"
            f'if [ "$1" = "--version" ]; then echo "Kubernetes {version}"; exit 0; fi\n'
            "trap 'exit 0' TERM\n"
            "while :; do sleep 0.1; done\n"
        )
        self.kubelet.chmod(0o755)

    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    def write(self, host_path: str, text: str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Path:
        p = self.path(host_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.chmod(p, mode)
        os.chown(p, uid, gid)
        return p

    def write_config(self, cfg: dict[str, Any], mode: int = 0o644, uid: int = 0, gid: int = 0) -> Path:
        return self.write(CONFIG, json.dumps(cfg), mode, uid, gid)

    def start(self, *flags: str, env: dict[str, str] | None = None) -> int:
        """Run the kubelet with ``--config`` and ``--kubeconfig`` plus ``flags``."""
        self.stop()
        self.proc = subprocess.Popen(
            [str(self.kubelet), f"--config={CONFIG}", "--kubeconfig", KUBECONFIG, *flags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        comm = Path(f"/proc/{self.proc.pid}/comm")
        for _ in range(100):  # until the exec is visible in /proc
            if comm.exists() and comm.read_text().strip() == "kubelet":
                break
            time.sleep(0.01)
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.proc = None
