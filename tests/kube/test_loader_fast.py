"""The rapidyaml fast path returns exactly what PyYAML returns, or steps aside.

Differential tests: every YAML document in the shared conformance data, the examples and generated
bench manifests, a corpus of YAML 1.1 traps, and random documents from hypothesis. Where the fast
path answers, its result must equal PyYAML's with the same types (True is not 1, "1" is not 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestrata.kube import loader
from kubestrata.kube.loader import _SLOW, _fast_yaml, _split_documents
from tests.conftest import EXAMPLES, REPO_ROOT

pytestmark = pytest.mark.skipif(loader._ryml is None, reason="rapidyaml is not installed")


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def pyyaml(chunk: str):
    return yaml.load(chunk, Loader=loader._YamlLoader)  # noqa: S506 - the safe loader the slow path uses


def check(chunk: str) -> bool:
    """Assert agreement; return whether the fast path answered."""
    fast = _fast_yaml(chunk)
    if fast is _SLOW:
        return False
    try:
        ref = pyyaml(chunk)
    except yaml.YAMLError:
        pytest.fail(f"fast path accepted a document PyYAML rejects:\n{chunk}")
    assert same(fast, ref), f"fast path disagrees with PyYAML:\n{chunk}\nfast={fast!r}\npyyaml={ref!r}"
    return True


def _corpus_files() -> list[Path]:
    files = sorted(EXAMPLES.rglob("*.yaml")) + sorted((REPO_ROOT / "src").rglob("*.yaml"))
    shared = REPO_ROOT.parent / "shared" / "conformance"
    for base in [REPO_ROOT, *REPO_ROOT.parents]:
        if (base.parent / "shared" / "conformance").is_dir():
            shared = base.parent / "shared" / "conformance"
            break
    if shared.is_dir():
        files += sorted(p for p in shared.rglob("*") if p.suffix in (".yaml", ".yml"))
    return files


def test_real_manifests_agree_and_mostly_take_the_fast_path():
    fast = total = 0
    for f in _corpus_files():
        try:
            text = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for _line, chunk in _split_documents(text):
            total += 1
            fast += check(chunk)
    assert total > 50
    assert fast / total > 0.5, f"fast path answered only {fast} of {total} documents"


def test_generated_bench_manifests_agree():
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        import gen_manifests
    finally:
        sys.path.pop(0)
    text = yaml.dump_all(gen_manifests.generate(1500, seed=7), Dumper=yaml.CSafeDumper, sort_keys=False)
    chunks = [c for _, c in _split_documents(text)]
    assert sum(check(c) for c in chunks) > len(chunks) * 0.8


TRAPS = [
    "a: yes\nb: No\nc: on\nd: OFF\ne: True\nf: FALSE\n",
    "a: 0755\nb: 0x1F\nc: 1_000\nd: 0b101\ne: 1:20\nf: +12\ng: -0\n",
    "a: 1e3\nb: 1.5e3\nc: 1.5e+3\nd: .inf\ne: -.INF\nf: .nan\ng: 3.\nh: .5\n",
    "a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: ''\ng: \"\"\n",
    "a: 2001-12-14\nb: 2001-12-14t21:59:43.10-05:00\nc: '2001-12-14'\n",
    "a: &x {b: 1}\nc: *x\n",
    "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",
    "a: !!str 123\nb: !!int '7'\nc: !!binary aGVsbG8=\n",
    "80: http\n443: https\ntrue: t\nnull: n\n",
    "a: '1'\nb: \"2\"\nc: 3\nd: '3.0'\ne: 'true'\n",
    "a: |\n  line1\n  line2\nb: |-\n  x\nc: |+\n  y\n\nd: >\n  folded\n  text\n\n  para\ne: >-\n  z\n",
    "a: \"esc \\t \\n \\\\ \\\" \\x41 \\u263A \\N \\_ \\L\"\nb: 'it''s'\n",
    'a: "multi\n  line\n\n  para"\nb: plain\n  continued\n',
    "? complex\n: v\n? [1, 2]\n: w\n",
    "- a\n- \n- - nested\n  - list\n- {k: v}\n",
    "a: {b: c, d: [1, 2, {e: f}]}\nempty_map: {}\nempty_list: []\n",
    "a: b # comment\n# full comment\nc: 'd # not a comment'\n",
    "a: =\nb: <<\nc: '!'\nd: '&'\ne: '*'\n",
    'a: ü ☺ 𝄞\nb: "\\U0001D11E"\n',
    "key with spaces: v\n'quoted key': w\n\"dq key\": x\n",
    "a: -\nb: - x\n",
    "a: 'trailing space '\nb: \"  lead\"\n",
    "a:\n  - b: 1\n    c: 2\n  - b: 3\n",
    'verbs: ["*"]\nresources: [\'*\']\napiGroups: [""]\n',
    "command: [sh, -c, 'echo a && echo b']\nurl: http://x/?a=1&b=2\n",
    "a: b: c\n",
    "a: [1, 2\n",
    "\ta: 1\n",
    "a: 1\na: 2\n",
    "a: 12345678901234567890123\nb: -9223372036854775809\n",
    "%YAML 1.1\n---\na: 1\n",
    "# just a comment\n",
    "plain scalar document\n",
    "- 1\n- '1'\n- 1.0\n",
    # quoted integers and literals next to plain ones (the fast path reads the quoted ones as strings)
    "a: '1'\nb: 1\nc: \"-7\"\nd: -7\ne: 'null'\nf: null\ng: \"false\"\nh: false\ni: '00'\nj: 00\n",
    "- '0'\n- 0\n- \"true\"\n- true\n- '1_000'\n- 1_000\n- '+1'\n- +1\n- '012'\n",
    "'1': a\n1: b\n'true': c\n",
    # quoted values with node-property characters are text; real properties still step aside
    "schedule: '*/15 * * * *'\ncmd:\n- \"a && b\"\n- '!x'\nc: 'it''s *'\n",
    "{a: it's, b: &x 'y'}\n",
    "a: &x 'y'\nb: *x\n",
    "a: 'y'\nb: *x\n",
    "a: \"*x\"\nb: '&y'\n",
    "a: \"x\n  b: '*y'\"\n",
    "a: '@x'\nb: '*y'\nc: '@x'\nd: \"*/5 * * * *\"\n",
    "a: '*y'\nb: |\n  *y\n",
    "a: '*y'\nb: 'yes'\nc: yes\n",
    # a block scalar that ends the stream without a line break keeps no final newline (issue 11)
    "a: |\n  x",
    "a: >\n  folded\n  text",
    "a:\n  - |\n    x\n    y",
    "a: |\n  x\nb: |\n  y",
    "a: |-\n  x",
    "a: |+\n  x",
]


def test_final_block_scalar_without_line_break_matches_pyyaml():
    # the reproduction: the last document of a file that does not end in a newline
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  script: |\n    echo hi"
    assert loader.load_text(text).objects[0].raw["data"]["script"] == "echo hi"
    text2 = "a: 1\n---\n" + text
    assert loader.load_text(text2).objects[0].raw["data"]["script"] == "echo hi"
    assert loader.load_text(text + "\n").objects[0].raw["data"]["script"] == "echo hi\n"


def test_bare_equals_and_merge_scalars_are_strings():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {op: =, shift: <<}\n"
    r = loader.load_text(text)
    assert not r.errors and r.objects[0].raw["data"] == {"op": "=", "shift": "<<"}
    merged = (
        loader.load_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\nbase: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n"
        )
        .objects[0]
        .raw["d"]
    )
    assert merged == {"x": 1, "y": 2}


@pytest.mark.parametrize("chunk", TRAPS)
def test_yaml_traps(chunk):
    check(chunk)


def test_quoted_resource_quantities_take_the_fast_path():
    # `cpu: "1"` is in most workloads; PyYAML reads it as the string "1", and so does the fast path
    chunk = "kind: Pod\nspec:\n  containers:\n  - resources: {requests: {cpu: '1'}, limits: {cpu: \"2\"}}\n"
    assert check(chunk)


def test_quoted_cron_schedule_takes_the_fast_path():
    assert check("kind: CronJob\nspec:\n  schedule: '*/15 * * * *'\n  suspend: false\n")
    assert not check("a: &x 'y'\nb: *x\n")  # a real anchor and alias still take the PyYAML path


def test_traps_do_not_all_fall_back():
    # the guard must not be so wide that the fast path never answers: plain documents pass
    assert check(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: web}}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    ports: [{containerPort: 8080}]\n"
    )


SCALARS = st.one_of(
    st.sampled_from(
        [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "true",
            "False",
            "~",
            "null",
            "Null",
            "",
            "0",
            "00",
            "07",
            "08",
            "0x1f",
            "1_0",
            "1e3",
            "1.5",
            ".5",
            "5.",
            "-1",
            "+1",
            "1:30",
            "2024-01-02",
            "2024-01-02 10:00:00",
            ".inf",
            ".NaN",
            "=",
            "<<",
            "-",
            "a:b",
            "a: b",
            "#x",
            "x#y",
            "'",
            '"',
            "\\",
            "*",
            "&",
            "!",
            "%",
            "@",
            "`",
            "|",
            ">",
            "?",
            "[",
            "]",
            "{",
            "}",
            ",",
            " lead",
            "trail ",
            "multi\nline",
            "tab\there",
            "ü",
            "☺",
            "nginx:1.27",
            "100m",
            "1Gi",
            "v1",
            "/var/run/docker.sock",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
)


def _emit(value, style: str) -> str:
    if style == "plain":
        return str(value)
    if style == "single":
        return "'" + str(value).replace("'", "''") + "'"
    return (
        '"'
        + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        + '"'
    )


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(
            SCALARS,
            st.sampled_from(["plain", "single", "double"]),
            SCALARS,
            st.sampled_from(["plain", "single", "double"]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_random_documents_agree(pairs, flow):
    if flow:
        body = "{" + ", ".join(f"{_emit(k, ks)}: {_emit(v, vs)}" for k, ks, v, vs in pairs) + "}\n"
    else:
        body = "".join(f"{_emit(k, ks)}: {_emit(v, vs)}\n" for k, ks, v, vs in pairs)
    body += "list:\n" + "".join(f"  - {_emit(v, vs)}\n" for _k, _ks, v, vs in pairs)
    check(body)


def _block(value, indent: int, styles) -> str:
    """Render nested dicts/lists as block YAML, scalars in the style drawn for them."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return " {}\n"
        out = "\n"
        for (k, ks), v in value.items():
            out += f"{pad}{_emit(k, ks)}:{_block(v, indent + 2, styles)}"
        return out
    if isinstance(value, list):
        if not value:
            return " []\n"
        out = "\n"
        for v in value:
            out += f"{pad}-{_block(v, indent + 2, styles)}"
        return out
    scalar, style = value
    return f" {_emit(scalar, style)}\n"


STYLED = st.tuples(SCALARS, st.sampled_from(["plain", "single", "double"]))
TREES = st.recursive(
    STYLED,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(STYLED, children, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(STYLED, TREES, min_size=1, max_size=4))
def test_random_nested_documents_agree(tree):
    check(_block(tree, 0, None).lstrip("\n"))


SEPARATOR_LINES = [
    "---",
    "--- ",
    "---#c",
    "--- # c",
    "----",
    "---x",
    "---\r",
    "--- {a: 1}",
    "...",
    "... ",
    "...x",
]
BODY_LINES = ["a: 1", "b: |", "  x", "", " ", "- y", "#c", "\t", "c: '--- no'"]


@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.sampled_from(SEPARATOR_LINES + BODY_LINES), max_size=10),
    st.sampled_from(["", "\n", "\n\n"]),
)
def test_split_documents_agrees_with_the_line_by_line_split(lines, end):
    # the string-search path for bare "---" separators and the general line loop split alike
    text = "\n".join(lines) + end
    assert _split_documents(text) == loader._split_lines(text)


@pytest.mark.parametrize(
    "odd",
    ["\t", "\r", "\x7f", "\x1b", "\u0085", "é"],
    ids=["tab", "cr", "del", "esc", "nel", "latin1"],
)
def test_a_file_with_one_odd_character_reads_as_pyyaml_reads_each_document(odd):
    # the per-file "printable ASCII" pass must not let a document with a tab, a carriage return or a
    # non-printable character through to rapidyaml: that document takes PyYAML, the others agree
    docs = [
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n",
        f'apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: b}}\ndata: {{k: "x{odd}y"}}\n',
    ]
    got = loader.load_text("---\n".join(docs))
    want, rejected = [], 0
    for d in docs:
        try:
            want.append(pyyaml(d))
        except yaml.YAMLError:
            rejected += 1
    assert [o.raw for o in got.objects] == want
    assert len(got.errors) == rejected


QUOTE_LINES = [
    "a: '*/15 * * * *'",
    '  - "a && b"',
    "- 'x''y'",
    '  k: "q\\"*"',
    "b: *alias",
    "c: &anchor 1",
    "d: '*' # c",
    "e: 'unterminated",
    "  - - 'nested'  ",
    "f: !tag x",
    "g: plain * text",
    "'key': '&v'",
    "",
]


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(QUOTE_LINES), max_size=8), st.sampled_from(["", "\n"]))
def test_blanking_quoted_lines_line_by_line_equals_the_whole_text_substitution(lines, end):
    chunk = "\n".join(lines) + end
    want_values: list[str] = []
    want = loader._QUOTED_LINE.sub(lambda m: loader._blank(m, want_values), chunk)
    got_values: list[str] = []
    assert loader._blank_quoted_lines(chunk, got_values) == want
    assert got_values == want_values
