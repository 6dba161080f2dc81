from __future__ import annotations

import math

import numpy as np
import pytest

from nnsweep import Sweep
from nnsweep.data import load_dataset
from nnsweep.store.results import trial_columns
from nnsweep.training.train import TrainContext, train_pack

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _ctx(digits, **sweep_kw):
    sweep_kw.setdefault("space", {"hidden_units": 8, "epochs": 2, "batch_size": 64})
    return TrainContext(Sweep(name="t", **sweep_kw), digits)


def test_rows_have_the_table_columns_and_real_metrics(digits):
    ctx = _ctx(digits, seeds=2)
    trials = ctx.sweep.grid_trials()
    results = list(train_pack(trials, ctx))
    assert [r.row["trial_id"] for r in results] == [t.trial_id for t in trials]
    columns = trial_columns(list(ctx.sweep.space), "accuracy", "val_accuracy")
    for result in results:
        row = result.row
        assert set(row) <= set(columns)
        assert row["status"] == "ok" and row["error"] == ""
        assert row["epochs_run"] == 2 and len(result.history) == 2
        assert 0 < row["test_accuracy"] <= 1 and 0 < row["val_accuracy"] <= 1
        assert row["best_val_accuracy"] == max(h["val_accuracy"] for h in result.history)
        assert row["best_epoch"] in (1, 2)
        assert row["n_params"] == 64 * 8 + 8 + 8 * 10 + 10
        assert row["pack_size"] == 2 and row["backend"] == "tensorflow"
    # Different seeds give different initial weights, hence different numbers.
    assert results[0].row["loss"] != results[1].row["loss"]


def test_the_same_trial_gives_the_same_numbers(digits):
    ctx = _ctx(digits, space={"hidden_units": 8, "epochs": 2, "dropout": 0.2, "batch_size": 64})
    trial = ctx.sweep.grid_trials()[0]
    first = next(train_pack([trial], ctx)).row
    second = next(train_pack([trial], ctx)).row
    for key in ("loss", "val_loss", "test_loss", "test_accuracy"):
        assert first[key] == second[key]


def test_a_diverging_trial_stops_early_and_says_when():
    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    data = load_dataset(lambda: (x, x.sum(axis=1) * 100))
    sweep = Sweep(
        name="t",
        data="digits",
        space={"hidden_units": 32, "epochs": 6, "optimizer": "sgd", "learning_rate": 1e6},
    )
    result = next(train_pack(sweep.grid_trials(), TrainContext(sweep, data)))
    assert result.status == "diverged"
    assert result.row["epochs_run"] < 6
    assert "loss became" in result.row["error"] and "in epoch" in result.row["error"]
    assert "test_mae" not in result.row


def test_a_failing_build_is_recorded_and_the_next_trial_runs(digits):
    import keras

    def build(params, spec):
        if params["k"] == 0:
            raise ValueError("k must be positive")
        inputs = keras.Input(spec.input_shape)
        x = keras.layers.Flatten()(inputs)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    ctx = _ctx(digits, model=build, space={"k": [0, 1], "epochs": 1})
    failed, ok = list(train_pack(ctx.sweep.grid_trials(), ctx))
    assert failed.status == "failed"
    assert failed.row["error"] == "build() raised ValueError: k must be positive"
    assert ok.status == "ok" and math.isfinite(ok.row["test_loss"])


def test_early_stopping_with_patience_and_a_regression_objective():
    x = np.random.default_rng(0).normal(size=(80, 3)).astype("float32")
    data = load_dataset(lambda: (x, x @ np.array([1.0, -2.0, 0.5])))
    sweep = Sweep(
        name="r", data="digits", space={"epochs": 30, "patience": 0, "learning_rate": 0.5}
    )
    result = next(train_pack(sweep.grid_trials(), TrainContext(sweep, data)))
    row = result.row
    assert row["status"] == "ok" and "best_val_loss" in row and "test_mae" in row
    # patience=0 stops at the first epoch that does not improve on the best one
    assert row["epochs_run"] == len(result.history) < 30
    assert row["best_epoch"] == row["epochs_run"] - 1


def test_epoch_callback_sees_every_epoch(digits):
    seen = []
    ctx = _ctx(digits)
    list(train_pack(ctx.sweep.grid_trials(), ctx, on_epoch=lambda t, e, logs: seen.append(e)))
    assert seen == [1, 2]


def test_packs_train_on_the_jax_backend_too(tmp_path):
    # The backend is chosen at import, so this runs in its own process.
    pytest.importorskip("jax", reason="the optional jax extra is not installed")
    import os
    import subprocess
    import sys

    code = "\n".join(
        [
            "import sys",
            "from nnsweep import Sweep, run_sweep",
            "s = Sweep(name='j', data='digits', seeds=2,",
            "          space={'hidden_units': [8, 16], 'dropout': 0.1, 'epochs': 2,",
            "                 'learning_rate': 0.01})",
            "rows = run_sweep(s, results=sys.argv[1]).rows",
            "import keras",
            "print(keras.backend.backend(), sorted({r['status'] for r in rows}), len(rows),",
            "      min(r['test_accuracy'] for r in rows))",
        ]
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    args = [sys.executable, "-c", code, str(tmp_path)]
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("jax ['ok'] 4"), out.stdout
    assert float(out.stdout.split()[-1]) > 0.5  # two epochs on digits learn something


def test_models_without_keras_input_are_built_from_the_data_and_train(digits):
    """A Sequential of layers, or a subclassed model, declares no inputs: the data's known
    input shape builds it (issue 23, class 10), packed and alone alike."""
    import keras

    class Head(keras.Model):
        def __init__(self, units):
            super().__init__()
            self.flat, self.out = keras.layers.Flatten(), keras.layers.Dense(units, "softmax")

        def call(self, x):
            return self.out(self.flat(x))

    def build(params, spec):
        if params["kind"] == "sequential":
            return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
        return Head(spec.n_classes)

    space = {"kind": ["sequential", "subclassed"], "epochs": 1}
    accuracy = {}
    for pack in (True, False):
        ctx = _ctx(digits, model=build, space=space)
        trials = ctx.sweep.grid_trials()
        results = list(train_pack(trials, ctx)) if pack else [
            r for t in trials for r in train_pack([t], ctx)
        ]  # fmt: skip
        assert [r.status for r in results] == ["ok", "ok"], [r.row["error"] for r in results]
        accuracy[pack] = [r.row["test_accuracy"] for r in results]
    assert accuracy[True] == pytest.approx(accuracy[False], abs=1e-6)
    assert min(accuracy[True]) > 0.15, accuracy  # learnt: chance is 0.1


def test_a_tensorflow_runtime_error_keeps_its_cause_and_where_it_rose(digits):
    import keras
    import tensorflow as tf

    class Guard(keras.layers.Layer):
        def call(self, x):
            tf.debugging.assert_less(x, -100.0, message="inputs must be very negative")
            return x

    def build(params, spec):
        inputs = keras.Input(spec.input_shape)
        x = Guard()(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    ctx = _ctx(digits, model=build, space={"k": 1, "epochs": 1})
    (result,) = train_pack(ctx.sweep.grid_trials(), ctx)
    error = result.row["error"]
    assert result.status == "failed"
    assert error.startswith("InvalidArgumentError: Graph execution error: assertion failed: ")
    assert "[inputs must be very negative]" in error
    line = Guard.call.__code__.co_firstlineno + 1  # the assertion's own line
    assert error.endswith(f"(at test_training.py:{line})"), error
