"""The console script's entry point: answers `--version` before anything heavier than the standard
library is imported, then hands over to the typer app."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from kubestrata import __version__

        print(f"kubestrata {__version__}")
        return
    from kubestrata.cli.main import main as run

    run()
