"""Directories that are not manifests but sources of manifests: Kustomize and Helm.

- A directory with a kustomization file is what ``kubectl apply -k`` would apply: it is rendered with
  ``kustomize build`` (when on PATH) or ``kubectl kustomize``, and the files it references (resources,
  patches, and through a referenced base that base's files) are never judged raw (a strategic-merge
  patch is not an object); files beside it that no kustomization references are read as manifests. A kustomization another
  one in the same tree references (a base of an overlay) is rendered through that overlay only.
  Without a renderer, or when rendering fails (a remote base offline), the directory is a named
  coverage gap, never findings.
- A Helm chart (Chart.yaml) is a coverage gap that says how to render it: its templates are Go
  templates, not manifests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
RENDER_TIMEOUT = 120.0


@dataclass
class RenderPlan:
    """What a directory tree holds besides plain manifests."""

    kustomize_roots: list[Path] = field(default_factory=list)  # to render
    helm_charts: list[Path] = field(default_factory=list)  # gaps
    skip_dirs: set[Path] = field(default_factory=set)  # never loaded raw
    skip_files: set[Path] = field(default_factory=set)


def kustomization_file(d: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (d / name).is_file():
            return d / name
    return None


def _referenced(kfile: Path) -> list[Path]:
    """Local paths a kustomization names (resources, bases, components, patches, generators...)."""
    try:
        doc: Any = yaml.safe_load(kfile.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    if not isinstance(doc, dict):
        return []
    out: list[Path] = []

    def add(v: Any) -> None:
        if isinstance(v, str) and "://" not in v and not v.startswith(("github.com/", "git@")):
            out.append((kfile.parent / v).resolve())

    for key in ("resources", "bases", "components", "crds", "patchesStrategicMerge", "configurations"):
        for v in doc.get(key) or []:
            add(v)
    for key in ("configMapGenerator", "secretGenerator"):
        for g in doc.get(key) or []:
            if isinstance(g, dict):
                for f in [*(g.get("files") or []), *(g.get("envs") or []), g.get("env")]:
                    if isinstance(f, str):
                        add(f.split("=", 1)[-1])  # "key=path" names the key
    for key in ("patches", "patchesJson6902"):
        for p in doc.get(key) or []:
            if isinstance(p, dict):
                add(p.get("path"))
            else:
                add(p)
    return out


def plan(root: Path) -> RenderPlan:
    """Find the kustomizations and charts under ``root`` (a directory)."""
    out = RenderPlan()
    kroots: list[Path] = []
    for dirpath, dirs, _files in os.walk(root):
        d = Path(dirpath)
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        if (d / "Chart.yaml").is_file():
            out.helm_charts.append(d)
            out.skip_dirs.add(d.resolve())
            dirs[:] = []
            continue
        kfile = kustomization_file(d)
        if kfile is not None:
            kroots.append(d)
            out.skip_files.add(kfile.resolve())
    referenced: set[Path] = set()
    for d in kroots:
        for ref in _referenced(kustomization_file(d)):  # type: ignore[arg-type]
            referenced.add(ref)
            if ref.is_file():
                out.skip_files.add(ref)  # rendered through the kustomization, never judged raw
    # a file in a kustomization's directory that no kustomization references is not applied by -k:
    # it is loaded like any other manifest (it may be applied on its own)
    out.kustomize_roots = [d for d in kroots if d.resolve() not in referenced]
    return out


def skipped(f: Path, p: RenderPlan) -> bool:
    r = f.resolve()
    return r in p.skip_files or any(r.is_relative_to(d) for d in p.skip_dirs)


def renderer() -> list[str] | None:
    """The command that renders a kustomization directory, or None when none is installed."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render_kustomization(d: Path) -> tuple[bytes | None, str]:
    """(rendered YAML, "") or (None, why not)."""
    cmd = renderer()
    how = f"render it yourself: kubectl kustomize {d} | kubestrata scan -"
    if cmd is None:
        return None, f"neither kustomize nor kubectl is installed; {how}"
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [*cmd, str(d)], capture_output=True, timeout=RENDER_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{' '.join(cmd)} failed ({e}); {how}"
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, f"{' '.join(cmd)} failed: {err[-1] if err else 'exit ' + str(proc.returncode)}; {how}"
    return proc.stdout, " ".join(cmd)


def helm_gap_detail(d: Path) -> str:
    return (
        f"Helm chart (Chart.yaml): its templates are not manifests and were not evaluated; render it: "
        f"helm template RELEASE {d} [-f values.yaml] | kubestrata scan -"
    )
