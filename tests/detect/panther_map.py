"""Panther rule id -> the kubestrata rule ids that make the same decision (any of them firing
counts as "fires"). The reasoning per rule and every disagreement are in docs/detect.md."""

from __future__ import annotations

PANTHER_MAP: dict[str, tuple[str, ...]] = {
    "Amazon.EKS.AnonymousAPIAccess": ("KS-AUD-N19",),
    "Kubernetes.API.AnonymousAccess": ("KS-AUD-N19",),
    "Amazon.EKS.Audit.Multiple403": ("KS-AUD-N18",),
    "Kubernetes.API.Multiple403.PublicIP": ("KS-AUD-N18",),
    "Amazon.EKS.Audit.SystemNamespaceFromPublicIP": ("KS-AUD-N17",),
    "Kubernetes.System.Principal.PublicIP": ("KS-AUD-N17",),
    "Kubernetes.API.IOC.Activity": tuple(f"KS-AUD-G{n}" for n in (12, 16, 20, 24, 28)),  # TorIPCaller x 5
    "Kubernetes.AdmissionController.Created": ("KS-AUD-N01",),
    "Kubernetes.ClientCertificate.Created": ("KS-AUD-N02",),
    "Kubernetes.ClusterRoleBinding.Privileged": ("KS-AUD-N03",),
    "Kubernetes.CronJob.CreatedOrModified": ("KS-AUD-N04",),
    "Kubernetes.DaemonSet.Created": ("KS-AUD-N05",),
    "Kubernetes.Kubectl.CP.Operation": ("KS-AUD-N06",),
    "Kubernetes.Pod.StealServiceAccountToken": ("KS-AUD-N07",),
    "Kubernetes.Pod.Dangerous.Capabilities": ("KS-AUD-N09",),
    "Kubernetes.Pod.HostPath.Volume": ("KS-AUD-N10",),
    "Kubernetes.Pod.SystemNamespace": ("KS-AUD-N11",),
    "Kubernetes.Role.NodeProxyPermissions": ("KS-AUD-N12",),
    "Kubernetes.Secret.AccessDenied": ("KS-AUD-N13",),
    "Kubernetes.BulkSecretAccess": ("KS-AUD-N14",),
    "Kubernetes.Secrets.DumpAllNamespaces": ("KS-AUD-N15",),
    "Kubernetes.ServiceAccount.TokenCreated": ("KS-AUD-N16",),
    "Kubernetes.Pod.Exec": ("KS-AUD-F11",),
    "Kubernetes.Ingress.NoTLS": ("KS-AUD-F53",),
    "Kubernetes.Service.NodePort.Deployed": ("KS-AUD-F08",),
    "Kubernetes.Pod.Host.IPC": ("KS-AUD-N21",),
    "Kubernetes.Pod.Host.Network": ("KS-AUD-N21",),
    "Kubernetes.Pod.Host.PID": ("KS-AUD-N21",),
    "Kubernetes.Pod.Privileged.Created": ("KS-AUD-N22",),
    "Kubernetes.Role.PodExec": ("KS-AUD-N23",),
    "Kubernetes.Role.Wildcard": ("KS-AUD-N23",),
    "Kubernetes.Role.WritePermissions": ("KS-AUD-F20",),
    "Kubernetes.SystemRole.Modified": ("KS-AUD-F17",),
}
