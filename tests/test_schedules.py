"""Learning-rate schedules: Keras's own rates, packed exactly, and as a plain Keras fit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import keras_reference, train_packed, two_layers

from nnsweep import Sweep
from nnsweep.training.schedules import Schedule, keras_schedule, trial_schedule

keras = pytest.importorskip("keras")

SCHEDULES = ["constant", "cosine", "exponential", "step", "plateau"]


@pytest.fixture(scope="module")
def digits():
    from nnsweep.data import load_dataset

    return load_dataset("digits")


# -- the rates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"kind": "cosine"},
        {"kind": "cosine", "warmup_epochs": 2, "final_lr_fraction": 0.1},
        {"kind": "exponential", "decay_rate": 0.7, "decay_epochs": 2},
        {"kind": "step", "decay_rate": 0.5, "decay_epochs": 2},
    ],
    ids=lambda s: "-".join(map(str, s.values())),
)
def test_rates_are_keras_schedules_at_every_update(settings):
    schedule = Schedule(learning_rate=0.01, steps_per_epoch=7, epochs=5, **settings)
    steps = np.arange(7 * 5 + 3)  # past the end: Keras clamps the cosine's step
    ours = schedule.rates(steps)
    theirs = [float(keras_schedule(schedule)(int(s))) for s in steps]
    assert len(set(ours.tolist())) > 2  # the rate moves
    np.testing.assert_allclose(ours, theirs, rtol=3e-7)  # an ulp of float32


def test_plateau_follows_keras_reduce_lr_on_plateau():
    values = [1.0, 0.9, 0.89995, 0.95, 0.5, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    for direction in ("min", "max"):
        signed = values if direction == "min" else [-v for v in values]
        ours = Schedule("plateau", 0.1, 10, 12, plateau_factor=0.3, plateau_patience=1)
        ours.direction, ours.min_lr = direction, 0.004
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        callback = keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", mode=direction, factor=0.3, patience=1, min_lr=0.004
        )
        callback.set_model(model)
        callback.on_train_begin()
        ours_lr, theirs_lr = [], []
        for epoch, value in enumerate(signed):
            ours_lr.append(ours.epoch_rate(epoch))
            theirs_lr.append(float(model.optimizer.learning_rate))
            ours.observe(value)
            callback.on_epoch_end(epoch, {"val_loss": value})
        assert ours_lr == theirs_lr
        assert len(set(ours_lr)) == 4 and min(ours_lr) == pytest.approx(0.004)  # to min_lr


# -- packed as alone ---------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["stacks", "branches"])
def test_every_schedule_packs_exactly(digits, unit):
    from nnsweep.training.train import TrainContext

    space = {
        "hidden_units": 32,
        "epochs": 6,
        "learning_rate": 0.02,
        "lr_schedule": SCHEDULES,
        "plateau_patience": 0,
        "plateau_factor": 0.5,
        # 128: four micro-batches of 32, each trial counting its own updates
        "batch_size": [32, 128] if unit == "stacks" else 32,
        "batch_norm": unit == "branches",
    }
    sweep = Sweep(name="s", space=space, seeds=2, objective="val_accuracy")
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    packed = train_packed(trials, ctx)
    assert {r.row["pack_size"] for r in packed.values()} == {len(trials)}
    rates = {}
    for t in trials:
        (alone,) = train_packed([t], ctx).values()
        mine = packed[t.trial_id]
        assert alone.row["pack_size"] == 1 and mine.row["status"] == "ok"
        for key in ("loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy"):
            assert mine.row[key] == pytest.approx(alone.row[key], rel=1e-5, abs=1e-6), key
        lr = [h["learning_rate"] for h in mine.history]
        assert lr == [h["learning_rate"] for h in alone.history]
        rates[t.params["lr_schedule"], t.params["batch_size"], t.seed] = lr
    for schedule in ("cosine", "exponential"):  # they lower the rate epoch by epoch
        assert all(np.diff(rates[schedule, 32, 0]) < 0)
    assert len({tuple(v) for v in rates.values()}) > 4
    plateaus = [v for (s, _, _), v in rates.items() if s == "plateau"]
    assert any(v[-1] < v[0] for v in plateaus)  # a plateau lowered some trial's rate


def test_a_scheduled_pack_never_reuses_an_unscheduled_ones_traces(digits):
    from nnsweep.training._engine import signature
    from nnsweep.training._units import plan_units

    def sig(space):
        trials = Sweep(name="s", space={"hidden_units": [8, 16], **space}).grid_trials()
        return signature(trials, plan_units("mlp", trials, 64)[0])

    assert sig({}) == sig({"lr_schedule": "constant"})
    assert sig({}) != sig({"lr_schedule": "cosine"})
    assert sig({"lr_schedule": "cosine"}) != sig({"lr_schedule": "plateau"})


# -- as a plain Keras fit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "space",
    [
        {"lr_schedule": "cosine"},
        {"lr_schedule": "cosine", "warmup_epochs": 1, "final_lr_fraction": 0.1},
        {"lr_schedule": "exponential", "decay_rate": 0.6},
        {"lr_schedule": "step", "decay_epochs": 2},
        # ReduceLROnPlateau lowers the rate after the fourth epoch's accuracy ties the third's
        {"lr_schedule": "plateau", "plateau_factor": 0.5, "plateau_patience": 0},
        {"lr_schedule": "cosine", "warmup_epochs": 2, "model": "custom"},  # a branch
        {"lr_schedule": "plateau", "plateau_patience": 0, "model": "custom"},
    ],
    ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items() if k != "lr_schedule") or "plain",
)
def test_each_schedule_trains_as_keras_fit_with_its_schedule(digits, space):
    from nnsweep.training.train import TrainContext

    model = two_layers if space.pop("model", None) else "mlp"
    space = {"epochs": 6, "batch_size": 32, "learning_rate": 0.02, **space}
    if model == "mlp":
        space["hidden_units"] = 32
    sweep = Sweep(name="k", model=model, space=space, seeds=1, objective="val_accuracy")
    ctx = TrainContext(sweep, digits)
    (trial,) = sweep.grid_trials()
    (ours,) = train_packed([trial], ctx).values()
    theirs, rates = keras_reference(trial, ctx, digits)
    if trial.params["lr_schedule"] == "plateau":
        rates = theirs["learning_rate"]  # the callback's own log of the rate it trained with
        assert rates[0] > rates[-1]  # it did lower the rate
    assert [h["learning_rate"] for h in ours.history] == pytest.approx(rates, rel=1e-6)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        mine = [h[key] for h in ours.history]
        np.testing.assert_allclose(mine, theirs[key], rtol=1e-5, err_msg=key)


# -- the results -------------------------------------------------------------------------------


def test_history_records_each_epochs_learning_rate_where_the_sweep_schedules(tmp_path):
    import pandas as pd

    from nnsweep import run_sweep

    base = {"hidden_units": 8, "epochs": 3, "learning_rate": 0.01}
    scheduled = Sweep(name="lr", space={**base, "lr_schedule": ["constant", "step"]}, seeds=1)
    plain = Sweep(name="plain", space=base, seeds=1)
    run_sweep(scheduled, results=tmp_path)
    run_sweep(plain, results=tmp_path)
    history = pd.read_csv(tmp_path / "lr" / "history.csv")
    trials = pd.read_csv(tmp_path / "lr" / "trials.csv").set_index("trial_id")
    history["schedule"] = history["trial_id"].map(trials["lr_schedule"])
    by = history.groupby("schedule")["learning_rate"].apply(list).to_dict()
    assert by["constant"] == pytest.approx([0.01] * 3)
    assert by["step"] == pytest.approx([0.01, 0.005, 0.0025])
    assert "learning_rate" not in pd.read_csv(tmp_path / "plain" / "history.csv").columns


def test_the_keras_fit_path_schedules_alike(digits):
    from nnsweep.training._keras_fit import fit_alone
    from nnsweep.training.train import TrainContext

    space = {"hidden_units": 16, "epochs": 6, "learning_rate": 0.02}
    for schedule in ("cosine", "plateau"):
        extra = {"plateau_patience": 0, "plateau_factor": 0.5} if schedule == "plateau" else {}
        sweep = Sweep(name="k", space={**space, "lr_schedule": schedule, **extra}, seeds=1)
        ctx = TrainContext(sweep, digits)
        (trial,) = sweep.grid_trials()
        seen: list[dict] = []
        outcome = fit_alone(keras, trial, ctx, lambda t, e, logs, seen=seen: seen.append(logs))
        rates = [h["learning_rate"] for h in outcome.history]
        assert [logs["learning_rate"] for logs in seen] == rates
        if schedule == "cosine":
            split = digits.split(sweep.validation_split, sweep.split_seed, sweep.cv, 0)
            n = len(split.fit_idx)
            expected = trial_schedule(trial.params, 0.02, n)
            assert rates == pytest.approx([expected.epoch_rate(e) for e in range(6)])
        else:
            assert rates[0] == pytest.approx(0.02) and all(np.diff(rates) <= 0)
