"""The engine returns data: no module under kubestrata/detect imports rich or typer (rendering lives
in kubestrata/report, commands in kubestrata/cli), and rule contexts are typed."""

from __future__ import annotations

import ast
from pathlib import Path

DETECT = Path(__file__).resolve().parents[2] / "src/kubestrata/detect"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


def test_no_rendering_or_cli_imports_in_the_engine() -> None:
    bad = {str(p.relative_to(DETECT)): sorted(_imports(p) & {"rich", "typer"}) for p in DETECT.rglob("*.py")}
    assert not {k: v for k, v in bad.items() if v}


def test_rule_functions_take_a_typed_context() -> None:
    untyped = [
        str(p.relative_to(DETECT))
        for p in DETECT.rglob("*.py")
        if "ctx: Any" in p.read_text(encoding="utf-8")
    ]
    assert not untyped
