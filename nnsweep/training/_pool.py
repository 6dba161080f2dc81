"""A convolution max-pooled before its activation, two exact ways, and timing them.

Under a monotone activation the maximum of act(z + b) is act(max z + b), the same float
operations on the same element, so a stack pools the convolution's output before biasing
and activating it: by TensorFlow's max pool of the full convolution, or (``strided``) as
the elementwise maximum of the pool's p x p strided convolutions, so the full-size map is
never made. ``pool_paths`` decides which one a shape takes on this machine, from
``step_ms``.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np
import tensorflow as tf

from nnsweep.training.pool_paths import MAX_POOL, STRIDED, Choice, ConvShape, choose

_ROUNDS = 7  # timed steps of each path, alternating, after two untimed ones


@tf.function(jit_compile=True, autograph=False)
def _max_chain(*zs: tf.Tensor) -> tf.Tensor:
    """The elementwise maximum of ``zs``, taken left to right. Compiled: one pass, not one
    a pair; a maximum is exact, so the same bits either way."""
    pooled = zs[0]
    for z in zs[1:]:
        pooled = tf.maximum(pooled, z)
    return pooled


@tf.function(jit_compile=True, autograph=False)
def _max_routes(dy: tf.Tensor, *zs: tf.Tensor) -> list[tf.Tensor]:
    """The gradient of ``_max_chain`` as TensorFlow's gradient of each ``tf.maximum``
    gives it (to the left where left >= right, else to the right), in one compiled pass:
    as separate operations the selects, comparisons and zeros it takes passed over the
    pooled maps 12 times and were a fifth of a CNN step. Selects only: the same bits."""
    lefts, pooled = [], zs[0]
    for z in zs[1:]:
        left = pooled >= z
        lefts.append(left)
        pooled = tf.where(left, pooled, z)
    grads, g, zero = [], dy, tf.zeros_like(dy)
    for left in reversed(lefts):
        grads.append(tf.where(left, zero, g))
        g = tf.where(left, g, zero)
    return [g, *reversed(grads)]


@tf.custom_gradient
def phase_max(*zs: tf.Tensor) -> Any:
    """The pooled map from the pool's strided convolutions (see ``strided``)."""
    return _max_chain(*zs), lambda dy: _max_routes(dy, *zs)


def strided(x: tf.Tensor, kernel: tf.Tensor, pool: int, padding: str) -> tf.Tensor:
    """The max-pooled convolution as the maximum of its pool's strided convolutions, one
    per offset in the window, taken in the window's row-major order so that a tie's
    gradient goes to its first element, as max pooling's does."""
    p, k = pool, int(kernel.shape[0])
    if padding == "SAME":  # TensorFlow's: the odd one at the bottom and right
        x = tf.pad(x, [[0, 0], [(k - 1) // 2, k // 2], [(k - 1) // 2, k // 2], [0, 0]])
    rows, cols = (x.shape[1] - k + 1) // p, (x.shape[2] - k + 1) // p
    span = ((rows - 1) * p + k, (cols - 1) * p + k)
    phases = [
        tf.nn.conv2d(x[:, a : a + span[0], b : b + span[1]], kernel, p, "VALID")
        for a in range(p)
        for b in range(p)
    ]
    return phase_max(*phases)


def max_pooled(x: tf.Tensor, kernel: tf.Tensor, pool: int, padding: str) -> tf.Tensor:
    """The max-pooled convolution by TensorFlow's own two operations."""
    return tf.nn.max_pool2d(tf.nn.conv2d(x, kernel, 1, padding), pool, pool, "VALID")


def pooled(x: tf.Tensor, kernel: tf.Tensor, pool: int, padding: str, path: str) -> tf.Tensor:
    """The max-pooled convolution by ``path`` (``pool_paths.STRIDED`` or ``MAX_POOL``)."""
    if path == STRIDED:
        return strided(x, kernel, pool, padding)
    return max_pooled(x, kernel, pool, padding)


def machine() -> str:
    """What a measured path depends on: the processor and oneDNN, TensorFlow's version,
    its threads, and the accelerators it sees."""
    from nnsweep.store.provenance import processor

    cpu = processor()
    # Set by --threads, or for a Ray task by its environment, else every core it may use.
    threads = (
        tf.config.threading.get_intra_op_parallelism_threads()
        or os.environ.get("TF_NUM_INTRAOP_THREADS", "").strip()
        or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    )
    devices = ",".join(d.name for d in tf.config.list_logical_devices() if d.device_type != "CPU")
    return (
        f"{cpu['cpu']} | {cpu['cpu_isa']} | onednn {cpu['onednn']} | tensorflow "
        f"{tf.__version__} | {threads} threads | {devices or 'cpu only'}"
    )


def path_for(shape: ConvShape) -> Choice:
    """The path ``shape`` takes here (see ``pool_paths.choose``)."""
    return choose(shape, machine(), step_ms)


def step_ms(shape: ConvShape) -> dict[str, float]:
    """Milliseconds of one training step's part that differs between the paths: the pooled
    convolution, its filters' gradient (and its input's, for a later layer), the median of
    ``_ROUNDS`` alternating runs of each after two untimed ones (the traces)."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((shape.batch, shape.rows, shape.cols, shape.channels)), tf.float32)
    scale = 1.0 / np.sqrt(shape.size * shape.size * shape.channels)
    size = (shape.size, shape.size, shape.channels, shape.filters)
    kernel = tf.Variable((rng.normal(size=size) * scale).astype("float32"))

    def step_of(path: str) -> Any:
        @tf.function(autograph=False)
        def step() -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.relu(pooled(x, kernel, shape.pool, shape.padding, path))
                loss = tf.reduce_sum(y * y)
            return tape.gradient(loss, [kernel, x] if shape.input_grad else [kernel])

        return step

    steps = {p: step_of(p) for p in (STRIDED, MAX_POOL)}
    for step in steps.values():
        for _ in range(2):
            step()[0].numpy()
    times: dict[str, list[float]] = {p: [] for p in steps}
    for _ in range(_ROUNDS):
        for p, step in steps.items():
            t0 = time.perf_counter()
            step()[0].numpy()
            times[p].append(time.perf_counter() - t0)
    return {p: round(1e3 * statistics.median(ts), 3) for p, ts in times.items()}
