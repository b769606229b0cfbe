"""The kube-system/aws-auth ConfigMap, parsed exactly as aws-iam-authenticator's EKS ConfigMap mapper
parses it (pkg/mapper/configmap/configmap.go ParseMap, pkg/config/mapper.go):

- each of ``mapRoles``/``mapUsers`` goes YAML -> JSON (sigs.k8s.io/yaml on yaml.v2) -> Go structs; a YAML
  error (tabs, bad indentation, a duplicate key) drops the whole key: nodes and admins alike lose access;
- Go's encoding/json matches field names case-insensitively, skips values of the wrong type (the field
  stays empty) and keeps going, so ``groups: system:masters`` (a string) yields an entry with no groups;
- each decoded entry is then validated on its own; invalid ones (no ``rolearn`` and no ``sso``, both, an
  empty ``userarn``) are dropped one by one, the rest kept ("Only saving data that was good");
- roles are keyed by the lower-cased ARN (a later duplicate wins); users by the ARN as written, so
  case-variant duplicates both stay and which one matches depends on Go map order;
- ``mapAccounts`` is yaml.v2 into []string: every principal of a listed account authenticates with its
  canonical ARN as username and no groups.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubestrata.eks.arn import ArnError, arn_like, canonicalize, parse_arn

TEMPLATES = (
    "{{EC2PrivateDNSName}}",
    "{{SessionName}}",
    "{{SessionNameRaw}}",
    "{{AccountID}}",
    "{{AccessKeyID}}",
)
SESSION_TEMPLATES = ("{{SessionName}}", "{{SessionNameRaw}}")
_INSTANCE_ID = re.compile(r"^i-(\w{8}|\w{17})$")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_PERMISSION_SET = re.compile(r"^[\w+=,.@-]{1,32}$")
NODE_GROUPS = ("system:bootstrappers", "system:nodes")


class _StrictLoader(yaml.SafeLoader):
    """yaml.v2 rejects a mapping that repeats a key; PyYAML silently keeps the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            dup = key in seen
        except TypeError:
            continue
        if dup:
            raise yaml.constructor.ConstructorError(
                None, None, f"mapping key {key!r} already defined", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True, slots=True)
class SSOMatcher:
    permission_set_name: str
    account_id: str
    partition: str = ""

    def arn_like(self) -> str:
        # upstream SSOArnLike(): the partition defaults to "aws" and the pattern is lower-cased
        partition = self.partition or "aws"
        return (
            f"arn:{partition}:iam::{self.account_id}:role/AWSReservedSSO_{self.permission_set_name}_*".lower()
        )


@dataclass(frozen=True, slots=True)
class Mapping:
    """One aws-auth entry that survived parsing and validation."""

    kind: str  # "role" or "user"
    arn: str  # rolearn / userarn as written ("" for an SSO matcher)
    username: str
    groups: tuple[str, ...]
    index: int  # position in the key's list
    sso: SSOMatcher | None = None

    @property
    def field(self) -> str:
        return f"data.{'mapRoles' if self.kind == 'role' else 'mapUsers'}[{self.index}]"

    @property
    def key(self) -> str:
        if self.kind == "role":
            return self.arn.lower() if self.arn else (self.sso.arn_like() if self.sso else "")
        return self.arn

    def matches(self, canonical_arn: str, sso_enabled: bool = False) -> bool:
        subject = canonical_arn.lower()
        if self.kind == "user":
            return self.arn.lower() == subject
        if self.arn:
            if "*" in self.arn or "?" in self.arn:
                return arn_like(subject, self.arn.lower())
            return self.arn.lower() == subject
        return bool(sso_enabled and self.sso and arn_like(subject, self.sso.arn_like()))

    @property
    def templated(self) -> bool:
        return any(t in s for t in TEMPLATES for s in (self.username, *self.groups))

    @property
    def session_templated(self) -> bool:
        return any(t in s for t in SESSION_TEMPLATES for s in (self.username, *self.groups))


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the authenticator silently drops or mis-handles; ``scope`` is "key" or "entry"."""

    field: str
    message: str
    scope: str
    observed: Any = None


@dataclass
class AwsAuth:
    """The mappings the authenticator would hold, plus every problem met while getting there."""

    roles: dict[str, Mapping] = field(default_factory=dict)  # lower-cased ARN / SSO pattern -> mapping
    users: dict[str, Mapping] = field(default_factory=dict)  # ARN as written -> mapping
    accounts: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    shadowed: list[tuple[Mapping, Mapping]] = field(default_factory=list)  # (lost, winner)
    present_keys: frozenset[str] = frozenset()

    @property
    def mappings(self) -> list[Mapping]:
        return [*self.roles.values(), *self.users.values()]

    def dropped_keys(self) -> list[str]:
        return [p.field.split(".", 1)[1] for p in self.problems if p.scope == "key"]

    def match(self, canonical_arn: str, sso_enabled: bool = False) -> Mapping | None:
        """The mapping for a canonical ARN: roles first, then users (configmap mapper order)."""
        for m in self.roles.values():
            if m.matches(canonical_arn, sso_enabled):
                return m
        for m in self.users.values():
            if m.matches(canonical_arn):
                return m
        return None

    def account_allowed(self, account: str) -> bool:
        return account in self.accounts


@dataclass(frozen=True, slots=True)
class Caller:
    """What the authenticator knows about a verified caller (token.Identity)."""

    arn: str
    session_name: str = ""
    access_key_id: str = ""
    private_dns_name: str = ""  # what ec2:DescribeInstances would return for the session's instance

    @property
    def canonical_arn(self) -> str:
        return canonicalize(self.arn)

    @property
    def account_id(self) -> str:
        return parse_arn(self.arn).account


class TemplateError(ValueError):
    pass


def render_template(template: str, caller: Caller) -> str:
    """pkg/server/server.go renderTemplate."""
    if "{{EC2PrivateDNSName}}" in template:
        if not _INSTANCE_ID.match(caller.session_name):
            raise TemplateError("SessionName did not contain an instance id")
        if not caller.private_dns_name:
            raise TemplateError("no private DNS name known for instance " + caller.session_name)
        template = template.replace("{{EC2PrivateDNSName}}", caller.private_dns_name)
    template = template.replace("{{AccountID}}", caller.account_id)
    template = template.replace("{{SessionName}}", caller.session_name.replace("@", "-"))
    template = template.replace("{{SessionNameRaw}}", caller.session_name)
    return template.replace("{{AccessKeyID}}", caller.access_key_id)


def authenticate(
    aws_auth: AwsAuth, caller: Caller, sso_enabled: bool = False
) -> tuple[str, list[str]] | None:
    """The (username, groups) the EKS ConfigMap mapper gives a caller, None when it is not mapped."""
    try:
        canonical = caller.canonical_arn
    except ArnError:
        return None
    m = aws_auth.match(canonical, sso_enabled)
    if m is not None:
        return render_template(m.username, caller), [render_template(g, caller) for g in m.groups]
    if aws_auth.account_allowed(caller.account_id):
        return canonical, []
    return None


def template_pattern(template: str) -> re.Pattern[str]:
    """A regex for every value a templated username could render to (used to match RBAC subjects)."""
    out = re.escape(template)
    for t in TEMPLATES:
        out = out.replace(re.escape(t), ".+")
    return re.compile(out, re.S)


# -- parsing -------------------------------------------------------------------------------------------


def _yaml_to_json_value(v: Any) -> Any:
    """What sigs.k8s.io/yaml's ToJSON turns a yaml.v2 value into (timestamps stay text, keys strings)."""
    if isinstance(v, dict):
        return {
            str(k).lower() if isinstance(k, bool) else str(k): _yaml_to_json_value(x) for k, x in v.items()
        }
    if isinstance(v, list):
        return [_yaml_to_json_value(x) for x in v]
    if isinstance(v, _dt.date | _dt.datetime):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


def _yaml_to_json(text: str) -> Any:
    # yaml.v2 Unmarshal decodes the first document of a stream and never looks at the rest
    docs = yaml.load_all(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    return _yaml_to_json_value(next(docs, None))


def _go_fields(obj: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Go encoding/json field matching: exact name first, else case-insensitive; later keys overwrite."""
    out: dict[str, Any] = {}
    lowered = {n.lower(): n for n in names}
    for k, v in obj.items():
        name = k if k in names else lowered.get(k.lower())
        if name is not None:
            out[name] = v
    return out


def _go_string(v: Any, where: str, errors: list[str]) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    errors.append(f"{where}: cannot unmarshal {_json_type(v)} into a string")
    return ""


def _go_string_list(v: Any, where: str, errors: list[str]) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list):
        errors.append(f"{where}: cannot unmarshal {_json_type(v)} into a list of strings")
        return []
    return [_go_string(x, f"{where}[{i}]", errors) for i, x in enumerate(v)]


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    return "string"


# a key holding only one of these is read as empty (no entries), not as invalid YAML
_EMPTY_VALUES = ("", '""', "''", "``")


def _decode_key(data: dict[str, Any], key: str, result: AwsAuth) -> list[dict[str, Any]] | None:
    """The list of raw entries under a data key, or None when the whole key is lost."""
    where = f"data.{key}"
    raw = data.get(key)
    if not isinstance(raw, str):
        result.problems.append(
            Problem(
                where,
                f"must be a string (a YAML block `|`), got {_json_type(raw)}; the API server rejects the ConfigMap",
                "key",
                raw,
            )
        )
        return None
    if raw.strip() in _EMPTY_VALUES:
        return []
    try:
        doc = _yaml_to_json(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1} of the value)" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        result.problems.append(
            Problem(
                where, f"not valid YAML{at}: {problem}; the authenticator drops every {key} entry", "key", raw
            )
        )
        return None
    except RecursionError:
        result.problems.append(Problem(where, "nests too deeply; the whole key is dropped", "key"))
        return None
    if doc is None:
        return []
    if not isinstance(doc, list):
        result.problems.append(
            Problem(
                where,
                f"must be a YAML list, got {_json_type(doc)}; the authenticator drops every {key} entry",
                "key",
                doc,
            )
        )
        return None
    return doc


def _map_entries(
    data: dict[str, Any], key: str, result: AwsAuth
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(index, field path, entry) for each entry of mapUsers or mapRoles that is a mapping; any
    other entry is a problem and dropped."""
    for i, e in enumerate(_decode_key(data, key, result) or []):
        where = f"data.{key}[{i}]"
        if not isinstance(e, dict):
            result.problems.append(
                Problem(where, f"entry is {_json_type(e)}, not a mapping; dropped", "entry", e)
            )
            continue
        yield i, where, e


def _field_problems(result: AwsAuth, where: str, errors: list[str]) -> None:
    """Record the field errors ("field: message") of one entry; the authenticator leaves those fields empty."""
    for err in errors:
        result.problems.append(
            Problem(
                f"{where}.{err.split(':', 1)[0]}",
                err.split(": ", 1)[1] + "; the field is left empty",
                "field",
            )
        )


def parse_aws_auth(data: dict[str, Any] | None, sso_enabled: bool = False) -> AwsAuth:
    """Parse the ``data`` of the aws-auth ConfigMap; never raises, records problems instead."""
    result = AwsAuth()
    if not isinstance(data, dict):
        data = {}
    result.present_keys = frozenset(k for k in ("mapRoles", "mapUsers", "mapAccounts") if k in data)
    if "mapUsers" in data:
        for i, where, e in _map_entries(data, "mapUsers", result):
            errors: list[str] = []
            f = _go_fields(e, ("userarn", "username", "groups"))
            arn = _go_string(f.get("userarn"), "userarn", errors)
            m = Mapping(
                "user",
                arn,
                _go_string(f.get("username"), "username", errors),
                tuple(_go_string_list(f.get("groups"), "groups", errors)),
                i,
            )
            _field_problems(result, where, errors)
            if not arn:
                result.problems.append(
                    Problem(where, "value for userarn must be supplied; entry dropped", "entry", e)
                )
                continue
            if m.key in result.users:
                result.shadowed.append((result.users[m.key], m))
            else:
                for other in result.users.values():
                    if other.arn.lower() == arn.lower():
                        result.problems.append(
                            Problem(
                                where + ".userarn",
                                f"differs from {other.field}.userarn only in case; both are kept and which one matches is not deterministic",
                                "ambiguous",
                                arn,
                            )
                        )
            result.users[m.key] = m
    if "mapRoles" in data:
        for i, where, e in _map_entries(data, "mapRoles", result):
            errors = []
            f = _go_fields(e, ("rolearn", "sso", "username", "groups"))
            arn = _go_string(f.get("rolearn"), "rolearn", errors)
            sso = None
            sso_raw = f.get("sso")
            if isinstance(sso_raw, dict):
                sf = _go_fields(sso_raw, ("permissionSetName", "accountID", "partition"))
                sso = SSOMatcher(
                    _go_string(sf.get("permissionSetName"), "sso.permissionSetName", errors),
                    _go_string(sf.get("accountID"), "sso.accountID", errors),
                    _go_string(sf.get("partition"), "sso.partition", errors),
                )
            elif sso_raw is not None:
                errors.append(f"sso: cannot unmarshal {_json_type(sso_raw)} into an object")
            m = Mapping(
                "role",
                arn,
                _go_string(f.get("username"), "username", errors),
                tuple(_go_string_list(f.get("groups"), "groups", errors)),
                i,
                sso,
            )
            _field_problems(result, where, errors)
            invalid = _validate_role(m)
            if invalid:
                result.problems.append(Problem(where, invalid + "; entry dropped", "entry", e))
                continue
            if m.key in result.roles:
                result.shadowed.append((result.roles[m.key], m))
            result.roles[m.key] = m
    _overlaps(result)
    if "mapAccounts" in data:
        raw = data.get("mapAccounts")
        if not isinstance(raw, str):
            result.problems.append(
                Problem(
                    "data.mapAccounts", "must be a string; the API server rejects the ConfigMap", "key", raw
                )
            )
        elif raw.strip() not in _EMPTY_VALUES:
            try:
                node = yaml.compose(raw, Loader=_StrictLoader)  # noqa: S506
            except yaml.YAMLError as e:
                result.problems.append(
                    Problem(
                        "data.mapAccounts",
                        f"not valid YAML: {getattr(e, 'problem', e)}; the key is dropped",
                        "key",
                        raw,
                    )
                )
                node = None
            if node is not None:
                if isinstance(node, yaml.SequenceNode):
                    # yaml.v2 decodes any scalar into a string field by its text, so 012 stays "012"
                    for item in node.value:
                        if isinstance(item, yaml.ScalarNode):
                            result.accounts.append(item.value)
                        else:
                            result.problems.append(
                                Problem(
                                    "data.mapAccounts",
                                    "an item is not a scalar; the key is dropped",
                                    "key",
                                    raw,
                                )
                            )
                            result.accounts = []
                            break
                elif not (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
                    result.problems.append(
                        Problem(
                            "data.mapAccounts",
                            "must be a YAML list of account IDs; the key is dropped",
                            "key",
                            raw,
                        )
                    )
    return result


def _overlaps(result: AwsAuth) -> None:
    """Role patterns (SSO matchers, wildcard rolearns) that also match another role entry: the mapper
    walks a Go map and returns the first match, so which mapping applies is not deterministic."""
    roles = list(result.roles.values())
    for p in roles:
        pattern = (
            p.sso.arn_like()
            if p.sso is not None
            else (p.arn.lower() if any(c in p.arn for c in "*?") else "")
        )
        if not pattern:
            continue
        for other in roles:
            if other is p or not other.arn or any(c in other.arn for c in "*?"):
                continue
            if arn_like(other.arn.lower(), pattern):
                what = (
                    "SSO matcher (when SSO role matching is enabled)"
                    if p.sso is not None
                    else "wildcard rolearn"
                )
                result.problems.append(
                    Problem(
                        p.field,
                        f"{what} {pattern} also matches {other.field}.rolearn {other.arn}; which mapping applies is not deterministic",
                        "ambiguous",
                        other.arn,
                    )
                )


def _validate_role(m: Mapping) -> str:
    if not m.arn and m.sso is None:
        return "one of rolearn or SSO must be supplied"
    if m.arn and m.sso is not None:
        return "only one of rolearn or SSO can be supplied"
    if m.sso is not None:
        if not _ACCOUNT_ID.match(m.sso.account_id):
            return f"AccountID {m.sso.account_id!r} is not a valid AWS Account ID"
        if not _PERMISSION_SET.match(m.sso.permission_set_name):
            return (
                f"PermissionSetName {m.sso.permission_set_name!r} is not a valid AWS SSO PermissionSet Name"
            )
        if m.sso.partition and m.sso.partition not in (
            "aws",
            "aws-cn",
            "aws-us-gov",
            "aws-iso",
            "aws-iso-b",
            "aws-iso-e",
            "aws-iso-f",
        ):
            return f"partition {m.sso.partition!r} is not a valid AWS partition"
    return ""
