"""The pack optimizers compute Keras's own updates, one trial's settings per block."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("the pack engine is TensorFlow's", allow_module_level=True)

import tensorflow as tf  # noqa: E402

from nnsweep.training import _optimizers  # noqa: E402
from nnsweep.training.models import OPTIMIZER_CLASSES  # noqa: E402

# (sweep optimizer name, two trials' settings), each case named by what it tries
CASES = [
    pytest.param("sgd", {"momentum": 0.0}, {"momentum": 0.0}, id="sgd"),
    pytest.param("sgd", {"momentum": 0.9}, {"momentum": 0.5}, id="momentum"),
    pytest.param(
        "sgd",
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.0, "nesterov": True},
        id="nesterov",
    ),
    pytest.param("rmsprop", {"momentum": 0.0}, {"momentum": 0.5}, id="rmsprop"),
    pytest.param("adam", {}, {"weight_decay": 0.1}, id="adam"),
    pytest.param("adamw", {}, {"weight_decay": 0.01}, id="adamw"),
    *(pytest.param(name, {}, {}, id=name) for name in ("adagrad", "adadelta", "adamax", "nadam")),
    *(pytest.param(name, {}, {}, id=name) for name in ("ftrl", "lion")),
]


def _keras_run(cls, settings, start, grads):
    kwargs = {k: v for k, v in settings.items() if k != "optimizer"}
    opt = getattr(keras.optimizers, cls)(**kwargs)
    var = keras.Variable(start)
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(g)], [var])
    return keras.ops.convert_to_numpy(var)


def _params(name, extra, lr, clipnorm):
    return {"optimizer": name, "learning_rate": lr, "clipnorm": clipnorm, **extra}


@pytest.mark.parametrize(("name", "first", "second"), CASES)
def test_each_block_gets_the_update_keras_gives_its_trial(name, first, second):
    cls = OPTIMIZER_CLASSES[name]
    rng = np.random.default_rng(0)
    start = rng.normal(size=(2, 5, 3)).astype("float32")
    grads = [rng.normal(size=(2, 5, 3)).astype("float32") for _ in range(6)]
    trials = [_params(name, first, 0.01, None), _params(name, second, 0.05, 0.5)]
    kind = "sgd-nesterov" if first.get("nesterov") else name
    per_trial = [_optimizers.trial_settings(kind, p) for p in trials]
    settings = {
        k: [np.array([s[k] for s in per_trial], "float32")[:, None, None]]
        for k in ("learning_rate", "momentum", "weight_decay", "clipnorm")
    }
    var = tf.Variable(start)
    updater = _optimizers.Updater(
        kind, [var], settings, lambda i, x: tf.reduce_sum(x, [1, 2], keepdims=True)
    )
    for g in grads:
        updater.apply([tf.constant(g)])
    for block, p in enumerate(trials):
        keras_settings = {k: v for k, v in p.items() if v is not None and k != "optimizer"}
        expected = _keras_run(cls, keras_settings, start[block], [g[block] for g in grads])
        assert not np.allclose(expected, start[block])  # the steps moved the weights
        np.testing.assert_allclose(var.numpy()[block], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "first", "second"), CASES)
def test_one_setting_for_all_blocks_uses_fused_kernels_where_tensorflow_has_them(
    name, first, second
):
    cls = OPTIMIZER_CLASSES[name]
    rng = np.random.default_rng(1)
    start = rng.normal(size=(4, 3)).astype("float32")
    grads = [rng.normal(size=(4, 3)).astype("float32") for _ in range(6)]
    p = _params(name, first, 0.02, None)
    kind = "sgd-nesterov" if first.get("nesterov") else name
    s = _optimizers.trial_settings(kind, p)
    var = tf.Variable(start)
    updater = _optimizers.Updater(
        kind, [var], {k: [v] for k, v in s.items()}, lambda i, x: tf.reduce_sum(x)
    )
    for g in grads:
        updater.apply([tf.constant(g)])
    keras_settings = {k: v for k, v in p.items() if v is not None and k != "optimizer"}
    expected = _keras_run(cls, keras_settings, start, grads)
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_default_settings_are_keras_defaults():
    assert _optimizers.trial_settings("sgd", {"optimizer": "sgd"})["learning_rate"] == 0.01
    assert _optimizers.trial_settings("adam", {"optimizer": "adam"})["learning_rate"] == 0.001
    adamw = _optimizers.trial_settings("adamw", {"optimizer": "adamw"})
    assert adamw["weight_decay"] == keras.optimizers.AdamW().weight_decay
    nesterov = _optimizers.trial_settings("sgd-nesterov", {"optimizer": "nesterov"})
    assert nesterov["momentum"] == 0.9


def test_a_reloaded_updater_starts_over_with_its_new_settings():
    var = tf.Variable(np.ones((3,), "float32"))
    settings = {"learning_rate": [0.1], "momentum": [0.0], "weight_decay": [0.0], "clipnorm": [0.0]}
    updater = _optimizers.Updater("adam", [var], settings, lambda i, x: tf.reduce_sum(x))
    step = tf.function(lambda g: updater.apply([g]))  # traced once, as in a pack
    step(tf.ones(3))
    first_step = 1.0 - var.numpy()
    var.assign(np.ones((3,), "float32"))
    updater.load({**settings, "learning_rate": [0.2]})
    step(tf.ones(3))
    # Adam's first step is the learning rate: the new one, from a fresh state.
    np.testing.assert_allclose(1.0 - var.numpy(), 2 * first_step, rtol=1e-5)
