"""The click classes typer builds on. typer 0.2x vendors a reduced click (typer._click) whose classes are
not the `click` package's, and moves Group/Option/Command into typer.core; subclassing and isinstance
checks must use the classes typer actually instantiates."""

from __future__ import annotations

from typer.core import TyperCommand, TyperGroup, TyperOption

try:
    from typer._click.core import Command as BaseCommand
    from typer._click.core import Context
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer builds on click itself
    from click import ClickException, Context  # type: ignore[no-redef,assignment]
    from click import Command as BaseCommand  # type: ignore[assignment]

Command = TyperCommand
Group = TyperGroup
Option = TyperOption

__all__ = ["BaseCommand", "ClickException", "Command", "Context", "Group", "Option"]
