"""EKS Cluster Access Management data: authentication mode, access entries, policy associations, Pod
Identity associations and node roles, read from JSON as the AWS CLI prints it or collected live.

The scan reads it from a snapshot document any loader understands::

    apiVersion: kubestrata.io/v1alpha1
    kind: EKSClusterAccess
    metadata: {name: <cluster>, namespace: kube-system}
    cluster: {...}                 # `aws eks describe-cluster` .cluster
    accessEntries: [{...}]         # `describe-access-entry` .accessEntry, plus associatedAccessPolicies
    podIdentityAssociations: [{...}]
    nodeRoles: [{roleArn, source, type}]   # from describe-nodegroup / describe-fargate-profile
    iamPrincipals: [{Arn, RoleId|UserId, CreateDate}]   # optional `aws iam get-role|get-user`
    creatorArn: arn...             # optional: who created the cluster (CloudTrail), for CONFIG_MAP clusters

``kubestrata access import`` writes that document from AWS CLI output files or a live account.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubestrata.access.arn import ArnError, parse_arn
from kubestrata.access.policies import Association, Scope, policy_name
from kubestrata.errors import InputError
from kubestrata.kube.objects import KubeObject

SNAPSHOT_API_VERSION = "kubestrata.io/v1alpha1"
SNAPSHOT_KIND = "EKSClusterAccess"
AUTH_MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")
ENTRY_TYPES = (
    "STANDARD",
    "EC2_LINUX",
    "EC2_WINDOWS",
    "FARGATE_LINUX",
    "HYBRID_LINUX",
    "EC2",
    "HYPERPOD_LINUX",
)
NODE_ENTRY_TYPES = ("EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX", "EC2", "HYPERPOD_LINUX")
RESERVED_USERNAME_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")


@dataclass
class AccessEntry:
    principal_arn: str
    type: str = "STANDARD"
    username: str = ""  # as EKS reports it (EKS fills in the generated default)
    groups: tuple[str, ...] = ()
    associations: list[Association] = field(default_factory=list)
    created_at: str = ""
    field: str = ""  # e.g. accessEntries[3]

    @property
    def effective_username(self) -> str:
        return self.username or default_username(self.principal_arn, self.type)

    @property
    def effective_groups(self) -> tuple[str, ...]:
        # EKS puts node entries in system:nodes itself; kubernetesGroups apply to STANDARD only
        if self.type in (
            "EC2_LINUX",
            "EC2_WINDOWS",
            "FARGATE_LINUX",
            "HYBRID_LINUX",
            "EC2",
            "HYPERPOD_LINUX",
        ):
            return ("system:nodes",)
        return self.groups


@dataclass(frozen=True)
class PodIdentityAssociation:
    namespace: str
    service_account: str
    role_arn: str
    association_id: str = ""
    target_role_arn: str = ""
    field: str = ""


@dataclass(frozen=True)
class NodeRole:
    role_arn: str
    source: str  # nodegroup/<name> or fargateprofile/<name>
    type: str = "EC2_LINUX"  # or FARGATE_LINUX / EC2_WINDOWS


@dataclass(frozen=True)
class IAMPrincipal:
    arn: str
    principal_id: str = ""
    create_date: str = ""


@dataclass
class EKSAccess:
    cluster_name: str = ""
    cluster_arn: str = ""
    authentication_mode: str | None = None  # None when describe-cluster was not given
    bootstrap_creator_admin: bool | None = None
    oidc_issuer: str = ""
    entries: list[AccessEntry] = field(default_factory=list)
    pod_identity: list[PodIdentityAssociation] = field(default_factory=list)
    node_roles: list[NodeRole] = field(default_factory=list)
    iam_principals: dict[str, IAMPrincipal] | None = None  # None: not collected
    creator_arn: str = ""
    obj: KubeObject | None = None  # the snapshot document, when it came through the loader

    def entry_for(self, principal_arn: str) -> AccessEntry | None:
        # EKS matches the principal, whose ARN it stores as given; IAM ARNs compare case-sensitively
        for e in self.entries:
            if e.principal_arn == principal_arn:
                return e
        return None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "apiVersion": SNAPSHOT_API_VERSION,
            "kind": SNAPSHOT_KIND,
            "metadata": {"name": self.cluster_name or "eks", "namespace": "kube-system"},
        }
        cluster: dict[str, Any] = {}
        if self.cluster_name:
            cluster["name"] = self.cluster_name
        if self.cluster_arn:
            cluster["arn"] = self.cluster_arn
        if self.authentication_mode is not None or self.bootstrap_creator_admin is not None:
            ac: dict[str, Any] = {}
            if self.authentication_mode is not None:
                ac["authenticationMode"] = self.authentication_mode
            if self.bootstrap_creator_admin is not None:
                ac["bootstrapClusterCreatorAdminPermissions"] = self.bootstrap_creator_admin
            cluster["accessConfig"] = ac
        if self.oidc_issuer:
            cluster["identity"] = {"oidc": {"issuer": self.oidc_issuer}}
        if cluster:
            doc["cluster"] = cluster
        doc["accessEntries"] = [
            {
                "principalArn": e.principal_arn,
                "type": e.type,
                **({"username": e.username} if e.username else {}),
                "kubernetesGroups": list(e.groups),
                **({"createdAt": e.created_at} if e.created_at else {}),
                "associatedAccessPolicies": [
                    {
                        "policyArn": f"arn:aws:eks::aws:cluster-access-policy/{a.policy}",
                        "accessScope": {"type": a.scope.type, "namespaces": list(a.scope.namespaces)},
                    }
                    for a in e.associations
                ],
            }
            for e in self.entries
        ]
        if self.pod_identity:
            doc["podIdentityAssociations"] = [
                {
                    "namespace": p.namespace,
                    "serviceAccount": p.service_account,
                    "roleArn": p.role_arn,
                    **({"associationId": p.association_id} if p.association_id else {}),
                    **({"targetRoleArn": p.target_role_arn} if p.target_role_arn else {}),
                }
                for p in self.pod_identity
            ]
        if self.node_roles:
            doc["nodeRoles"] = [
                {"roleArn": n.role_arn, "source": n.source, "type": n.type} for n in self.node_roles
            ]
        if self.iam_principals is not None:
            doc["iamPrincipals"] = [
                {
                    "Arn": p.arn,
                    "PrincipalId": p.principal_id,
                    **({"CreateDate": p.create_date} if p.create_date else {}),
                }
                for p in self.iam_principals.values()
            ]
        if self.creator_arn:
            doc["creatorArn"] = self.creator_arn
        return doc


def default_username(principal_arn: str, entry_type: str = "STANDARD") -> str:
    """The username EKS generates for an access entry without one (GKA table)."""
    if entry_type in ("EC2_LINUX", "EC2_WINDOWS"):
        return "system:node:{{EC2PrivateDNSName}}"
    if entry_type in ("FARGATE_LINUX", "HYBRID_LINUX", "EC2", "HYPERPOD_LINUX"):
        return "system:node:{{SessionName}}"
    try:
        p = parse_arn(principal_arn)
    except ArnError:
        return principal_arn
    if p.resource_type == "role":
        return f"arn:{p.partition}:sts::{p.account}:assumed-role/{p.name}/{{{{SessionName}}}}"
    return principal_arn


# -- reading AWS CLI JSON -------------------------------------------------------------------------------


class _Reader:
    """Typed access to a JSON document with errors naming file and field."""

    def __init__(self, file: str) -> None:
        self.file = file

    def err(self, field_: str, msg: str) -> InputError:
        return InputError(msg, file=self.file, field=field_)

    def obj(self, v: Any, where: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.err(where, f"expected an object, got {_tname(v)}")
        return v

    def lst(self, v: Any, where: str, optional: bool = True) -> list[Any]:
        if v is None and optional:
            return []
        if not isinstance(v, list):
            raise self.err(where, f"expected a list, got {_tname(v)}")
        return v

    def s(self, d: dict[str, Any], key: str, where: str, required: bool = False) -> str:
        v = d.get(key)
        if v is None:
            if required:
                raise self.err(f"{where}.{key}", "required field is missing")
            return ""
        if not isinstance(v, str):
            raise self.err(f"{where}.{key}", f"expected a string, got {_tname(v)}")
        return v

    def strs(self, d: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        out = []
        for i, x in enumerate(self.lst(d.get(key), f"{where}.{key}")):
            if not isinstance(x, str):
                raise self.err(f"{where}.{key}[{i}]", f"expected a string, got {_tname(x)}")
            out.append(x)
        return tuple(out)

    def arn(self, d: dict[str, Any], key: str, where: str, required: bool = True) -> str:
        v = self.s(d, key, where, required)
        if v:
            try:
                parse_arn(v)
            except ArnError as e:
                raise self.err(f"{where}.{key}", str(e)) from None
        return v


def _tname(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number"
    )


def _entry(r: _Reader, d: dict[str, Any], where: str) -> AccessEntry:
    typ = r.s(d, "type", where) or "STANDARD"
    if typ not in ENTRY_TYPES:
        raise r.err(
            f"{where}.type", f"unknown access entry type {typ!r}; expected one of {', '.join(ENTRY_TYPES)}"
        )
    e = AccessEntry(
        principal_arn=r.arn(d, "principalArn", where),
        type=typ,
        username=r.s(d, "username", where),
        groups=r.strs(d, "kubernetesGroups", where),
        created_at=str(d.get("createdAt") or ""),
        field=where,
    )
    for i, a in enumerate(r.lst(d.get("associatedAccessPolicies"), f"{where}.associatedAccessPolicies")):
        e.associations.append(_association(r, a, f"{where}.associatedAccessPolicies[{i}]"))
    return e


def _association(r: _Reader, a: Any, where: str) -> Association:
    a = r.obj(a, where)
    arn = r.s(a, "policyArn", where, required=True)
    if "cluster-access-policy/" not in arn:
        raise r.err(f"{where}.policyArn", f"not an EKS access policy ARN: {arn!r}")
    scope = r.obj(a.get("accessScope"), f"{where}.accessScope")
    typ = r.s(scope, "type", f"{where}.accessScope", required=True)
    if typ not in ("cluster", "namespace"):
        raise r.err(f"{where}.accessScope.type", f"expected cluster or namespace, got {typ!r}")
    namespaces = r.strs(scope, "namespaces", f"{where}.accessScope")
    if typ == "namespace" and not namespaces:
        raise r.err(f"{where}.accessScope.namespaces", "a namespace scope needs at least one namespace")
    return Association(policy_name(arn), Scope(typ, namespaces if typ == "namespace" else ()), where)


def _apply_cluster(r: _Reader, c: dict[str, Any], out: EKSAccess, where: str) -> None:
    out.cluster_name = r.s(c, "name", where) or out.cluster_name
    out.cluster_arn = r.s(c, "arn", where) or out.cluster_arn
    ac = c.get("accessConfig")
    if ac is not None:
        ac = r.obj(ac, f"{where}.accessConfig")
        mode = r.s(ac, "authenticationMode", f"{where}.accessConfig")
        if mode and mode not in AUTH_MODES:
            raise r.err(
                f"{where}.accessConfig.authenticationMode",
                f"expected one of {', '.join(AUTH_MODES)}, got {mode!r}",
            )
        out.authentication_mode = mode or out.authentication_mode
        b = ac.get("bootstrapClusterCreatorAdminPermissions")
        if b is not None and not isinstance(b, bool):
            raise r.err(
                f"{where}.accessConfig.bootstrapClusterCreatorAdminPermissions",
                f"expected a boolean, got {_tname(b)}",
            )
        if b is not None:
            out.bootstrap_creator_admin = b
    elif out.authentication_mode is None:
        # describe-cluster of a cluster that predates access entries has no accessConfig: CONFIG_MAP
        out.authentication_mode = "CONFIG_MAP"
    oidc = ((c.get("identity") or {}).get("oidc") or {}) if isinstance(c.get("identity"), dict) else {}
    if isinstance(oidc, dict) and isinstance(oidc.get("issuer"), str):
        out.oidc_issuer = oidc["issuer"]


def _pod_identity(r: _Reader, d: dict[str, Any], where: str) -> PodIdentityAssociation:
    return PodIdentityAssociation(
        namespace=r.s(d, "namespace", where, required=True),
        service_account=r.s(d, "serviceAccount", where, required=True),
        role_arn=r.arn(d, "roleArn", where, required=False),
        association_id=r.s(d, "associationId", where),
        target_role_arn=r.arn(d, "targetRoleArn", where, required=False),
        field=where,
    )


def merge_aws_json(docs: Iterable[tuple[str, Any]], out: EKSAccess | None = None) -> EKSAccess:
    """Combine AWS CLI outputs (recognised by their top-level key) into one EKSAccess.

    Accepted: describe-cluster, list-access-entries, describe-access-entry, list-associated-access-policies,
    describe-pod-identity-association, list-pod-identity-associations, describe-nodegroup,
    describe-fargate-profile, iam get-role / get-user, and kubestrata's own EKSClusterAccess document.
    """
    out = out or EKSAccess()
    pending_policies: list[tuple[str, list[Association]]] = []
    listed: list[str] = []
    for file, doc in docs:
        r = _Reader(file)
        if isinstance(doc, list):
            items = list(enumerate(doc))
        else:
            items = [(None, doc)]
        for idx, d in items:
            pre = f"[{idx}]." if idx is not None else ""
            d = r.obj(d, pre.rstrip(".") or "(document)")
            matched = False
            if d.get("kind") == SNAPSHOT_KIND:
                _apply_snapshot(r, d, out)
                continue
            if "cluster" in d:
                _apply_cluster(r, r.obj(d["cluster"], pre + "cluster"), out, pre + "cluster")
                matched = True
            if "accessEntry" in d:
                e = _entry(r, r.obj(d["accessEntry"], pre + "accessEntry"), pre + "accessEntry")
                _upsert_entry(out, e)
                matched = True
            if "accessEntries" in d:
                for i, a in enumerate(r.lst(d["accessEntries"], pre + "accessEntries")):
                    w = f"{pre}accessEntries[{i}]"
                    if isinstance(a, str):  # list-access-entries prints ARNs only
                        try:
                            parse_arn(a)
                        except ArnError as e:
                            raise r.err(w, str(e)) from None
                        listed.append(a)
                    else:
                        _upsert_entry(out, _entry(r, r.obj(a, w), w))
                matched = True
            if "associatedAccessPolicies" in d:
                principal = r.arn(d, "principalArn", pre.rstrip(".") or "(document)")
                assocs = [
                    _association(r, a, f"{pre}associatedAccessPolicies[{i}]")
                    for i, a in enumerate(
                        r.lst(d["associatedAccessPolicies"], pre + "associatedAccessPolicies")
                    )
                ]
                pending_policies.append((principal, assocs))
                matched = True
            if "association" in d:
                out.pod_identity.append(
                    _pod_identity(r, r.obj(d["association"], pre + "association"), pre + "association")
                )
                matched = True
            if "associations" in d:
                for i, a in enumerate(r.lst(d["associations"], pre + "associations")):
                    w = f"{pre}associations[{i}]"
                    out.pod_identity.append(_pod_identity(r, r.obj(a, w), w))
                matched = True
            if "nodegroup" in d:
                ng = r.obj(d["nodegroup"], pre + "nodegroup")
                ami = r.s(ng, "amiType", pre + "nodegroup")
                out.node_roles.append(
                    NodeRole(
                        r.arn(ng, "nodeRole", pre + "nodegroup"),
                        "nodegroup/" + r.s(ng, "nodegroupName", pre + "nodegroup"),
                        "EC2_WINDOWS" if ami.startswith("WINDOWS") else "EC2_LINUX",
                    )
                )
                matched = True
            if "fargateProfile" in d:
                fp = r.obj(d["fargateProfile"], pre + "fargateProfile")
                out.node_roles.append(
                    NodeRole(
                        r.arn(fp, "podExecutionRoleArn", pre + "fargateProfile"),
                        "fargateprofile/" + r.s(fp, "fargateProfileName", pre + "fargateProfile"),
                        "FARGATE_LINUX",
                    )
                )
                matched = True
            for key, id_key in (("Role", "RoleId"), ("User", "UserId")):
                if key in d:
                    p = r.obj(d[key], pre + key)
                    if out.iam_principals is None:
                        out.iam_principals = {}
                    arn = r.arn(p, "Arn", pre + key)
                    out.iam_principals[arn] = IAMPrincipal(
                        arn, r.s(p, id_key, pre + key), str(p.get("CreateDate") or "")
                    )
                    matched = True
            if not matched:
                keys = ", ".join(sorted(map(str, d))[:6]) or "none"
                raise r.err(
                    pre.rstrip(".") or "(document)",
                    f"not a recognised AWS CLI output (top-level keys: {keys}); expected describe-cluster, "
                    "list-access-entries, describe-access-entry, list-associated-access-policies, "
                    "pod identity, nodegroup, fargate profile or iam get-role/get-user JSON",
                )
    for arn in listed:
        if out.entry_for(arn) is None:
            out.entries.append(AccessEntry(arn, field=f"accessEntries[{len(out.entries)}]"))
    for principal, assocs in pending_policies:
        e = out.entry_for(principal)
        if e is None:
            e = AccessEntry(principal, field=f"accessEntries[{len(out.entries)}]")
            out.entries.append(e)
        e.associations = assocs
    return out


def _upsert_entry(out: EKSAccess, e: AccessEntry) -> None:
    old = out.entry_for(e.principal_arn)
    if old is None:
        out.entries.append(e)
        return
    old.type, old.username, old.groups, old.created_at = e.type, e.username, e.groups, e.created_at
    if e.associations:
        old.associations = e.associations


def _apply_snapshot(r: _Reader, d: dict[str, Any], out: EKSAccess) -> None:
    if d.get("cluster") is not None:
        _apply_cluster(r, r.obj(d["cluster"], "cluster"), out, "cluster")
    meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
    out.cluster_name = out.cluster_name or str(meta.get("name") or "")
    for i, a in enumerate(r.lst(d.get("accessEntries"), "accessEntries")):
        w = f"accessEntries[{i}]"
        _upsert_entry(out, _entry(r, r.obj(a, w), w))
    for i, a in enumerate(r.lst(d.get("podIdentityAssociations"), "podIdentityAssociations")):
        w = f"podIdentityAssociations[{i}]"
        out.pod_identity.append(_pod_identity(r, r.obj(a, w), w))
    for i, n in enumerate(r.lst(d.get("nodeRoles"), "nodeRoles")):
        w = f"nodeRoles[{i}]"
        n = r.obj(n, w)
        typ = r.s(n, "type", w) or "EC2_LINUX"
        out.node_roles.append(NodeRole(r.arn(n, "roleArn", w), r.s(n, "source", w), typ))
    if d.get("iamPrincipals") is not None:
        out.iam_principals = out.iam_principals or {}
        for i, p in enumerate(r.lst(d.get("iamPrincipals"), "iamPrincipals")):
            w = f"iamPrincipals[{i}]"
            p = r.obj(p, w)
            arn = r.arn(p, "Arn", w)
            pid = r.s(p, "PrincipalId", w) or r.s(p, "RoleId", w) or r.s(p, "UserId", w)
            out.iam_principals[arn] = IAMPrincipal(arn, pid, str(p.get("CreateDate") or ""))
    if d.get("creatorArn") is not None:
        out.creator_arn = r.arn(d, "creatorArn", "(document)")


def read_aws_json_files(paths: Iterable[str], stdin: Any = None) -> EKSAccess:
    """Read AWS CLI JSON files ("-" = stdin, which may hold several concatenated documents)."""
    import os
    import sys

    docs: list[tuple[str, Any]] = []
    expanded: list[str] = []
    for p in paths:
        if p != "-" and os.path.isdir(p):
            expanded.extend(sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".json")))
        else:
            expanded.append(p)
    for p in expanded:
        if p == "-":
            data = (stdin or sys.stdin.buffer).read()
            if isinstance(data, str):
                data = data.encode()
            name = "<stdin>"
        else:
            try:
                with open(p, "rb") as fh:
                    data = fh.read()
            except OSError as e:
                raise InputError(f"cannot read: {e.strerror or e}", file=p) from None
            name = p
        for doc in _json_stream(data, name):
            docs.append((name, doc))
    return merge_aws_json(docs)


def _json_stream(data: bytes, name: str) -> list[Any]:
    """One JSON document, or several concatenated (as `aws ... ; aws ...` piped together prints)."""
    text = data.decode("utf-8-sig", "replace")
    try:
        return [orjson.loads(text)]
    except orjson.JSONDecodeError:
        pass
    import json

    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        m = re.compile(r"\S").search(text, i)
        if m is None:
            break
        try:
            doc, i = dec.raw_decode(text, m.start())
        except json.JSONDecodeError as e:
            raise InputError(
                f"invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})", file=name
            ) from None
        out.append(doc)
    if not out:
        raise InputError("empty input, expected AWS CLI JSON", file=name)
    return out


def from_objects(objects: Iterable[KubeObject]) -> tuple[EKSAccess | None, list[InputError]]:
    """The EKSClusterAccess snapshot(s) among loaded objects, merged; errors name file and field."""
    out: EKSAccess | None = None
    errors: list[InputError] = []
    for o in objects:
        if o.kind != SNAPSHOT_KIND:
            continue
        try:
            out = merge_aws_json([(o.source.file if o.source else "<input>", o.raw)], out)
            out.obj = out.obj or o
        except InputError as e:
            errors.append(e)
    return out, errors


# -- live -----------------------------------------------------------------------------------------------


def collect_live(
    cluster_name: str,
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    gaps: list[str] | None = None,
) -> EKSAccess:
    """Read the same data through boto3 (read-only calls). Calls the endpoint does not support are
    recorded in ``gaps`` rather than failing the whole collection."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    gaps = gaps if gaps is not None else []
    session = boto3.Session(profile_name=profile, region_name=region)
    eks = session.client("eks", endpoint_url=endpoint_url)
    docs: list[tuple[str, Any]] = []

    def call(label: str, fn: Any, **kw: Any) -> dict[str, Any] | None:
        try:
            resp = fn(**kw)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("ResourceNotFoundException",) and label == "describe-cluster":
                raise InputError(f"cluster {cluster_name!r} not found", field="clusterName") from None
            gaps.append(f"{label}: {code or e}")
            return None
        except BotoCoreError as e:
            gaps.append(f"{label}: {e}")
            return None
        resp.pop("ResponseMetadata", None)
        return orjson.loads(orjson.dumps(resp, default=str))

    def pages(label: str, op: str, key: str, **kw: Any) -> list[Any] | None:
        items: list[Any] = []
        token = None
        while True:
            args = dict(kw, **({"nextToken": token} if token else {}))
            resp = call(label, getattr(eks, op), **args)
            if resp is None:
                return None
            items.extend(resp.get(key) or [])
            token = resp.get("nextToken")
            if not token:
                return items

    d = call("describe-cluster", eks.describe_cluster, name=cluster_name)
    if d is not None:
        docs.append(("describe-cluster", d))
    arns = pages("list-access-entries", "list_access_entries", "accessEntries", clusterName=cluster_name)
    for arn in arns or []:
        e = call(
            "describe-access-entry", eks.describe_access_entry, clusterName=cluster_name, principalArn=arn
        )
        if e is not None:
            docs.append(("describe-access-entry", e))
        pol = pages(
            "list-associated-access-policies",
            "list_associated_access_policies",
            "associatedAccessPolicies",
            clusterName=cluster_name,
            principalArn=arn,
        )
        if pol is not None:
            docs.append(
                ("list-associated-access-policies", {"principalArn": arn, "associatedAccessPolicies": pol})
            )
    assocs = pages(
        "list-pod-identity-associations",
        "list_pod_identity_associations",
        "associations",
        clusterName=cluster_name,
    )
    for a in assocs or []:
        got = call(
            "describe-pod-identity-association",
            eks.describe_pod_identity_association,
            clusterName=cluster_name,
            associationId=a.get("associationId"),
        )
        if got is not None:
            docs.append(("describe-pod-identity-association", got))
    for ng in pages("list-nodegroups", "list_nodegroups", "nodegroups", clusterName=cluster_name) or []:
        got = call("describe-nodegroup", eks.describe_nodegroup, clusterName=cluster_name, nodegroupName=ng)
        if got is not None:
            docs.append(("describe-nodegroup", got))
    for fp in (
        pages(
            "list-fargate-profiles", "list_fargate_profiles", "fargateProfileNames", clusterName=cluster_name
        )
        or []
    ):
        got = call(
            "describe-fargate-profile",
            eks.describe_fargate_profile,
            clusterName=cluster_name,
            fargateProfileName=fp,
        )
        if got is not None:
            docs.append(("describe-fargate-profile", got))
    out = merge_aws_json(docs)
    out.cluster_name = out.cluster_name or cluster_name
    return out
