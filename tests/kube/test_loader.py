import io

from kubestrata.kube.cluster import NAMESPACE_NAME_LABEL, Cluster
from kubestrata.kube.loader import load_paths, load_text


def test_multi_document_lines_and_empty_documents():
    text = "---\n# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b, namespace: x}\n"
    res = load_text(text, "f.yaml")
    assert not res.errors
    assert [(o.kind, o.source.line) for o in res.objects] == [("ConfigMap", 4), ("Secret", 10)]
    assert res.objects[0].namespace == "default"


def test_list_kinds_expand():
    text = '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}]}'
    res = load_text(text)
    assert [o.kind for o in res.objects] == ["Pod"]
    typed = "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: p}\n  spec: {}\n"
    assert [o.kind for o in load_text(typed).objects] == ["Pod"]


def test_bad_document_is_reported_and_others_kept():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: [unclosed\n---\n- just a list\n---\nmetadata: {name: nokind}\n"
    res = load_text(text, "bad.yaml")
    assert [o.name for o in res.objects] == ["ok"]
    msgs = [str(e) for e in res.errors]
    assert len(msgs) == 3
    assert msgs[0].startswith("bad.yaml:") and "document 1: invalid YAML" in msgs[0]
    assert "document 2" in msgs[1] and "mapping" in msgs[1]
    assert "field kind" in msgs[2]


def test_binary_and_missing_files(tmp_path):
    (tmp_path / "b.yaml").write_bytes(b"\x00\x01\x02")
    res = load_paths([tmp_path, tmp_path / "nope.yaml"])
    assert len(res.errors) == 2
    assert "binary" in str(res.errors[0]) and "no such file" in str(res.errors[1])


def test_stdin():
    res = load_paths(["-"], stdin=io.BytesIO(b"apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n"))
    assert res.objects[0].name == "n" and res.objects[0].source.file == "-"


def test_cluster_synthesizes_namespaces():
    res = load_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: real}\n"
    )
    c = Cluster(res.objects)
    assert c.namespaces == ["real", "team"]
    assert c.namespace_labels("team") == {NAMESPACE_NAME_LABEL: "team"}
    assert c.namespace_labels("real") == {NAMESPACE_NAME_LABEL: "real"}
    assert "team" in c.synthesized_namespaces
    assert len(list(c.real_objects())) == 2
