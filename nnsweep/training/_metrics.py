"""The added metrics' sums inside a pack's traced step: per trial slot, over the batch.

TensorFlow only; the layout and the formulas that turn the sums into metrics are in
``metrics`` (NumPy). Each sum is what Keras's metric object adds to its state for the
same predictions (AUC's buckets as its evenly-spaced-thresholds path computes them).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from nnsweep.definition.metrics import TOP_K
from nnsweep.training.metrics import THRESHOLDS, MetricLayout


def slot_sums(layout: MetricLayout, y: tf.Tensor, pred: tf.Tensor, S: int, B: int) -> tf.Tensor:
    """(S * B, width): the sums over the batch of each block of each seed.

    ``y``: (S, batch, B) labels or targets; ``pred``: (S, batch, B) probabilities of the
    positive class or predicted values, or (S, batch, B, classes) class probabilities."""
    pred = tf.stop_gradient(pred)
    parts = []
    for kind in layout.kinds:
        if kind == "buckets":
            parts.append(_buckets(y, pred, S, B))
        elif kind == "confusion":
            positive = tf.cast(pred > 0.5, tf.float32)
            truth = tf.cast(y, tf.float32)
            counts = [positive * truth, positive * (1 - truth), (1 - positive) * truth]
            parts.append(tf.stack([tf.reduce_sum(c, 1) for c in counts], -1))
        elif kind == "classes":
            top = tf.reduce_max(pred, -1, keepdims=True)
            chosen = tf.cast((pred >= top) & (tf.abs(pred) > 1e-9), tf.float32)
            truth = tf.one_hot(y, layout.classes)
            counts = [chosen * truth, chosen * (1 - truth), (1 - chosen) * truth]
            parts.append(tf.concat([tf.reduce_sum(c, 1) for c in counts], -1))
        elif kind == "top_k":
            classes = tf.shape(pred)[-1]
            hits = keras.ops.in_top_k(tf.reshape(y, [-1]), tf.reshape(pred, (-1, classes)), TOP_K)
            parts.append(
                tf.reduce_sum(tf.reshape(tf.cast(hits, tf.float32), tf.shape(y)), 1)[..., None]
            )
        else:  # squares
            parts.append(tf.reduce_sum(tf.square(pred - y), 1)[..., None])
    out = tf.concat(parts, -1) if len(parts) > 1 else parts[0]
    return tf.reshape(out, (S * B, layout.width))


def _buckets(y: tf.Tensor, pred: tf.Tensor, S: int, B: int) -> tf.Tensor:
    """(S, B, 2 * THRESHOLDS): per block, the positives' then the negatives' count in each
    threshold bucket (Keras's: ceil(p * 199) - 1, the first bucket taking p = 0)."""
    p = tf.clip_by_value(pred, 0.0, 1.0)
    bucket = tf.cast(tf.nn.relu(tf.math.ceil(p * float(THRESHOLDS - 1)) - 1), tf.int32)
    # A diverged trial's NaN would cast to any integer: keep every id in its own block.
    bucket = tf.clip_by_value(bucket, 0, THRESHOLDS - 1)
    base = (np.arange(S)[:, None, None] * B + np.arange(B)[None, None, :]) * THRESHOLDS
    ids = tf.reshape(bucket + tf.constant(base.astype("int32")), [-1])
    truth = tf.cast(y, tf.float32)
    data = tf.reshape(tf.stack([truth, 1 - truth], -1), (-1, 2))
    sums = tf.math.unsorted_segment_sum(data, ids, S * B * THRESHOLDS)
    return tf.reshape(
        tf.transpose(tf.reshape(sums, (S, B, THRESHOLDS, 2)), (0, 1, 3, 2)), (S, B, -1)
    )
