"""Old flag spellings, kept for one release: each is rewritten to its new spelling before parsing, with a
deprecation line on stderr. They are not declared on the commands, so help and docs/cli.md show only
the one vocabulary of cli/options.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

# the release after which the old spellings go away
REMOVED_IN = "0.3"


@dataclass(frozen=True)
class Alias:
    commands: tuple[str, ...]  # command paths ("scan", "detect replay"); "detect *" = every subcommand
    old: str  # the old flag
    new: str  # what it becomes
    takes_value: bool = True
    # for a value-level rename: the old value -> the new value
    values: tuple[tuple[str, str], ...] = ()
    # only when the value passes this test (e.g. -o PATH in `cedar from-rbac`)
    when: Callable[[str], bool] | None = None


def _not_a_cedar_format(value: str) -> bool:
    return value not in ("cedar", "json")


ALIASES: tuple[Alias, ...] = (
    Alias(("scan", "pss *", "netpol *", "access *"), "-f", "--output-file"),
    Alias(("pss *",), "-V", "--policy-version"),
    Alias(("pss *",), "--version", "--policy-version"),
    Alias(("netpol list", "netpol diff"), "-o", "-o", values=(("txt", "table"),)),
    Alias(("netpol eval", "netpol coverage"), "--json", "-o json", takes_value=False),
    Alias(("netpol eval",), "--port", "--destination-port"),
    Alias(("access migrate",), "--format", "-o"),
    Alias(("detect *",), "-f", "-o"),
    Alias(("detect *",), "--format", "-o"),
    Alias(("detect replay", "detect watch"), "--cluster", "--cluster-name"),
    Alias(("checks list",), "--markdown", "-o markdown", takes_value=False),
    Alias(("cedar check",), "-p", "--policies"),
    Alias(("cedar from-rbac",), "-o", "--output-file", when=_not_a_cedar_format),
    Alias(("cedar from-rbac",), "--output", "--output-file", when=_not_a_cedar_format),
)

GROUPS = {"pss", "cedar", "detect", "netpol", "access", "checks"}


def _path(args: list[str]) -> tuple[str, int]:
    """The command path ("detect replay") and the index where its own arguments start."""
    if not args or args[0].startswith("-"):
        return "", 0
    if args[0] in GROUPS and len(args) > 1 and not args[1].startswith("-"):
        return f"{args[0]} {args[1]}", 2
    return args[0], 1


def _applies(alias: Alias, path: str) -> bool:
    group = path.split(" ")[0]
    return any(c == path or (c.endswith(" *") and c[:-2] == group and " " in path) for c in alias.commands)


def warn(old: str, new: str, path: str) -> None:
    sys.stderr.write(
        f"warning: `kubestrata {path} {old}` is deprecated and goes away in {REMOVED_IN}; use {new}\n"
    )


def rewrite(args: list[str], *, quiet: bool = False) -> list[str]:
    """The arguments with every deprecated spelling replaced by the current one (a deprecation line
    for each, unless quiet: shell completion parses too)."""
    say = (lambda *_: None) if quiet else warn
    path, start = _path(args)
    active = [a for a in ALIASES if _applies(a, path)]
    if not active:
        return args
    out = list(args[:start])
    i = start
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out.extend(args[i:])
            break
        name, eq, inline = tok.partition("=") if tok.startswith("--") else (tok, "", "")
        alias = next((a for a in active if a.old == name), None)
        if alias is None:
            out.append(tok)
            i += 1
            continue
        if not alias.takes_value:
            say(alias.old, alias.new, path)
            out.extend(alias.new.split(" "))
            i += 1
            continue
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(args):
            value, i = args[i + 1], i + 2
        else:  # let click report the missing value under the new name
            out.append(alias.new)
            i += 1
            continue
        if alias.when is not None and not alias.when(value):
            out.extend([tok] if eq else [tok, value])
            continue
        renamed = dict(alias.values)
        if alias.values:
            if value in renamed:
                say(f"{alias.old} {value}", f"{alias.new} {renamed[value]}", path)
                value = renamed[value]
            out.extend([alias.new, value])
            continue
        say(alias.old, alias.new, path)
        out.extend([alias.new, value])
    return out
