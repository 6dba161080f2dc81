"""Each row's loss and metric inside a pack: Keras's loss functions, label smoothing's
targets and class weights, each trial's own.

TensorFlow only; used by the stacks (``_stack``) and branches (``_branch``). The tables
come from ``targets`` (NumPy), by pack slot.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


def row_losses(
    task: str, y: tf.Tensor, pred: tf.Tensor, smooth: tuple[Any, Any] | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Each row's loss and metric (a hit, or the absolute error): Keras's loss functions,
    which read the logits when ``pred`` comes straight from a softmax or sigmoid.
    ``smooth``: label smoothing's (keep, add), broadcastable to the targets, or None."""
    if task == "multiclass":
        if smooth is None:
            loss = keras.ops.sparse_categorical_crossentropy(y, pred)
        else:
            target = tf.one_hot(y, pred.shape[-1]) * smooth[0] + smooth[1]
            loss = keras.ops.categorical_crossentropy(target, pred)
        hit = tf.cast(tf.equal(tf.argmax(pred, -1, output_type=tf.int32), y), tf.float32)
        return loss, hit
    if task == "binary":
        yf = tf.cast(y, tf.float32)
        target = yf if smooth is None else yf * smooth[0] + smooth[1]
        loss = keras.ops.binary_crossentropy(target, pred)
        return loss, tf.cast(tf.equal(tf.cast(pred > 0.5, tf.float32), yf), tf.float32)
    return tf.square(pred - y), tf.abs(pred - y)


def set_targets(unit: Any, targets: Any, blocks: np.ndarray, last: tuple[int, ...]) -> None:
    """A unit's class-weight table (its blocks' rows of ``targets.weights``, flat) and
    label smoothing's constants (shaped ``blocks.shape + last``), as variables: made the
    first time, assigned when the unit is loaded with new trials."""
    arrays = []
    if targets.weights is not None:
        arrays.append(targets.weights[blocks].reshape(-1))
    if targets.smoothed:
        arrays += [a[blocks].reshape(blocks.shape + last) for a in (targets.keep, targets.add)]
    values: list[tf.Variable] = getattr(unit, "_targets", [])
    if values:
        for var, a in zip(values, arrays, strict=True):
            var.assign(a)
    else:
        values = [tf.Variable(a, trainable=False) for a in arrays]
    unit._targets = values
    unit.class_w = values[0] if targets.weights is not None else None
    unit.smooth = tuple(values[-2:]) if targets.smoothed else None


def weighed(unit: Any, y: tf.Tensor, blocks: tuple[int, int]) -> tf.Tensor:
    """Each row's class weight, shaped like ``y`` (seeds, batch, blocks): gathered from the
    unit's flat table at (seed, block, class)."""
    S, B = blocks
    classes = unit.class_w.shape[0] // (S * B)
    base = (np.arange(S)[:, None, None] * B + np.arange(B)[None, None, :]) * classes
    return tf.gather(unit.class_w, tf.constant(base.astype("int32")) + y)
