"""The HTML report: self-contained, escaped, and working in a real headless Chromium."""

from __future__ import annotations

import os
from html.parser import HTMLParser

import pytest

from kubestrata.report import html
from tests.report.browser import Browser, find_chromium
from tests.report.conftest import TARGET

HOSTILE = ("<script>window.__pwned=1</script>", "<img src=x onerror=window.__pwned=2>")


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
    # no external assets: no element loads anything, no inline event handler exists
    for tag, attrs in parser.tags:
        assert not {"src", "href", "action", "srcset"} & set(attrs), (tag, attrs)
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert tag not in ("img", "iframe", "link", "object", "embed"), tag
    assert [t for t, _ in parser.tags].count("script") == 1
    assert "@import" not in page and "url(" not in page
    # exactly our one script; hostile strings appear only escaped
    assert page.count("<script") == 1
    for s in HOSTILE:
        assert s not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "default-src 'none'" in page


def test_every_finding_has_evidence_and_remediation(result):
    page = html.render(result, TARGET)
    assert page.count('<article class="finding') == len(result.findings)
    assert page.count("<h4>Evidence</h4>") == sum(1 for f in result.findings if f.evidence)
    assert page.count("<h4>Fix (JSON patch, RFC 6902)</h4>") == sum(1 for f in result.findings if f.fix)


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


def test_loads_in_chromium_without_errors_and_filters_work(result, browser, tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(html.render(result, TARGET), encoding="utf-8")
    browser.open(path)
    ev = browser.evaluate
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
    # text search narrows to one object; layer groups without visible findings hide
    ev(
        "var q=document.getElementById('f-query'); q.value='payments-api'; q.dispatchEvent(new Event('input'))"
    )
    visible = ev(
        "Array.from(document.querySelectorAll('article.finding:not([hidden]) .obj')).map(e => e.textContent)"
    )
    want = [f for f in active if f.object and f.object.name == "payments-api" and f.severity.value != "info"]
    assert visible and set(visible) == {"Deployment/payments/payments-api"} and len(visible) == len(want)
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


def test_chromium_reports_console_errors(browser, tmp_path_factory):
    # the harness really sees errors: a page with a failing script is reported
    path = tmp_path_factory.mktemp("html") / "broken.html"
    path.write_text("<!DOCTYPE html><title>x</title><script>undefinedFunction()</script>")
    browser.open(path)
    assert any("undefinedFunction" in p for p in browser.problems())
