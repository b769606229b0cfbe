"""The package import graph: which top-level packages may import which (ARCHITECTURE.md, "Layout").

Every import counts, including the ones inside functions: a lazy import still ties two packages
together, it only defers the cost."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "kubestrata"


def _graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = defaultdict(set)
    for f in SRC.rglob("*.py"):
        parts = f.relative_to(SRC).parts
        pkg = parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("kubestrata."):
                    target = name.split(".")[1]
                    if target != pkg:
                        g[pkg].add(target)
    return g


def _reach(g: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(g.get(start, ()))
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(g.get(p, ()))
    return seen


# what each lower layer may depend on at all (transitively): engines never reach the CLI or renderers
BASE = {"errors", "findings", "packagedata", "textsafe"}
ALLOWED = {
    "eks": {"kube", *BASE},
    "access": {"eks", "kube", "rbac", *BASE},
    "kube": BASE,
    "rbac": {"kube", *BASE},
}


def test_lower_layers_reach_only_what_they_may():
    g = _graph()
    for pkg, allowed in ALLOWED.items():
        extra = _reach(g, pkg) - allowed - {pkg}
        assert not extra, f"{pkg} reaches {sorted(extra)} (directly: {sorted(g[pkg])})"


# the edges: only the CLI reaches the server and the renderers' package; only the CLI and report/ import
# a terminal or command-line library; everything else is an engine (or shared model) and returns data
EDGES = {"cli": {"__main__"}, "server": {"__main__", "cli"}, "report": {"__main__", "cli"}}
UI_LIBRARIES = ("rich", "typer", "click")


def test_engines_never_reach_cli_server_or_renderers():
    g = _graph()
    for pkg in sorted(g):
        for edge, may in EDGES.items():
            if pkg != edge and pkg not in may:
                assert edge not in _reach(g, pkg), f"{pkg} reaches {edge} (directly: {sorted(g[pkg])})"


def test_only_cli_and_report_import_ui_libraries():
    importers = set()
    for f in SRC.rglob("*.py"):
        pkg = f.relative_to(SRC).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n.split(".")[0] in UI_LIBRARIES for n in names):
                importers.add(pkg)
    assert importers <= {"cli", "report"}, sorted(importers - {"cli", "report"})
    assert {"cli", "report"} <= importers  # the scan sees the imports it forbids elsewhere


def _module_graph() -> dict[str, set[str]]:
    """module -> the kubestrata modules it imports (``from kubestrata.x import y`` counts y when it
    is a module, else x)."""
    g: dict[str, set[str]] = defaultdict(set)
    known = {
        "kubestrata." + ".".join(f.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for f in SRC.rglob("*.py")
    }
    for f in SRC.rglob("*.py"):
        me = "kubestrata." + ".".join(f.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    g[me].add(sub if sub in known else node.module)
            elif isinstance(node, ast.Import):
                g[me].update(a.name for a in node.names)
        g[me] = {m for m in g[me] if m in known and m != me}
    return g


def test_no_import_cycle_through_eks_access_checks_kube_report():
    g = _module_graph()
    for mod in sorted(g):
        if mod.split(".")[1] in ("eks", "access", "checks", "kube", "report"):
            assert mod not in _reach(g, mod), f"{mod} imports itself through {sorted(g[mod])}"


def test_graph_sees_imports():
    # the test above is only as good as the graph: a known edge must be in it
    g, m = _graph(), _module_graph()
    assert "eks" in g["access"] and "access" in g["checks"] and "eks" in g["checks"]
    assert "kubestrata.eks.model" in m["kubestrata.access.model"]


def test_eks_imports_alone():
    # at run time too: loading the EKS readers loads neither access/ nor checks/
    code = (
        "import sys, kubestrata.eks.awsjson, kubestrata.eks.live, kubestrata.eks.document;"
        "bad = [m for m in sys.modules if m.startswith(('kubestrata.access', 'kubestrata.checks', "
        "'kubestrata.cli', 'rich', 'boto3'))];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
