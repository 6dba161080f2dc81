"""The fused-kernel optimizers compute Keras's own updates."""

from __future__ import annotations

import numpy as np
import pytest

from nnsweep._optimizers import fused

keras = pytest.importorskip("keras")


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.optimizers.RMSprop(0.01),
        lambda: keras.optimizers.RMSprop(0.01, momentum=0.5),
        lambda: keras.optimizers.Adam(0.01),
        lambda: keras.optimizers.Adam(0.01, weight_decay=0.1),
        lambda: keras.optimizers.SGD(0.1, momentum=0.9),
        lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    ],
    ids=["rmsprop", "rmsprop-momentum", "adam", "adam-decay", "momentum", "nesterov"],
)
def test_fused_updates_equal_keras_updates(make):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("fused kernels are TensorFlow's")
    rng = np.random.default_rng(0)
    start = rng.normal(size=(5, 3)).astype("float32")
    grads = [rng.normal(size=(5, 3)).astype("float32") for _ in range(6)]
    plain, twin = make(), fused(keras, make())
    assert type(twin) is not type(plain) and isinstance(twin, type(plain))
    finals = []
    for opt in (plain, twin):
        var = keras.Variable(start)
        for g in grads:
            opt.apply([keras.ops.convert_to_tensor(g)], [var])
        finals.append(keras.ops.convert_to_numpy(var))
    assert not np.allclose(finals[0], start)  # the steps moved the weights
    np.testing.assert_allclose(finals[1], finals[0], rtol=1e-5, atol=1e-6)


def test_optimizers_without_a_fused_kernel_are_left_as_they_are():
    opt = keras.optimizers.Adagrad(0.01)
    assert fused(keras, opt) is opt
    amsgrad = fused(keras, keras.optimizers.Adam(0.01, amsgrad=True))
    var = keras.Variable(np.ones((2,), "float32"))
    amsgrad.apply([keras.ops.ones((2,))], [var])  # falls back to Keras's own update
    assert keras.ops.convert_to_numpy(var)[0] < 1.0
