"""Pod Identity associations: (namespace, service account) -> role, read into the one model
(:class:`kubestrata.eks.model.PodIdentityAssociation`) from

- EKS JSON: ``aws eks describe-pod-identity-association`` (``{"association": {...}}``) or a list of them,
  ``{"associations": [...]}`` with ``roleArn`` (list-pod-identity-associations prints summaries without
  it: describe each one), or an ``EKSClusterAccess`` snapshot;
- our own kind, one object per association (a CRD-shaped object; a live cluster can hold them)::

    apiVersion: kubestrata.io/v1alpha1
    kind: PodIdentityAssociation
    metadata: {name: billing, namespace: shop}
    spec: {serviceAccount: billing, roleArn: arn:aws:iam::111122223333:role/billing,
           targetRoleArn: ..., disableSessionTags: false}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kubestrata.eks.arn import ArnError, parse_arn
from kubestrata.eks.awsjson import merge_aws_json
from kubestrata.eks.model import PodIdentityAssociation
from kubestrata.errors import InputError

API_VERSION = "kubestrata.io/v1alpha1"
KIND = "PodIdentityAssociation"
CRD_GROUP, CRD_VERSION, CRD_PLURAL = "kubestrata.io", "v1alpha1", "podidentityassociations"


class Associations:
    """Lookup by (namespace, service account); one association per service account, as EKS enforces."""

    def __init__(self, items: Iterable[PodIdentityAssociation]) -> None:
        self.by_sa: dict[tuple[str, str], PodIdentityAssociation] = {}
        for a in items:
            key = (a.namespace, a.service_account)
            if key in self.by_sa:
                raise InputError(
                    f"service account {a.namespace}/{a.service_account} has two associations "
                    f"({self.by_sa[key].field or '?'} and {a.field or '?'}); EKS allows one",
                )
            self.by_sa[key] = a

    def get(self, namespace: str, service_account: str) -> PodIdentityAssociation | None:
        return self.by_sa.get((namespace, service_account))

    def __len__(self) -> int:
        return len(self.by_sa)

    def __iter__(self) -> Iterator[PodIdentityAssociation]:
        return iter(self.by_sa.values())


def from_object(obj: dict[str, Any], where: str, file: str = "") -> PodIdentityAssociation:
    """One PodIdentityAssociation object of our kind."""

    def err(field: str, msg: str) -> InputError:
        return InputError(msg, file=file or None, field=f"{where}.{field}" if where else field)

    meta = obj.get("metadata")
    spec = obj.get("spec")
    if not isinstance(meta, dict):
        raise err("metadata", "expected an object")
    if not isinstance(spec, dict):
        raise err("spec", "expected an object")
    ns = meta.get("namespace")
    if not isinstance(ns, str) or not ns:
        raise err("metadata.namespace", "required: the association's namespace")
    out: dict[str, Any] = {}
    for key, required in (
        ("serviceAccount", True),
        ("roleArn", True),
        ("targetRoleArn", False),
        ("externalId", False),
    ):
        v = spec.get(key)
        if v is None or v == "":
            if required:
                raise err(f"spec.{key}", "required")
            out[key] = ""
            continue
        if not isinstance(v, str):
            raise err(f"spec.{key}", f"expected a string, got {type(v).__name__}")
        if key.endswith("Arn"):
            try:
                parse_arn(v)
            except ArnError as e:
                raise err(f"spec.{key}", str(e)) from None
        out[key] = v
    dst = spec.get("disableSessionTags", False)
    if not isinstance(dst, bool):
        raise err("spec.disableSessionTags", "expected a boolean")
    return PodIdentityAssociation(
        namespace=ns,
        service_account=out["serviceAccount"],
        role_arn=out["roleArn"],
        association_id=str(meta.get("uid") or meta.get("name") or ""),
        target_role_arn=out["targetRoleArn"],
        field=where,
        disable_session_tags=dst,
        external_id=out["externalId"],
    )


def from_documents(docs: Iterable[tuple[str, int, Any]]) -> list[PodIdentityAssociation]:
    """(file, document index, parsed document) -> associations; errors name file, document and field."""
    out: list[PodIdentityAssociation] = []
    for file, idx, doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise InputError("expected an object", file=file, document=idx)
        items = doc.get("items") if doc.get("kind", "").endswith("List") else None
        if isinstance(items, list):
            for i, it in enumerate(items):
                if isinstance(it, dict) and it.get("kind") == KIND:
                    out.append(from_object(it, f"items[{i}]", file))
            continue
        if doc.get("kind") == KIND:
            out.append(from_object(doc, "", file))
            continue
        eks = merge_aws_json([(file, doc)])
        if not eks.pod_identity and doc.get("kind") != "EKSClusterAccess":
            raise InputError(
                "no Pod Identity associations (expected PodIdentityAssociation objects or EKS "
                "describe-pod-identity-association JSON)",
                file=file,
                document=idx,
            )
        for a in eks.pod_identity:
            if not a.role_arn:
                raise InputError(
                    "roleArn missing: list-pod-identity-associations prints summaries, give "
                    "describe-pod-identity-association output for each association",
                    file=file,
                    document=idx,
                    field=f"{a.field}.roleArn",
                )
            out.append(a)
    return out


def load_files(paths: Iterable[str | Path]) -> Associations:
    import yaml

    docs: list[tuple[str, int, Any]] = []
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml", ".json")))
        else:
            files.append(p)
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot read: {e.strerror or e}", file=str(f)) from None
        try:
            for i, d in enumerate(yaml.safe_load_all(text)):
                docs.append((str(f), i, d))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise InputError(
                f"invalid YAML/JSON: {getattr(e, 'problem', None) or e}",
                file=str(f),
                line=mark.line + 1 if mark else None,
            ) from None
    return Associations(from_documents(docs))


def load_cluster(kubeconfig: str | None = None, context: str | None = None) -> Associations:
    """PodIdentityAssociation objects of a live cluster (the CRD in deploy/identity/crd.yaml)."""
    from kubernetes import client

    from kubestrata.kube.live import _api_client

    api = client.CustomObjectsApi(_api_client(kubeconfig, context))
    listed = api.list_cluster_custom_object(CRD_GROUP, CRD_VERSION, CRD_PLURAL)
    items = listed.get("items") if isinstance(listed, dict) else None  # the client annotates it `object`
    return Associations(from_object(o, f"items[{i}]", "<cluster>") for i, o in enumerate(items or []))


def load_eks(
    cluster_name: str, *, region: str | None = None, endpoint_url: str | None = None, session: Any = None
) -> Associations:
    """The cluster's associations from the EKS API: list-pod-identity-associations, then
    describe-pod-identity-association for each (the list prints no role ARN)."""
    import boto3
    import botocore.exceptions

    from kubestrata.errors import KubestrataError

    session = session or boto3.session.Session()
    eks = session.client("eks", region_name=region or session.region_name, endpoint_url=endpoint_url)
    docs: list[tuple[str, int, Any]] = []
    try:
        for page in eks.get_paginator("list_pod_identity_associations").paginate(clusterName=cluster_name):
            for summary in page.get("associations") or []:
                d = eks.describe_pod_identity_association(
                    clusterName=cluster_name, associationId=summary["associationId"]
                )
                docs.append((f"eks:{cluster_name}", len(docs), {"association": d["association"]}))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise KubestrataError(f"EKS list/describe-pod-identity-association for {cluster_name}: {e}") from None
    return Associations(from_documents(docs))
