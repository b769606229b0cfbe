"""Load Kubernetes manifests: YAML or JSON, multi-document, List kinds, directories, stdin.

Each document is parsed on its own so that one broken document costs only itself; errors are
collected (file, document, line) and the caller records them as coverage gaps.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from kubestrata.errors import InputError
from kubestrata.kube import render as render_mod
from kubestrata.kube.objects import KubeObject, Source

try:  # the C loader is an order of magnitude faster; fall back where libyaml is missing
    _BaseLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader


class _YamlLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader, except that a plain ``=`` or ``<<`` used as a value is the string it spells (as
    Kubernetes' YAML decoder reads it); PyYAML resolves them to the YAML 1.1 value and merge tags and
    then has no constructor for them, rejecting valid manifests. Merge keys (``<<: *a``) still merge."""


def _plain_string(loader: Any, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_YamlLoader.add_constructor("tag:yaml.org,2002:value", _plain_string)
_YamlLoader.add_constructor("tag:yaml.org,2002:merge", _plain_string)

try:  # rapidyaml parses ~10x faster than PyYAML; used only where the result is provably the same
    import ryml as _ryml
except ImportError:  # pragma: no cover
    _ryml = None

# PyYAML's implicit resolvers (first character -> (tag, regexp)...): a plain scalar matching one of
# these is not a string to PyYAML (bool, int, float, null, timestamp, merge, value, yaml)
_IMPLICIT = {k: tuple(v) for k, v in _YamlLoader.yaml_implicit_resolvers.items() if k}
# Documents that always take the PyYAML path: tags, anchors and aliases (rapidyaml's JSON output
# does not carry them, and it is laxer about them), directives, and what PyYAML rejects but rapidyaml tolerates: tabs, carriage returns, characters
# outside YAML's printable set and the YAML 1.1 line breaks NEL, LS, PS. Cheap substring tests run
# first; the regular expressions only on documents that contain the character at all.
_NODE_PROPERTY = re.compile(r"(?:^|[\s\[\]{},])[!&*]", re.MULTILINE)  # tag, anchor or alias
# a line whose whole value is one quoted scalar (`schedule: '*/15 * * * *'`, `- "a && b"`): what is
# between the quotes is text, never a node property, so it is blanked before _NODE_PROPERTY looks.
# Were the line inside a multi-line or block scalar, the blanked text is scalar text all the same.
_QUOTED_LINE = re.compile(
    r"""^([ ]*(?:- )*(?:[\w./-]+:[ ]+)?)(?:'(?:[^'\n]|'')*'|"(?:[^"\\\n]|\\.)*")[ ]*$""", re.MULTILINE
)
# the same test on one line at a time (_blank_quoted_lines: only lines with a quote are tried)
_QUOTED_ONE_LINE = re.compile(_QUOTED_LINE.pattern)
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
# a plain scalar cannot start with these (indicators), so a string that does was quoted, or
# rapidyaml was more lenient than PyYAML (an alias it kept as text, a stray bracket): step aside
_BAD_START = frozenset("]}@`%|>,&*!")
_BAD_PREFIX = ("- ", "? ", ": ")
_FIRST_CHECK = frozenset(_IMPLICIT) | _BAD_START | {"-", "?", ":"}
# rapidyaml writes a plain decimal integer, true, false or null as the JSON literal, so a *value*
# that comes out as one of these strings was quoted in the source ('1', "true"): PyYAML reads it as
# the same string. (Keys are strings in JSON whatever the source, so they get no such pass.) The
# common `cpu: "1"` would otherwise send every workload with it down the slow path.
_QUOTED_LITERAL = re.compile(r"-?(?:0|[1-9][0-9]*)|true|false|null")

# line feed and the printable ASCII characters: a file of nothing else has no tab, carriage return or
# character _NON_PRINTABLE matches (bytes.translate deletes these; what is left is anything else)
_PLAIN_ASCII = b"\n" + bytes(range(0x20, 0x7F))

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class LoadResult:
    objects: list[KubeObject] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    files: int = 0
    # (subject, detail): input deliberately not evaluated as manifests (a kustomization that could not
    # be rendered, a Helm chart); callers record them as "not evaluated" coverage gaps
    not_evaluated: list[tuple[str, str]] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)  # directories rendered (kustomize)
    # read by skim_list: the objects' status left out (see load_file's skim)
    skimmed: bool = False


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


def load_paths(paths: Iterable[str | Path], *, stdin: Any = None, render: bool = True) -> LoadResult:
    """Load every object from the given paths ("-" reads stdin). Never raises for bad content.

    In a directory, a kustomization is rendered (kube.render) and a Helm chart is reported in
    ``not_evaluated``; their own files are never read as manifests."""
    result = LoadResult()
    for part in iter_load(paths, stdin=stdin, render=render):
        result.objects.extend(part.objects)
        result.errors.extend(part.errors)
        result.files += part.files
        result.not_evaluated.extend(part.not_evaluated)
        result.rendered.extend(part.rendered)
    return result


def iter_load(
    paths: Iterable[str | Path], *, stdin: Any = None, render: bool = True, skim: bool = False
) -> Iterator[LoadResult]:
    """load_paths one input at a time: a LoadResult per file, stdin, rendered kustomization or
    unreadable path, in load_paths' order. A consumer that drops each part holds one file at a time.
    ``skim``: see load_file."""
    for p in paths:
        if str(p) == "-":
            data = (stdin or sys.stdin.buffer).read()
            if isinstance(data, str):
                data = data.encode()
            result = LoadResult(files=1)
            _load_bytes(data, "-", result)
            yield result
            continue
        path = Path(p)
        if not path.exists():
            yield LoadResult(errors=[InputError("no such file or directory", file=str(p))])
            continue
        if render and path.is_file() and path.name in render_mod.KUSTOMIZATION_FILES:
            path = path.parent  # "scan kustomization.yaml" means the kustomization
        rplan = render_mod.plan(path) if render and path.is_dir() else None
        if rplan is not None:
            result = LoadResult()
            _render_tree(rplan, result)
            yield result
        for f in iter_manifest_files(path):
            if rplan is not None and render_mod.skipped(f, rplan):
                continue
            if f.name in render_mod.KUSTOMIZATION_FILES:
                continue  # a build file, not an object (rendering is off)
            yield load_file(f, skim=skim)


def load_file(f: Path, *, skim: bool = False) -> LoadResult:
    """One manifest file (size-limited); unreadable files are an error in the result.

    ``skim``, for a consumer that never reads an object's ``status``: a JSON ``List`` file
    (``kubectl get -o json``) may be read by skim_list, which leaves every item's status out of
    its object (result.skimmed is then True); anything it does not take is read as usual."""
    result = LoadResult(files=1)
    try:
        size = f.stat().st_size
        if size > MAX_FILE_BYTES:
            result.errors.append(
                InputError(f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit", file=str(f))
            )
            return result
        data = f.read_bytes()
    except OSError as e:
        result.errors.append(InputError(f"cannot read: {e.strerror or e}", file=str(f)))
        return result
    if skim and skim_list(data, str(f), result):
        return result
    _load_bytes(data, str(f), result)
    return result


def _render_tree(rplan: render_mod.RenderPlan, result: LoadResult) -> None:
    for chart in rplan.helm_charts:
        result.not_evaluated.append((str(chart), render_mod.helm_gap_detail(chart)))
    for d in rplan.kustomize_roots:
        out, how = render_mod.render_kustomization(d)
        kfile = render_mod.kustomization_file(d)
        if out is None:
            result.not_evaluated.append(
                (
                    str(d),
                    f"kustomization not rendered, so none of its files (patches included) was evaluated: {how}",
                )
            )
            continue
        result.files += 1
        result.rendered.append(str(d))
        _load_bytes(out, f"{kfile} ({how})", result)


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
    head = data[:64].lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if head.startswith((b"{", b"[")):
        # JSON (kubectl -o json): parsed from the bytes, a third faster than decoding them first;
        # valid UTF-8 JSON reads the same either way, and anything else takes the text path below,
        # which reports the error
        try:
            doc = orjson.loads(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
        except orjson.JSONDecodeError:
            pass
        else:
            _add_document(doc, name, 0, 1, result)
            return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        result.errors.append(InputError(f"not UTF-8 text (byte {e.start})", file=name, line=line))
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
    docs = _split_documents(text)
    # one pass over the file's bytes instead of one per document: printable ASCII without tabs or
    # carriage returns needs none of _fast_yaml's per-document character tests
    plain = data.isascii() and not data.translate(None, _PLAIN_ASCII)
    with _quiet_stderr():
        fast = [_fast_yaml(chunk, plain) for _, chunk in docs] if _ryml is not None else None
    for index, (line, chunk) in enumerate(docs):
        if fast is not None and fast[index] is not _SLOW:
            _add_document(fast[index], name, index, line, result)
            continue
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


_SLOW = object()  # "take the PyYAML path"

_SKIPPED = "status"  # what skim_list leaves out of each item: never read by a skimming consumer


class _Skim:
    """skim_list's tools, made at its first use (msgspec's import costs start-up that commands
    which never skim should not pay): msgspec's decoder of a List document's kind and items, and
    each thread's simdjson parser (kept: a new one allocates its buffers again for every file)."""

    def __init__(self) -> None:
        import msgspec
        import simdjson

        # a document's kind, and its items' top-level fields, as their source bytes (other keys
        # skipped; the last of a repeated key wins, as in orjson)
        list_doc = msgspec.defstruct(
            "ListDoc",
            [("kind", msgspec.Raw, msgspec.UNSET), ("items", list[dict[str, msgspec.Raw]], msgspec.UNSET)],
        )
        self.unset: Any = msgspec.UNSET
        self.decoder: Any = msgspec.json.Decoder(list_doc)
        self.errors: tuple[type[Exception], ...] = (ValueError, RecursionError, msgspec.DecodeError)
        self._simdjson: Any = simdjson
        self._parsers = threading.local()

    def validator(self) -> Any:
        parser = getattr(self._parsers, "parser", None)
        if parser is None:
            parser = self._parsers.parser = self._simdjson.Parser()
        return parser


_skim: _Skim | None = None
_skim_missing = False


def _skim_tools() -> _Skim | None:
    global _skim, _skim_missing
    if _skim is None and not _skim_missing:
        try:
            _skim = _Skim()
        except ImportError:  # pragma: no cover - a build without them reads every file in full
            _skim_missing = True
    return _skim


def skim_list(data: bytes, name: str, result: LoadResult) -> bool:
    """A JSON ``List`` document's objects as _load_bytes gives them, except that each item's
    ``status`` is not built (result.skimmed is set), and items whose other fields are equal byte
    for byte share one decoded value (a ReplicaSet's replicas share one ``spec`` dict: callers
    must not modify objects). True when it took the file; False (result untouched) for anything
    else, which _load_bytes then reads: YAML, a byte order mark, JSON the validator rejects, a
    document that is not a List of mappings with a kind, an item _add_object would not take as it
    is (its error or its added kind come from _load_bytes).

    Exactness: pysimdjson validates the whole document first (UTF-8, numbers in range and within
    64 bits, nesting up to orjson's limit, syntax) and accepts only what orjson accepts, so
    _load_bytes would not have fallen back to the YAML path (msgspec checks less in what it skips:
    neither UTF-8 nor the range of numbers); msgspec then splits the document into each item's
    top-level fields as their source bytes, and every value kept is decoded from those bytes by
    orjson, as _load_bytes decodes the whole. Key order and repeated keys (the last one wins, in
    the first one's place) are orjson's. tests/kube/test_loader_skim.py checks all this."""
    if not data[:64].lstrip().startswith(b"{") or b"\x00" in data[:8192]:
        return False  # not JSON, or a binary file _load_bytes names
    tools = _skim_tools()
    if tools is None:
        return False
    try:
        tools.validator().parse(data)  # validation only: the parsed document is dropped at once
    except Exception:  # ValueError, or RuntimeError (a number past 64 bits...): read in full
        return False
    try:
        # items that are not a list of mappings fail here: _load_bytes reports them
        doc = tools.decoder.decode(data)
    except tools.errors:
        return False
    loads = orjson.loads
    kind = loads(memoryview(doc.kind)) if doc.kind is not tools.unset else None
    if not (isinstance(kind, str) and kind.endswith("List")) or doc.items is tools.unset:
        return False
    source = Source(name, 0, 1)
    objects: list[KubeObject] = []
    append = objects.append
    shared: dict[bytes, Any] = {}  # a field's source bytes -> its value, for all but metadata
    miss = shared  # a value no field has
    for item in doc.items:
        if "kind" not in item:
            return False
        raw: dict[str, Any] = {}
        for key, part in item.items():
            if key == "metadata":
                meta = raw[key] = loads(memoryview(part))
                if meta is not None and (type(meta) is not dict or not _plain_maps(meta)):
                    return False  # _add_object's error, via _load_bytes
            elif key != _SKIPPED:
                b = bytes(part)
                value = shared.get(b, miss)
                if value is miss:
                    value = shared[b] = loads(b)
                raw[key] = value
        kind = raw["kind"]
        if type(kind) is not str or not kind or type(raw.get("apiVersion")) is not str:
            return False  # _add_object's error, via _load_bytes
        append(KubeObject(raw, source))
    result.objects.extend(objects)
    result.skimmed = True
    return True


class _quiet_stderr:  # noqa: N801 - used as a statement-like context manager
    """rapidyaml prints parse errors on fd 2 before raising; the PyYAML path then reports them
    properly, so silence fd 2 while rapidyaml runs."""

    def __enter__(self) -> None:
        self.saved = None
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:  # no fd 2 (embedded): nothing to silence
            self.saved = None

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)


def _ambiguous_string(s: str) -> bool:
    """Would PyYAML read this non-empty text, were it a plain scalar, as something other than this
    string (a bool, int, float, null, timestamp, merge key...) or refuse it?"""
    first = s[0]
    if first in _BAD_START or s[:2] in _BAD_PREFIX or s in ("-", "?", ":"):
        return True
    for _tag, regexp in _IMPLICIT.get(first, ()):
        if regexp.match(s):
            return True
    return False


# Keys and values _unambiguous has found plain-safe, whatever document they are in (the answer depends
# on the text alone): manifests repeat the same few hundred keys and quantities ("name", "TCP",
# "128Mi") in every document. Bounded; once full, the rest are tested every time.
_SAFE_KEYS: set[str] = set()
_SAFE_VALUES: set[str] = set()
_SAFE_KEYS_MAX = 4096
_SAFE_VALUES_MAX = 65536


def _keys_unambiguous(node: dict[str, Any]) -> bool:
    """_unambiguous's test of a mapping's keys, remembering those that pass."""
    safe, check = _SAFE_KEYS, _FIRST_CHECK
    for k in node:
        if k not in safe:
            if not k or (k[0] in check and _ambiguous_string(k)):
                return False  # an empty key may be a plain empty key, which PyYAML rejects
            if len(safe) < _SAFE_KEYS_MAX:
                safe.add(k)
    return True


def _unambiguous(doc: Any, quoted_text: frozenset[str] = frozenset()) -> bool:
    """True when PyYAML is bound to produce exactly ``doc`` for the document rapidyaml parsed.

    rapidyaml's JSON output loses the quoted/plain distinction of strings and YAML 1.1 typing. So
    reject any string (key or value) that PyYAML would read as a non-string if it were plain (it
    may have been plain: ``yes``, ``0755``, ``~``, ``2024-01-01``) or that no plain scalar can be,
    any empty key, and any float (``1e3`` is a string to PyYAML). Strings that cannot resolve to
    another type mean the same either way; rapidyaml keeps plain empty values as null, so "" was
    quoted. ``quoted_text``: values known to have been quoted (each occurrence of the text in the
    document is a whole quoted value). Written for speed: it visits every key and value of every
    document (a mapping's keys are tested at once against the keys seen safe before)."""
    check, ambiguous, literal = _FIRST_CHECK, _ambiguous_string, _QUOTED_LITERAL.fullmatch
    safe_keys, safe_values = _SAFE_KEYS, _SAFE_VALUES
    stack: list[Any] = [doc]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if type(node) is dict:
            if not safe_keys.issuperset(node) and not _keys_unambiguous(node):
                return False
            node = node.values()
        for v in node:
            t = type(v)
            if t is str:
                if v and v[0] in check and v not in safe_values:
                    if ambiguous(v) and not literal(v):
                        if v not in quoted_text:  # known quoted in this document only: not remembered
                            return False
                    elif len(safe_values) < _SAFE_VALUES_MAX:
                        safe_values.add(v)
            elif t is dict or t is list:
                push(v)
            elif t is float:
                return False
    return True


def _fast_yaml(chunk: str, plain: bool = False) -> Any:
    """The document as rapidyaml reads it, when that is provably what PyYAML would return; else
    _SLOW (including every document rapidyaml rejects, so errors always come from PyYAML).
    ``plain``: the caller knows the text is printable ASCII without tabs or carriage returns."""
    if chunk.startswith("%") or "\n%" in chunk or (not plain and ("\t" in chunk or "\r" in chunk)):
        return _SLOW
    quoted_text: frozenset[str] = frozenset()
    if ("!" in chunk or "&" in chunk or "*" in chunk) and _NODE_PROPERTY.search(chunk):
        values: list[str] = []
        if _NODE_PROPERTY.search(_blank_quoted_lines(chunk, values)):
            return _SLOW
        # a quoted '*/15 * * * *' starts with an indicator, which would send the document to PyYAML
        # below, unless the text occurs nowhere in the document but as such quoted values
        quoted_text = frozenset(v for v in values if chunk.count(v) == values.count(v))
    if not plain and _NON_PRINTABLE.search(chunk):  # one character class: a fast scan
        return _SLOW
    if not chunk.endswith("\n") and ("|" in chunk or ">" in chunk):
        # a block scalar that ends the stream without a line break: PyYAML's clip and fold chomping
        # keep no final newline there, rapidyaml adds one
        return _SLOW
    tree = _ryml_tree()
    try:
        tree.clear()
        tree.clear_arena()
        _ryml.parse_csubstr(chunk.encode(), tree)
        out = _ryml.emit_json_malloc(tree, tree.root_id())
    except Exception:
        return _SLOW
    if out is None:
        return _SLOW  # empty or comments only: PyYAML decides
    try:
        doc = orjson.loads(out)
    except orjson.JSONDecodeError:
        return _SLOW
    return doc if _unambiguous(doc, quoted_text) else _SLOW


_trees = threading.local()


def _ryml_tree() -> Any:
    """This thread's rapidyaml tree, cleared and reused for every document (a new tree per document
    costs a quarter of the parse: its allocation, its arena and the wrapper's calls)."""
    tree = getattr(_trees, "tree", None)
    if tree is None:
        tree = _trees.tree = _ryml.Tree()
    return tree


def _blank_quoted_lines(chunk: str, values: list[str]) -> str:
    """``_QUOTED_LINE.sub(lambda m: _blank(m, values), chunk)``, testing only the lines that hold a
    quote (a regular expression tried at every line of a long document costs more than the parse)."""
    lines = chunk.split("\n")
    match = _QUOTED_ONE_LINE.match
    for i, line in enumerate(lines):
        if "'" in line or '"' in line:
            m = match(line)
            if m is not None:
                lines[i] = _blank(m, values)
    return "\n".join(lines)


def _blank(m: re.Match[str], values: list[str]) -> str:
    """_QUOTED_LINE's replacement: the line with its quoted value emptied; the value's text (when it
    reads as written: no '' or backslash escapes) goes to ``values``."""
    text = m.group(0)[len(m.group(1)) :].rstrip(" ")
    inner = text[1:-1]
    if "\\" not in inner and "''" not in inner:
        values.append(inner)
    return m.group(1) + "''"


def _split_documents(text: str) -> list[tuple[int, str]]:
    """Split a YAML stream on document separators, keeping each document's first line (1-based)."""
    if "\n..." in text or text.startswith("..."):
        return _split_lines(text)
    # the common stream: documents separated by bare "---" lines, found by a string search instead
    # of a loop over every line; anything else on a separator line takes _split_lines
    n = len(text)
    docs: list[tuple[int, str]] = []
    start, start_line = 0, 0  # offset and 0-based line of the current document
    find, count = text.find, text.count
    p = 0 if text.startswith("---") else find("\n---") + 1 or -1  # the next separator line's offset
    while p >= 0:
        if p + 3 < n and text[p + 3] != "\n":
            return _split_lines(text)
        sep_line = start_line + count("\n", start, p)
        if sep_line > start_line or docs:
            docs.append((start_line + 1, text[start:p]))
        start, start_line = min(p + 4, n), sep_line + 1
        p = find("\n---", start - 1) + 1 or -1
    docs.append((start_line + 1, text[start:]))
    return [(ln, chunk) for ln, chunk in docs if chunk and not chunk.isspace()]


def _split_lines(text: str) -> list[tuple[int, str]]:
    """_split_documents line by line: separators with content or comments, document end markers."""
    lines = text.split("\n")
    docs: list[tuple[int, str]] = []
    start = 0
    for i, ln in enumerate(lines):
        if ln.startswith("---") and (len(ln) == 3 or ln[3] in " \t#\r"):
            if i > start or docs:
                # keep the line break that ended the document's last line in the stream: a block
                # scalar there keeps its final newline ("clip" chomping), as when parsing the stream
                docs.append((start + 1, "\n".join(lines[start:i]) + "\n"))
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
        source = Source(name, index, line)  # frozen: one per document, shared by its items
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
            _add_object(item, name, index, line, result, i, source)
        return
    _add_object(doc, name, index, line, result)


def _add_object(
    doc: dict[str, Any],
    name: str,
    index: int,
    line: int,
    result: LoadResult,
    item: int | None = None,
    source: Source | None = None,
) -> None:
    kind = doc.get("kind")
    meta = doc.get("metadata")
    if (
        type(kind) is str
        and kind
        and type(doc.get("apiVersion")) is str
        and (meta is None or (type(meta) is dict and _plain_maps(meta)))
    ):  # the common case, checked first without building field names
        result.objects.append(KubeObject(doc, source or Source(name, index, line)))
        return
    pre = f"items[{item}]." if item is not None else ""
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
    result.objects.append(KubeObject(doc, source or Source(name, index, line)))


def _plain_maps(meta: dict[str, Any]) -> bool:
    labels = meta.get("labels")
    if labels is not None and type(labels) is not dict:
        return False
    annotations = meta.get("annotations")
    return annotations is None or type(annotations) is dict
