"""The kube-bench check-file model (controls -> groups -> checks -> test items) and what running it
produces (check, group and controls results)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

PASS, FAIL, WARN, INFO = "PASS", "FAIL", "WARN", "INFO"
COMPARE_OPS = (
    "eq",
    "noteq",
    "gt",
    "gte",
    "lt",
    "lte",
    "has",
    "nothave",
    "regex",
    "valid_elements",
    "bitmask",
)


@dataclass(slots=True)
class TestItem:
    flag: str = ""
    path: str = ""
    env: str = ""
    set: bool = True
    op: str = ""
    value: str = ""


@dataclass(slots=True)
class Tests:
    items: list[TestItem]
    bin_op: str = ""


@dataclass(slots=True)
class BenchCheck:
    """One check of a kube-bench controls file (a CIS recommendation); not a kubestrata posture check."""

    id: str
    text: str = ""
    audit: str = ""
    audit_config: str = ""
    audit_env: str = ""
    type: str = ""
    tests: Tests | None = None
    remediation: str = ""
    scored: bool = False
    use_multiple_values: bool = False
    disable_env_testing: bool = False
    # kubestrata's built-in checks: what the native auditor reads instead of running a command
    native: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Group:
    id: str
    text: str = ""
    type: str = ""
    checks: list[BenchCheck] = field(default_factory=list)


@dataclass(slots=True)
class Controls:
    id: str
    version: str = ""
    text: str = ""
    type: str = ""
    groups: list[Group] = field(default_factory=list)
    detected_version: str = ""


@dataclass(slots=True)
class AuditRun:
    """What one audit command produced: its output, and an error (the command failed) if any.
    ``not_found``: the command or file did not exist (kube-bench tolerates that for audit_config)."""

    output: str = ""
    error: str | None = None
    not_found: bool = False


# An auditor runs one of a check's audit commands: (check, "audit" | "audit_config" | "audit_env").
Auditor = Callable[[BenchCheck, str], AuditRun]


@dataclass(slots=True)
class CheckResult:
    check: BenchCheck
    state: str
    actual_value: str = ""
    expected_result: str = ""
    reason: str = ""
    used: list[str] = field(default_factory=list)  # per test item: flag, path or env
    audit: str = ""  # the command as shown (variables substituted)
    audit_config: str = ""
    audit_env: str = ""
    remediation: str = ""


@dataclass(slots=True)
class GroupResult:
    group: Group
    results: list[CheckResult]

    def count(self, state: str) -> int:
        return sum(1 for r in self.results if r.state == state)


@dataclass(slots=True)
class ControlsResult:
    controls: Controls
    groups: list[GroupResult]

    def count(self, state: str) -> int:
        return sum(g.count(state) for g in self.groups)
