"""Load Kubernetes manifests: YAML or JSON, multi-document, List kinds, directories, stdin.

Each document is parsed on its own so that one broken document costs only itself; errors are
collected (file, document, line) and the caller records them as coverage gaps.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from kubestrata.errors import InputError
from kubestrata.kube.objects import KubeObject, Source

try:  # the C loader is an order of magnitude faster; fall back where libyaml is missing
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YamlLoader = yaml.SafeLoader

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class LoadResult:
    objects: list[KubeObject] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    files: int = 0


def iter_manifest_files(path: Path) -> Iterator[Path]:
    """Files under a directory (recursively, sorted, hidden entries skipped) or the file itself."""
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                if f.endswith(MANIFEST_SUFFIXES) and not f.startswith("."):
                    yield Path(root) / f
    else:
        yield path


def load_paths(paths: Iterable[str | Path], *, stdin: Any = None) -> LoadResult:
    """Load every object from the given paths ("-" reads stdin). Never raises for bad content."""
    result = LoadResult()
    for p in paths:
        if str(p) == "-":
            data = (stdin or sys.stdin.buffer).read()
            if isinstance(data, str):
                data = data.encode()
            result.files += 1
            _load_bytes(data, "-", result)
            continue
        path = Path(p)
        if not path.exists():
            result.errors.append(InputError("no such file or directory", file=str(p)))
            continue
        for f in iter_manifest_files(path):
            result.files += 1
            try:
                size = f.stat().st_size
                if size > MAX_FILE_BYTES:
                    result.errors.append(
                        InputError(f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit", file=str(f))
                    )
                    continue
                data = f.read_bytes()
            except OSError as e:
                result.errors.append(InputError(f"cannot read: {e.strerror or e}", file=str(f)))
                continue
            _load_bytes(data, str(f), result)
    return result


def load_text(text: str | bytes, name: str = "<memory>") -> LoadResult:
    result = LoadResult(files=1)
    _load_bytes(text.encode() if isinstance(text, str) else text, name, result)
    return result


def load_objects(text: str | bytes, name: str = "<memory>") -> list[KubeObject]:
    """Strict variant for tests and small inputs: raise the first error."""
    res = load_text(text, name)
    if res.errors:
        raise res.errors[0]
    return res.objects


def _load_bytes(data: bytes, name: str, result: LoadResult) -> None:
    if b"\x00" in data[:8192]:
        result.errors.append(InputError("binary file (contains NUL bytes), not a manifest", file=name))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        result.errors.append(InputError(f"not UTF-8 text (byte {e.start})", file=name))
        return
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass  # may be YAML flow style or JSON lines; the YAML path reports the error
        else:
            _add_document(doc, name, 0, 1, result)
            return
    for index, (line, chunk) in enumerate(_split_documents(text)):
        try:
            doc = yaml.load(chunk, Loader=_YamlLoader)  # noqa: S506 - CSafeLoader/SafeLoader only
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            err_line = line + mark.line if mark is not None else line
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            result.errors.append(
                InputError(f"invalid YAML: {problem}", file=name, document=index, line=err_line)
            )
            continue
        except RecursionError:
            result.errors.append(
                InputError("document nests too deeply", file=name, document=index, line=line)
            )
            continue
        _add_document(doc, name, index, line, result)


def _split_documents(text: str) -> list[tuple[int, str]]:
    """Split a YAML stream on document separators, keeping each document's first line (1-based)."""
    lines = text.split("\n")
    docs: list[tuple[int, str]] = []
    start = 0
    for i, ln in enumerate(lines):
        if ln.startswith("---") and (len(ln) == 3 or ln[3] in " \t#\r"):
            if i > start or docs:
                docs.append((start + 1, "\n".join(lines[start:i])))
            start = i + 1
            rest = ln[3:].strip()
            if rest and not rest.startswith("#"):
                # content on the separator line itself ("--- !tag" or "--- {a: 1}"): keep it
                lines[i] = rest
                start = i
        elif ln.startswith("...") and ln.strip() == "...":
            lines[i] = ""
    docs.append((start + 1, "\n".join(lines[start:])))
    return [(ln, chunk) for ln, chunk in docs if chunk.strip()]


def _add_document(doc: Any, name: str, index: int, line: int, result: LoadResult) -> None:
    if doc is None:
        return
    if not isinstance(doc, dict):
        result.errors.append(
            InputError(
                f"expected a Kubernetes object (mapping), got {type(doc).__name__}",
                file=name,
                document=index,
                line=line,
            )
        )
        return
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc.get("items")
        if not isinstance(items, list):
            result.errors.append(
                InputError("items must be a list", file=name, document=index, field="items", line=line)
            )
            return
        item_kind = kind[: -len("List")]
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                result.errors.append(
                    InputError(
                        "list item is not a mapping",
                        file=name,
                        document=index,
                        field=f"items[{i}]",
                        line=line,
                    )
                )
                continue
            # kubectl get -o yaml Lists carry typed items with kind; typed lists (PodList) may not
            if "kind" not in item and item_kind and item_kind != "":
                item = {"kind": item_kind, "apiVersion": doc.get("apiVersion", "v1"), **item}
            _add_object(item, name, index, line, result, field_prefix=f"items[{i}]")
        return
    _add_object(doc, name, index, line, result)


def _add_object(
    doc: dict[str, Any], name: str, index: int, line: int, result: LoadResult, field_prefix: str = ""
) -> None:
    pre = field_prefix + "." if field_prefix else ""
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind:
        result.errors.append(
            InputError("missing kind", file=name, document=index, field=pre + "kind", line=line)
        )
        return
    if not isinstance(doc.get("apiVersion"), str):
        result.errors.append(
            InputError("missing apiVersion", file=name, document=index, field=pre + "apiVersion", line=line)
        )
        return
    meta = doc.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        result.errors.append(
            InputError(
                "metadata must be a mapping", file=name, document=index, field=pre + "metadata", line=line
            )
        )
        return
    for key in ("labels", "annotations"):
        if meta and meta.get(key) is not None and not isinstance(meta.get(key), dict):
            result.errors.append(
                InputError(
                    f"{key} must be a mapping",
                    file=name,
                    document=index,
                    field=f"{pre}metadata.{key}",
                    line=line,
                )
            )
            return
    result.objects.append(KubeObject(doc, Source(name, index, line)))
