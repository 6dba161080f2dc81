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
