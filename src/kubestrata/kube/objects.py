"""Kubernetes objects as plain dicts plus where they came from and who they are."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# Kinds that live outside namespaces. Anything else defaults to the "default" namespace when loaded
# from a manifest without one, as kubectl apply would place it.
# the well-known label that names the tool managing an object (reports kubestrata writes and prunes)
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubestrata"
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "StorageClass",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "PriorityClass",
        "RuntimeClass",
        "APIService",
        "CSIDriver",
        "CSINode",
        "IngressClass",
        "PodSecurityPolicy",
        "VolumeAttachment",
        "AdminNetworkPolicy",
        "BaselineAdminNetworkPolicy",
        "ClusterNetworkPolicy",
        "CertificateSigningRequest",
        "FlowSchema",
        "PriorityLevelConfiguration",
        "ClusterPolicy",
        "ClusterPolicyReport",
        "KubeletConfiguration",  # a kubelet config file or configz, not an API object
        "EncryptionConfiguration",  # an API server config file, not an API object
    }
)


@dataclass(frozen=True, slots=True)
class Source:
    """Where an object was read from: file (or "-", or a cluster URL), document index, 1-based line."""

    file: str
    document: int = 0
    line: int | None = None

    def __str__(self) -> str:
        s = self.file
        if self.line:
            s += f":{self.line}"
        return s + f" (document {self.document})"


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """Identity of an object: apiVersion group, kind, namespace ("" if cluster-scoped), name."""

    kind: str
    namespace: str
    name: str
    api_version: str = ""

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""


_NO_METADATA: dict[str, Any] = {}


@dataclass(slots=True)
class KubeObject:
    """One object as the API server would return it (``raw``), with its source and identity."""

    raw: dict[str, Any]
    source: Source = field(default_factory=lambda: Source("<memory>"))

    # The identity properties run for every object in every check: each reads raw once and skips
    # str() when the value is a string already (what the loader guarantees for kind).
    @property
    def kind(self) -> str:
        k = self.raw.get("kind")
        return k if type(k) is str else str(k or "")

    @property
    def api_version(self) -> str:
        v = self.raw.get("apiVersion")
        return v if type(v) is str else str(v or "")

    @property
    def metadata(self) -> dict[str, Any]:
        m = self.raw.get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def name(self) -> str:
        m = self.raw.get("metadata")
        if not isinstance(m, dict):
            return ""
        n = m.get("name") or m.get("generateName")
        return n if type(n) is str else str(n or "")

    @property
    def namespace(self) -> str:
        raw = self.raw
        k = raw.get("kind")
        if (k if type(k) is str else str(k or "")) in CLUSTER_SCOPED_KINDS:
            return ""
        m = raw.get("metadata")
        ns = m.get("namespace") if isinstance(m, dict) else None
        return (ns if type(ns) is str else str(ns)) if ns else "default"

    @property
    def labels(self) -> dict[str, str]:
        lab = self.metadata.get("labels")
        return lab if isinstance(lab, dict) else {}

    @property
    def annotations(self) -> dict[str, str]:
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, dict) else {}

    @property
    def ref(self) -> ObjectRef:
        # kind, namespace, name and api_version as the properties above give them, reading raw once
        raw = self.raw
        k = raw.get("kind")
        kind = k if type(k) is str else str(k or "")
        m = raw.get("metadata")
        if not isinstance(m, dict):
            m = _NO_METADATA
        n = m.get("name") or m.get("generateName")
        if kind in CLUSTER_SCOPED_KINDS:
            ns = ""
        else:
            v = m.get("namespace")
            ns = (v if type(v) is str else str(v)) if v else "default"
        a = raw.get("apiVersion")
        return ObjectRef(
            kind, ns, n if type(n) is str else str(n or ""), a if type(a) is str else str(a or "")
        )

    def __str__(self) -> str:
        return str(self.ref)


def parse_time(value: Any) -> dt.datetime | None:
    """A metadata timestamp (RFC 3339, as creationTimestamp) as an aware datetime (UTC when it names
    no zone); None when it is absent or not a time."""
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
