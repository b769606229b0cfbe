"""The HTML report: self-contained, escaped, bounded, and working and laid out in a real headless
Chromium (1280 px wide: no overflow; screenshots read back for what they show)."""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
from html.parser import HTMLParser

import pytest

from kubestrata.baseline import Baseline, BaselineEntry, compare
from kubestrata.findings import Evidence, Finding, Layer, Severity
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.loader import load_paths
from kubestrata.kube.objects import ObjectRef
from kubestrata.netpol.engine import Network
from kubestrata.report import html
from kubestrata.report.html_network import network_section
from tests.conftest import REPO_ROOT
from tests.report.browser import Browser, find_chromium
from tests.report.conftest import TARGET
from tests.report.png import pixels

HOSTILE = ("<script>window.__pwned=1</script>", "<img src=x onerror=window.__pwned=2>")
SEVERITY_RGB = {"critical": (0x7F, 0x1D, 0x1D), "high": (0xDC, 0x26, 0x26), "medium": (0xD9, 0x77, 0x06)}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_self_contained_and_escaped(result):
    page = html.render(result, TARGET)
    parser = _Tags()
    parser.feed(page)
    ids = {a["id"] for _, a in parser.tags if a.get("id")}
    # no external assets: nothing loads anything, no inline event handler or style attribute exists;
    # the only links are to places in the page itself
    for tag, attrs in parser.tags:
        assert not {"src", "action", "srcset", "style"} & set(attrs), (tag, attrs)
        if "href" in attrs:
            assert tag == "a" and attrs["href"].startswith("#") and attrs["href"][1:] in ids, attrs
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert tag not in ("img", "iframe", "link", "object", "embed", "base", "form"), tag
    assert [t for t, _ in parser.tags].count("script") == 1
    assert "@import" not in page and "url(" not in page
    # exactly our one script; hostile strings appear only escaped
    assert page.count("<script") == 1
    for s in HOSTILE:
        assert s not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "default-src 'none'" in page and "base-uri 'none'" in page


def test_every_finding_has_evidence_fix_and_remediation(result):
    page = html.render(result, TARGET)
    assert page.count('<article class="finding') == len(result.findings)
    assert page.count("<h4>Evidence</h4>") == sum(1 for f in result.findings if f.evidence)
    assert page.count("<h4>Fix (JSON patch, RFC 6902)</h4>") == sum(1 for f in result.findings if f.fix)
    # remediation is written once per rule, and every finding of the rule links there
    for rid in {f.rule_id for f in result.findings}:
        assert page.count(f'id="rule-{rid}"') == 1
        doc = page[page.index(f'id="rule-{rid}"') :].split("</div>")[0]
        rem = next(f.remediation for f in result.findings if f.rule_id == rid)
        assert html._e(rem) in doc
    assert page.count('class="remedy"') == len(result.findings)


def test_not_evaluated_comes_first_and_run_details_show(result):
    run = html.RunInfo(
        started=dt.datetime(2026, 12, 2, 9, 30, tzinfo=dt.UTC), seconds=12.34, inputs=["a/", "b.yaml"]
    )
    page = html.render(result, TARGET, run)
    assert result.coverage.gaps
    assert page.index('id="not-evaluated"') < page.index('id="summary"') < page.index('id="findings"')
    assert "2026-12-02 09:30:00 UTC" in page and "12.3 s" in page
    assert "<code>a/</code>, <code>b.yaml</code>" in page
    # without run details the page is the same bytes every time
    assert html.render(result, TARGET) == html.render(result, TARGET)


def test_chart_counts_are_the_findings(result):
    page = html.render(result, TARGET)
    chart = page[page.index('<svg id="chart"') : page.index("</svg>", page.index('<svg id="chart"'))]
    cells = {
        (lay, sev): int(n)
        for lay, sev, n in re.findall(r'data-layer="(\w+)" data-sev="(\w+)" data-n="(\d+)"', chart)
    }
    want: dict[tuple[str, str], int] = {}
    for f in result.active():
        k = (f.layer.value, f.severity.value)
        want[k] = want.get(k, 0) + 1
    assert cells == want


def test_findings_past_the_bound_are_counted_by_rule(result):
    page = html.render(result, TARGET, html.RunInfo(max_findings=5))
    assert page.count('<article class="finding') == 5
    rest = result.findings[5:]
    assert f'id="truncated" data-n="{len(rest)}"' in page
    table = page[page.index('id="not-shown"') :].split("</table>")[0]
    assert sum(int(n) for n in re.findall(r'<td class="num">(\d+)</td>', table)) == len(rest)
    # the most severe are the ones shown
    shown_sevs = re.findall(r'<article class="finding (\w+)', page)
    assert shown_sevs == [f.severity.value for f in result.findings[:5]]


def _with_baseline(result):
    res = copy.copy(result)
    res.findings = list(result.findings[3:])
    unchanged = list(result.findings[:3])
    base = Baseline("base.json")
    for f in unchanged:
        base.entries[f.fingerprint] = BaselineEntry(
            f.fingerprint, f.rule_id, f.title, "high", str(f.object), "x"
        )
    base.entries["0" * 32] = BaselineEntry(
        "0" * 32, "KS-OLD-001", "gone", "medium", "Pod/a/<b>", "was <here>"
    )
    res.baseline = compare(base, res.findings, unchanged)
    return res


def test_baseline_shows_new_fixed_and_unchanged(result):
    res = _with_baseline(result)
    page = html.render(res, TARGET)
    sec = page[page.index('id="baseline"') :].split("</section>")[0]
    card = lambda k: re.search(rf'data-card="{k}"><div class="n">(\d+)<', sec).group(1)  # noqa: E731
    assert card("new") == str(len(res.findings)) and card("fixed") == "1" and card("unchanged") == "3"
    assert "KS-OLD-001" in sec and "Pod/a/&lt;b&gt;" in sec and "was &lt;here&gt;" in sec
    assert page.count('<article class="finding') == len(res.findings)


@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); required in CI")
    b = Browser(exe)
    try:
        yield b
    finally:
        b.close()


def _open(browser, tmp_path_factory, page: str, width: int = 1280, height: int = 900):
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(page, encoding="utf-8")
    browser.open(path)
    browser.set_viewport(width, height)
    return browser.evaluate


def test_loads_in_chromium_without_errors_and_filters_work(result, browser, tmp_path_factory):
    ev = _open(browser, tmp_path_factory, html.render(result, TARGET))
    active = result.active()
    assert ev("document.title") == f"kubestrata scan: {TARGET}"
    # summary: total and per-severity cards show what the scan found
    assert ev("document.querySelector('#total .n').textContent") == str(len(active))
    for sev in ("critical", "high", "medium", "low", "info"):
        n = sum(1 for f in active if f.severity.value == sev)
        assert ev(f"document.querySelector('[data-card={sev}] .n').textContent") == str(n)
    # the script ran: suppressed findings are hidden by default
    n_all = len(result.findings)
    assert ev("document.querySelectorAll('article.finding').length") == n_all
    assert ev("document.querySelectorAll('article.finding:not([hidden])').length") == len(active)
    assert (
        ev("document.getElementById('f-count').textContent") == f"Showing {len(active)} of {n_all} findings"
    )
    # severity filter
    n_info = sum(1 for f in active if f.severity.value == "info")
    assert n_info > 0
    ev(
        "var b=document.querySelector('input[data-sev=info]'); b.checked=false; b.dispatchEvent(new Event('change'))"
    )
    assert ev("document.querySelectorAll('article.finding:not([hidden])').length") == len(active) - n_info
    # text search narrows to one object; groups without visible findings hide
    ev(
        "var q=document.getElementById('f-query'); q.value='payments-api'; q.dispatchEvent(new Event('input'))"
    )
    visible = ev(
        "Array.from(document.querySelectorAll('article.finding:not([hidden]) .obj')).map(e => e.textContent)"
    )
    want = [f for f in active if f.object and f.object.name == "payments-api" and f.severity.value != "info"]
    assert visible and set(visible) == {"Deployment/payments/payments-api"} and len(visible) == len(want)
    assert ev("Array.from(document.querySelectorAll('details.group:not([hidden])')).length") == len(
        {f.layer for f in want}
    )
    # show suppressed brings the suppressed ones back
    ev("var q=document.getElementById('f-query'); q.value=''; q.dispatchEvent(new Event('input'))")
    ev("var s=document.getElementById('f-suppressed'); s.checked=true; s.dispatchEvent(new Event('change'))")
    assert ev("document.querySelectorAll('article.finding:not([hidden])').length") == n_all - n_info
    # expanding a finding shows its evidence and fix
    ev("document.getElementById('f-expand').click()")
    text = ev("document.querySelector('article[data-rule=\"KS-WL-001\"] .body').innerText")
    assert "securityContext.privileged" in text and "remediation" in text.lower()
    # hostile input is text, never markup or code
    assert ev("document.body.innerText.includes('<script>window.__pwned=1</script>')") is True
    assert ev("typeof window.__pwned") == "undefined"
    assert ev("document.querySelectorAll('img').length") == 0
    assert ev("document.scripts.length") == 1
    assert browser.problems() == []


def test_messages_show_in_collapsed_rows(result, browser, tmp_path_factory):
    ev = _open(browser, tmp_path_factory, html.render(result, TARGET))
    rows = ev(
        "Array.from(document.querySelectorAll('article.finding:not([hidden])')).map(a => ["
        "a.querySelector('details').open, a.querySelector('.msg').innerText, "
        "a.querySelector('.msg').getBoundingClientRect().height])"
    )
    active = result.active()
    assert len(rows) == len(active)
    for (is_open, text, height), f in zip(rows, active, strict=True):
        assert is_open is False and height > 0 and text == f.message


@pytest.mark.parametrize(
    "attr,key",
    [
        ("layer", lambda f: f.layer.value),
        ("ns", lambda f: f.object.namespace if f.object else ""),
        ("rule", lambda f: f.rule_id),
        ("owner", lambda f: str(f.object) if f.object else ""),
    ],
)
def test_group_by(result, browser, tmp_path_factory, attr, key):
    ev = _open(browser, tmp_path_factory, html.render(result, TARGET))
    ev(f"var g=document.getElementById('f-group'); g.value='{attr}'; g.dispatchEvent(new Event('change'))")
    groups = ev(
        "Array.from(document.querySelectorAll('details.group')).map(g => [g.getAttribute('data-key'), "
        "g.querySelectorAll('article.finding').length, g.hidden, g.querySelector('.gname').textContent])"
    )
    want: dict[str, int] = {}
    for f in result.findings:
        want[key(f)] = want.get(key(f), 0) + 1
    assert {k: n for k, n, _hidden, _name in groups} == want
    # a group with only suppressed findings is hidden, the rest shown, every finding in one group
    active_keys = {key(f) for f in result.active()}
    assert {k for k, _n, hidden, _name in groups if not hidden} == active_keys
    assert ev("document.querySelectorAll('#groups > details.group > article.finding').length") == len(
        result.findings
    )
    names = [name for _k, _n, _h, name in groups]
    assert all(names)
    # hostile names become group titles as text only
    assert any(HOSTILE[0] in n for n in names) == (attr in ("owner",))
    assert ev("typeof window.__pwned") == "undefined" and browser.problems() == []


def test_owner_groups_a_replicaset_under_its_deployment():
    obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "web-5d4",
            "namespace": "shop",
            "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True, "uid": "1"}],
        },
    }
    from kubestrata.kube.objects import KubeObject

    ref = ObjectRef("ReplicaSet", "shop", "web-5d4", "apps/v1")
    f = Finding("KS-X", "t", Severity.LOW, Layer.APPLICATION, "m", object=ref)
    assert html.owners(Cluster([KubeObject(obj)]), [f]) == {ref: "Deployment/shop/web"}


def _long_finding() -> Finding:
    name = "a" * 240
    return Finding(
        "KS-WL-001",
        "Privileged container",
        Severity.CRITICAL,
        Layer.APPLICATION,
        "x" * 400 + " " + "/very/long/path/" * 30,
        object=ObjectRef("Deployment", "n" * 63, name, "apps/v1"),
        container="c" * 200,
        evidence=[Evidence("spec." + "k" * 300, "v" * 300, True)],
        fix=[{"op": "add", "path": "/" + "p" * 300, "value": "z" * 300}],
    )


def test_layout_at_1280_px_and_screenshot(result, browser, tmp_path_factory):
    res = copy.copy(result)
    res.findings = [_long_finding(), *result.findings]
    run = html.RunInfo(started=dt.datetime(2026, 12, 2, tzinfo=dt.UTC), seconds=1.0, inputs=["i" * 300])
    ev = _open(browser, tmp_path_factory, html.render(res, TARGET, run))
    ev("document.getElementById('f-expand').click()")
    ev("var s=document.getElementById('f-suppressed'); s.checked=true; s.dispatchEvent(new Event('change'))")
    # nothing wider than the window, with every finding open and unbreakable 300-character strings
    assert ev("document.documentElement.scrollWidth") <= 1280
    wide = ev(
        "Array.from(document.querySelectorAll('body *')).filter(e => !e.closest('.scroll') && "
        "e.getBoundingClientRect().right > 1280.5).map(e => e.tagName + '.' + e.className).slice(0, 5)"
    )
    assert wide == []
    # not evaluated is the first thing under the header
    top = ev(
        "['not-evaluated','summary','findings'].map(i => document.getElementById(i).getBoundingClientRect().top)"
    )
    assert top == sorted(top)
    # the screenshot of the chart shows each severity's colour, in proportion to the counts
    box = ev("(() => { const r = document.getElementById('chart').getBoundingClientRect(); "
             "return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; })()")  # fmt: skip
    w, h, rows = pixels(browser.screenshot(box))
    assert (w, h) == (round(box["width"]), round(box["height"]))
    seen = {s: sum(row.count(rgb) for row in rows) for s, rgb in SEVERITY_RGB.items()}
    active = res.active()
    for s, n in seen.items():
        assert (n > 0) == any(f.severity.value == s for f in active), seen
    assert seen["medium"] > seen["critical"]  # 15 medium against 3 critical in this input
    # and the window shows the page, not a blank or an error screen: the header's dark band above the
    # light page, with text in both (a clip keeps the pure-Python PNG decoding quick)
    band = round(ev("document.querySelector('header').getBoundingClientRect().bottom")) + 12
    w, h, rows = pixels(browser.screenshot({"x": 0, "y": 0, "width": 640, "height": band}))
    assert (w, h) == (640, band)
    assert rows[2][2] == (0x0F, 0x17, 0x2A) and rows[-2][2] == (0xF8, 0xFA, 0xFC)
    assert len({px for row in rows[::4] for px in row[::4]}) > 20
    assert browser.problems() == []


def _demo_network() -> Network:
    loaded = load_paths([str(REPO_ROOT / "examples" / "demo-cluster")])
    return Network(Cluster(loaded.objects))


def test_network_view_draws_no_edge_over_a_label(browser, tmp_path_factory):
    section = network_section(_demo_network())
    page = html.render(html.ScanResult(), "demo", html.RunInfo(sections=[section]))
    ev = _open(browser, tmp_path_factory, page)
    edges = ev(
        "Array.from(document.querySelectorAll('svg.netgraph path.edge, svg.netgraph path.edge-head'))"
        ".map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"
    )
    labels = ev(
        "Array.from(document.querySelectorAll('svg.netgraph text'))"
        ".map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"
    )
    assert len(edges) > 10 and len(labels) > 10
    for e in edges:
        for t in labels:
            overlap = min(e[2], t[2]) - max(e[0], t[0]) > 0.5 and min(e[3], t[3]) - max(e[1], t[1]) > 0.5
            assert not overlap, (e, t)
    assert ev("document.documentElement.scrollWidth") <= 1280
    assert browser.problems() == []


def test_network_view_is_bounded():
    net = _demo_network()
    full = network_section(net)
    assert "<svg" in full and 'class="netpol-matrix"' in full
    total = int(re.search(r'data-connections="(\d+)"', full).group(1))
    small = network_section(net, max_edges=total - 1)
    assert "<svg" not in small and 'id="net-not-drawn"' in small and "netpol-exposed" in small
    assert f'data-connections="{total}"' in small
    tiny = network_section(net, max_classes=1)
    assert "<svg" not in tiny and "equivalence classes" in tiny


def test_chromium_reports_console_errors(browser, tmp_path_factory):
    # the harness really sees errors: a page with a failing script is reported
    path = tmp_path_factory.mktemp("html") / "broken.html"
    path.write_text("<!DOCTYPE html><title>x</title><script>undefinedFunction()</script>")
    browser.open(path)
    assert any("undefinedFunction" in p for p in browser.problems())
