"""Read AWS CLI JSON (and kubestrata's own EKSClusterAccess document) into the EKS snapshot model.

Each output is recognised by its top-level key; several combine into one EKSAccess. Errors name the
file and the field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from kubestrata.eks.arn import ArnError, parse_arn
from kubestrata.eks.model import (
    AUTH_MODES,
    ENTRY_TYPES,
    SNAPSHOT_KIND,
    AccessEntry,
    Association,
    EKSAccess,
    IAMPrincipal,
    NodeRole,
    PodIdentityAssociation,
    Scope,
    policy_name,
)
from kubestrata.eks.posture import (
    apply_guardduty,
    apply_key_metadata,
    apply_posture,
    apply_rotation,
    apply_versions,
    apply_volumes,
)
from kubestrata.eks.reader import Reader, tname
from kubestrata.errors import InputError


def _entry(r: Reader, d: dict[str, Any], where: str) -> AccessEntry:
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


def _association(r: Reader, a: Any, where: str) -> Association:
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


def _apply_cluster(r: Reader, c: dict[str, Any], out: EKSAccess, where: str) -> None:
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
                f"expected a boolean, got {tname(b)}",
            )
        if b is not None:
            out.bootstrap_creator_admin = b
    elif out.authentication_mode is None:
        # describe-cluster of a cluster that predates access entries has no accessConfig: CONFIG_MAP
        out.authentication_mode = "CONFIG_MAP"
    oidc = ((c.get("identity") or {}).get("oidc") or {}) if isinstance(c.get("identity"), dict) else {}
    if isinstance(oidc, dict) and isinstance(oidc.get("issuer"), str):
        out.oidc_issuer = oidc["issuer"]
    apply_posture(r, c, out, where)


def _pod_identity(r: Reader, d: dict[str, Any], where: str) -> PodIdentityAssociation:
    return PodIdentityAssociation(
        namespace=r.s(d, "namespace", where, required=True),
        service_account=r.s(d, "serviceAccount", where, required=True),
        role_arn=r.arn(d, "roleArn", where, required=False),
        association_id=r.s(d, "associationId", where),
        target_role_arn=r.arn(d, "targetRoleArn", where, required=False),
        field=where,
        disable_session_tags=bool(r.b(d, "disableSessionTags", where)),
        external_id=r.s(d, "externalId", where),
    )


def merge_aws_json(docs: Iterable[tuple[str, Any]], out: EKSAccess | None = None) -> EKSAccess:
    """Combine AWS CLI outputs (recognised by their top-level key) into one EKSAccess.

    Accepted: describe-cluster, list-access-entries, describe-access-entry, list-associated-access-policies,
    describe-pod-identity-association, list-pod-identity-associations, describe-nodegroup,
    describe-fargate-profile, iam get-role / get-user, kms get-key-rotation-status / describe-key, guardduty
    get-detector, and kubestrata's own EKSClusterAccess document.
    """
    out = out or EKSAccess()
    pending_policies: list[tuple[str, list[Association]]] = []
    listed: list[str] = []
    for file, doc in docs:
        r = Reader(file)
        items: list[tuple[int | None, Any]] = list(enumerate(doc)) if isinstance(doc, list) else [(None, doc)]
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
                out.nodegroups.append(ng)
                matched = True
            if "LaunchTemplateVersions" in d:
                for i, v in enumerate(r.lst(d["LaunchTemplateVersions"], pre + "LaunchTemplateVersions")):
                    out.launch_template_versions.append(r.obj(v, f"{pre}LaunchTemplateVersions[{i}]"))
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
            if "clusterVersions" in d:
                apply_versions(r, d, out, pre)
                matched = True
            if "KeyRotationEnabled" in d:
                apply_rotation(r, d, out, pre.rstrip(".") or "(document)", camel=False)
                matched = True
            if "KeyMetadata" in d:
                apply_key_metadata(
                    r, r.obj(d["KeyMetadata"], pre + "KeyMetadata"), out, pre + "KeyMetadata", False
                )
                matched = True
            if "Volumes" in d:
                apply_volumes(r, r.lst(d["Volumes"], pre + "Volumes"), out, pre + "Volumes", camel=False)
                matched = True
            if "Features" in d or ("ServiceRole" in d and "Status" in d):
                apply_guardduty(r, d, out, pre.rstrip(".") or "(document)", camel=False)
                matched = True
            for key, id_key in (("Role", "RoleId"), ("User", "UserId")):
                if key in d:
                    p = r.obj(d[key], pre + key)
                    if out.iam_principals is None:
                        out.iam_principals = {}
                    arn = r.arn(p, "Arn", pre + key)
                    out.iam_principals[arn] = IAMPrincipal(
                        arn,
                        r.s(p, id_key, pre + key),
                        str(p.get("CreateDate") or ""),
                        _trust_policy(r, p, pre + key),
                        pre + key,
                    )
                    matched = True
            if not matched:
                keys = ", ".join(sorted(map(str, d))[:6]) or "none"
                raise r.err(
                    pre.rstrip(".") or "(document)",
                    f"not a recognised AWS CLI output (top-level keys: {keys}); expected describe-cluster, "
                    "list-access-entries, describe-access-entry, list-associated-access-policies, "
                    "pod identity, nodegroup, ec2 describe-launch-template-versions, fargate profile, iam "
                    "get-role/get-user, kms get-key-rotation-status/describe-key, describe-cluster-versions, "
                    "guardduty get-detector or ec2 describe-volumes JSON",
                )
    for arn in listed:
        if out.entry_for(arn) is None:
            out.entries.append(AccessEntry(arn, field=f"accessEntries[{len(out.entries)}]"))
    for principal, assocs in pending_policies:
        entry = out.entry_for(principal)
        if entry is None:
            entry = AccessEntry(principal, field=f"accessEntries[{len(out.entries)}]")
            out.entries.append(entry)
        entry.associations = assocs
    return out


def _upsert_entry(out: EKSAccess, e: AccessEntry) -> None:
    old = out.entry_for(e.principal_arn)
    if old is None:
        out.entries.append(e)
        return
    old.type, old.username, old.groups, old.created_at = e.type, e.username, e.groups, e.created_at
    if e.associations:
        old.associations = e.associations


def _apply_snapshot(r: Reader, d: dict[str, Any], out: EKSAccess) -> None:
    if d.get("cluster") is not None:
        _apply_cluster(r, r.obj(d["cluster"], "cluster"), out, "cluster")
    meta = d.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
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
            out.iam_principals[arn] = IAMPrincipal(
                arn, pid, str(p.get("CreateDate") or ""), _trust_policy(r, p, w), w
            )
    if d.get("creatorArn") is not None:
        out.creator_arn = r.arn(d, "creatorArn", "(document)")
    for i, k in enumerate(r.lst(d.get("kmsKeys"), "kmsKeys")):
        w = f"kmsKeys[{i}]"
        k = r.obj(k, w)
        apply_key_metadata(r, k, out, w, camel=True)
        apply_rotation(r, k, out, w, camel=True)
    if d.get("clusterVersions") is not None:
        apply_versions(r, d, out, "")
    if d.get("guardDuty") is not None:
        apply_guardduty(r, r.obj(d["guardDuty"], "guardDuty"), out, "guardDuty", camel=True)
    if d.get("ebsVolumes") is not None:
        apply_volumes(r, r.lst(d["ebsVolumes"], "ebsVolumes"), out, "ebsVolumes", camel=True)
    for i, ng in enumerate(r.lst(d.get("nodegroups"), "nodegroups")):
        out.nodegroups.append(r.obj(ng, f"nodegroups[{i}]"))
    for i, v in enumerate(r.lst(d.get("launchTemplateVersions"), "launchTemplateVersions")):
        out.launch_template_versions.append(r.obj(v, f"launchTemplateVersions[{i}]"))


def is_aws_cli_json(path: str) -> bool:
    """Whether a file is AWS CLI output kubestrata reads (describe-cluster, list-access-entries...),
    as opposed to other JSON found among manifests (an IAM policy document, package.json, a
    dashboard), which callers skip like any non-Kubernetes file."""
    try:
        with open(path, "rb") as fh:
            docs = _json_stream(fh.read(), path)
    except (OSError, InputError):
        return False
    try:
        merge_aws_json([(path, d) for d in docs])
    except InputError as e:
        # AWS CLI output with a broken field is still AWS CLI output: its reader names the field
        return not e.detail.startswith("not a recognised AWS CLI output")
    return True


def _trust_policy(r: Reader, p: dict[str, Any], where: str) -> dict[str, Any] | None:
    """AssumeRolePolicyDocument as the CLI prints it (an object) or as the API returns it (URL-encoded JSON)."""
    doc = p.get("AssumeRolePolicyDocument")
    if doc is None:
        return None
    if isinstance(doc, str):
        import json
        import urllib.parse

        try:
            doc = json.loads(urllib.parse.unquote(doc))
        except ValueError as e:
            raise r.err(f"{where}.AssumeRolePolicyDocument", f"not a JSON policy: {e}") from None
    if not isinstance(doc, dict):
        raise r.err(f"{where}.AssumeRolePolicyDocument", f"expected an object, got {tname(doc)}")
    return doc


def read_aws_json_files(paths: Iterable[str], stdin: Any = None) -> EKSAccess:
    """Read AWS CLI JSON files ("-" = stdin, which may hold several concatenated documents)."""
    import os
    import sys

    paths = list(paths)
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
    if not docs:
        # an empty snapshot would make every EKS check pass: say the input was wrong instead
        raise InputError(
            "no AWS CLI JSON found (expected the .json output of `aws eks describe-cluster` and friends)",
            file=", ".join(paths),
        )
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
