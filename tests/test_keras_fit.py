"""The one-trial Keras ``fit`` path that backends other than TensorFlow take."""

from __future__ import annotations

import math

import pytest

from nnsweep import Sweep
from nnsweep.data import load_dataset
from nnsweep.training.train import TrainContext

keras = pytest.importorskip("keras")


def test_one_trial_through_keras_fit_gives_what_the_engine_gives():
    from nnsweep.training._keras_fit import fit_alone

    sweep = Sweep(name="k", space={"hidden_units": 16, "epochs": 3, "patience": 1}, seeds=1)
    ctx = TrainContext(sweep, load_dataset("digits"))
    (trial,) = sweep.grid_trials()
    seen = []
    outcome = fit_alone(keras, trial, ctx, lambda t, e, logs: seen.append((e, sorted(logs))))
    assert outcome.diverged is None and outcome.n_params == 64 * 16 + 16 + 16 * 10 + 10
    assert 1 <= len(outcome.history) <= 3 and [e for e, _ in seen] == [1, 2, 3][: len(seen)]
    assert seen[0][1] == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert set(outcome.test) == {"loss", "accuracy"} and 0 < outcome.test["accuracy"] <= 1
    assert all(math.isfinite(v) for logs in outcome.history for v in logs.values())
