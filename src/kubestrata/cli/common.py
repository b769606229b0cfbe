"""Shared CLI plumbing: error handling that never shows a traceback, consoles, exit codes and the one
way every command says why it exits non-zero.

Terminal output is done by rich, never after it: attacker-controlled text is escaped (printable, then
markup-escaped) *before* it enters a renderable, and rich's own colour codes reach the terminal
untouched. rich honours NO_COLOR, FORCE_COLOR and the terminal's width. Error and warning lines are
never wrapped (soft_wrap): a path must stay on one line to be copied or grepped.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from kubestrata.cli import clickapi as click
from kubestrata.errors import KubestrataError
from kubestrata.report.terminal import markup
from kubestrata.textsafe import printable

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
__all__ = ["printable", "escape"]  # re-exported for the CLI modules

# width of text written to pipes and files, where there is no terminal to measure
PIPE_WIDTH = 160


def escape(text: str) -> str:
    """rich's markup escape (rich is imported when something is printed, not at start-up)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class _StderrConsole:
    """rich's Console on stderr, created when first used: a command that prints nothing on stderr
    (a scan writing JSON to a pipe) never imports rich, ~25 ms of every start-up."""

    def __init__(self) -> None:
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    @property
    def is_terminal(self) -> bool:
        # what rich would answer, without rich when stderr is plainly not a terminal: rich says yes
        # only for a TTY, TTY_COMPATIBLE=1 or a non-empty FORCE_COLOR
        if self._console is None and not _may_be_terminal():
            return False
        return self.console.is_terminal

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


def _may_be_terminal() -> bool:
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


err_console: Console = _StderrConsole()  # type: ignore[assignment]

F = TypeVar("F", bound=Callable[..., Any])


def one_line(message: str) -> str:
    # library messages (YAML parser, kubeconfig) span several lines
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def error_line(message: str) -> None:
    """`error: ...` on stderr, escaped, on one line."""
    err_console.print(f"[bold red]error:[/] {markup(one_line(message))}")


def warning_line(message: str) -> None:
    """`warning: ...` on stderr, escaped, on one line."""
    err_console.print(f"[yellow]warning:[/] {markup(one_line(message))}")


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    error_line(message)
    return typer.Exit(code)


def exit_with(code: int, reason: str = "") -> NoReturn:
    """Exit; a non-zero exit always says why on stderr, in one line."""
    if code != EXIT_OK and reason:
        err_console.print(f"[dim]kubestrata:[/] {markup(one_line(reason))}")
    raise typer.Exit(code)


# What a command leaves to the operating system. When the console script runs the command (not a
# test's in-process runner: HARD_EXIT stays False there), it ends the process with os._exit after
# flushing its output, so the millions of objects of a large scan are not freed one by one (about
# 5% of a 50,000-object scan's CPU) just before the OS reclaims them at once.
HARD_EXIT = False
LEFT_TO_EXIT: list[Any] = []


def leave_to_exit(*objs: Any) -> None:
    if HARD_EXIT:
        LEFT_TO_EXIT.extend(objs)


def handle_errors(fn: F) -> F:
    """Turn user-facing errors into a one-line message and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KubestrataError as e:
            raise fail(str(e)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except BrokenPipeError:
            # the reader went away (`| head`): not an error of ours
            try:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
            except OSError:
                pass
            raise typer.Exit(EXIT_OK) from None
        except (typer.Exit, typer.Abort, click.ClickException):
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
    """A text report (JSON, SARIF, CSV, ...) to the file or stdout."""
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


def write_streamed(write: Callable[[IO[bytes]], None], output_file: str | None) -> None:
    """A text report that ``write`` writes as UTF-8 in pieces: to the file as it is made (a large
    report never exists whole in memory), or to stdout as ``write_output`` writes text. A report that
    fails half-way leaves no file behind when the file is new (never a path that existed before:
    --output-file /dev/stdout, a FIFO, a file a previous run wrote)."""
    if output_file and output_file != "-":
        try:
            created = not os.path.lexists(output_file)
            with open(output_file, "wb") as fh:
                try:
                    write(fh)
                except BaseException:
                    fh.close()
                    if created:
                        os.unlink(output_file)
                    raise
        except OSError as e:
            raise KubestrataError(f"cannot write {output_file}: {e.strerror or e}") from None
    else:
        import io

        buf = io.BytesIO()
        write(buf)
        write_output(buf.getvalue().decode(), None)


def stdout_console(file: IO[str] | None = None) -> Console:
    """The console a rich report is printed on: stdout (colour and width from the terminal and
    NO_COLOR / FORCE_COLOR), or a file (no colour, a fixed width)."""
    from rich.console import Console

    if file is not None:
        return Console(file=file, width=PIPE_WIDTH, no_color=True, highlight=False, force_terminal=False)
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


@contextmanager
def rich_output(output_file: str | None) -> Iterator[Console]:
    """A console for a rich report going to --output-file or stdout."""
    if output_file and output_file != "-":
        try:
            fh = open(output_file, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise KubestrataError(f"cannot write {output_file}: {e.strerror or e}") from None
        with fh:
            yield stdout_console(fh)
    else:
        yield stdout_console()
