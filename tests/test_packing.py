from __future__ import annotations

import numpy as np
import pytest

from nnsweep import Sweep
from nnsweep.data import load_dataset
from nnsweep.packing import make_packs, pack_key
from nnsweep.training import TrainContext, train_pack

keras = pytest.importorskip("keras")

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


def _trials(**space):
    return Sweep(name="p", space=space, seeds=2).grid_trials()


def test_seeds_of_a_configuration_always_pack_together():
    trials = _trials(hidden_units=[4, 8, 16], epochs=1)
    packs = make_packs(trials, max_size=4)
    assert [len(p) for p in packs] == [4, 2]
    for pack in packs:
        assert len({pack_key(t) for t in pack}) == 1
    assert make_packs(trials, max_size=1) == [[t] for t in trials]


def test_different_training_settings_never_share_a_pack():
    trials = _trials(hidden_units=8, learning_rate=[0.01, 0.001], batch_size=[32, 64])
    packs = make_packs(trials, max_size=32)
    assert len(packs) == 4 and all(len(p) == 2 for p in packs)
    folds = Sweep(name="f", space={"epochs": 1}, seeds=2, cv=3).grid_trials()
    assert sorted(len(p) for p in make_packs(folds)) == [2, 2, 2]  # a fold is its own data
    alone = _trials(hidden_units=8, patience=2)
    assert make_packs(alone) == [[t] for t in alone]


def test_memory_budget_splits_a_pack():
    trials = _trials(hidden_units=[64, 128], epochs=1)
    assert len(make_packs(trials, input_size=64, memory_budget=10**9)) == 1
    assert [len(p) for p in make_packs(trials, input_size=64, memory_budget=1)] == [1, 1, 1, 1]


def _compare(packed, alone, trials, rel):
    for trial in trials:
        a, b = packed[trial.trial_id].row, alone[trial.trial_id].row
        assert a["n_params"] == b["n_params"]
        for key in METRICS:
            assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-6), (trial.trial_id, key)
        ha = [h["val_loss"] for h in packed[trial.trial_id].history]
        hb = [h["val_loss"] for h in alone[trial.trial_id].history]
        np.testing.assert_allclose(ha, hb, rtol=rel)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_stacked_mlps_train_as_they_would_alone(optimizer):
    data = load_dataset("digits")
    sweep = Sweep(
        name="p",
        space={
            "hidden_units": [8, 32],
            "depth": 2,
            "l2": 1e-3,
            "epochs": 2,
            "batch_size": 64,
            "optimizer": optimizer,
            "learning_rate": 0.05 if optimizer == "sgd" else 0.005,
        },
        seeds=2,
    )
    ctx = TrainContext(sweep, data)
    trials = sweep.grid_trials()
    packed = {r.row["trial_id"]: r for r in train_pack(trials, ctx)}
    alone = {t.trial_id: next(train_pack([t], ctx)) for t in trials}
    assert {r.row["pack_size"] for r in packed.values()} == {4}
    assert {r.row["pack_size"] for r in alone.values()} == {1}
    # Batched products round differently from single ones: equal up to float rounding.
    _compare(packed, alone, trials, rel=1e-4)
    losses = [packed[t.trial_id].row["loss"] for t in trials]
    assert len(set(losses)) == len(losses)  # and the seeds really differ


def test_stacked_and_branch_packs_agree(monkeypatch):
    from nnsweep import _stacked

    data = load_dataset("digits")
    sweep = Sweep(name="p", space={"hidden_units": [8, 16], "epochs": 2, "l1": 1e-4}, seeds=2)
    ctx = TrainContext(sweep, data)
    trials = sweep.grid_trials()
    stacked = {r.row["trial_id"]: r for r in train_pack(trials, ctx)}
    monkeypatch.setattr(_stacked, "group", lambda model, trials: None)
    branches = {r.row["trial_id"]: r for r in train_pack(trials, ctx)}
    _compare(stacked, branches, trials, rel=1e-4)


def test_custom_models_pack_exactly_even_with_dropout():
    data = load_dataset("digits")

    def build(params, spec):
        inputs = keras.Input(spec.input_shape)
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(params["units"], activation="relu")(x)
        x = keras.layers.Dropout(0.3)(x)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    sweep = Sweep(name="c", model=build, space={"units": [8, 16], "epochs": 2}, seeds=2)
    ctx = TrainContext(sweep, data)
    trials = sweep.grid_trials()
    packed = {r.row["trial_id"]: r for r in train_pack(trials, ctx)}
    alone = {t.trial_id: next(train_pack([t], ctx)) for t in trials}
    # Each branch keeps its own layers and dropout seeds: the very same numbers.
    _compare(packed, alone, trials, rel=1e-7)


def test_one_diverging_branch_does_not_spoil_its_pack_mates():
    data = load_dataset("digits")

    def build(params, spec):
        inputs = keras.Input(spec.input_shape)
        x = keras.layers.Flatten()(inputs)
        # "scale" blows the logits up so that one branch's loss overflows
        x = keras.layers.Dense(10, kernel_initializer="ones")(x)
        x = keras.layers.Lambda(lambda t: t * params["scale"])(x)
        return keras.Model(inputs, keras.layers.Softmax()(x))

    sweep = Sweep(
        name="d",
        model=build,
        space={"scale": [1.0, 1e38], "epochs": 2, "optimizer": "sgd", "learning_rate": 0.01},
    )
    ok, bad = list(train_pack(sweep.grid_trials(), TrainContext(sweep, data)))
    assert bad.status == "diverged" and "in epoch 1" in bad.row["error"]
    assert ok.status == "ok" and np.isfinite(ok.row["test_loss"])
    assert ok.row["epochs_run"] == 2 and ok.row["pack_size"] == 2


def test_a_failing_pack_falls_back_to_one_by_one():
    data = load_dataset("digits")

    class FailsInFit(keras.layers.Layer):
        def call(self, x, training=None):
            if training:
                raise RuntimeError("cannot train this branch")
            return x

    def build(params, spec):
        inputs = keras.Input(spec.input_shape)
        x = keras.layers.Flatten()(inputs)
        if params["broken"]:
            x = FailsInFit()(x)  # builds fine; fails only once fit traces it
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    sweep = Sweep(name="f", model=build, space={"broken": [False, True], "epochs": 1})
    good, broken = list(train_pack(sweep.grid_trials(), TrainContext(sweep, data)))
    assert broken.status == "failed"
    assert broken.row["error"] == "RuntimeError: cannot train this branch"
    assert good.status == "ok" and good.row["pack_size"] == 1


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_stacked_single_output_tasks_match_branch_packs(task, monkeypatch):
    from nnsweep import _stacked

    x = np.random.default_rng(0).normal(size=(240, 5)).astype("float32")
    y = (x[:, 0] > 0).astype(int) if task == "binary" else x @ np.arange(1.0, 6.0)
    data = load_dataset(lambda: (x, y))
    sweep = Sweep(name="s", space={"hidden_units": [4, 8], "epochs": 2, "batch_size": 32}, seeds=2)
    ctx = TrainContext(sweep, data)
    trials = sweep.grid_trials()
    stacked = {r.row["trial_id"]: r for r in train_pack(trials, ctx)}
    assert {r.status for r in stacked.values()} == {"ok"}
    monkeypatch.setattr(_stacked, "group", lambda model, trials: None)
    branches = {r.row["trial_id"]: r for r in train_pack(trials, ctx)}
    metric = "accuracy" if task == "binary" else "mae"
    for t in trials:
        a, b = stacked[t.trial_id].row, branches[t.trial_id].row
        for key in ("loss", "val_loss", metric, f"test_{metric}"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (t.trial_id, key)


def test_mlps_of_one_seed_share_a_stack_and_seeds_stack_on_top():
    from nnsweep import _stacked

    trials = _trials(hidden_units=[32, 8, 16], epochs=1)  # seeds 0 and 1
    stacks = _stacked.group("mlp", trials)
    assert len(stacks) == 1
    (stack,) = stacks
    assert stack.seeds == (0, 1) and stack.widths == ((8,), (16,), (32,))
    # Every trial once, blocks ordered by width, each seed's row from its own trials.
    assert sorted(stack.order) == list(range(len(trials)))
    for seed, row in zip(stack.seeds, stack.blocks, strict=True):
        assert [trials[i].params["hidden_units"] for i in row] == [8, 16, 32]
        assert {trials[i].seed for i in row} == {seed}
    # Different depths or dropouts are different layers: separate stacks.
    mixed = _trials(depth=[1, 2], dropout=[0.0, 0.2], epochs=1)
    assert len(_stacked.group("mlp", mixed)) == 4
    # clipnorm clips a whole stacked gradient at once, so such trials keep their branches.
    assert _stacked.group("mlp", _trials(hidden_units=8, clipnorm=1.0)) is None


def test_stacked_kernels_combine_side_by_side_batched_or_block_diagonal():
    from nnsweep._stacked import _combine

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(3, 4))
    mode, k, mask = _combine([[a, b]], first=True)
    assert mode == "dense" and k.shape == (1, 3, 6) and mask is None
    np.testing.assert_array_equal(k[0], np.concatenate([a, b], 1))
    c, d = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    mode, k, mask = _combine([[c, d]], first=False)
    assert mode == "batched" and k.shape == (1, 2, 2, 5)
    e, f = rng.normal(size=(2, 3)), rng.normal(size=(4, 1))
    mode, k, mask = _combine([[e, f]], first=False)
    assert mode == "masked" and k.shape == (1, 6, 4)
    np.testing.assert_allclose(k[0][:2, :3], e)
    np.testing.assert_allclose(k[0][2:, 3:], f)
    assert mask.sum() == e.size + f.size and (k[0] * (1 - mask) == 0).all()


@pytest.mark.parametrize(
    "space",
    [
        # equal widths: the hidden layer is a batched product
        {"hidden_units": 16, "depth": 2, "kernel_initializer": ["glorot_uniform", "he_normal"]},
        # no hidden layer: the output layers side by side
        {"depth": 0, "kernel_initializer": ["glorot_uniform", "he_normal"]},
        # widths by tuple, different depths' blocks masked apart
        {"widths": [(8, 4), (16, 12)], "activation": "tanh"},
    ],
    ids=["batched", "depth0", "masked"],
)
def test_every_stack_layout_trains_as_alone(space):
    data = load_dataset("digits")
    sweep = Sweep(name="p", space={**space, "epochs": 2, "batch_size": 64}, seeds=2)
    ctx = TrainContext(sweep, data)
    trials = sweep.grid_trials()
    packed = {r.row["trial_id"]: r for r in train_pack(trials, ctx)}
    alone = {t.trial_id: next(train_pack([t], ctx)) for t in trials}
    assert {r.row["pack_size"] for r in packed.values()} == {4}
    _compare(packed, alone, trials, rel=1e-4)
