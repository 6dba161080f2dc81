"""Class weights and label smoothing: Keras's numbers, packed exactly and as a Keras fit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import keras_reference, train_packed, two_layers

from nnsweep import Sweep
from nnsweep.data import DataSpec
from nnsweep.training.targets import class_weights, pack_targets, smoothing

keras = pytest.importorskip("keras")

WEIGHTS = [None, "balanced", {0: 3.0, 7: 0.5}]


@pytest.fixture(scope="module")
def digits():
    from nnsweep.data import load_dataset

    return load_dataset("digits")


# -- the tables --------------------------------------------------------------------------------


def test_balanced_weights_are_scikit_learns_rule_on_the_training_split():
    y = np.array([0, 0, 0, 1, 2, 2])
    assert class_weights("balanced", y, 4) == {0: 6 / 9, 1: 2.0, 2: 1.0, 3: 1.0}  # 3: absent
    assert class_weights("0:2.0,3:0.5", y, 4) == {0: 2.0, 1: 1.0, 2: 1.0, 3: 0.5}
    assert class_weights(None, y, 4) is None


def test_smoothing_constants_round_as_keras_does():
    keep, add = smoothing(0.1, "multiclass", 10)
    assert keep == np.float32(0.9) and add == np.float32(0.1) / np.float32(10)
    assert smoothing(0.2, "binary", 2) == (np.float32(0.8), np.float32(0.1))


def test_a_packs_tables_hold_each_trials_weights_and_smoothing():
    spec = DataSpec("d", "multiclass", (4,), 3)
    params = [
        {"class_weight": None, "label_smoothing": 0.0},
        {"class_weight": "0:2.0", "label_smoothing": 0.1},
    ]
    targets = pack_targets(params, np.array([0, 0, 1, 2]), spec)
    assert targets.weights.tolist() == [[1, 1, 1], [2, 1, 1]]
    assert targets.keep.tolist() == [1.0, np.float32(0.9)] and targets.smoothed
    plain = pack_targets(params[:1], np.array([0, 1]), spec)
    assert plain.weights is None and not plain.smoothed


# -- packed as alone ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        ("multiclass", {"class_weight": WEIGHTS, "label_smoothing": [0.0, 0.1]}),
        ("binary", {"class_weight": [None, "balanced", {1: 4.0}], "label_smoothing": [0.0, 0.2]}),
        ("branches", {"class_weight": WEIGHTS[:2], "label_smoothing": [0.0, 0.1]}),
    ],
    ids=lambda c: c[0],
)
def test_class_weights_and_smoothing_pack_exactly(digits, zeros, case):
    from nnsweep.training.train import TrainContext

    kind, swept = case
    space = {"hidden_units": 16, "epochs": 3, "learning_rate": 0.02, "batch_size": 64, **swept}
    space["batch_norm"] = kind == "branches"
    sweep = Sweep(name="t", space=space, seeds=1 if kind == "branches" else 2)
    ctx = TrainContext(sweep, zeros if kind == "binary" else digits)
    trials = sweep.grid_trials()
    packed = train_packed(trials, ctx)
    assert {r.row["pack_size"] for r in packed.values()} == {len(trials)}
    losses = {}
    for t in trials:
        (alone,) = train_packed([t], ctx).values()
        mine = packed[t.trial_id]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss"):
            assert mine.row[key] == pytest.approx(alone.row[key], rel=1e-5, abs=1e-6), key
        losses[t.params["class_weight"], t.params["label_smoothing"], t.seed] = mine.row["loss"]
    assert len(set(losses.values())) == len(trials)  # every setting changed the numbers


@pytest.mark.parametrize(
    "case",
    [
        ("multiclass", {"class_weight": "balanced", "label_smoothing": 0.1}),
        ("multiclass", {"class_weight": {0: 3.0, 7: 0.5}}),
        ("binary", {"class_weight": "balanced", "label_smoothing": 0.2}),
        ("custom", {"class_weight": {1: 2.0}, "label_smoothing": 0.1}),  # a branch
    ],
    ids=lambda c: "-".join([c[0], *map(str, c[1].values())]),
)
def test_each_trains_as_keras_fit_with_class_weight_and_smoothed_loss(digits, zeros, case):
    from nnsweep.training.train import TrainContext

    kind, space = case
    data = zeros if kind == "binary" else digits
    model = two_layers if kind == "custom" else "mlp"
    space = {"epochs": 3, "batch_size": 32, "learning_rate": 0.02, **space}
    if model == "mlp":
        space["hidden_units"] = 32
    sweep = Sweep(name="k", model=model, space=space, seeds=1)
    ctx = TrainContext(sweep, data)
    (trial,) = sweep.grid_trials()
    (ours,) = train_packed([trial], ctx).values()
    theirs, _ = keras_reference(trial, ctx, data)
    # Keras's training loss is the weighted sum over the rows divided by the rows; its
    # accuracy ignores the class weights; validation is unweighted.
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        mine = [h[key] for h in ours.history]
        np.testing.assert_allclose(mine, theirs[key], rtol=1e-5, err_msg=key)


def test_a_weighted_pack_never_reuses_an_unweighted_ones_traces():
    from nnsweep.training._engine import signature
    from nnsweep.training._units import plan_units

    def sig(space):
        trials = Sweep(name="s", space={"hidden_units": [8, 16], **space}).grid_trials()
        return signature(trials, plan_units("mlp", trials, 64)[0])

    assert sig({}) == sig({"class_weight": None, "label_smoothing": 0.0})
    assert sig({}) != sig({"class_weight": "balanced"})
    assert sig({}) != sig({"label_smoothing": 0.1})


def test_the_keras_fit_path_weighs_and_smooths(digits):
    from nnsweep.training._keras_fit import fit_alone
    from nnsweep.training.train import TrainContext

    def loss(**space):
        space = {"hidden_units": 16, "epochs": 2, "learning_rate": 0.02, **space}
        sweep = Sweep(name="k", space=space, seeds=1)
        (trial,) = sweep.grid_trials()
        outcome = fit_alone(keras, trial, TrainContext(sweep, digits), None)
        return [h["loss"] for h in outcome.history], [h["val_loss"] for h in outcome.history]

    plain, weighted, smoothed = loss(), loss(class_weight={0: 50.0}), loss(label_smoothing=0.3)
    assert weighted[0][0] > plain[0][0] * 1.5  # class 0's rows dominate the weighted mean
    assert smoothed[1][-1] > plain[1][-1] + 0.1  # a smoothed target's loss stays higher


def test_weights_survive_compaction_and_a_reused_packs_new_trials(digits):
    from nnsweep.training.train import TrainContext

    # Epochs 1 and 3 in one pack: the 3-epoch trials move into a smaller stack after epoch 1.
    space = {"hidden_units": 16, "learning_rate": 0.02, "batch_size": 64, "epochs": [1, 3]}
    space["class_weight"] = ["balanced", {0: 4.0}]
    space["label_smoothing"] = [0.0, 0.2]
    sweep = Sweep(name="t", space=space, seeds=1)
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    packed = train_packed(trials, ctx)
    # Two packs of one signature: the second reuses the first's traces with new tables
    # (the same trials in the other order: each slot's weights and smoothing change).
    from nnsweep.training._engine import signature
    from nnsweep.training._units import plan_units

    pair, swapped = [trials[1], trials[2]], [trials[2], trials[1]]
    sig = [signature(p, plan_units("mlp", p, 64)[0]) for p in (pair, swapped)]
    assert sig[0] == sig[1]
    first, second = train_packed(pair, ctx), train_packed(swapped, ctx)
    for t in trials:
        (alone,) = train_packed([t], ctx).values()
        for rows in (packed, first, second):
            if t.trial_id in rows:
                mine = rows[t.trial_id]
                for key in ("loss", "val_loss", "test_loss"):
                    assert mine.row[key] == pytest.approx(alone.row[key], rel=1e-5), key
