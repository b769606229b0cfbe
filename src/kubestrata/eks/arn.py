"""IAM ARN handling as aws-iam-authenticator does it (pkg/arn/arn.go, pkg/arn/arnlike.go).

aws-auth matches the *canonical* ARN of the caller: an STS assumed-role ARN becomes the IAM role ARN.
STS ARNs never carry the role's IAM path, and EKS's authenticator does not look the path up, so the
canonical ARN is always path-less and an aws-auth ``rolearn`` written with a path never matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# aws-sdk-go endpoints partitions the authenticator accepts (the original three plus the ISO
# partitions newer releases list in pkg/endpoints)
PARTITIONS = frozenset(
    {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}
)


class ArnError(ValueError):
    """An ARN the authenticator would reject."""


@dataclass(frozen=True, slots=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"

    @property
    def resource_type(self) -> str:
        return self.resource.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The last path segment: a role or user name without its IAM path."""
        return self.resource.rsplit("/", 1)[-1]

    @property
    def path(self) -> str:
        """The IAM path of a role or user ARN ("/" when none)."""
        parts = self.resource.split("/")
        return "/" + "/".join(parts[1:-1]) + "/" if len(parts) > 2 else "/"


def parse_arn(arn: str) -> Arn:
    """Split an ARN the way aws-sdk-go's arn.Parse does (six sections, resource may hold colons)."""
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise ArnError(f"arn {arn!r} is invalid: arn: invalid prefix")
    sections = arn.split(":", 5)
    if len(sections) != 6:
        raise ArnError(f"arn {arn!r} is invalid: arn: not enough sections")
    _, partition, service, region, account, resource = sections
    return Arn(partition, service, region, account, resource)


def canonicalize(arn: str, role_arns: dict[str, str] | None = None) -> str:
    """The canonical identity ARN of a caller.

    ``role_arns`` maps role names to full role ARNs for the upstream variant that resolves the IAM path
    through an IAM lookup; EKS does not do that, so the default keeps the path-less form.
    """
    parsed = parse_arn(arn)
    if parsed.partition not in PARTITIONS:
        raise ArnError(f"arn {arn!r} does not have a recognized partition")
    parts = parsed.resource.split("/")
    resource = parts[0]
    if parsed.service == "sts":
        if resource == "federated-user":
            return arn
        if resource == "assumed-role":
            if len(parts) < 3:
                raise ArnError(f"assumed-role arn {arn!r} does not have a role")
            # the last segment is the session name; what precedes it is the role name
            role_name = "/".join(parts[1:-1])
            if role_arns is not None:
                try:
                    return role_arns[role_name]
                except KeyError:
                    raise ArnError(f"unknown role {role_name!r}") from None
            return f"arn:{parsed.partition}:iam::{parsed.account}:role/{role_name}"
        raise ArnError(f"unrecognized resource {parsed.resource} for service sts")
    if parsed.service == "iam":
        if resource in ("role", "user", "root"):
            return arn
        raise ArnError(f"unrecognized resource {parsed.resource} for service iam")
    raise ArnError(f"service {parsed.service} in arn {arn} is not a valid service for identities")


def strip_path(arn: str) -> str:
    """A role or user ARN without its IAM path (what an aws-auth entry must say to match)."""
    parsed = parse_arn(arn)
    if parsed.service == "iam" and parsed.resource_type in ("role", "user"):
        return f"arn:{parsed.partition}:iam::{parsed.account}:{parsed.resource_type}/{parsed.name}"
    return arn


def has_path(arn: str) -> bool:
    try:
        parsed = parse_arn(arn)
    except ArnError:
        return False
    return parsed.service == "iam" and parsed.resource_type in ("role", "user") and parsed.path != "/"


def session_arn(role_arn: str, session: str) -> str:
    """The STS ARN a caller presents after assuming ``role_arn`` with ``session``."""
    p = parse_arn(role_arn)
    return f"arn:{p.partition}:sts::{p.account}:assumed-role/{p.name}/{session}"


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


def arn_like(arn: str, pattern: str) -> bool:
    """IAM ArnLike: both split into six sections, each section matched as a case-sensitive glob."""
    try:
        a = arn.split(":", 5)
        p = pattern.split(":", 5)
    except AttributeError:
        return False
    if len(a) != 6 or len(p) != 6 or a[0] != "arn" or p[0] != "arn":
        return False
    return all(_glob(ps).fullmatch(s) is not None for s, ps in zip(a, p, strict=True))
