from kubestrata.admission.review import WARNING_MAX, clean_warning
from kubestrata.detect.escape import clean
from kubestrata.textsafe import printable


def test_warnings_quote_hostile_names_visibly():
    w = clean_warning("container 'x\x1b[31m\u202e\x9b' runs privileged\n")
    assert w == "container 'x\\x1b[31m\\u202e\\x9b' runs privileged\\x0a"
    assert len(clean_warning("a" * 10_000)) == WARNING_MAX


def test_one_escaper_for_terminals_and_audit_evidence():
    hostile = "kubectl\texec\n\x1b]0;pwned\x07\u200b"
    assert printable(hostile) == "kubectl\texec\\x0a\\x1b]0;pwned\\x07\\u200b"
    assert printable(hostile, keep_lines=True) == "kubectl\texec\n\\x1b]0;pwned\\x07\\u200b"
    # audit evidence escapes tabs too (SIEM columns) and caps the length
    assert clean(hostile) == "kubectl\\x09exec\\x0a\\x1b]0;pwned\\x07\\u200b"
    assert clean("u" * 600).endswith("…[truncated]")
