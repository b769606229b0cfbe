"""Every rule id fires on its example events and stays silent on its near miss
(kubestrata.detect.rules.examples: real-shaped audit Events beside the rules)."""

from __future__ import annotations

import pytest

from kubestrata.detect.catalogue import CATALOGUE
from kubestrata.detect.pipeline import Pipeline
from kubestrata.detect.rules.examples import EXAMPLES, example_config


def test_every_rule_id_has_an_example() -> None:
    assert set(EXAMPLES) == set(CATALOGUE)


def _fired(example, events, before=()) -> set[str]:
    pipe = Pipeline(example_config(example))
    for ev in before:
        pipe.process_obj(ev, "before")
    out: set[str] = set()
    for ev in events:
        out |= {f.rule_id for f in pipe.process_obj(ev, "example")}
    assert pipe.stats.bad_total == 0 and not pipe.stats.rule_errors, pipe.stats.to_dict()
    return out


@pytest.mark.parametrize("rule_id", sorted(EXAMPLES))
def test_rule_fires_on_its_example_and_not_on_the_near_miss(rule_id: str) -> None:
    example = EXAMPLES[rule_id]
    assert rule_id in _fired(example, example.fires), "the example must fire"
    assert rule_id not in _fired(example, example.near_miss, example.before), "the near miss must not"
