from __future__ import annotations

import pytest

from nnsweep import Choice, Float, Int, Sweep, load_sweep
from nnsweep.definition.sweep import config_id
from nnsweep.errors import SweepDefinitionError, SweepFileError


def _sweep(**kw):
    kw.setdefault("name", "s")
    return Sweep(**kw)


BAD_SWEEPS = [
    # (kwargs, field named in the message, rule fragment)
    ({"name": "a b"}, "name", "letters"),
    ({"name": ""}, "name", "letters"),
    ({"data": "cifar"}, "data", "must be one of"),
    ({"data": 3}, "data", "dataset name"),
    ({"model": "transformer"}, "model", "must be one of"),
    ({"space": [1, 2]}, "space", "dict"),
    ({"space": {"dropout": 1.5}}, "space['dropout']", "[0, 1)"),
    ({"space": {"dropout": [0.1, 1.0]}}, "space['dropout']", "[0, 1)"),
    ({"space": {"hidden_units": 0}}, "space['hidden_units']", ">= 1"),
    ({"space": {"hidden_units": "abc"}}, "space['hidden_units']", "integer"),
    ({"space": {"hidden_units": 3.5}}, "space['hidden_units']", "integer"),
    ({"space": {"hidden_units": True}}, "space['hidden_units']", "integer"),
    ({"space": {"learning_rate": -0.1}}, "space['learning_rate']", "> 0"),
    ({"space": {"learning_rate": float("nan")}}, "space['learning_rate']", "finite"),
    ({"space": {"hidden_units": []}}, "space['hidden_units']", "empty"),
    ({"space": {"optimizer": "adamm"}}, "space['optimizer']", "one of"),
    ({"space": {"activation": "relux"}}, "space['activation']", "one of"),
    ({"space": {"kernel_initializer": "ones"}}, "space['kernel_initializer']", "one of"),
    ({"space": {"filters": 8}}, "space['filters']", "not a hyperparameter of model 'mlp'"),
    ({"space": {"widths": [[32, 16]]}}, "space['widths']", "tuple"),
    ({"space": {"batch_size": 0}}, "space['batch_size']", ">= 1"),
    ({"space": {"epochs": [1, -2]}}, "space['epochs']", "must be in [1, 100,000]"),
    ({"space": {"learning_rate": Float(1e-4, 1e-1, log=True)}}, "space['learning_rate']", "step"),
    ({"space": {"hidden_units": Float(1, 8, step=1)}}, "space['hidden_units']", "Int range"),
    ({"space": {"optimizer": Int(1, 3, step=1)}}, "space['optimizer']", "numeric range"),
    ({"space": {"batch_norm": "yes"}}, "space['batch_norm']", "True or False"),
    ({"space": {"momentum": 0.9}}, "space['momentum']", "sgd"),
    ({"seeds": 0}, "seeds", ">= 1"),
    ({"seeds": []}, "seeds", "count"),
    ({"seeds": [1, 1]}, "seeds", "repeat"),
    ({"seeds": "3"}, "seeds", "count"),
    ({"strategy": "evolution"}, "strategy", "one of"),
    ({"strategy": "random"}, "max_trials", "required"),
    ({"max_trials": 0}, "max_trials", ">= 1"),
    ({"cv": 1}, "cv", ">= 2"),
    ({"validation_split": 1.0}, "validation_split", "(0, 1)"),
    ({"validation_split": 0}, "validation_split", "(0, 1)"),
    ({"direction": "up"}, "direction", "'min' or 'max'"),
    (
        {"model": "cnn", "space": {"conv_layers": 2, "filters": (8, 16, 32)}},
        "filters",
        "conv_layers",
    ),
    # Named models: each entry (family, params), its params its family's, one value each.
    ({"model": {}}, "model", "at least one"),
    ({"model": {"a": ("rnn", {})}}, "model['a']", "(family, params)"),
    ({"model": {"a": "mlp"}}, "model['a']", "(family, params)"),
    ({"model": {"a": ("mlp", {"filters": 8})}}, "model['a']['filters']", "'mlp'"),
    ({"model": {"a": ("mlp", {"hidden_units": [8, 16]})}}, "model['a']['hidden_units']", "one"),
    ({"model": {"a": ("mlp", {"hidden_units": 0})}}, "model['a']['hidden_units']", ">= 1"),
    ({"model": {"a": ("mlp", {"learning_rate": 0.1})}}, "model['a']['learning_rate']", "space"),
    (
        {"model": {"a": ("cnn", {"conv_layers": 2, "filters": (8, 16, 32)})}},
        "model['a']['filters']",
        "conv_layers",
    ),
    (
        {"model": {"a": ("mlp", {"dropout": 0.1})}, "space": {"dropout": [0.0, 0.2]}},
        "space['dropout']",
        "model['a'] too",
    ),
    ({"model": {"a": ("mlp", {})}, "space": {"model": ["a", "b"]}}, "space['model']", "(a)"),
    (
        {"model": {"a": ("mlp", {}), "b": ("cnn", {})}, "space": {"filters": [(8,), (16,)]}},
        "space['filters']",
        "'mlp'",
    ),
    ({"model": "mlp", "space": {"model": ["a"]}}, "space['model']", "not a hyperparameter"),
]


@pytest.mark.parametrize("kwargs, field, rule", BAD_SWEEPS)
def test_bad_sweep_names_field_rule_and_value(kwargs, field, rule):
    with pytest.raises(SweepDefinitionError) as info:
        _sweep(**kwargs)
    message = str(info.value)
    assert field in message and rule in message
    assert ", got " in message  # the received value is always shown


def test_sweep_is_frozen_and_space_is_read_only():
    s = _sweep(space={"hidden_units": [8, 16]})
    with pytest.raises(AttributeError):
        s.name = "other"
    with pytest.raises(TypeError):
        s.space["hidden_units"] = 3


def test_grid_trials_cover_configs_seeds_and_folds():
    s = _sweep(space={"hidden_units": [8, 16], "dropout": [0.0, 0.5]}, seeds=3, cv=2)
    trials = s.grid_trials()
    assert len(trials) == 2 * 2 * 3 * 2
    assert len({t.trial_id for t in trials}) == len(trials)
    assert len({t.config_id for t in trials}) == 4
    assert {t.fold for t in trials} == {0, 1} and {t.seed for t in trials} == {0, 1, 2}
    assert s.swept == ("hidden_units", "dropout")


def test_ids_are_stable_and_depend_only_on_params():
    a = _sweep(space={"hidden_units": [8, 16], "epochs": 2}).grid_trials()
    b = _sweep(name="other", space={"epochs": 2, "hidden_units": [16, 8, 32]}).grid_trials()
    assert {t.trial_id for t in a} <= {t.trial_id for t in b}
    assert config_id({"hidden_units": 8, "epochs": 2}) == a[0].config_id
    assert a[0].trial_id == f"{a[0].config_id}-s0-f0"


def test_explicit_seed_list_and_custom_model_params_pass_through():
    def build(params, spec):  # pragma: no cover - never called here
        raise AssertionError

    s = _sweep(model=build, space={"my_knob": [1, 2], "optimizer": "sgd"}, seeds=[7, 9])
    assert [t.seed for t in s.grid_trials()] == [7, 9, 7, 9]
    with pytest.raises(SweepDefinitionError, match="optimizer"):
        _sweep(model=build, space={"optimizer": "nope"})


def test_ranges_are_allowed_for_tuner_strategies():
    s = _sweep(
        strategy="random",
        max_trials=5,
        space={"hidden_units": Int(8, 512, log=True), "optimizer": Choice(["adam", "sgd"])},
    )
    assert s.swept == ("hidden_units", "optimizer")


def test_fingerprint_ignores_swept_values_but_not_fixed_ones():
    a = _sweep(space={"hidden_units": [8, 16], "epochs": 2})
    b = _sweep(space={"hidden_units": [8, 32], "epochs": 2})
    c = _sweep(space={"hidden_units": [8, 16], "epochs": 3})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_load_sweep_finds_the_sweep_and_its_question(write_sweep):
    from conftest import TINY_SWEEP

    sweep = load_sweep(write_sweep(TINY_SWEEP))
    assert sweep.name == "tiny"
    assert sweep.description == "Does width matter on digits? (a test sweep)"


@pytest.mark.parametrize(
    "body, match",
    [
        ("sweep = Sweep(\n", "syntax error"),
        ("x = 1\n", "defines no Sweep"),
        (
            "from nnsweep import Sweep\na = Sweep(name='a')\nb = Sweep(name='b')\n",
            "2 Sweeps",
        ),
        ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
        ("raise RuntimeError('boom')\n", "tiny.py:1: RuntimeError: boom"),
    ],
)
def test_load_sweep_errors(write_sweep, body, match):
    with pytest.raises(SweepFileError, match=match):
        load_sweep(write_sweep(body))


def test_load_sweep_reports_definition_errors_and_missing_files(write_sweep, tmp_path):
    path = write_sweep("from nnsweep import Sweep\ns = Sweep(name='x', space={'dropout': 1.5})\n")
    with pytest.raises(SweepDefinitionError, match=r"space\['dropout'\] must be in \[0, 1\)"):
        load_sweep(path)
    with pytest.raises(SweepFileError, match="not found"):
        load_sweep(tmp_path / "missing.py")


def test_numpy_scalars_in_a_sweep_are_plain_python_values():
    np = pytest.importorskip("numpy")
    with_numpy = Sweep(
        name="np",
        space={
            "hidden_units": [np.int64(16), np.int32(32)],
            "learning_rate": np.float32(0.5),
            "epochs": np.int64(1),
        },
        seeds=np.int64(2),
        validation_split=np.float64(0.25),
    )
    plain = Sweep(
        name="np",
        space={"hidden_units": [16, 32], "learning_rate": 0.5, "epochs": 1},
        seeds=2,
        validation_split=0.25,
    )
    assert with_numpy.space["hidden_units"] == [16, 32]
    assert {type(v) for v in with_numpy.space["hidden_units"]} == {int}
    assert type(with_numpy.seeds) is int and type(with_numpy.validation_split) is float
    assert [t.trial_id for t in with_numpy.grid_trials()] == [
        t.trial_id for t in plain.grid_trials()
    ]


def test_a_huge_grid_is_refused_by_counting_not_expanding():
    import time
    import tracemalloc

    space = {name: list(range(1, 21)) for name in ("hidden_units", "epochs", "batch_size")}
    space.update({name: [10.0**-i for i in range(1, 21)] for name in ("l1", "l2", "clipnorm")})
    space["learning_rate"] = Float(1e-6, 1.0, step=1.01, log=True)  # 1,389 values
    tracemalloc.start()
    started = time.process_time()
    with pytest.raises(SweepDefinitionError, match=r"space makes [\d,]+ trials"):
        Sweep(name="huge", space=space, seeds=3)
    cpu = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Counting, not building: well under a second and a megabyte (expanding would not end).
    assert peak < 1_000_000 and cpu < 1.0, (peak, cpu)


def test_functions_are_named_the_same_in_every_process():
    from nnsweep.definition.space import callable_name, stable_name

    def act(x):  # pragma: no cover - never called
        return x

    test = "test_functions_are_named_the_same_in_every_process"
    assert callable_name(act) == f"{__name__}.{test}.<locals>.act"
    assert " at 0x" not in stable_name(object())
    one = config_id({"act": act, "units": 8})
    assert one == config_id({"units": 8, "act": act}) and " at 0x" not in str(one)


@pytest.mark.parametrize(
    ("name", "nearest"),
    [("units", "hidden_units"), ("lr", "learning_rate"), ("num_layers", "depth"),
     ("layers", "depth"), ("rate", "dropout"), ("hiden_units", "hidden_units"),
     ("optimiser", "optimizer")],
)  # fmt: skip
def test_an_unknown_hyperparameter_suggests_the_nearest_known_name(name, nearest):
    with pytest.raises(SweepDefinitionError, match="not a hyperparameter") as info:
        _sweep(space={name: 8})
    assert str(info.value).count(f"did you mean {nearest!r}?") == 1
    # Aliases are suggestions, never second names of a column.
    value = {"optimizer": "adam", "dropout": 0.5, "learning_rate": 0.1}.get(nearest, 8)
    assert list(_sweep(space={nearest: value}).space) == [nearest]


def test_units_in_a_cnn_suggests_its_dense_units_and_nonsense_suggests_nothing():
    with pytest.raises(SweepDefinitionError, match="did you mean 'dense_units'"):
        _sweep(model="cnn", space={"units": 8})
    with pytest.raises(SweepDefinitionError, match=r"\(known: .*\)") as info:
        _sweep(space={"zzzz": 8})
    assert "did you mean" not in str(info.value)


NAMED = {
    "small": ("mlp", {"hidden_units": 8}),
    "conv": ("cnn", {"filters": (4,), "dense_units": 0}),
}


def test_named_models_are_the_model_hyperparameter_and_rows_carry_their_settings():
    sweep = _sweep(model=NAMED, space={"dropout": [0.0, 0.1]}, seeds=2)
    assert list(sweep.space) == ["model", "dropout"] and sweep.swept == ("model", "dropout")
    assert sweep.space["model"] == ["small", "conv"] and sweep.grid_size == 4
    params = [dict(t.params) for t in sweep.grid_trials()]
    assert len(params) == 8
    assert params[0] == {"model": "small", "hidden_units": 8, "dropout": 0.0}
    assert params[-1] == {"model": "conv", "filters": (4,), "dense_units": 0, "dropout": 0.1}
    # A tuner's draw ({model, dropout}) gains the same settings as the grid's.
    assert sweep.validate_params({"model": "conv", "dropout": 0.1}) == params[-1]
    data = sweep.to_json()
    assert data["model"] == "named models"
    assert data["models"]["conv"] == ["cnn", {"filters": [4], "dense_units": 0}]
    with pytest.raises(TypeError):
        sweep.model["small"] = ("mlp", {})  # read-only, as the space is


def test_named_models_space_may_choose_some_and_copies_keep_them():
    from dataclasses import replace

    sweep = _sweep(model=NAMED, space={"model": "conv"})
    assert [t.params["model"] for t in sweep.grid_trials()] == ["conv"]
    again = replace(sweep, seeds=3)
    assert again.space == sweep.space and again.model == sweep.model
    assert len(again.grid_trials()) == 3
    # Another named model, or other settings of one, is another configuration id.
    other = _sweep(model={**NAMED, "conv": ("cnn", {"filters": (8,), "dense_units": 0})})
    ids = [t.config_id for t in _sweep(model=NAMED).grid_trials()]
    ids_other = [t.config_id for t in other.grid_trials()]
    assert ids[0] == ids_other[0] and ids[1] != ids_other[1]
