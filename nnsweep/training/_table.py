"""The rows a pack reads: a dataset as tensors, and each trial's batch order.

TensorFlow only; used by the pack engine. Training and test rows sit in one table, inputs
as codes (bytes for images and multi-hot rows, see ``data``) turned into floats in the
graph, so every split is a gather by row index and the table is built once per sweep.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


def batch_order(seed: int, fold: int, n: int) -> np.ndarray:
    """A trial's own permutation of its fit rows, from its seed and fold alone."""
    return np.random.RandomState((seed * 7919 + fold) % 2**32).permutation(n)


_TABLE: dict[str, Any] = {}


class Table:
    """A dataset's rows as tensors: inputs (codes and their look-up table, or floats) and
    targets, training rows first; built once per dataset and kept for the next pack."""

    def __init__(self, dataset: Any) -> None:
        codes, lut, y = dataset.codes()
        self.table = tf.constant(codes)
        self.lut = self.divisor = None
        if lut is not None:
            # code / d in float32 is one operation, where a look-up is a gather four times
            # slower (2.3 vs 0.5 ms for two MNIST batches of 256); used only where it gives
            # exactly the table's values (it does for x / 255.0, x / 16 and 0/1).
            d = np.float32(round(1.0 / float(lut[1]))) if len(lut) > 1 and lut[1] > 0 else 0
            if d > 0 and np.array_equal(np.arange(len(lut), dtype="float32") / d, lut):
                self.divisor = tf.constant(d)
            else:
                self.lut = tf.constant(lut)
        self.y = tf.constant(y.astype("float32" if dataset.spec.task == "regression" else "int32"))
        self.width = int(np.prod(dataset.spec.input_shape))
        self.n_train, self.n_rows = dataset.n_train, len(codes)

    def inputs(self, rows: tf.Tensor) -> tf.Tensor:
        """Row indices (views, batch) -> inputs (views, batch, features)."""
        x = tf.gather(self.table, rows)
        # Codes become the very floats the dataset defines (x / 255.0 for MNIST).
        if self.divisor is not None:
            x = tf.cast(x, tf.float32) / self.divisor
        elif self.lut is not None:
            x = tf.gather(self.lut, tf.cast(x, tf.int32))
        return tf.reshape(x, (tf.shape(rows)[0], tf.shape(rows)[1], self.width))


def table(dataset: Any) -> Table:
    if _TABLE.get("dataset") is not dataset:
        _TABLE.clear()  # a sweep has one dataset: keep only the latest
        _TABLE.update(dataset=dataset, data=Table(dataset))
    return _TABLE["data"]
