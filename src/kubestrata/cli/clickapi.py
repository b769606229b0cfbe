"""The click classes typer builds on. typer 0.2x vendors a reduced click (typer._click) whose classes are
not the `click` package's, and moves Group/Option/Command into typer.core; subclassing and isinstance
checks must use the classes typer actually instantiates."""

from __future__ import annotations

from typer.core import TyperCommand, TyperGroup, TyperOption

try:
    from typer._click.core import Command as BaseCommand
    from typer._click.core import Context
    from typer._click.exceptions import ClickException
    from typer._click.shell_completion import CompletionItem
except ImportError:  # pragma: no cover - older typer builds on click itself
    from click import ClickException, Context  # type: ignore[no-redef,assignment]
    from click import Command as BaseCommand  # type: ignore[assignment]
    from click.shell_completion import CompletionItem  # type: ignore[no-redef,assignment]

Command = TyperCommand
Group = TyperGroup
Option = TyperOption

__all__ = ["BaseCommand", "ClickException", "Command", "CompletionItem", "Context", "Group", "Option"]


def choices_of(param: object) -> list[str] | None:
    """The allowed values of a choice parameter, whichever typer built it (0.29 describes types with
    a type_descriptor; earlier versions use a click Choice)."""
    desc = getattr(param, "type_descriptor", None)
    desc_choices = getattr(desc, "choices", None)
    if getattr(desc, "is_choice", False) and desc_choices:
        return [str(getattr(c, "value", c)) for c in desc_choices]
    choices = getattr(getattr(param, "type", None), "choices", None)
    return [str(getattr(c, "value", c)) for c in choices] if choices else None
