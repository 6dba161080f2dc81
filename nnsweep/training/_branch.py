"""A branch of a pack: one trial's own Keras model, trained in the pack's step.

TensorFlow only; used by the pack engine for custom models and batch-norm MLPs and CNNs,
which do not stack. The model keeps its own layers, so Keras's dropout and batch
statistics behave as alone; it steps by its own batch size (``packing`` only puts it with
a micro-batch of that size).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from nnsweep.definition import params as _params
from nnsweep.definition.sweep import Trial
from nnsweep.training._losses import row_losses, set_targets
from nnsweep.training._metrics import slot_sums


class BranchUnit:
    """One trial's own Keras model (custom models, batch normalization)."""

    def __init__(self, index: int, trial: Trial, model: Any, spec: Any) -> None:
        p = _params.resolve(trial.params, None)
        self.slots = [index]
        self.task, self.model, self.shape = spec.task, model, tuple(spec.input_shape)
        self.batch_size, self.epochs = p["batch_size"], p["epochs"]
        self.column = 0
        self.trainable = [v.value for v in model.trainable_weights]
        self.weights = self.trainable + [v.value for v in model.non_trainable_weights]
        self.n_params = {index: model.count_params()}
        self.maps = None
        self.class_w: Any = None  # set by the pack (``set_targets``)
        self.metrics: Any = None  # the added metrics' layout, set by the pack
        self.smooth: Any = None

    def losses(self, x: tf.Tensor, y: tf.Tensor, training: bool, epoch=None, pos=None):
        c = self.column if x.shape[0] != 1 else 0
        pred = self.model(tf.reshape(x[c], (-1, *self.shape)), training=training)
        y = y[c] if self.task == "multiclass" else tf.expand_dims(y[c], -1)  # like pred
        loss, hit = row_losses(self.task, y, pred, self.smooth)
        if self.task != "multiclass":
            loss, hit = loss[:, 0], hit[:, 0]
        if training and self.class_w is not None:
            w = tf.gather(self.class_w, tf.reshape(y, (-1,)))
            loss = loss * w  # Keras's accuracy stays unweighted
        penalty = tf.add_n(self.model.losses) if training and self.model.losses else None
        sums = None
        if self.metrics is not None:  # as a stack's: (seeds, batch, blocks[, classes])
            y3, p3 = (y, pred) if self.task == "multiclass" else (y[:, 0], pred[:, 0])
            sums = slot_sums(self.metrics, y3[None, :, None], p3[None, :, None], 1, 1)
        return tf.reduce_sum(loss, keepdims=True), tf.reduce_sum(hit, keepdims=True), penalty, sums

    def set_targets(self, targets: Any) -> None:
        """This trial's class weights and label smoothing (``targets``, by pack slot)."""
        last = (1,) if self.task == "multiclass" else ()
        set_targets(self, targets, np.array(self.slots), last)

    def settings(self, values: np.ndarray, per_block: bool = False) -> list[Any]:
        return [float(values[self.slots[0]])] * len(self.trainable)

    def block_sum(self, i: int, x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(x)
