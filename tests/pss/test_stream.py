"""`pss check --level` reads the input one file at a time (cli.inputs.ManifestStream); it must give
exactly what reading the whole input first gives: the same objects (duplicates across files judged
once, conflicting copies all kept, --namespace), the same output and the same errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kubestrata.cli import pss as cli_pss
from kubestrata.cli.inputs import ManifestStream, load_input
from kubestrata.errors import KubestrataError
from kubestrata.pss.api import LevelVersion
from kubestrata.pss.config import PodSecurityConfig
from kubestrata.report.pss import check_table as render_check_table
from kubestrata.report.pss import json_list as check_json

runner = CliRunner()


def _pod(name: str, ns: str = "shop", image: str = "nginx", root: bool = False) -> str:
    sc = "\n    securityContext: {runAsUser: 0}" if root else ""
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}}}
spec:
  containers:
  - name: c
    image: {image}{sc}
"""


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "a.yaml").write_text(_pod("p1") + "---\n" + _pod("p2", root=True) + "---\n" + _pod("p1"))
    # b: p1 again, identical (dropped); p2 with another image (a conflict: both kept); another namespace
    (tmp_path / "b.yaml").write_text(
        _pod("p1") + "---\n" + _pod("p2", image="busybox") + "---\n" + _pod("q", ns="other")
    )
    (tmp_path / "c.json").write_text(
        json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "shop"},
             "spec": {"template": {"spec": {"containers": [{"name": "x", "image": "y"}]}}}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2", "namespace": "shop"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        ]})
    )  # fmt: skip
    (tmp_path / "d.yaml").write_text("kind: [broken\n")
    return tmp_path


def _ids(objs):
    return [(o.kind, o.namespace, o.name, str(o.source)) for o in objs]


@pytest.mark.parametrize("namespace", [None, "shop", "other"])
def test_stream_keeps_the_objects_the_snapshot_keeps(tree, namespace):
    held = load_input([str(tree)], namespace=namespace, quiet=True).cluster.real_objects()
    streamed = [o for batch in ManifestStream([str(tree)], namespace=namespace, quiet=True) for o in batch]
    assert _ids(streamed) == _ids(held)
    # the duplicates were really there: p1 three times, p2 (the busybox one) twice in later files
    assert [n for _, _, n, _ in _ids(streamed)].count("p1") == (1 if namespace != "other" else 0)


@pytest.mark.parametrize("output", ["json", "table"])
def test_streamed_check_equals_held_check(tree, output):
    lv = LevelVersion.parse("restricted")
    inp = load_input([str(tree)], quiet=True)
    held = cli_pss._check_all(inp.cluster, lv, PodSecurityConfig(), None)
    want = "".join(check_json(held, False)) if output == "json" else render_check_table(held, False)
    res = runner.invoke(
        cli_pss.app, ["check", str(tree), "--level", "restricted", "-o", output, "-q"], catch_exceptions=False
    )
    assert res.exit_code == 1  # denied pods
    assert res.stdout == want
    if output == "json":
        # p1 once, p2 three times (each copy differs from the first one read), q and d
        assert len(json.loads(res.stdout)) == 6


def test_stream_errors_match_load_input(tmp_path):
    (tmp_path / "bad.yaml").write_text("kind: [broken\n")
    res = runner.invoke(cli_pss.app, ["check", str(tmp_path), "--level", "baseline"])
    assert res.exit_code == 2 and "nothing readable" in res.output and "invalid YAML" in res.output
    (tmp_path / "bad.yaml").write_text("# nothing\n")
    with pytest.raises(KubestrataError, match="no Kubernetes objects"):
        list(ManifestStream([str(tmp_path)]))
    (tmp_path / "ok.yaml").write_text(_pod("p"))
    with pytest.raises(KubestrataError, match="namespace 'nope' is not in the input"):
        list(ManifestStream([str(tmp_path)], namespace="nope"))
    out = tmp_path / "out.json"
    res = runner.invoke(
        cli_pss.app, ["check", str(tmp_path), "--level", "baseline", "-n", "nope", "--output-file", str(out)]
    )
    assert res.exit_code == 2 and not out.exists()  # no output file for an input that is an error


def test_stream_warns_about_unreadable_documents_and_strict_fails(tree):
    res = runner.invoke(cli_pss.app, ["check", str(tree), "--level", "baseline", "-o", "json"])
    assert res.exit_code == 0
    assert "warning:" in res.stderr and "d.yaml" in res.stderr
    res = runner.invoke(cli_pss.app, ["check", str(tree), "--level", "baseline", "-o", "json", "--strict"])
    assert res.exit_code == 2


def _pod_list(*pods: tuple[str, str, str]) -> str:
    """A `kubectl get pods -o json` List of (name, image, phase)."""
    return json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n, "namespace": "shop"},
             "spec": {"containers": [{"name": "c", "image": image}]}, "status": {"phase": phase}}
            for n, image, phase in pods
        ]}
    )  # fmt: skip


@pytest.fixture
def lists(tmp_path):
    (tmp_path / "a.json").write_text(_pod_list(("p1", "nginx", "Running"), ("p2", "nginx", "Running")))
    # p1 again, identical: dropped; p2 again, only its status differs: a different object, kept
    (tmp_path / "b.json").write_text(_pod_list(("p1", "nginx", "Running"), ("p2", "nginx", "Pending")))
    (tmp_path / "c.json").write_text(_pod_list(("p3", "nginx", "Running"), ("p3", "nginx", "Failed")))
    (tmp_path / "d.json").write_text(_pod_list(("p4", "busybox", "Running")))
    return tmp_path


def test_skimmed_stream_compares_copies_with_their_status(lists):
    held = load_input([str(lists)], quiet=True).cluster.real_objects()
    stream = ManifestStream([str(lists)], quiet=True, skim=True)
    streamed = [o for batch in stream for o in batch]
    assert _ids(streamed) == _ids(held)
    assert [n for _, _, n, _ in _ids(streamed)] == ["p1", "p2", "p2", "p3", "p3", "p4"]
    # files with a repeated object were read in full (status kept), the others skimmed
    by_file = {o.source.file.rsplit("/", 1)[-1]: "status" in o.raw for o in streamed}
    assert by_file == {"a.json": False, "b.json": True, "c.json": True, "d.json": False}


@pytest.mark.parametrize("output", ["json", "table"])
def test_skimmed_check_equals_held_check(lists, output):
    lv = LevelVersion.parse("restricted")
    inp = load_input([str(lists)], quiet=True)
    held = cli_pss._check_all(inp.cluster, lv, PodSecurityConfig(), None)
    want = "".join(check_json(held, True)) if output == "json" else render_check_table(held, True)
    res = runner.invoke(
        cli_pss.app,
        ["check", str(lists), "--level", "restricted", "-o", output, "-q", "--fixes"],
        catch_exceptions=False,
    )
    assert res.exit_code == 1
    assert res.stdout == want


def test_json_output_file_is_written_from_the_batches(lists, tmp_path_factory):
    lv = LevelVersion.parse("restricted")
    held = cli_pss._check_all(load_input([str(lists)], quiet=True).cluster, lv, PodSecurityConfig(), None)
    out = tmp_path_factory.mktemp("out") / "out.json"
    res = runner.invoke(
        cli_pss.app,
        ["check", str(lists), "--level", "restricted", "-o", "json", "-q", "--output-file", str(out)],
    )
    assert res.exit_code == 1 and res.stdout == ""
    assert out.read_text(encoding="utf-8") == "".join(check_json(held, False))
    assert len(json.loads(out.read_text(encoding="utf-8"))) == 6


def test_writev_all_finishes_short_writes(tmp_path, monkeypatch):
    real = cli_pss.os.writev
    calls = []

    def short(fd, views):  # at most 5 bytes, or 1 piece and a part of the next, per call
        calls.append(len(views))
        first = bytes(views[0])
        if len(first) >= 5:
            return real(fd, [first[:5]])
        return real(fd, [first, bytes(views[1])[:2]] if len(views) > 1 else [first])

    monkeypatch.setattr(cli_pss.os, "writev", short)
    pieces = [b"abc", b"defghijkl", b"", b"m", "é".encode()] * 300 + [b"end"]
    out = tmp_path / "w"
    fd = cli_pss.os.open(out, cli_pss.os.O_WRONLY | cli_pss.os.O_CREAT)
    try:
        cli_pss._writev_all(fd, list(pieces))
    finally:
        cli_pss.os.close(fd)
    assert out.read_bytes() == b"".join(pieces)
    assert max(calls) == cli_pss._IOV_MAX  # never more pieces than the system takes at once
