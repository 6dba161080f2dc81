"""Adaptive seeds: the rule's validation, and which configurations stay in contention."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nnsweep import Seeds, Sweep
from nnsweep.definition.seeds import account, contenders
from nnsweep.errors import SweepDefinitionError


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"min": 1}, "seeds.min", "must be >= 2"),
        ({"min": 3, "max": 3}, "seeds.max", r"greater than min \(3\)"),
        ({"max": 20_000}, "seeds.max", "at most 10000"),
        ({"step": 0}, "seeds.step", "must be >= 1"),
        ({"min": 2.5}, "seeds.min", "must be an integer"),
        ({"max": True}, "seeds.max", "must be an integer"),
    ],
)
def test_bad_rules_name_the_field_the_rule_and_the_value(kwargs, field, rule) -> None:
    with pytest.raises(SweepDefinitionError, match=rule) as info:
        Seeds(**kwargs)
    assert info.value.field == field
    assert info.value.value == list(kwargs.values())[-1]


def test_levels_end_at_max() -> None:
    assert Seeds(min=2, max=10, step=2).levels() == [2, 4, 6, 8, 10]
    assert Seeds(min=2, max=7, step=3).levels() == [2, 5, 7]
    assert Seeds(min=3, max=4, step=5).levels() == [3, 4]


def test_a_sweep_takes_adaptive_seeds_on_a_grid_only() -> None:
    sweep = Sweep(name="a", space={"hidden_units": [8, 16]}, seeds=Seeds(min=2, max=5))
    assert sweep.adaptive == Seeds(min=2, max=5)
    assert sweep.seed_list == (0, 1, 2, 3, 4)  # seeds the sweep may use
    assert sweep.to_json()["adaptive_seeds"] == {"min": 2, "max": 5, "step": 2}
    assert Sweep(name="b", seeds=3).to_json()["adaptive_seeds"] is None
    with pytest.raises(SweepDefinitionError, match="need strategy 'grid'") as info:
        Sweep(
            name="c",
            space={"hidden_units": [8, 16]},
            seeds=Seeds(),
            strategy="random",
            max_trials=2,
        )
    assert info.value.field == "seeds"


def _table(rows):
    return pd.DataFrame(rows, columns=["config_id", "n", "mean", "ci_low", "ci_high"])


def test_contenders_are_the_configurations_whose_interval_meets_the_best() -> None:
    table = _table(
        [
            ("worse", 2, 0.50, 0.45, 0.55),  # far below: out
            ("best", 2, 0.90, 0.85, 0.95),
            ("close", 2, 0.86, 0.80, 0.92),  # overlaps: in
            ("touch", 2, 0.80, 0.75, 0.85),  # meets at 0.85: in
            ("single", 1, 0.70, math.nan, math.nan),  # one run, no interval: in
            ("failed", 0, math.nan, math.nan, math.nan),  # no ok run: out
        ]
    )
    assert contenders(table, "max") == ["best", "close", "touch", "single"]
    # For a loss, the lowest mean is the best.
    assert contenders(table, "min")[0] == "worse"
    assert contenders(table.iloc[0:0], "max") == []


def test_account_counts_seeds_per_configuration_and_says_if_the_best_stands_apart() -> None:
    df = pd.DataFrame(
        {"config_id": ["a", "a", "b", "b", "b", "b"], "seed": [0, 1, 0, 1, 2, 3]},
    )
    apart = _table([("b", 4, 0.9, 0.88, 0.92), ("a", 2, 0.5, 0.45, 0.55)])
    got = account(df, apart, {"min": 2, "max": 4, "step": 2}, "max")
    assert got.counts == {2: 1, 4: 1} and got.separated and got.overlapping == 0
    assert got.text == (
        "Adaptive seeds, Seeds(min=2, max=4, step=2): 1 configuration with 2 seeds, "
        "1 configuration with 4 seeds; the best is separated from every other configuration "
        "(95 % intervals)."
    )
    close = _table([("b", 4, 0.9, 0.85, 0.95), ("a", 2, 0.88, 0.80, 0.96)])
    got = account(df, close, {"min": 2, "max": 4, "step": 2}, "max")
    assert not got.separated and got.text.endswith(
        "1 configuration still overlaps the best's 95 % interval."
    )
