"""kubestrata's Cedar schema for Kubernetes.

Authorization (namespace ``k8s``) follows the reference project's entity model
(cedar-access-control-for-k8s ``cedarschema/k8s-authorization.cedarschema``): principals ``User``,
``ServiceAccount`` and ``Node`` are members of ``Group``; resources are ``Resource`` (API objects),
``NonResourceURL`` and, for ``impersonate``, the impersonated identity (``User``, ``Group``, ``Node``,
``ServiceAccount``, ``PrincipalUID``, ``Extra``).

Admission (namespace ``k8s::admission``) declares the four operations as children of
``Action::"all"`` and object types named ``<group>::<version>::<Kind>`` whose maps (labels,
annotations, ConfigMap/Secret data, selectors) are sets of ``meta::v1::KeyValue`` records. Unlike the
reference project's 96 KB OpenAPI-generated schema, only the kinds in ``ADMISSION_KINDS`` are declared,
with their metadata and a few commonly policed fields; the object is still passed whole to Cedar, so a
policy may only *reference* declared attributes (strict validation), never fail on undeclared ones.
"""

from __future__ import annotations

import functools

import cedarpy

PRINCIPAL_TYPES = ("Group", "Node", "ServiceAccount", "User")

# verb -> resource entity types (reference §1.4, plus Resource for impersonate requests that do not name
# an identity, such as impersonate on an arbitrary resource, which RBAC still evaluates)
AUTHZ_ACTIONS: dict[str, tuple[str, ...]] = {
    **{v: ("Resource", "NonResourceURL") for v in ("get", "delete", "patch")},
    **{
        v: ("Resource",)
        for v in (
            "create",
            "update",
            "list",
            "watch",
            "deletecollection",
            "bind",
            "escalate",
            "use",
            "approve",
            "sign",
            "attest",
        )
    },
    **{v: ("NonResourceURL",) for v in ("head", "options", "post", "put")},
    "impersonate": ("Extra", "Group", "Node", "PrincipalUID", "ServiceAccount", "User", "Resource"),
}

ADMISSION_OPERATIONS = ("create", "update", "delete", "connect")

_POD_SPEC = (
    "{ hostNetwork?: Bool, hostPID?: Bool, hostIPC?: Bool, serviceAccountName?: String, "
    "automountServiceAccountToken?: Bool, nodeName?: String, priorityClassName?: String, "
    "nodeSelector?: Set<meta::v1::KeyValue> }"
)
_TEMPLATE = "{ metadata?: meta::v1::ObjectMeta, spec?: " + _POD_SPEC + " }"
_WORKLOAD = "{ replicas?: Long, template?: " + _TEMPLATE + ", selector?: meta::v1::LabelSelector }"

# (cedar namespace, version, kind) -> extra attributes besides metadata and oldObject
ADMISSION_KINDS: dict[tuple[str, str, str], str] = {
    (
        "core",
        "v1",
        "ConfigMap",
    ): "data?: Set<meta::v1::KeyValue>, binaryData?: Set<meta::v1::KeyValue>, immutable?: Bool",
    (
        "core",
        "v1",
        "Secret",
    ): "data?: Set<meta::v1::KeyValue>, stringData?: Set<meta::v1::KeyValue>, type?: String, immutable?: Bool",
    ("core", "v1", "Pod"): "spec?: " + _POD_SPEC,
    ("core", "v1", "Namespace"): "",
    (
        "core",
        "v1",
        "Service",
    ): "spec?: { type?: String, selector?: Set<meta::v1::KeyValue>, externalName?: String }",
    ("core", "v1", "ServiceAccount"): "automountServiceAccountToken?: Bool",
    ("core", "v1", "Node"): "",
    ("core", "v1", "PersistentVolumeClaim"): "",
    ("core", "v1", "PodExecOptions"): "command?: Set<String>, container?: String, stdin?: Bool, tty?: Bool",
    ("core", "v1", "PodAttachOptions"): "container?: String, stdin?: Bool, tty?: Bool",
    ("core", "v1", "PodPortForwardOptions"): "ports?: Set<Long>",
    ("core", "v1", "PodProxyOptions"): "path?: String",
    ("apps", "v1", "Deployment"): "spec?: " + _WORKLOAD,
    ("apps", "v1", "StatefulSet"): "spec?: " + _WORKLOAD,
    ("apps", "v1", "DaemonSet"): "spec?: " + _WORKLOAD,
    ("apps", "v1", "ReplicaSet"): "spec?: " + _WORKLOAD,
    ("batch", "v1", "Job"): "spec?: { template?: " + _TEMPLATE + " }",
    ("batch", "v1", "CronJob"): "spec?: { schedule?: String, suspend?: Bool }",
    ("networking", "v1", "Ingress"): "spec?: { ingressClassName?: String }",
    ("networking", "v1", "NetworkPolicy"): "",
    ("rbac", "v1", "Role"): "",
    ("rbac", "v1", "ClusterRole"): "",
    ("rbac", "v1", "RoleBinding"): "roleRef?: { apiGroup?: String, kind?: String, name?: String }",
    ("rbac", "v1", "ClusterRoleBinding"): "roleRef?: { apiGroup?: String, kind?: String, name?: String }",
}


def cedar_namespace_for_group(group: str) -> str:
    """The Cedar namespace an API group's kinds live in: "" -> core, "apps" -> apps,
    "rbac.authorization.k8s.io" -> rbac; other dotted groups join their labels with underscores."""
    if not group:
        return "core"
    if group.endswith(".k8s.io") or "." not in group:
        return group.split(".")[0].replace("-", "_")
    return "_".join(group.replace("-", "_").split("."))


def _authz_part() -> str:
    principals = "[" + ", ".join(PRINCIPAL_TYPES) + "]"
    lines = [
        "namespace k8s {",
        "  type ExtraAttribute = { key: String, values: Set<String> };",
        "  type LabelRequirement = { key: String, operator: String, values: Set<String> };",
        "  type FieldRequirement = { field: String, operator: String, value: String };",
        "  entity Group = { name: String };",
        "  entity User in [Group] = { name: String, uid?: String, extra?: Set<ExtraAttribute> };",
        "  entity ServiceAccount in [Group] = { name: String, namespace: String, uid?: String, "
        "extra?: Set<ExtraAttribute> };",
        "  entity Node in [Group] = { name: String, uid?: String, extra?: Set<ExtraAttribute> };",
        "  entity PrincipalUID;",
        "  entity Extra = { key: String, value?: String };",
        "  entity NonResourceURL = { path: String };",
        "  entity Resource = { apiGroup: String, resource: String, namespace?: String, name?: String, "
        "subresource?: String, labelSelector?: Set<LabelRequirement>, fieldSelector?: Set<FieldRequirement> };",
    ]
    for verb, resources in AUTHZ_ACTIONS.items():
        lines.append(
            f'  action "{verb}" appliesTo {{ principal: {principals}, resource: [{", ".join(resources)}], '
            "context: {} };"
        )
    lines.append("}")
    return "\n".join(lines)


def _admission_part() -> str:
    out = [
        "namespace meta::v1 {",
        "  type KeyValue = { key: String, value: String };",
        "  type KeyValueStringSlice = { key: String, values?: Set<String> };",
        "  type LabelSelectorRequirement = { key: String, operator: String, values?: Set<String> };",
        "  type LabelSelector = { matchLabels?: Set<KeyValue>, "
        "matchExpressions?: Set<LabelSelectorRequirement> };",
        "  type OwnerReference = { apiVersion: String, kind: String, name: String, uid: String, "
        "controller?: Bool, blockOwnerDeletion?: Bool };",
        "  type ObjectMeta = { name?: String, generateName?: String, namespace?: String, uid?: String, "
        "resourceVersion?: String, labels?: Set<KeyValue>, annotations?: Set<KeyValue>, "
        "ownerReferences?: Set<OwnerReference>, finalizers?: Set<String> };",
        "}",
    ]
    by_ns: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for (ns, ver, kind), attrs in ADMISSION_KINDS.items():
        by_ns.setdefault((ns, ver), []).append((kind, attrs))
    for (ns, ver), kinds in by_ns.items():
        out.append(f"namespace {ns}::{ver} {{")
        for kind, attrs in kinds:
            extra = (", " + attrs) if attrs else ""
            out.append(f"  entity {kind} = {{ metadata?: meta::v1::ObjectMeta, oldObject?: {kind}{extra} }};")
        out.append("}")
    resources = ", ".join(f"{ns}::{ver}::{kind}" for (ns, ver, kind) in ADMISSION_KINDS)
    principals = ", ".join(f"k8s::{p}" for p in PRINCIPAL_TYPES)
    out.append("namespace k8s::admission {")
    out.append('  action "all";')
    for op in ADMISSION_OPERATIONS:
        out.append(
            f'  action "{op}" in ["all"] appliesTo {{ principal: [{principals}], resource: [{resources}], '
            "context: {} };"
        )
    out.append("}")
    return "\n".join(out)


SCHEMA_TEXT: str = _authz_part() + "\n\n" + _admission_part() + "\n"


@functools.cache
def schema() -> cedarpy.Schema:
    """The parsed schema handle (parsed once per process)."""
    return cedarpy.Schema.from_str(SCHEMA_TEXT)
