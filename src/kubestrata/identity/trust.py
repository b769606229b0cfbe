"""Role trust policies for workload identity, read from ``aws iam get-role`` JSON: which statements let an
IRSA web identity (a Federated OIDC provider with sts:AssumeRoleWithWebIdentity) or EKS Pod Identity (the
``pods.eks.amazonaws.com`` service) assume the role, and what is wrong with them (§3.1, §3.2):

- IRSA without a ``<provider>:sub`` condition: every service account of the cluster may assume the role;
- ``:sub`` with a wildcard under a *Like operator: a namespace (or every namespace) instead of one account;
- IRSA without ``<provider>:aud``: tokens minted for other audiences are accepted;
- a role the cluster's service accounts use whose IRSA trust names another issuer (a foreign cluster);
- one role trusted by both IRSA and Pod Identity (two paths to one role, reviewed as one);
- Pod Identity trust without ``sts:TagSession``: EKS assumes the role with session tags, so every request
  fails with AccessDenied (unless the associations disable session tags).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
# operators that restrict a key to the listed values (negated and Null operators do not)
RESTRICTING = re.compile(
    r"^(ForAnyValue:|ForAllValues:)?String(Equals|Like|EqualsIgnoreCase)(IfExists)?$", re.I
)


@dataclass
class Statement:
    index: int
    actions: tuple[str, ...]
    principals: dict[str, tuple[str, ...]]
    conditions: dict[str, dict[str, tuple[str, ...]]]  # operator -> key -> values

    def allows(self, action: str) -> bool:
        return any(_glob(a).fullmatch(action.lower()) for a in self.actions)

    @property
    def oidc_providers(self) -> list[str]:
        """Provider host/path of every Federated OIDC principal (arn:...:oidc-provider/<host/path>)."""
        return [
            p.split(":oidc-provider/", 1)[1]
            for p in self.principals.get("Federated", ())
            if ":oidc-provider/" in p
        ]

    @property
    def pod_identity(self) -> bool:
        return POD_IDENTITY_SERVICE in self.principals.get("Service", ()) and self.allows("sts:AssumeRole")

    @property
    def irsa(self) -> bool:
        return bool(self.oidc_providers) and self.allows(WEB_IDENTITY)

    def condition(self, key: str) -> list[tuple[str, tuple[str, ...]]]:
        """(operator, values) for a condition key (IAM keys are case-insensitive), restricting operators only."""
        out = []
        for op, keys in self.conditions.items():
            if not RESTRICTING.match(op):
                continue
            for k, vals in keys.items():
                if k.lower() == key.lower():
                    out.append((op, vals))
        return out


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    )


def _strs(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list):
        return tuple(str(x) for x in v if isinstance(x, str | int | bool))
    if isinstance(v, int | bool):
        return (str(v).lower() if isinstance(v, bool) else str(v),)
    return ()


def statements(policy: dict[str, Any]) -> list[Statement]:
    """The Allow statements of a trust policy (Statement may be an object or a list)."""
    raw = policy.get("Statement")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    out = []
    for i, st in enumerate(items):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        principals: dict[str, tuple[str, ...]]
        if principal == "*":
            principals = {"AWS": ("*",)}
        elif isinstance(principal, dict):
            principals = {str(k): _strs(v) for k, v in principal.items()}
        else:
            principals = {}
        cond = st.get("Condition")
        if not isinstance(cond, dict):
            cond = {}
        conditions = {
            str(op): {str(k): _strs(v) for k, v in keys.items()}
            for op, keys in cond.items()
            if isinstance(keys, dict)
        }
        out.append(Statement(i, tuple(a.lower() for a in _strs(st.get("Action"))), principals, conditions))
    return out


@dataclass
class TrustIssue:
    rule: str  # sub-missing | sub-wildcard | aud-missing | foreign-issuer | irsa-and-pod-identity | no-tag-session
    message: str
    path: str
    observed: Any
    expected: Any
    severity: str = ""  # overrides the check's severity when set
    extra: dict[str, Any] = field(default_factory=dict)


def issuer_host(issuer: str) -> str:
    return re.sub(r"^https?://", "", issuer.strip()).rstrip("/")


def lint(
    role_arn: str,
    policy: dict[str, Any],
    *,
    path: str,
    cluster_issuer: str = "",
    used_by_irsa: bool = False,
    tag_sessions: bool = True,
) -> list[TrustIssue]:
    """Workload-identity problems of one role's trust policy. ``path`` is the policy's field path;
    ``used_by_irsa``: a ServiceAccount of the cluster names this role; ``tag_sessions``: Pod Identity will
    assume it with session tags (an association without disableSessionTags)."""
    issues: list[TrustIssue] = []
    sts = statements(policy)
    irsa = [s for s in sts if s.irsa]
    pod = [s for s in sts if s.pod_identity]
    for s in irsa:
        sp = f"{path}.Statement[{s.index}]"
        for provider in s.oidc_providers:
            sub = s.condition(f"{provider}:sub")
            if not sub:
                issues.append(
                    TrustIssue(
                        "sub-missing",
                        f"{role_arn}: any service account with a token from {provider} may assume it (no :sub condition)",
                        f"{sp}.Condition",
                        None,
                        {"StringEquals": {f"{provider}:sub": "system:serviceaccount:<namespace>:<name>"}},
                    )
                )
            for op, vals in sub:
                if "like" not in op.lower():
                    continue
                for v in vals:
                    if "*" not in v and "?" not in v:
                        continue
                    parts = v.split(":")
                    namespace_wide = len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]
                    namespace_wide = namespace_wide and not any(c in parts[2] for c in "*?")
                    issues.append(
                        TrustIssue(
                            "sub-wildcard",
                            f"{role_arn}: :sub {v!r} lets "
                            + (
                                f"every service account of namespace {parts[2]}"
                                if namespace_wide
                                else "service accounts of any namespace"
                            )
                            + " assume it",
                            f"{sp}.Condition.{op}.{provider}:sub",
                            v,
                            "system:serviceaccount:<namespace>:<name> under StringEquals",
                            severity="medium" if namespace_wide else "high",
                        )
                    )
            if not s.condition(f"{provider}:aud"):
                issues.append(
                    TrustIssue(
                        "aud-missing",
                        f"{role_arn}: no :aud condition for {provider}; tokens minted for any audience are accepted",
                        f"{sp}.Condition",
                        None,
                        {"StringEquals": {f"{provider}:aud": "sts.amazonaws.com"}},
                    )
                )
    if used_by_irsa and cluster_issuer:
        mine = issuer_host(cluster_issuer)
        providers = sorted({p for s in irsa for p in s.oidc_providers})
        if mine not in providers:
            issues.append(
                TrustIssue(
                    "foreign-issuer",
                    f"{role_arn}: a ServiceAccount of this cluster names it, but its trust policy trusts "
                    + (", ".join(providers) if providers else "no OIDC provider")
                    + f", not this cluster's issuer {mine}",
                    f"{path}.Statement",
                    providers,
                    mine,
                )
            )
    if irsa and pod:
        issues.append(
            TrustIssue(
                "irsa-and-pod-identity",
                f"{role_arn}: trusted by IRSA ({', '.join(sorted({p for s in irsa for p in s.oidc_providers}))}) "
                f"and by Pod Identity ({POD_IDENTITY_SERVICE})",
                f"{path}.Statement[{pod[0].index}].Principal.Service",
                POD_IDENTITY_SERVICE,
                "one mechanism per role",
            )
        )
    if pod and tag_sessions and not any(s.allows("sts:TagSession") for s in pod):
        s = pod[0]
        issues.append(
            TrustIssue(
                "no-tag-session",
                f"{role_arn}: Pod Identity may assume it but not tag the session; EKS sets session tags, so every "
                "credential request fails with AccessDenied",
                f"{path}.Statement[{s.index}].Action",
                list(s.actions),
                ["sts:AssumeRole", "sts:TagSession"],
            )
        )
    return issues
