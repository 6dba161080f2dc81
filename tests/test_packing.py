"""Packs: which trials train together, and that each trains exactly as it would alone."""

from __future__ import annotations

import numpy as np
import pytest

from nnsweep import Sweep
from nnsweep.training._units import plan_units
from nnsweep.training.packing import (
    MAX_MICRO_BATCHES,
    describe,
    estimate_bytes,
    input_shape,
    make_packs,
)

keras = pytest.importorskip("keras")

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


def _trials(seeds=2, **space):
    return Sweep(name="p", space=space, seeds=seeds).grid_trials()


# -- planning ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "space",
    [
        {"hidden_units": [8, 16]},
        {"depth": [1, 2]},
        {"dropout": [0.0, 0.3]},
        {"l2": [0.0, 1e-3]},
        {"activation": ["relu", "tanh"]},
        {"learning_rate": [1e-3, 1e-2]},
        {"optimizer": ["adam", "sgd", "rmsprop", "nadam"]},
        {"batch_size": [32, 64, 128]},
        {"epochs": [2, 3]},
        {"patience": [None, 0, 2]},
        {"momentum": [0.0, 0.9], "nesterov": [False, True], "optimizer": "sgd"},
        {"weight_decay": [None, 0.01], "clipnorm": [None, 1.0]},
    ],
    ids=lambda s: "-".join(s),
)
def test_every_hyperparameter_packs(space):
    trials = _trials(**space)
    (pack,) = make_packs(trials)
    assert list(pack) == trials and pack.apart == ""


def test_seeds_of_a_configuration_stay_together_within_the_pack_size():
    trials = _trials(seeds=3, hidden_units=[4, 8, 16])
    packs = make_packs(trials, max_size=4)
    assert [len(p) for p in packs] == [4, 4, 1]
    assert all(p.apart == "--pack-size 4" for p in packs)
    assert make_packs(trials, max_size=1) == [type(packs[0])((t,), 32, "--no-pack") for t in trials]


def test_batch_sizes_pack_when_they_divide_one_another():
    trials = _trials(batch_size=[32, 48, 64, 96, 100])
    packs = make_packs(trials)
    assert [(p.micro_batch, sorted({t.params["batch_size"] for t in p})) for p in packs] == [
        (32, [32, 64, 96]),  # 96 is three micro-batches of 32
        (48, [48]),
        (100, [100]),
    ]
    assert packs[0].apart == "" and packs[1].apart == "batch_size 48 is not a multiple of 32"
    assert packs[2].apart == "batch_size 100 is not a multiple of 32"
    big = 16 * (MAX_MICRO_BATCHES + 1)
    packs = make_packs(_trials(batch_size=[16, big]))
    assert (
        packs[1].apart == f"batch_size {big} is more than {MAX_MICRO_BATCHES} micro-batches of 16"
    )


def test_models_of_their_own_pack_with_equal_batch_sizes_only():
    space = {"batch_size": [32, 64], "batch_norm": True}
    trials = Sweep(name="c", model="cnn", space=space).grid_trials()
    packs = make_packs(trials, model="cnn")
    assert [p.micro_batch for p in packs] == [32, 64]
    assert packs[1].apart == "batch_size 64: batch-norm CNN models pack with equal batch sizes"
    # Named models: a batch-norm one is a branch, the plain one stacks with any batch size.
    models = {"bn": ("mlp", {"batch_norm": True}), "plain": ("mlp", {})}
    sweep = Sweep(name="n", model=models, space={"batch_size": [32, 64]})
    packs = make_packs(sweep.grid_trials(), model=sweep.model)
    assert [(len(p.trials), p.micro_batch) for p in packs] == [(3, 32), (1, 64)]
    assert packs[1].apart == "batch_size 64: batch-norm models pack with equal batch sizes"
    # CNNs without batch statistics stack: 64 steps as two micro-batches of 32.
    plain = Sweep(name="c", model="cnn", space={"batch_size": [32, 64]}).grid_trials()
    assert [p.micro_batch for p in make_packs(plain, model="cnn")] == [32]
    # A batch-norm MLP beside plain ones: the plain 64 joins micro-batch 32, it cannot.
    mixed = _trials(batch_size=[32, 64], batch_norm=[False, True])
    assert sorted(len(p) for p in make_packs(mixed)) == [2, 6]


def test_folds_memory_and_backend_keep_packs_apart():
    folds = Sweep(name="f", space={"epochs": 1}, seeds=2, cv=3).grid_trials()
    packs = make_packs(folds)
    assert [p.apart for p in packs] == ["fold 0", "fold 1", "fold 2"]
    trials = _trials(hidden_units=[64, 128])
    assert len(make_packs(trials, input_size=64, memory_budget=10**9)) == 1
    tight = make_packs(trials, input_size=64, memory_budget=1)
    assert [len(p) for p in tight] == [1, 1, 1, 1] and tight[0].apart == "memory"
    jax = make_packs(trials, backend="jax")
    assert len(jax) == 4 and "jax backend trains trials one by one" in jax[0].apart


def test_a_cnns_memory_counts_its_feature_maps_and_splits_large_packs():
    mnist = (28, 28)
    cnn = {"filters": (64,), "batch_size": 128}
    need = estimate_bytes(cnn, 784, None, "cnn", mnist)
    # At least the convolution's full-size output and its gradient, 4 bytes each.
    assert need >= 2 * 4 * 128 * 26 * 26 * 64
    assert estimate_bytes({**cnn, "filters": (16,)}, 784, None, "cnn", mnist) < need
    assert estimate_bytes({**cnn, "batch_size": 512}, 784, None, "cnn", mnist) > need
    two = {**cnn, "conv_layers": 2, "filters": (64, 64), "padding": "same"}
    assert estimate_bytes(two, 784, None, "cnn", mnist) > need
    # The MLP rule, as it was, sized CNNs by an MLP's weights: 20x too small here.
    assert estimate_bytes(cnn, 784, None) * 10 < need
    # 64 such CNNs are more than the 2 GiB budget: packs split by memory, MLPs do not.
    space = {"filters": [(64,)], "batch_size": 128, "learning_rate": [1e-3, 2e-3, 3e-3, 4e-3]}
    trials = Sweep(name="c", model="cnn", space=space, seeds=16).grid_trials()
    packs = make_packs(trials, model="cnn", input_size=784, input_shape=mnist)
    assert len(packs) > 1 and packs[0].apart == "memory" and sum(map(len, packs)) == 64
    mlp_space = {"hidden_units": 64, "batch_size": 128, "learning_rate": space["learning_rate"]}
    mlps = Sweep(name="m", space=mlp_space, seeds=16).grid_trials()
    assert len(make_packs(mlps, input_size=784, input_shape=mnist)) == 1
    # Named models size each trial by its own family.
    models = {"big": ("cnn", {"filters": (64,)}), "small": ("mlp", {"hidden_units": 8})}
    named = Sweep(name="n", model=models, space={"batch_size": 128}, seeds=32).grid_trials()
    packs = make_packs(named, model=models, input_size=784, input_shape=mnist)
    assert len(packs) > 1 and "memory" in packs[0].apart


def test_the_dry_run_knows_the_built_in_datasets_shapes():
    for data, shape in (("mnist", (28, 28)), ("digits", (8, 8)), ("boston_housing", (13,))):
        assert input_shape(Sweep(name="s", data=data)) == shape


def test_stacks_share_layers_and_optimizer_and_keep_everything_else_per_trial():
    trials = _trials(
        hidden_units=[32, 8],
        depth=[1, 2],
        dropout=[0.0, 0.2],
        learning_rate=[1e-3, 1e-2],
        optimizer=["adam", "sgd"],
    )
    stacks, branches = plan_units("mlp", trials)
    assert branches == []
    # Depth and optimizer split stacks; widths, dropout and learning rates are blocks.
    assert sorted((s.key.depth, s.key.optimizer) for s in stacks) == [
        (1, "adam"),
        (1, "sgd"),
        (2, "adam"),
        (2, "sgd"),
    ]
    for stack in stacks:
        assert stack.seeds == (0, 1) and len(stack.blocks[0]) == 8
        for seed, row in zip(stack.seeds, stack.blocks, strict=True):
            assert {trials[i].seed for i in row} == {seed}
            widths = [trials[i].params["hidden_units"] for i in row]
            assert widths == sorted(widths)  # equal shapes side by side
    assert sorted(i for s in stacks for i in s.order) == list(range(len(trials)))
    bn = plan_units("mlp", _trials(batch_norm=[False, True]))
    assert len(bn[0]) == 1 and len(bn[1]) == 2  # batch statistics: models of their own
    lines = describe(make_packs(trials, max_size=64), "mlp")
    assert lines[0] == "1 pack" and "micro-batch 32" in lines[1]
    assert "depth 2 relu sgd batch 32 5 epochs: 2 seeds x 8 blocks" in lines[2]


# -- training: packed equals alone -----------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    from nnsweep.data import load_dataset

    return load_dataset("digits")


def _train(trials, ctx, fallbacks):
    from nnsweep.training.train import train_pack

    return {r.row["trial_id"]: r for r in train_pack(trials, ctx, on_fallback=fallbacks.append)}


def _packed_and_alone(digits, space, seeds=2, rel=1e-5):
    """Train the sweep as one pack and trial by trial; assert the packed path was taken
    and that every number agrees up to float rounding."""
    from nnsweep.training.train import TrainContext

    sweep = Sweep(name="p", space=space, seeds=seeds)
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    fallbacks: list = []
    packed = _train(trials, ctx, fallbacks)
    alone = {}
    for t in trials:
        alone.update(_train([t], ctx, fallbacks))
    assert fallbacks == []
    assert {r.row["pack_size"] for r in packed.values()} == {len(trials)}
    assert {r.row["pack_size"] for r in alone.values()} == {1}
    for t in trials:
        a, b = packed[t.trial_id].row, alone[t.trial_id].row
        assert a["status"] == b["status"] == "ok", (a["error"], b["error"])
        assert a["n_params"] == b["n_params"] and a["epochs_run"] == b["epochs_run"]
        for key in METRICS:
            assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-6), (t.trial_id, key)
        ha = [h["val_loss"] for h in packed[t.trial_id].history]
        hb = [h["val_loss"] for h in alone[t.trial_id].history]
        np.testing.assert_allclose(ha, hb, rtol=rel)
    by_config: dict[str, set] = {}
    for t in trials:
        by_config.setdefault(t.config_id, set()).add(packed[t.trial_id].row["loss"])
    assert all(len(losses) == seeds for losses in by_config.values())  # seeds really differ
    return packed, trials


LAYOUTS = {
    # one batched product per later layer
    "equal-widths": {
        "hidden_units": 16,
        "depth": 2,
        "kernel_initializer": ["glorot_uniform", "he_normal"],
    },
    # no hidden layer: the output layers side by side
    "depth0": {"depth": 0, "kernel_initializer": ["glorot_uniform", "he_normal"]},
    # different depths: separate stacks in one step
    "depths": {"widths": [(8,), (16, 12), (8, 8, 8)]},
    # later layers in groups of equal blocks
    "widths": {"hidden_units": [8, 16, 32], "depth": 2},
    "dropout": {"dropout": [0.0, 0.2, 0.5], "depth": 2},
    "l2": {"l2": [0.0, 1e-3], "l1": [0.0, 1e-4]},
    "activation": {"activation": ["relu", "tanh", "sigmoid"]},
    "mixed": {
        "widths": [(8,), (16, 8)],
        "dropout": [0.0, 0.2],
        "activation": ["relu", "elu"],
        "l2": [0.0, 1e-3],
    },
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_stack_layout_trains_as_alone_over_three_epochs(digits, name):
    _packed_and_alone(digits, {**LAYOUTS[name], "epochs": 3, "batch_size": 64})


TRAINING = {
    "learning_rate": {"learning_rate": [1e-3, 1e-2]},
    "optimizer": {"optimizer": ["adam", "rmsprop", "sgd", "nesterov", "adagrad"]},
    "momentum": {"optimizer": "sgd", "momentum": [0.5, 0.9], "nesterov": [False, True]},
    "some-momentum": {"optimizer": "rmsprop", "momentum": [0.0, 0.5]},
    "weight_decay-clipnorm": {"weight_decay": [None, 0.05], "clipnorm": [None, 0.5]},
    # 32 and 128: the last batch of 1150 fit rows is partial for both
    "batch_size": {"batch_size": [32, 128], "dropout": [0.0, 0.2]},
    "epochs": {"epochs": [1, 3], "learning_rate": [1e-3, 1e-2]},
    "patience": {"patience": [None, 0, 1], "epochs": 6, "learning_rate": 0.03},
}


@pytest.mark.parametrize("name", list(TRAINING))
def test_every_training_hyperparameter_packs_exactly(digits, name):
    space = {"epochs": 3, "hidden_units": 16, **TRAINING[name]}
    packed, trials = _packed_and_alone(digits, space)
    runs = {t.params.get(name): packed[t.trial_id].row["epochs_run"] for t in trials}
    if name == "patience":
        assert runs[None] == 6 and runs[0] < 6  # the impatient ones stopped early
    if name == "epochs":
        assert runs == {1: 1, 3: 3}


def test_a_trial_that_diverges_leaves_its_pack_mates_as_they_would_be_alone(digits):
    from nnsweep.training.train import TrainContext, train_pack

    sweep = Sweep(
        name="d",
        space={"optimizer": "sgd", "learning_rate": [0.05, 1e6], "depth": 2, "epochs": 3},
        seeds=2,
    )
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    packed = {r.row["trial_id"]: r.row for r in train_pack(trials, ctx)}
    for t in trials:
        alone = next(train_pack([t], ctx)).row
        row = packed[t.trial_id]
        assert row["pack_size"] == 4 and row["status"] == alone["status"]
        if t.params["learning_rate"] == 1e6:
            assert row["status"] == "diverged" and "in epoch" in row["error"]
            assert "test_loss" not in row
        else:
            assert row["test_loss"] == pytest.approx(alone["test_loss"], rel=1e-5)


def test_a_failing_pack_says_so_and_trains_one_by_one(digits, write_sweep):
    from conftest import FAILING_PACK

    from nnsweep.definition.sweep import load_sweep
    from nnsweep.training.train import TrainContext, train_pack

    sweep = load_sweep(write_sweep(FAILING_PACK, "fails.py"))
    trials = sweep.grid_trials()[::2]  # seed 0 of each: working, broken
    heard = []
    good, broken = list(
        train_pack(
            trials,
            TrainContext(sweep, digits),
            on_fallback=lambda p, e: heard.append((len(p), str(e))),
        )
    )
    assert len(heard) == 1 and heard[0][0] == 2 and "cannot train this branch" in heard[0][1]
    assert broken.status == "failed"
    assert broken.row["error"] == "RuntimeError: cannot train this branch"
    assert good.status == "ok" and good.row["pack_size"] == 1


def test_custom_models_pack_with_stacks_and_keep_their_keras_dropout(digits):
    def build(params, spec):
        inputs = keras.Input(spec.input_shape)
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(params["units"], activation="relu")(x)
        x = keras.layers.Dropout(0.3)(x)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    from nnsweep.training.train import TrainContext

    sweep = Sweep(
        name="c",
        model=build,
        space={"units": [8, 16], "epochs": 3, "optimizer": ["adam", "sgd"], "batch_size": 64},
        seeds=2,
    )
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    fallbacks: list = []
    packed = _train(trials, ctx, fallbacks)
    assert fallbacks == [] and {r.row["pack_size"] for r in packed.values()} == {8}
    for t in trials:
        alone = _train([t], ctx, fallbacks)[t.trial_id].row
        for key in METRICS:
            assert packed[t.trial_id].row[key] == pytest.approx(alone[key], rel=1e-5)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_single_output_tasks_pack_exactly(task):
    from nnsweep.data import load_dataset

    x = np.random.default_rng(0).normal(size=(240, 5)).astype("float32")
    y = (x[:, 0] > 0).astype(int) if task == "binary" else x @ np.arange(1.0, 6.0)
    data = load_dataset(lambda: (x, y))
    space = {"hidden_units": [4, 8], "epochs": 3, "batch_size": [16, 32], "dropout": [0, 0.1]}
    from nnsweep.training.train import TrainContext

    sweep = Sweep(name="s", space=space, seeds=2)
    ctx = TrainContext(sweep, data)
    trials = sweep.grid_trials()
    fallbacks: list = []
    packed = _train(trials, ctx, fallbacks)
    metric = "accuracy" if task == "binary" else "mae"
    assert fallbacks == [] and {r.status for r in packed.values()} == {"ok"}
    for t in trials:
        alone = _train([t], ctx, fallbacks)[t.trial_id].row
        for key in ("loss", "val_loss", metric, f"test_{metric}"):
            assert packed[t.trial_id].row[key] == pytest.approx(alone[key], rel=1e-5, abs=1e-6)


def test_early_stopping_follows_keras_rule():
    from nnsweep.training.train import EarlyStop

    sequences = [
        [0.5, 0.6, 0.6, 0.55, 0.7, 0.4, 0.4, 0.4],
        [float("nan"), 0.5, 0.6, 0.2],
        [0.9, 0.8, 0.7, 0.6, 0.5],
    ]
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    for values in sequences:
        for patience in (0, 1, 2):
            for direction in ("max", "min"):
                callback = keras.callbacks.EarlyStopping(
                    monitor="m", mode=direction, patience=patience, restore_best_weights=True
                )
                callback.set_model(model)
                model.stop_training = False
                callback.on_train_begin()
                ours = EarlyStop(patience, direction)
                for epoch, value in enumerate(values):
                    model.set_weights([np.full((1, 1), epoch, "float32"), np.zeros(1, "float32")])
                    callback.on_epoch_end(epoch, {"m": value})
                    keep, stop = ours.update(epoch, value)
                    assert (callback.best_weights[0][0, 0] == epoch) == keep
                    assert stop == model.stop_training, (values, patience, direction, epoch)
                    if stop:
                        break


def test_large_stacks_split_by_optimizer_settings_small_ones_keep_them_per_block():
    trials = _trials(hidden_units=256, learning_rate=[1e-3, 1e-2])
    big, _ = plan_units("mlp", trials, inputs=784)  # 4 x 200k weights: fused updates win
    assert len(big) == 2 and {s.key.settings[0] for s in big} == {1e-3, 1e-2}
    small, _ = plan_units("mlp", _trials(hidden_units=8, learning_rate=[1e-3, 1e-2]), inputs=64)
    assert len(small) == 1 and small[0].key.settings is None
    # one setting for all: nothing to split, whatever the size
    (same,) = plan_units("mlp", _trials(hidden_units=256), inputs=784)[0]
    assert same.key.settings is None


def test_only_activations_that_are_zero_at_zero_pad_their_widths():
    # A padded unit has zero weights: it must output exactly 0, or it would feed the layer
    # above; the list the (Keras-free) planner keeps is checked against Keras here.
    from nnsweep.definition.params import ACTIVATIONS
    from nnsweep.training._units import ZERO_AT_ZERO, padded_width, padded_widths

    zero = {a for a in ACTIVATIONS if float(keras.activations.get(a)(np.zeros(1))[0]) == 0.0}
    assert ZERO_AT_ZERO == zero and "sigmoid" not in zero
    assert padded_widths((5, 100), "relu") == (16, 112)
    assert padded_widths((5, 100), "sigmoid") == (5, 100)
    widths = range(1, 3000)
    assert all(w <= padded_width(w) <= max(w + 15, w * 1.125) for w in widths)
    assert len({padded_width(w) for w in range(129, 1025)}) == 24  # 8 shapes an octave
