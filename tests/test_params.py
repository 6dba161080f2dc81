from __future__ import annotations

import pytest

from nnsweep.definition import params
from nnsweep.errors import SweepDefinitionError


def test_resolve_fills_defaults_and_keeps_given_values():
    resolved = params.resolve({"hidden_units": 7}, "mlp")
    assert resolved["hidden_units"] == 7
    assert resolved["optimizer"] == "adam" and resolved["dropout"] == 0.0


def test_validate_normalises_ints_to_floats_for_float_params():
    p = params.known_params("mlp")["learning_rate"]
    assert p.validate(1, "lr") == 1.0 and isinstance(p.validate(1, "lr"), float)


def test_ints_kind_accepts_int_and_tuple_but_not_list():
    p = params.known_params("cnn")["filters"]
    assert p.validate(16, "f") == (16,)
    assert p.validate((32, 64), "f") == (32, 64)
    with pytest.raises(SweepDefinitionError, match="tuple"):
        p.validate([32, 64], "f")


def test_format_value_writes_tuples_with_dashes():
    assert params.format_value((250, 125, 50)) == "250-125-50"
    assert params.format_value(3) == 3


@pytest.mark.parametrize(
    "combo, match",
    [
        ({"optimizer": "adam", "momentum": 0.9}, "momentum"),
        ({"optimizer": "rmsprop", "nesterov": True}, "nesterov"),
    ],
)
def test_combination_rules(combo, match):
    with pytest.raises(SweepDefinitionError, match=match):
        params.check_combination(combo, "mlp")


def test_cnn_filters_must_match_layers():
    with pytest.raises(SweepDefinitionError, match="conv_layers=2"):
        params.check_combination({"conv_layers": 2, "filters": (8, 16, 32)}, "cnn")
    params.check_combination({"conv_layers": 2, "filters": (8, 16)}, "cnn")


@pytest.mark.parametrize(
    "space, where, rule",
    [
        ({"lr_schedule": "linear"}, "lr_schedule", "must be one of constant, cosine"),
        ({"lr_schedule": "step", "warmup_epochs": 1}, "warmup_epochs", "does not use"),
        ({"decay_rate": 0.9}, "decay_rate", "applies only to lr_schedule 'exponential' or"),
        (
            {"lr_schedule": ["constant", "plateau"], "decay_epochs": [1, 2]},
            "decay_epochs",
            "'step', which this sweep does not use",
        ),
        ({"lr_schedule": "cosine", "warmup_epochs": 5}, "warmup_epochs", "less than the epochs"),
        (
            {"lr_schedule": "plateau", "learning_rate": 0.01, "min_lr": 0.01},
            "min_lr",
            "below the learning rate",
        ),
        ({"lr_schedule": "exponential", "decay_rate": 0.0}, "decay_rate", r"in \(0, 1\]"),
        ({"lr_schedule": "plateau", "plateau_factor": 1.0}, "plateau_factor", r"in \(0, 1\)"),
        ({"class_weight": "even"}, "class_weight", 'None, "balanced" or a dict'),
        ({"class_weight": {0: 0.0}}, "class_weight", "finite numbers > 0, got 0.0"),
        ({"class_weight": {-1: 2.0}}, "class_weight", "integers >= 0, got -1"),
        ({"class_weight": [None, {}]}, "class_weight", "non-empty dict"),
        ({"label_smoothing": 1.0}, "label_smoothing", r"in \[0, 1\)"),
    ],
)
def test_bad_schedules_fail_naming_the_field_the_rule_and_the_value(space, where, rule):
    from nnsweep import Sweep

    with pytest.raises(SweepDefinitionError, match=rule) as caught:
        Sweep(name="s", space={"epochs": 5, **space})
    assert f"space[{where!r}]" in str(caught.value)


def test_a_schedules_setting_is_unused_by_the_other_schedules_of_the_sweep():
    from nnsweep import Sweep
    from nnsweep.training._units import schedule_key

    space = {"lr_schedule": ["constant", "step"], "decay_epochs": 2, "epochs": 5}
    trials = Sweep(name="s", space=space, seeds=1).grid_trials()
    keys = {t.params["lr_schedule"]: schedule_key(t.params) for t in trials}
    assert keys == {"constant": ("constant",), "step": ("step", 0.5, 2)}


def test_a_class_weight_dict_is_kept_as_text_that_reads_back_the_same():
    from nnsweep import Sweep

    sweep = Sweep(name="s", space={"class_weight": [None, "balanced", {3: 2, 0: 0.5}]})
    values = [t.params["class_weight"] for t in sweep.grid_trials()]
    assert values == [None, "balanced", "0:0.5,3:2.0"]
    assert params.parse_class_weight(values[2]) == {0: 0.5, 3: 2.0}
    assert sweep.validate_params({"class_weight": "0:0.5,3:2.0"})["class_weight"] == values[2]


@pytest.mark.parametrize(
    "values, task, rule",
    [
        ({"class_weight": "balanced"}, "regression", "only to classification tasks"),
        ({"label_smoothing": 0.1}, "regression", "only to classification tasks"),
        ({"class_weight": "0:1.0,2:3.0"}, "binary", r"classes of the data \(0..1\), got 2"),
    ],
)
def test_task_rules_need_the_data(values, task, rule):
    with pytest.raises(SweepDefinitionError, match=rule):
        params.check_task_params(values, task, 2)
    params.check_task_params({"class_weight": "0:1.0,1:3.0"}, "binary", 2)


@pytest.mark.parametrize(
    "data, space, rule",
    [
        ("digits", {"class_weight": {10: 2.0}}, r"classes of the data \(0..9\), got 10"),
        ("imdb", {"class_weight": [None, {2: 1.0}]}, r"\(0..1\), got 2"),
        ("boston_housing", {"label_smoothing": 0.1}, "only to classification tasks"),
    ],
)
def test_a_built_in_datasets_classes_are_checked_when_the_sweep_is_created(data, space, rule):
    from nnsweep import Sweep

    with pytest.raises(SweepDefinitionError, match=rule):
        Sweep(name="s", data=data, space=space)
