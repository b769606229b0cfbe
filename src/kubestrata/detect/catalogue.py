"""Rule catalogue data: what each detection is, how bad, and what it corresponds to elsewhere.

Ids: KS-AUD-F* Falco k8saudit parity (falcosecurity/plugins plugins/k8saudit/rules/
k8s_audit_rules.yaml), KS-AUD-G* GuardDuty EKS audit-log finding types (reference §1.1),
KS-AUD-N* our own detections for attacks neither covers (Sigma / Elastic / Panther equivalents).
The matching logic lives in rules.py; this module is data only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubestrata.findings import Severity

FALCO_PRIORITY = {
    "EMERGENCY": Severity.CRITICAL,
    "ALERT": Severity.CRITICAL,
    "CRITICAL": Severity.CRITICAL,
    "ERROR": Severity.HIGH,
    "WARNING": Severity.MEDIUM,
    "NOTICE": Severity.LOW,
    "INFO": Severity.INFO,
    "DEBUG": Severity.INFO,
}


@dataclass(frozen=True)
class RuleSpec:
    id: str
    title: str
    severity: Severity
    description: str
    mitre: tuple[str, ...] = ()
    guardduty: tuple[str, ...] = ()
    falco: tuple[str, ...] = ()  # current name first, then names used by older rule files
    sigma: tuple[str, ...] = ()
    elastic: tuple[str, ...] = ()
    enabled: bool = True  # False: silent until configured (as Falco ships it)
    extra: dict[str, str] = field(default_factory=dict)

    def references(self) -> dict[str, list[str]]:
        refs = {
            "mitre": list(self.mitre),
            "guardduty": list(self.guardduty),
            "falco": list(self.falco),
            "sigma": list(self.sigma),
            "elastic": list(self.elastic),
        }
        return {k: v for k, v in refs.items() if v}


def _f(
    id_: str, name: str, prio: str, desc: str, mitre: tuple[str, ...], *, legacy=(), sigma=(), enabled=True
):
    return RuleSpec(
        id_,
        name,
        FALCO_PRIORITY[prio],
        desc,
        mitre,
        falco=(name, *legacy),
        sigma=tuple(sigma),
        enabled=enabled,
    )


SIGMA = "SigmaHQ/sigma:rules/application/kubernetes/audit/"

FALCO_RULES: list[RuleSpec] = [
    _f(
        "KS-AUD-F01",
        "Disallowed K8s User",
        "WARNING",
        "A non-system user outside Falco's allowed_k8s_users / eks_allowed_k8s_users lists made a request.",
        ("T1078",),
    ),
    _f(
        "KS-AUD-F02",
        "Create Disallowed Pod",
        "WARNING",
        "A pod was created with an image outside the configured allowed images (silent until "
        "--allowed-image is given, as Falco's allowed_k8s_containers).",
        ("T1610",),
        enabled=False,
    ),
    _f(
        "KS-AUD-F03",
        "Create Privileged Pod",
        "WARNING",
        "An attempt to start a pod with a privileged container whose image is not on Falco's "
        "k8s_audit_privileged_images list.",
        ("T1610", "T1611"),
        sigma=(SIGMA + "kubernetes_audit_privileged_pod_creation.yml",),
    ),
    _f(
        "KS-AUD-F04",
        "Create Sensitive Mount Pod",
        "WARNING",
        "An attempt to start a pod with a hostPath volume on a sensitive host directory (/proc, "
        "/, /etc, container runtime sockets, kubelet state ...).",
        ("T1611",),
        sigma=(SIGMA + "kubernetes_audit_hostpath_mount.yml",),
    ),
    _f(
        "KS-AUD-F05",
        "Create HostNetwork Pod",
        "WARNING",
        "An attempt to start a pod in the host network namespace.",
        ("T1611",),
    ),
    _f(
        "KS-AUD-F06",
        "Create HostPid Pod",
        "WARNING",
        "An attempt to start a pod in the host PID namespace.",
        ("T1611",),
    ),
    _f(
        "KS-AUD-F07",
        "Create HostIPC Pod",
        "WARNING",
        "An attempt to start a pod in the host IPC namespace.",
        ("T1611",),
    ),
    _f(
        "KS-AUD-F08",
        "Create NodePort Service",
        "WARNING",
        "An attempt to create a NodePort Service, which opens a port on every node.",
        ("T1133",),
    ),
    _f(
        "KS-AUD-F09",
        "Create/Modify Configmap With Private Credentials",
        "WARNING",
        "A ConfigMap created or modified whose data mentions AWS keys, password or passphrase.",
        ("T1552",),
    ),
    _f(
        "KS-AUD-F10",
        "Anonymous Request Allowed",
        "WARNING",
        "A request by system:anonymous was authorized (health endpoints excepted).",
        ("T1078.001",),
    ),
    _f(
        "KS-AUD-F11",
        "Attach/Exec Pod",
        "NOTICE",
        "Someone attached to or executed a command in a pod (seen at ResponseStarted).",
        ("T1609",),
        sigma=(SIGMA + "kubernetes_audit_exec_into_container.yml",),
    ),
    _f(
        "KS-AUD-F12",
        "port-forward",
        "NOTICE",
        "Someone port-forwarded to a pod (Falco evaluates this rule at every stage).",
        ("T1090",),
    ),
    _f(
        "KS-AUD-F13",
        "EphemeralContainers Created",
        "NOTICE",
        "An ephemeral (debug) container was added to a pod.",
        ("T1609",),
    ),
    _f(
        "KS-AUD-F14",
        "Create Disallowed Namespace",
        "WARNING",
        "A namespace outside Falco's allowed_namespaces was created.",
        ("T1610",),
    ),
    _f(
        "KS-AUD-F15",
        "Pod Created in Kube Namespace",
        "WARNING",
        "A pod was created in kube-system or kube-public with an image not on Falco's allowed list.",
        ("T1610",),
        sigma=(SIGMA + "kubernetes_audit_pod_in_system_namespace.yml",),
    ),
    _f(
        "KS-AUD-F16",
        "Service Account Created in Kube Namespace",
        "WARNING",
        "A ServiceAccount not in Falco's known controller list was created in kube-system or kube-public.",
        ("T1136",),
        sigma=(SIGMA + "kubernetes_audit_serviceaccount_creation.yml",),
    ),
    _f(
        "KS-AUD-F17",
        "System ClusterRole Modified/Deleted",
        "WARNING",
        "A Role or ClusterRole named system:* was modified or deleted.",
        ("T1098",),
    ),
    _f(
        "KS-AUD-F18",
        "Attach to cluster-admin Role",
        "WARNING",
        "A ClusterRoleBinding to cluster-admin was created.",
        ("T1098.006",),
        sigma=(SIGMA + "kubernetes_audit_rolebinding_modification.yml",),
    ),
    _f(
        "KS-AUD-F19",
        "ClusterRole With Wildcard Created",
        "WARNING",
        "A Role or ClusterRole with a * resource or verb was created.",
        ("T1098.006",),
    ),
    _f(
        "KS-AUD-F20",
        "ClusterRole With Write Privileges Created",
        "NOTICE",
        "A Role or ClusterRole granting create/update/patch/delete/deletecollection was created.",
        ("T1098.006",),
    ),
    _f(
        "KS-AUD-F21",
        "ClusterRole With Pod Exec Created",
        "WARNING",
        "A Role or ClusterRole granting pods/exec was created.",
        ("T1098.006",),
    ),
]

# (resource, Falco's display word, MITRE) for the activity rules "K8s <X> Created/Deleted"
ACTIVITY = [
    ("deployments", "Deployment", ("T1610",), None),
    ("services", "Service", ("T1133",), None),
    ("configmaps", "ConfigMap", ("T1552",), None),
    ("namespaces", "Namespace", ("T1610",), None),
    ("serviceaccounts", "Serviceaccount", ("T1136",), None),
    ("roles", "Role", ("T1098",), "K8s Role/Clusterrole"),
    ("clusterroles", "ClusterRole", ("T1098",), "K8s Role/Clusterrole"),
    ("rolebindings", "RoleBinding", ("T1098",), "K8s Role/Clusterrolebinding"),
    ("clusterrolebindings", "ClusterRoleBinding", ("T1098",), "K8s Role/Clusterrolebinding"),
    ("secrets", "Secret", ("T1552.007",), None),
]
for _i, (_res, _word, _mitre, _legacy) in enumerate(ACTIVITY):
    for _j, _action in enumerate(("Created", "Deleted")):
        FALCO_RULES.append(
            _f(
                f"KS-AUD-F{30 + 2 * _i + _j}",
                f"K8s {_word} {_action}",
                "INFO",
                f"A {_word} was {_action.lower()} successfully (activity record)"
                + (" by a non-system user outside kube-system." if _res == "secrets" else "."),
                _mitre,
                legacy=(f"{_legacy} {_action}",) if _legacy else (),
            )
        )
FALCO_RULES += [
    _f("KS-AUD-F50", "K8s Secret Get Successfully", "ERROR",
       "A Secret was read with get.", ("T1552.007",), sigma=(SIGMA + "kubernetes_audit_secrets_enumeration.yml",)),
    _f("KS-AUD-F51", "K8s Secret Get Unsuccessfully Tried", "WARNING",
       "A get of a Secret failed.", ("T1552.007",)),
    _f("KS-AUD-F52", "Full K8s Administrative Access", "WARNING",
       "A request by a default administrator user name (silent until --full-admin-users is given, "
       "as Falco's allowed_full_admin_users).", ("T1078",), enabled=False),
    _f("KS-AUD-F53", "Ingress Object without TLS Certificate Created", "WARNING",
       "An Ingress without spec.tls was created.", ("T1040",)),
    _f("KS-AUD-F54", "Untrusted Node Successfully Joined the Cluster", "ERROR",
       "A Node not in --allowed-node joined (silent until configured).", ("T1078",), enabled=False),
    _f("KS-AUD-F55", "Untrusted Node Unsuccessfully Tried to Join the Cluster", "WARNING",
       "A Node not in --allowed-node failed to join (silent until configured).", ("T1078",), enabled=False),
]  # fmt: skip

# --- GuardDuty -----------------------------------------------------------------------------

GD_TACTICS = {
    # tactic: (MITRE tactic technique, severity per source: Malicious, Custom, Tor, Anonymous)
    "CredentialAccess": (("T1552.007",), ("high", "high", "high", "high")),
    "DefenseEvasion": (("T1562.001",), ("high", "high", "high", "high")),
    "Discovery": (("T1613",), ("medium", "medium", "medium", "medium")),
    "Impact": (("T1485",), ("high", "high", "high", "high")),
    "Persistence": (("T1098",), ("medium", "medium", "medium", "high")),
}
GD_SOURCES = [
    ("MaliciousIPCaller", "from an IP address on the malicious-IP threat list"),
    ("MaliciousIPCaller.Custom", "from an IP address on your custom threat list"),
    ("TorIPCaller", "from a Tor exit node"),
    ("SuccessfulAnonymousAccess", "successfully by system:anonymous"),
]
GD_SOURCE_TECHNIQUE = {"TorIPCaller": "T1090.003", "SuccessfulAnonymousAccess": "T1078.001"}

GUARDDUTY_RULES: list[RuleSpec] = [
    RuleSpec("KS-AUD-G01", "Command executed in a kube-system pod", Severity.MEDIUM,
             "pods/exec into a pod in kube-system.", ("T1609",),
             guardduty=("Execution:Kubernetes/ExecInKubeSystemPod",)),
    RuleSpec("KS-AUD-G02", "Anonymous access granted by a binding", Severity.HIGH,
             "A RoleBinding or ClusterRoleBinding binding system:anonymous or the group "
             "system:unauthenticated was created, or changed to, successfully.",
             ("T1098.006",), guardduty=("Policy:Kubernetes/AnonymousAccessGranted",)),
    RuleSpec("KS-AUD-G03", "Admin access given to a default ServiceAccount", Severity.HIGH,
             "A binding gave the default ServiceAccount of a namespace (or a group that includes it, "
             "system:serviceaccounts[:<ns>]) admin or cluster-admin.",
             ("T1098.006",), guardduty=("Policy:Kubernetes/AdminAccessToDefaultServiceAccount",)),
    RuleSpec("KS-AUD-G04", "Kubernetes dashboard exposed to the internet", Severity.MEDIUM,
             "The Kubernetes dashboard Service was made an internet-facing LoadBalancer.", ("T1133",),
             guardduty=("Policy:Kubernetes/ExposedDashboard",)),
    RuleSpec("KS-AUD-G05", "Kubeflow dashboard exposed to the internet", Severity.MEDIUM,
             "The Kubeflow central dashboard Service was made an internet-facing LoadBalancer.", ("T1133",),
             guardduty=("Policy:Kubernetes/KubeflowDashboardExposed",)),
    RuleSpec("KS-AUD-G06", "Privileged container from an image new to privileged use", Severity.MEDIUM,
             "A privileged container was started from an image never before used for privileged "
             "containers in this cluster (first-seen state).", ("T1610", "T1611"),
             guardduty=("PrivilegeEscalation:Kubernetes/PrivilegedContainer",)),
    RuleSpec("KS-AUD-G07", "Container with a writable sensitive host mount", Severity.MEDIUM,
             "A container was started with a sensitive host path mounted writable.", ("T1611",),
             guardduty=("Persistence:Kubernetes/ContainerWithSensitiveMount",)),
]  # fmt: skip
_n = 10
for _tactic, (_mitre, _sevs) in GD_TACTICS.items():
    for (_src, _words), _sev in zip(GD_SOURCES, _sevs, strict=True):
        GUARDDUTY_RULES.append(
            RuleSpec(
                f"KS-AUD-G{_n}", f"{_tactic} API called {_words}", Severity(_sev),
                f"An API in our {_tactic} bucket (see docs/detect.md, API-to-tactic map) was called {_words}.",
                (*_mitre, GD_SOURCE_TECHNIQUE.get(_src, "T1078")),
                guardduty=(f"{_tactic}:Kubernetes/{_src}",),
            )
        )  # fmt: skip
        _n += 1
GUARDDUTY_RULES += [
    RuleSpec("KS-AUD-G40", "Unusual secrets access", Severity.MEDIUM,
             "A user read secrets in a way never seen before in this cluster (new user x verb, "
             "user agent or source network).", ("T1552.007",),
             guardduty=("CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed",)),
    RuleSpec("KS-AUD-G41", "Unusual binding to a powerful role", Severity.MEDIUM,
             "An unusual RoleBinding/ClusterRoleBinding to an over-permissive role or in a sensitive "
             "namespace; high when the role is admin or cluster-admin.", ("T1098.006",),
             guardduty=("PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated",)),
    RuleSpec("KS-AUD-G42", "Unusual exec into a pod", Severity.MEDIUM,
             "pods/exec by a user, user agent or network never seen doing it in this cluster.", ("T1609",),
             guardduty=("Execution:Kubernetes/AnomalousBehavior.ExecInPod",)),
    RuleSpec("KS-AUD-G43", "Unusual workload with a privileged container", Severity.HIGH,
             "An unusual workload create/modify with a privileged container.", ("T1610", "T1611"),
             guardduty=("PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",)),
    RuleSpec("KS-AUD-G44", "Unusual workload with a sensitive host mount", Severity.HIGH,
             "An unusual workload create/modify with a sensitive hostPath in volumeMounts.", ("T1611",),
             guardduty=("Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount",)),
    RuleSpec("KS-AUD-G45", "Unusual workload deployed", Severity.LOW,
             "An unusual workload create/modify (new image or new actor); medium when the image or "
             "command looks like an attack tool or a reverse shell.", ("T1610",),
             guardduty=("Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed",)),
    RuleSpec("KS-AUD-G46", "Unusual role with excessive permissions", Severity.LOW,
             "An unusual Role/ClusterRole create with wildcard, escalate/bind/impersonate, secrets, "
             "pods/exec or nodes/proxy permissions.", ("T1098.006",),
             guardduty=("PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated",)),
    RuleSpec("KS-AUD-G47", "Unusual check for powerful permissions", Severity.LOW,
             "An unusual successful SelfSubjectAccessReview/RulesReview for a powerful permission "
             "(kubectl auth can-i).", ("T1069",), sigma=(SIGMA + "kubernetes_audit_rbac_permisions_listing.yml",),
             guardduty=("Discovery:Kubernetes/AnomalousBehavior.PermissionChecked",)),
]  # fmt: skip

ELASTIC = "elastic/detection-rules:rules/integrations/kubernetes/"

NATIVE_RULES: list[RuleSpec] = [
    RuleSpec("KS-AUD-N01", "Admission webhook configuration created", Severity.MEDIUM,
             "A Mutating/ValidatingWebhookConfiguration was created, or its targets or rules changed "
             "(create, update, patch, server-side apply): it can read or rewrite every matching API request.", ("T1546", "T1554"), elastic=(ELASTIC + "persistence_kubernetes_admission_webhook_created_or_modified.toml",),
             sigma=(SIGMA + "kubernetes_audit_change_admission_controller.yml",)),
    RuleSpec("KS-AUD-N02", "Client certificate signing request created", Severity.LOW,
             "A user (control-plane identities excepted, by name) requested a kube-apiserver client "
             "certificate: long-lived credentials.",
             ("T1098.001",), elastic=(ELASTIC + "persistence_kubernetes_client_certificate_signing_request_created_or_approved.toml",)),
    RuleSpec("KS-AUD-N03", "ClusterRoleBinding to a privileged role", Severity.MEDIUM,
             "A ClusterRoleBinding to cluster-admin, admin, edit or a control-plane role was created, "
             "or its subjects changed (the API server's bootstrap bindings excepted).",
             ("T1098.006",), sigma=(SIGMA + "kubernetes_audit_rolebinding_modification.yml",)),
    RuleSpec("KS-AUD-N04", "CronJob created or modified", Severity.LOW,
             "A CronJob was created or modified: scheduled code execution.", ("T1053.007",),
             sigma=(SIGMA + "kubernetes_audit_cronjob_modification.yml",)),
    RuleSpec("KS-AUD-N05", "DaemonSet created", Severity.LOW,
             "A user (control-plane identities excepted) created a DaemonSet, also by server-side apply: "
             "code on every node.", ("T1610",)),
    RuleSpec("KS-AUD-N06", "Files copied out of a pod (kubectl cp)", Severity.MEDIUM,
             "An exec ran tar writing an archive to stdout, as kubectl cp from a pod does.", ("T1041",)),
    RuleSpec("KS-AUD-N07", "Service account token read through exec", Severity.HIGH,
             "An exec command read a projected service account token.", ("T1528", "T1552.007"),
             elastic=(ELASTIC + "credential_access_kubernetes_pod_exec_sensitive_file_access.toml",)),
    RuleSpec("KS-AUD-N08", "Suspicious command executed in a pod", Severity.HIGH,
             "An exec command looks like a reverse shell, a download-and-run, a metadata-service "
             "query or a read of host credentials.", ("T1609", "T1059"),
             elastic=(ELASTIC + "execution_kubernetes_pod_exec_potential_reverse_shell.toml",
                      ELASTIC + "credential_access_kubernetes_pod_exec_cloud_instance_metadata.toml")),
    RuleSpec("KS-AUD-N09", "Pod with dangerous capabilities", Severity.HIGH,
             "A pod or workload template whose containers add SYS_ADMIN, NET_ADMIN, BPF, SYS_PTRACE, "
             "SYS_MODULE or ALL was created or changed to.", ("T1611",),
             elastic=(ELASTIC + "privilege_escalation_container_created_with_excessive_linux_capabilities.toml",)),
    RuleSpec("KS-AUD-N10", "Pod with a hostPath volume", Severity.MEDIUM,
             "A pod or workload template with any hostPath volume was created or changed to "
             "(control-plane identities in system namespaces excepted).", ("T1611",), sigma=(SIGMA + "kubernetes_audit_hostpath_mount.yml",)),
    RuleSpec("KS-AUD-N11", "Pod created directly in a system namespace", Severity.MEDIUM,
             "A user (control-plane identities excepted) created a pod in kube-system, kube-public, "
             "kube-node-lease or a provider system namespace.", ("T1610", "T1036.005"),
             sigma=(SIGMA + "kubernetes_audit_pod_in_system_namespace.yml",)),
    RuleSpec("KS-AUD-N12", "Role with node proxy permissions created", Severity.HIGH,
             "A Role/ClusterRole granting nodes/proxy (or nodes/* or *) was created or changed to: "
             "kubelet API access.",
             ("T1098.006", "T1611")),
    RuleSpec("KS-AUD-N13", "Repeated denied secret reads", Severity.MEDIUM,
             "A user had --threshold (default 20) secret gets denied or missing within the window.",
             ("T1552.007",)),
    RuleSpec("KS-AUD-N14", "Bulk secret access", Severity.MEDIUM,
             "A user read many distinct secrets (default 15) within the window.", ("T1552.007",),
             sigma=(SIGMA + "kubernetes_audit_secrets_enumeration.yml",)),
    RuleSpec("KS-AUD-N15", "All secrets listed across namespaces", Severity.HIGH,
             "A user (control-plane identities excepted) listed secrets cluster-wide (GET /api/v1/secrets).", ("T1552.007",),
             elastic=(ELASTIC + "credential_access_kubernetes_secrets_list_cluster_and_sensitive_namespaces.toml",)),
    RuleSpec("KS-AUD-N16", "Service account token requested", Severity.LOW,
             "A token was minted through serviceaccounts/token by a user (kubelets and system "
             "components in system namespaces excepted).", ("T1528",),
             elastic=(ELASTIC + "credential_access_kubernetes_service_account_token_created_via_tokenrequest.toml",)),
    RuleSpec("KS-AUD-N17", "System identity used from a public address", Severity.HIGH,
             "A system:/eks:/aks: identity made a successful request from a public IP outside the "
             "configured cloud ranges: a stolen token.", ("T1078", "T1528")),
    RuleSpec("KS-AUD-N18", "Repeated forbidden responses from a public address", Severity.LOW,
             "One public source IP received many (default 10) 403 responses within the window.",
             ("T1613", "T1110"), sigma=(SIGMA + "kubernetes_audit_unauthorized_unauthenticated_actions.yml",)),
    RuleSpec("KS-AUD-N19", "Anonymous request from a public address", Severity.LOW,
             "system:anonymous reached the API server from a public IP (allowed or not): scanning.",
             ("T1595", "T1078.001")),
    RuleSpec("KS-AUD-N20", "Audit events deleted", Severity.MEDIUM,
             "Kubernetes Events were deleted, which hides activity.", ("T1070",),
             sigma=(SIGMA + "kubernetes_audit_events_deleted.yml",)),
    RuleSpec("KS-AUD-N21", "Pod sharing a host namespace created", Severity.MEDIUM,
             "A pod or workload template using hostNetwork, hostPID or hostIPC was created or changed to "
             "(control-plane identities in system namespaces excepted). Falco's KS-AUD-F05..F07 also "
             "report failed pod creations.",
             ("T1611",)),
    RuleSpec("KS-AUD-N22", "Privileged or root container created", Severity.HIGH,
             "A pod or workload template with a privileged container or one running as UID 0 was "
             "created or changed to (control-plane identities in system namespaces excepted).", ("T1610", "T1611"),
             sigma=(SIGMA + "kubernetes_audit_privileged_pod_creation.yml",)),
    RuleSpec("KS-AUD-N23", "Role with excessive permissions created", Severity.MEDIUM,
             "A user (control-plane identities excepted) created a Role/ClusterRole, or changed one to "
             "have, wildcards, escalate/bind/impersonate, secret reads, pods/exec or nodes/proxy.", ("T1098.006",),
             elastic=(ELASTIC + "persistence_sensitive_role_creation_or_modification.toml",)),
    RuleSpec("KS-AUD-N24", "Workload with a download-and-run or reverse-shell command", Severity.HIGH,
             "A pod, workload template or ephemeral container was created or changed to run a command "
             "that pipes curl/wget into a shell or opens a reverse shell (a `curl | sh` CronJob); "
             "controllers creating pods from a template are exempt, the template's author was judged.",
             ("T1610", "T1059", "T1053.007")),
]  # fmt: skip

CATALOGUE: dict[str, RuleSpec] = {r.id: r for r in [*FALCO_RULES, *GUARDDUTY_RULES, *NATIVE_RULES]}
