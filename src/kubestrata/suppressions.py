"""Suppressions: a file of accepted risks, each with a reason, an owner and an expiry date.

```yaml
suppressions:
  - rule: KS-WL-001            # id or glob
    scope: {namespace: kube-system, kind: DaemonSet, name: "aws-*", container: "*"}
    reason: CNI needs privilege  # required
    owner: platform-team
    expires: 2027-06-30         # an expired entry stops suppressing and says so
```
"""

from __future__ import annotations

import datetime as dt
from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubestrata.config import load_yaml_model
from kubestrata.findings import Finding


class SuppressionScope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str = "*"
    kind: str = "*"
    name: str = "*"
    container: str = "*"


class Suppression(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str
    scope: SuppressionScope = Field(default_factory=SuppressionScope)
    reason: str
    owner: str | None = None
    expires: dt.date | None = None

    @field_validator("reason")
    @classmethod
    def _reason_required(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a reason is required")
        return v

    def matches(self, f: Finding) -> bool:
        ref = f.object
        s = self.scope
        return (
            fnmatchcase(f.rule_id, self.rule)
            and fnmatchcase(ref.namespace if ref else "", s.namespace)
            and fnmatchcase(ref.kind if ref else "", s.kind)
            and fnmatchcase(ref.name if ref else "", s.name)
            and fnmatchcase(f.container or "", s.container)
        )


class SuppressionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suppressions: list[Suppression] = Field(default_factory=list)


class Suppressions:
    def __init__(self, entries: list[Suppression], today: dt.date | None = None, source: str = "") -> None:
        today = today or dt.date.today()
        self.source = source
        self.active = [e for e in entries if e.expires is None or e.expires >= today]
        self.expired = [e for e in entries if e.expires is not None and e.expires < today]

    @classmethod
    def load(cls, path: str | Path, today: dt.date | None = None) -> Suppressions:
        parsed = load_yaml_model(path, SuppressionFile, what="suppressions")
        return cls(parsed.suppressions, today, str(path))

    def match(self, f: Finding) -> str | None:
        for e in self.active:
            if e.matches(f):
                return e.reason + (f" (owner {e.owner})" if e.owner else "")
        return None

    def expired_notices(self) -> list[str]:
        return [
            f"suppression for {e.rule} ({e.reason!r}) expired on {e.expires}; it no longer suppresses"
            for e in self.expired
        ]
