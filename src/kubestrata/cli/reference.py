"""docs/cli.md, generated from the click objects: every command and every flag, so the page cannot drift
from the code (a test compares them). Regenerate: ``python -m kubestrata.cli.reference > docs/cli.md``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubestrata.cli import clickapi as click
from kubestrata.cli.main import COMMANDS, load_command
from kubestrata.cli.options import VOCABULARY


def walk() -> Iterator[tuple[str, Any]]:
    """(command path, click command) for every leaf command, in the order of the top-level table."""
    for name in COMMANDS:
        yield from _walk(load_command(name), name)


def _walk(cmd: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(cmd, click.Group):
        if any(isinstance(p, click.Option) for p in cmd.params):
            yield path, cmd  # a group that also runs by itself (serve)
        for sub_name in cmd.list_commands(None):  # type: ignore[arg-type]
            yield from _walk(cmd.commands[sub_name], f"{path} {sub_name}")
    else:
        yield path, cmd


def flag_spellings(param: Any) -> list[str]:
    return [*param.opts, *param.secondary_opts]


def _value(param: Any) -> str:
    if param.is_flag:
        return ""
    choices = click.choices_of(param)
    return "|".join(choices) if choices else str(param.metavar or "")


def render() -> str:
    lines = [
        "# Command-line reference",
        "",
        "Generated from the code by `python -m kubestrata.cli.reference > docs/cli.md`; do not edit by hand.",
        "",
        "## One vocabulary",
        "",
        "Every flag that several commands share means the same thing in each (a test fails otherwise):",
        "",
        "```",
        *VOCABULARY.splitlines(),
        "```",
        "",
        "Every flag can also be set in the environment as `KUBESTRATA_<COMMAND>_<FLAG>` (click's automatic",
        "names: `KUBESTRATA_SCAN_FAIL_ON=critical`, `KUBESTRATA_DETECT_REPLAY_OUTPUT=json`); a flag on the",
        "command line wins. Settings that are not flags live in the one config file, `kubestrata.yaml`,",
        "found in the working directory or `$XDG_CONFIG_HOME/kubestrata/` (or given with `-c`).",
        "",
        "Exit codes: 0 clean, 1 findings (or a denial) at or above the gate, 2 usage or input error. Every",
        "non-zero exit says why in one line on stderr.",
        "",
    ]
    for path, cmd in walk():
        lines += [f"## kubestrata {path}", ""]
        summary = (cmd.help or "").strip().split("\n\n")[0].replace("\n", " ")
        if summary:
            lines += [summary, ""]
        args = [p for p in cmd.params if getattr(p, "param_type_name", "") == "argument"]
        if args:
            lines.append("Arguments: " + ", ".join(f"`{(a.metavar or a.name or '').upper()}`" for a in args))
            lines.append("")
        opts = [p for p in cmd.params if isinstance(p, click.Option) and not p.hidden]
        if opts:
            lines += ["| flag | value | meaning |", "|---|---|---|"]
            for p in opts:
                spell = ", ".join(f"`{s}`" for s in flag_spellings(p))
                helptext = " ".join((p.help or "").split()).replace("|", "\\|")
                value = _value(p).replace("|", "\\|")
                lines.append(f"| {spell} | {value} | {helptext} |")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
