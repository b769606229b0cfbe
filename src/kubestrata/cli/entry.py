"""The console script's entry point: answers `--version` before anything heavier than the standard
library is imported, then hands over to the typer app."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from kubestrata import __version__

        print(f"kubestrata {__version__}")
        return
    from kubestrata.cli import common
    from kubestrata.cli.main import main as run

    common.HARD_EXIT = True
    try:
        run()
    except SystemExit as e:
        if not common.LEFT_TO_EXIT:
            raise
        # see common.LEFT_TO_EXIT: flush what was written, then exit without freeing the results
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
