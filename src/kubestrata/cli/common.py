"""Shared CLI plumbing: error handling that never shows a traceback, consoles, exit codes."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

from kubestrata.errors import KubestrataError
from kubestrata.textsafe import printable

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
__all__ = ["printable"]  # re-exported for the CLI modules

err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    # one line: library messages (YAML parser, kubeconfig) span several
    one_line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    err_console.print(f"[bold red]error:[/] {escape(printable(one_line))}")
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn user-facing errors into a one-line message and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KubestrataError as e:
            raise fail(str(e)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(EXIT_OK) from None
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except Exception as e:
            # a bug of ours: one line for the user, the traceback only when asked for
            if os.environ.get("KUBESTRATA_DEBUG"):
                raise
            raise fail(
                f"internal error: {type(e).__name__}: {e} (set KUBESTRATA_DEBUG=1 for the traceback, "
                "and please report it)"
            ) from None

    return wrapper  # type: ignore[return-value]


def write_output(text: str, output_file: str | None) -> None:
    if output_file and output_file != "-":
        try:
            with open(output_file, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as e:
            raise KubestrataError(f"cannot write {output_file}: {e.strerror or e}") from None
    else:
        # the last line of defence for text reports: no escape sequence reaches the terminal
        sys.stdout.write(printable(text, keep_lines=True))
        sys.stdout.flush()
