"""NumPy initial weights follow Keras's definitions, and depend on seed and layer only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnsweep.definition.params import INITIALIZERS
from nnsweep.training import _initializers

SHAPE = (400, 300)


@pytest.mark.parametrize("name", INITIALIZERS)
def test_every_initializer_matches_keras_spread(name):
    keras = pytest.importorskip("keras")
    ours = _initializers.kernel(name, SHAPE, seed=3, layer=0)
    theirs = keras.ops.convert_to_numpy(
        keras.initializers.get({"class_name": name, "config": {"seed": 3}})(SHAPE)
    )
    assert ours.shape == SHAPE and ours.dtype == np.float32
    assert ours.std() == pytest.approx(theirs.std(), rel=0.03)
    assert abs(ours.mean()) < 3 * theirs.std() / math.sqrt(ours.size)
    assert np.abs(ours).max() <= np.abs(theirs).max() * 1.05 or name in ("random_normal",)


def test_limits_and_orthogonality():
    limit = math.sqrt(6.0 / sum(SHAPE))
    glorot = _initializers.kernel("glorot_uniform", SHAPE, 0, 0)
    assert np.abs(glorot).max() <= limit and np.abs(glorot).max() > 0.99 * limit
    he = _initializers.kernel("he_normal", SHAPE, 0, 0)
    assert np.abs(he).max() <= 2 * math.sqrt(2.0 / SHAPE[0]) / 0.87962566103423978 + 1e-6
    q = _initializers.kernel("orthogonal", SHAPE, 0, 0).astype("float64")
    np.testing.assert_allclose(q.T @ q, np.eye(SHAPE[1]), atol=1e-5)


def test_draws_depend_on_seed_and_layer_only():
    a = _initializers.kernel("glorot_uniform", (5, 4), seed=1, layer=0)
    np.testing.assert_array_equal(a, _initializers.kernel("glorot_uniform", (5, 4), 1, 0))
    assert not np.array_equal(a, _initializers.kernel("glorot_uniform", (5, 4), 2, 0))
    assert not np.array_equal(a, _initializers.kernel("glorot_uniform", (5, 4), 1, 1))
