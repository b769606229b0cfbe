"""The command-line vocabulary: every flag that means the same thing in several commands is made here.
Each factory returns a fresh typer.Option so commands can use them as parameter defaults. Old
spellings are rewritten by cli/deprecations.py for one release."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from kubestrata.findings import Severity

VOCABULARY = """\
-o/--output FORMAT      the report format (table and json everywhere; streams also jsonl; scan also sarif,
                        junit, html)
--output-file PATH      where to write the report (default stdout)
-n/--namespace NS       one namespace;  -A/--all-namespaces  every namespace
--cluster               read the live cluster of the kubeconfig (a switch, never a name; a name recorded
                        in findings is --cluster-name)
--context NAME          kubeconfig context;  --kubeconfig PATH  kubeconfig file
-c/--config PATH        the one kubestrata config file (kubestrata.yaml)
-q/--quiet              no progress and no warnings on stderr;  -v/--verbose  more detail
--fail-on SEVERITY      exit 1 at or above this severity (default high); never: findings never fail the run
--strict                exit 2 when any input could not be read or evaluated, naming it
"""

FAIL_ON_DEFAULT = "high"
FAIL_ON_CHOICES = ("info", "low", "medium", "high", "critical", "never")


class TableOrJson(StrEnum):
    TABLE = "table"
    JSON = "json"


class StreamFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"


def output(default: Any, help: str = "Output format.") -> Any:
    return typer.Option(default, "--output", "-o", help=help, case_sensitive=False)


def output_file(help: str = "Write the output to this file instead of stdout.") -> Any:
    return typer.Option(None, "--output-file", help=help, metavar="PATH")


def namespace(help: str = "Only this namespace (plus cluster-scoped objects).") -> Any:
    return typer.Option(None, "--namespace", "-n", help=help, metavar="NS")


def all_namespaces(help: str = "Every namespace.") -> Any:
    return typer.Option(False, "--all-namespaces", "-A", help=help)


def cluster(help: str = "Read the live cluster of the current kubeconfig context.") -> Any:
    return typer.Option(False, "--cluster", help=help)


def context(help: str = "kubeconfig context (with --cluster).") -> Any:
    return typer.Option(None, "--context", help=help, metavar="NAME")


def kubeconfig(help: str = "kubeconfig file (with --cluster).") -> Any:
    return typer.Option(None, "--kubeconfig", help=help, metavar="PATH")


def timeout(default: float = 60.0, help: str = "Seconds to wait for the API server (with --cluster).") -> Any:
    return typer.Option(default, "--timeout", help=help, metavar="SECONDS")


def config(
    help: str = "kubestrata config file (default: ./kubestrata.yaml or $XDG_CONFIG_HOME/kubestrata/kubestrata.yaml).",
) -> Any:
    return typer.Option(None, "--config", "-c", help=help, metavar="PATH")


def quiet(help: str = "No progress and no warnings on stderr.") -> Any:
    return typer.Option(False, "--quiet", "-q", help=help)


def verbose(help: str = "More detail on stderr.") -> Any:
    return typer.Option(False, "--verbose", "-v", help=help)


def fail_on(default: str = FAIL_ON_DEFAULT) -> Any:
    return typer.Option(
        default,
        "--fail-on",
        help="Exit 1 when a finding at or above this severity remains: "
        + ", ".join(FAIL_ON_CHOICES)
        + f" (default {default}; never: findings never fail the run).",
        metavar="SEVERITY",
    )


def strict(help: str = "Exit 2 when any input could not be read or evaluated (and say which).") -> Any:
    return typer.Option(False, "--strict", help=help)


def parse_fail_on(value: str | None) -> Severity | None:
    """The severity threshold of --fail-on; None for `never`. A bad value is a usage error naming the
    valid ones."""
    from kubestrata.errors import KubestrataError

    if value is None or value.lower() == "never":
        return None
    try:
        return Severity.parse(value)
    except ValueError:
        raise KubestrataError(
            f"--fail-on: unknown value {value!r}; expected one of {', '.join(FAIL_ON_CHOICES)}"
        ) from None
