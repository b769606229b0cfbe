import pytest

from kubestrata.errors import InputError
from kubestrata.kube.selectors import LabelSelector, parse_selector_string, selector_matches


def test_nil_matches_nothing_empty_matches_everything():
    assert not selector_matches(None, {"a": "b"})
    assert selector_matches({}, {})
    assert selector_matches({}, {"a": "b"})


@pytest.mark.parametrize(
    "sel,labels,want",
    [
        ({"matchLabels": {"a": "1"}}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
        (
            {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
            {"a": "1"},
            False,
        ),
    ],
)
def test_operators(sel, labels, want):
    assert selector_matches(sel, labels) is want


@pytest.mark.parametrize(
    "sel,field",
    [
        ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "selector.matchExpressions[0].operator"),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "selector.matchExpressions[0].values",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "selector.matchExpressions[0].values",
        ),
        ({"matchLabels": ["a"]}, "selector.matchLabels"),
        ("a=b", "selector"),
    ],
)
def test_invalid_selectors_name_the_field(sel, field):
    with pytest.raises(InputError) as e:
        LabelSelector.parse(sel)
    assert e.value.field == field


def test_selector_string_round_trip():
    s = parse_selector_string("owner=alice,env in (prod, dev),!legacy,tier!=db,app")
    assert s.matches({"owner": "alice", "env": "dev", "app": "x"})
    assert not s.matches({"owner": "alice", "env": "dev", "app": "x", "legacy": "1"})
    assert not s.matches({"owner": "alice", "env": "dev", "app": "x", "tier": "db"})
