"""Initial weights of built-in MLP and CNN layers, drawn in NumPy from a trial's seed.

Keras's own definitions (``keras.initializers``: variance scaling with its fan modes,
truncated normals cut at two standard deviations, orthogonal by QR), without building a
Keras model only to read its weights (about 15 ms a trial). Each layer draws from its own
stream, keyed by the trial's seed and the layer's position, so a trial's weights are the
same alone or packed, and configurations of one seed start from the same stream.
"""

from __future__ import annotations

import math

import numpy as np

# name: (scale, mode, distribution), as keras.initializers defines them
_VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
}
# The standard deviation of a unit normal truncated at two standard deviations.
_TRUNCATED_STD = 0.87962566103423978
_STREAM = 0x5EED  # separates these draws from any other use of a trial's seed


def kernel(name: str, shape: tuple[int, ...], seed: int, layer: int) -> np.ndarray:
    """A Dense kernel of ``shape`` (inputs, units), or a Conv2D one (height, width, inputs,
    filters), for ``layer`` of a trial with ``seed``."""
    rng = np.random.default_rng([seed, layer, _STREAM])
    receptive = math.prod(shape[:-2])  # Keras's fans count every tap of a convolution
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    if name in _VARIANCE_SCALING:
        scale, mode, distribution = _VARIANCE_SCALING[name]
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
        scale /= max(1.0, fan)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            return rng.uniform(-limit, limit, shape).astype("float32")
        return _truncated_normal(rng, shape, math.sqrt(scale) / _TRUNCATED_STD)
    if name == "random_normal":
        return rng.normal(0.0, 0.05, shape).astype("float32")
    if name == "random_uniform":
        return rng.uniform(-0.05, 0.05, shape).astype("float32")
    if name == "truncated_normal":
        return _truncated_normal(rng, shape, 0.05)
    if name == "orthogonal":
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q, r = np.linalg.qr(rng.normal(size=(max(rows, cols), min(rows, cols))))
        q *= np.sign(np.diag(r))
        return (q.T if rows < cols else q).reshape(shape).astype("float32")
    raise ValueError(f"unknown initializer {name!r}")


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    """Normal values, redrawn while more than two standard deviations from zero."""
    out = rng.normal(0.0, std, shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out.astype("float32")
