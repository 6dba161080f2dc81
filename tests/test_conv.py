"""CNN stacks: built-in CNNs packed as stacked tensors train exactly as alone, and as Keras."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nnsweep import Sweep

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("the pack engine is TensorFlow's", allow_module_level=True)

from conftest import keras_reference, train_packed  # noqa: E402

from nnsweep.data import load_dataset  # noqa: E402
from nnsweep.training import _conv, _engine, _pool, pool_paths  # noqa: E402
from nnsweep.training._units import plan_units  # noqa: E402
from nnsweep.training.packing import describe, make_packs  # noqa: E402
from nnsweep.training.train import TrainContext, train_pack  # noqa: E402

METRICS = ("loss", "val_loss", "test_loss", "accuracy", "val_accuracy", "test_accuracy")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def made(monkeypatch):
    """Every conv stack the engine builds, from no kept traces."""
    units: list = []
    original = _conv.ConvStackUnit.__init__

    def recorded(self, *args, **kwargs):
        original(self, *args, **kwargs)
        units.append(self)

    monkeypatch.setattr(_conv.ConvStackUnit, "__init__", recorded)
    monkeypatch.setattr(_engine, "_RECENT", {})
    return units


def _packed_vs_alone(sweep, data, made):
    ctx = TrainContext(sweep, data)
    trials = sweep.grid_trials()
    packed = train_packed(trials, ctx)
    assert {r.row["pack_size"] for r in packed.values()} == {len(trials)}
    stacks = list(made)  # the packed run's: its stacks, then those compaction made
    assert stacks and sum(len(u.slots) for u in stacks) >= len(trials)  # no branches
    assert all(len(u.slots) > 1 for u in stacks[:1])
    for t in trials:
        alone = next(train_pack([t], ctx)).row
        row = packed[t.trial_id].row
        assert row["status"] == alone["status"] == "ok" and row["epochs_run"] == alone["epochs_run"]
        for key in METRICS:
            assert row[key] == pytest.approx(alone[key], rel=1e-5, abs=1e-6), (t.params, key)
    return packed, stacks


def test_oneDNN_is_on_for_these_tests():
    # TensorFlow's default on x86: the stacks' exactness is claimed with its kernels.
    assert os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"


def test_cnns_plan_as_stacks_keyed_by_their_layers_and_batch_norm_stays_a_branch():
    space = {
        "filters": [(8,), (16,)],
        "kernel_size": [3, 5],
        "dropout": [0.0, 0.2],
        "batch_size": [32, 64],
    }
    trials = Sweep(name="c", model="cnn", space=space, seeds=2).grid_trials()
    stacks, branches = plan_units("cnn", trials, 64)
    assert branches == []
    # Kernel size splits stacks (it is the layers'); filters, dropout are blocks.
    assert sorted((s.key.cnn[1], s.key.batch_size, len(s.blocks[0])) for s in stacks) == [
        (3, 32, 4),
        (3, 64, 4),
        (5, 32, 4),
        (5, 64, 4),
    ]
    (pack,) = make_packs(trials, model="cnn")  # batch 64 steps as two micro-batches of 32
    assert pack.micro_batch == 32 and pack.apart == ""
    lines = describe([pack], "cnn")
    assert "cnn 1 conv 3x3 valid pool 2 dense relu adam batch 32 5 epochs: 2 seeds x 4" in lines[2]
    bn = Sweep(name="b", model="cnn", space={"batch_norm": [False, True]}).grid_trials()
    assert [len(part) for part in plan_units("cnn", bn, 64)] == [1, 1]


# Filters padded to multiples of 8 (5 -> 8), two convolutions of 'same' padding, dropout,
# l2, clipnorm, a learning rate per block, batch sizes as micro-batches and early stopping
# (compaction moves the live trials).
PADDED_TWO_CONVS = {
    "filters": [(5, 6), (8, 12)],
    "conv_layers": 2,
    "padding": "same",
    "dense_units": 12,
    "dropout": [0.0, 0.25],
    "l2": 1e-3,
    "clipnorm": 1.0,
    # Adam from 1e-3 up amplifies rounding here (packed and alone differ in the last bits
    # of batched against plain products): a max pool's near-tie of two equal pixels'
    # patches can then flip, at 1e-4 after 3 epochs.
    "learning_rate": [2e-4, 5e-4],
    "batch_size": [32, 64],
    "patience": 0,
    "epochs": 3,
}


@pytest.mark.parametrize("path", ["strided", "maxpool"])  # measured: test_pool_paths
def test_packed_cnns_pooled_first_train_exactly_as_alone_by_either_path(
    digits, made, path, monkeypatch
):
    monkeypatch.setenv(pool_paths.ENV, path)
    monkeypatch.setattr(_engine, "_COMPACT_SAVING", 0.0)  # move trials once any are done
    sweep = Sweep(name="c", model="cnn", space=PADDED_TWO_CONVS, seeds=2)
    packed, stacks = _packed_vs_alone(sweep, digits, made)
    assert stacks[0].pool_first and any(u.dims != u.real for u in stacks)
    # Every stack's first convolution (one input channel) took the forced path, or the
    # one measured here; the later ones (5-12 channels) pool by TensorFlow's max pool.
    assert all(list(u.paths) == [(0, 1, sum(d[1] for d in u.dims))] for u in stacks)
    taken = {p for u in stacks for p in u.paths.values()}
    assert taken == {pool_paths.STRIDED if path == "strided" else pool_paths.MAX_POOL}
    assert any(r.row["epochs_run"] < 3 for r in packed.values())
    # Compaction moved the live trials into smaller stacks (weights, optimizer state and
    # best weights carried over in the unpadded layout and padded again).
    assert any(len(u.slots) < len(stacks[0].slots) for u in stacks[1:])


@pytest.mark.parametrize(
    "space",
    [
        # No dense layer, no pooling, 'valid'; sigmoid keeps its widths; SGD.
        {
            "filters": [(3,), (6,)],
            "dense_units": 0,
            "pool_size": 1,
            "activation": "sigmoid",
            "optimizer": "sgd",
            "learning_rate": 0.1,
            "dropout": [0.0, 0.1],
            "epochs": 3,
        },
        # A non-monotone activation pools after it, the full-size map made.
        {"filters": [(4,), (8,)], "activation": "gelu", "dropout": 0.2, "epochs": 3},
    ],
    ids=["no-dense-sigmoid", "gelu"],
)
def test_packed_cnns_train_exactly_as_alone(digits, made, space):
    sweep = Sweep(name="c", model="cnn", space=space, seeds=2)
    _, stacks = _packed_vs_alone(sweep, digits, made)
    assert not stacks[0].pool_first and not stacks[0].paths


@pytest.mark.parametrize(
    "space",
    [
        {"filters": (6,), "pool_size": 1, "dense_units": 0, "optimizer": "sgd"},
        {"filters": (6,), "kernel_size": 2, "pool_size": 3, "activation": "gelu"},
        # tanh pooled first could route a tie of two saturated values (equal in float32,
        # from different inputs) otherwise than Keras: unpooled, every step is Keras's.
        {
            "filters": (4, 5, 3),
            "conv_layers": 3,
            "padding": "same",
            "activation": "tanh",
            "pool_size": 1,
        },
    ],
    ids=["no-dense", "gelu-pool-3", "three-convs-tanh"],
)
def test_a_stacked_cnn_trains_as_keras_fit_trains_its_own_model(digits, space):
    _as_keras_fit(digits, space)


@pytest.mark.parametrize("path", ["strided", "maxpool"])
def test_a_cnn_pooled_first_trains_as_keras_fit_by_either_path(digits, made, path, monkeypatch):
    monkeypatch.setenv(pool_paths.ENV, path)
    space = {"filters": (5, 7), "conv_layers": 2, "padding": "same", "dense_units": 12}
    _as_keras_fit(digits, space)
    want = pool_paths.STRIDED if path == "strided" else pool_paths.MAX_POOL
    trained = made[0]  # then keras_reference's, for its initial weights only
    assert trained.paths == {(0, 1, trained.dims[0][1]): want}


def _as_keras_fit(digits, space):
    space = {"epochs": 3, "batch_size": 32, "learning_rate": 0.01, **space}
    if space.get("optimizer") == "sgd":
        space["learning_rate"] = 0.05
    sweep = Sweep(name="k", model="cnn", space=space, seeds=1)
    (trial,) = sweep.grid_trials()
    ctx = TrainContext(sweep, digits)
    result = next(train_pack([trial], ctx))
    history, _ = keras_reference(trial, ctx, digits)
    for epoch, mine in enumerate(result.history):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert mine[key] == pytest.approx(history[key][epoch], rel=1e-5, abs=1e-6), key


def test_the_compiled_pool_gives_tensorflows_maximum_and_its_gradient_bit_for_bit():
    # Rounded values make ties common: a tie's gradient must go where tf.maximum sends it.
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for phases in (4, 9):  # pool 2 and pool 3
        zs = [tf.constant(np.round(rng.normal(size=(5, 6, 6, 16)), 1), tf.float32)]
        zs += [tf.constant(np.round(rng.normal(size=(5, 6, 6, 16)), 1), tf.float32)
               for _ in range(phases - 1)]  # fmt: skip
        dy = tf.constant(rng.normal(size=(5, 6, 6, 16)), tf.float32)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(zs)
            chain = zs[0]
            for z in zs[1:]:
                chain = tf.maximum(chain, z)
            pooled = _pool.phase_max(*zs)
            ours, theirs = tf.reduce_sum(pooled * dy), tf.reduce_sum(chain * dy)
        np.testing.assert_array_equal(pooled.numpy(), chain.numpy())
        for mine, reference in zip(tape.gradient(ours, zs), tape.gradient(theirs, zs), strict=True):
            np.testing.assert_array_equal(mine.numpy(), reference.numpy())
        ties = sum(int(tf.reduce_sum(tf.cast(z == chain, tf.int32))) for z in zs)
        assert ties > chain.shape.num_elements()  # some element's maximum is shared


def test_a_diverging_cnn_block_cannot_reach_its_neighbours(digits):
    space = {
        "filters": (4,),
        "activation": "linear",
        "optimizer": "sgd",
        "learning_rate": [0.05, 1e6],
        "epochs": 2,
    }
    sweep = Sweep(name="d", model="cnn", space=space, seeds=2)
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    packed = train_packed(trials, ctx)
    for t in trials:
        row = packed[t.trial_id].row
        if t.params["learning_rate"] == 1e6:
            assert row["status"] == "diverged"
        else:
            alone = next(train_pack([t], ctx)).row
            assert row["status"] == "ok"
            assert row["test_loss"] == pytest.approx(alone["test_loss"], rel=1e-5)


def test_kept_cnn_weights_are_each_trials_own_keras_model(digits):
    from nnsweep.training.models import build_model

    space = {"filters": [(5,), (8,)], "dense_units": 10, "epochs": 1}
    sweep = Sweep(name="w", model="cnn", space=space, seeds=1)
    ctx = TrainContext(sweep, digits, keep_weights=True)
    trials = sweep.grid_trials()
    packed = train_packed(trials, ctx)
    x = digits.x_test[:50]
    for t in trials:
        model = build_model("cnn", t.params, digits.spec)
        model.set_weights(packed[t.trial_id].weights)  # Keras's own layout, unpadded
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        loss, _ = model.evaluate(x, digits.y_test[:50], verbose=0)
        assert np.isfinite(loss)
        full = model.evaluate(digits.x_test, digits.y_test, verbose=0)
        assert full[0] == pytest.approx(packed[t.trial_id].row["test_loss"], rel=1e-5)


def test_named_cnns_and_mlps_of_one_sweep_stack_in_one_pack_exactly_as_alone(digits):
    models = {
        "one-conv": ("cnn", {"filters": (6,), "dense_units": 8, "dropout": 0.1}),
        "two-convs": ("cnn", {"conv_layers": 2, "filters": (4, 8), "padding": "same"}),
        "mlp": ("mlp", {"hidden_units": 16}),
    }
    space = {"optimizer": "adam", "learning_rate": 5e-4, "epochs": 2}
    sweep = Sweep(name="named", model=models, space=space, seeds=2)
    trials = sweep.grid_trials()
    stacks, branches = plan_units(sweep.model, trials, 64)
    assert branches == []  # before named models, a build function made them all branches
    assert sorted(s.key.cnn[0] if s.key.cnn else 0 for s in stacks) == [0, 1, 2]  # 0: MLP
    ctx = TrainContext(sweep, digits)
    packed = train_packed(trials, ctx)
    assert {r.row["pack_size"] for r in packed.values()} == {len(trials)}
    for t in trials:
        alone = next(train_pack([t], ctx)).row
        row = packed[t.trial_id].row
        assert row["status"] == alone["status"] == "ok"
        for key in METRICS:
            assert row[key] == pytest.approx(alone[key], rel=1e-5, abs=1e-6), (t.params, key)
