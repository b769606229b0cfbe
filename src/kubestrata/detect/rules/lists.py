"""What the rules match against. Falco's k8saudit lists are data, loaded from
detect/data/falco_k8saudit_lists.yaml (upstream names, source and commit in its header); our own
lists and patterns follow, each with why."""

from __future__ import annotations

import re

from kubestrata.packagedata import load_yaml

_FALCO = load_yaml("kubestrata.detect", "data/falco_k8saudit_lists.yaml")
ALLOWED_K8S_USERS = frozenset(_FALCO["allowed_k8s_users"])
EKS_ALLOWED_K8S_USERS = frozenset(_FALCO["eks_allowed_k8s_users"])
SENSITIVE_MOUNT_IMAGES = frozenset(_FALCO["k8s_audit_sensitive_mount_images"])
PRIVILEGED_IMAGES = frozenset(_FALCO["k8s_audit_privileged_images"])
SENSITIVE_HOST_PATHS = frozenset(_FALCO["sensitive_vol_mount"])
HOSTNETWORK_IMAGES = frozenset(_FALCO["k8s_audit_hostnetwork_images"])
HOSTPID_IMAGES = frozenset(_FALCO["k8s_audit_hostpid_images"] or ())
HOSTIPC_IMAGES = frozenset(_FALCO["k8s_audit_hostipc_images"] or ())
ALLOWED_NAMESPACES = frozenset(_FALCO["allowed_namespaces"])
ALLOWED_KUBE_NAMESPACE_IMAGES = frozenset(_FALCO["allowed_kube_namespace_image_list"])
KNOWN_SA_LIST = frozenset(_FALCO["known_sa_list"])
FULL_ADMIN_K8S_USERS = frozenset(_FALCO["full_admin_k8s_users"])
CONFIGMAP_CREDENTIAL_WORDS = tuple(_FALCO["contains_private_credentials"])
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")

MODIFY = frozenset({"create", "update", "patch"})
READ_VERBS = frozenset({"get", "list", "watch"})
SYSTEM_NAMESPACES = frozenset({
    "kube-system", "kube-public", "kube-node-lease", "gke-system", "gke-managed-system",
    "gke-connect", "gmp-system", "calico-system", "tigera-operator", "amazon-cloudwatch",
    "aws-observability",
})  # fmt: skip
WORKLOAD_RESOURCES = {
    "pods": "Pod", "deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet", "jobs": "Job", "cronjobs": "CronJob",
    "replicationcontrollers": "ReplicationController", "podtemplates": "PodTemplate",
}  # fmt: skip
ADMIN_ROLES = frozenset({"cluster-admin", "admin"})
PRIVILEGED_CLUSTER_ROLES = frozenset({
    "cluster-admin", "admin", "edit", "system:masters", "system:kube-controller-manager",
    "system:kube-scheduler", "system:node", "system:controller:clusterrole-aggregation-controller",
})  # fmt: skip
DANGEROUS_CAPABILITIES = frozenset({
    "ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "BPF", "PERFMON", "DAC_READ_SEARCH",
    "SYS_RAWIO", "SYS_BOOT",
})  # fmt: skip
# GuardDuty's sensitive host paths for the (retired) ContainerWithSensitiveMount type are not
# published; Falco's list is the documented closest set.
GD_SENSITIVE_PATHS = SENSITIVE_HOST_PATHS
SUSPICIOUS_IMAGE = re.compile(
    r"(?:^|/)(?:kali(?:linux)?|metasploit\w*|parrotsec|nmap|masscan|xmrig|xmr-stak|cpuminer|"
    r"minerd|ncat|netcat|socat|kube-hunter|peirates|botb|deepce|cdk|traitor|linpeas|"
    r"impacket|responder|sliver|empire|mimikatz|chisel)(?:[:@/]|$)",
    re.IGNORECASE,
)
REVERSE_SHELL = re.compile(
    r"/dev/(?:tcp|udp)/|\bnc(?:at)?\b.*\s-[a-z]*e\b|\bsocat\b.*\bexec:|\bbash\s+-i\b|"
    r"\bsh\s+-i\b.*[<>]|python\d?\s+-c\s+.*socket|perl\s+-e\s+.*socket|\bmkfifo\b.*\bnc\b|"
    r"\bxmrig\b|stratum\+tcp://",
    re.IGNORECASE,
)
DOWNLOAD_AND_RUN = re.compile(r"\b(?:curl|wget)\b[^|;]*\|\s*(?:ba|z|da)?sh\b", re.IGNORECASE)
# Instance metadata (AWS, Azure, GCP, OpenStack: 169.254.169.254; AWS IPv6 fd00:ec2::254), the EKS
# Pod Identity agent (169.254.170.23, fd00:ec2::23), Azure's WireServer (168.63.129.16) and GCP's
# metadata host names
METADATA_SERVICE = re.compile(
    r"169\.254\.169\.254|169\.254\.170\.23\b|fd00:ec2::(?:254|23)\b|168\.63\.129\.16\b"
    r"|metadata\.google\.internal|\bmetadata\.goog\b",
    re.IGNORECASE,
)
HOST_SECRETS = re.compile(r"/etc/shadow\b|/root/\.ssh|/\.aws/credentials|/etc/kubernetes/(?:pki|admin\.conf)")
# Projected tokens: the Kubernetes ServiceAccount token, EKS IRSA (eks.amazonaws.com) and EKS Pod
# Identity (pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token), AKS workload identity
# (/var/run/secrets/azure/tokens/azure-identity-token), custom projections under
# /var/run/secrets/tokens; and the environment variables that name them
# (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, AZURE_FEDERATED_TOKEN_FILE)
SA_TOKEN = re.compile(
    r"(?:/var)?/run/secrets/(?:kubernetes\.io/serviceaccount|eks\.amazonaws\.com/serviceaccount"
    r"|pods\.eks\.amazonaws\.com/serviceaccount|azure/tokens|tokens)"
    r"|\b(?:AWS_WEB_IDENTITY_TOKEN_FILE|AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE|AZURE_FEDERATED_TOKEN_FILE)\b"
)
