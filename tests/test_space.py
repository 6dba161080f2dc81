from __future__ import annotations

import pytest

from nnsweep.definition.space import (
    Choice,
    Float,
    Int,
    expand_grid,
    grid_values,
    is_swept,
    to_keras_tuner,
)
from nnsweep.errors import SweepDefinitionError


def test_grid_is_the_product_in_space_order():
    grid = expand_grid({"a": [1, 2], "b": "x", "c": Choice(["p", "q"])})
    assert grid == [
        {"a": 1, "b": "x", "c": "p"},
        {"a": 1, "b": "x", "c": "q"},
        {"a": 2, "b": "x", "c": "p"},
        {"a": 2, "b": "x", "c": "q"},
    ]


def test_fixed_tuple_is_one_value_and_list_is_swept():
    assert expand_grid({"widths": (32, 16)}) == [{"widths": (32, 16)}]
    assert not is_swept((32, 16))
    assert is_swept([1]) and is_swept(Int(1, 3)) and is_swept(Choice([1]))


def test_ranges_with_steps_enumerate():
    assert grid_values("u", Int(8, 64, step=2, log=True)) == [8, 16, 32, 64]
    assert grid_values("d", Float(0.0, 0.3, step=0.1)) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert grid_values("k", Int(1, 3, step=1)) == [1, 2, 3]


def test_grid_over_stepless_range_is_an_error():
    with pytest.raises(SweepDefinitionError, match=r"space\['lr'\].*without a step"):
        grid_values("lr", Float(1e-4, 1e-1, log=True))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Int(5, 1), "low <= high"),
        (lambda: Int(1.5, 3), "integer"),
        (lambda: Float(0, 1, log=True), "> 0 when log"),
        (lambda: Float(1, float("inf")), "finite"),
        (lambda: Choice([]), "empty"),
        (lambda: Choice("abc"), "list"),
        (lambda: Int(1, 4, step=0), "step"),
    ],
)
def test_bad_ranges(make, match):
    with pytest.raises(SweepDefinitionError, match=match):
        make()


def test_to_keras_tuner_declares_each_kind():
    import keras_tuner as kt

    hp = kt.HyperParameters()
    assert to_keras_tuner(hp, "units", Int(8, 64, log=True)) == 8
    assert to_keras_tuner(hp, "lr", Float(1e-4, 1e-2, log=True)) == pytest.approx(1e-4)
    assert to_keras_tuner(hp, "opt", Choice(["adam", "sgd"])) == "adam"
    assert to_keras_tuner(hp, "widths", [(32,), (64, 32)]) == (32,)
    assert set(hp.values) == {"units", "lr", "opt", "widths__index"}


def test_keras_tuner_sampling_spelling_means_log_or_linear():
    from nnsweep.definition.space import describe

    assert Float(1e-4, 1e-1, sampling="log") == Float(1e-4, 1e-1, log=True)
    assert Int(1, 64, sampling="linear") == Int(1, 64)
    assert Int(2, 64, step=2, sampling="log").grid_values() == [2, 4, 8, 16, 32, 64]
    assert describe(Float(1e-4, 1e-1, sampling="log"))["log"] is True
    with pytest.raises(SweepDefinitionError, match="Float.sampling contradicts log=False"):
        Float(1e-4, 1e-1, sampling="log", log=False)
    with pytest.raises(SweepDefinitionError, match="'reverse_log'.*not supported"):
        Float(0.1, 0.9, sampling="reverse_log")
    with pytest.raises(SweepDefinitionError, match="Int.sampling must be one of linear, log"):
        Int(1, 8, sampling="logarithmic")


def test_boolean_is_false_or_true_in_grids_and_for_keras_tuner():
    import keras_tuner as kt

    from nnsweep import Boolean, Sweep

    assert expand_grid({"batch_norm": Boolean()}) == [{"batch_norm": False},
                                                      {"batch_norm": True}]  # fmt: skip
    sweep = Sweep(name="b", space={"batch_norm": Boolean(), "hidden_units": [8, 16]})
    assert [c["batch_norm"] for c in sweep.configurations()] == [False, False, True, True]
    hp = kt.HyperParameters()
    assert to_keras_tuner(hp, "batch_norm", Boolean()) is False
    assert isinstance(hp.space[0], kt.engine.hyperparameters.Boolean)
    assert repr(Boolean()) == "Boolean()" and Boolean() != Choice([False, True])
    with pytest.raises(SweepDefinitionError, match="must be a string"):
        Sweep(name="b", space={"optimizer": Boolean()})
