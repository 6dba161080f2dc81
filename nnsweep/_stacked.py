"""Stacked packs: many built-in MLPs as a few batched matrix products.

In a pack of plain MLPs (the ``mlp`` family without batch normalization), trials with the
same layer widths are stacked: each layer holds a ``(k, inputs, units)`` kernel and one
batched product replaces k small ones, with one loss and one metric update per stack
instead of one per trial. Each slice starts from the weights the trial's own model was
built with and learns only from its own loss, so a stack trains each trial as it would be
trained alone (up to float rounding, and dropout masks drawn in another order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnsweep import params as _params
from nnsweep.models import mlp_widths
from nnsweep.sweep import Trial

_STACK_KEYS = ("activation", "dropout", "l1", "l2")


def stack_key(model: Any, trial: Trial) -> tuple | None:
    """Trials with equal keys can share a stack; None when the trial cannot be stacked."""
    if model != "mlp":
        return None
    p = _params.resolve(trial.params, "mlp")
    if p["batch_norm"]:
        return None
    return (mlp_widths(p), *(p[k] for k in _STACK_KEYS))


def group(model: Any, trials: Sequence[Trial]) -> list[list[int]] | None:
    """Indices of ``trials`` grouped into stacks, or None if any trial cannot stack."""
    keys = [stack_key(model, t) for t in trials]
    if any(k is None for k in keys):
        return None
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def make_layers(keras: Any) -> dict[str, Any]:
    """The Keras classes a stacked pack is made of (defined once Keras is imported)."""

    class StackedDense(keras.layers.Layer):
        """k dense layers at once: (k, batch, in) -> (k, batch, units)."""

        def __init__(self, kernels, biases, activation, l1=0.0, l2=0.0, **kw):
            super().__init__(**kw)
            self._init = (np.stack(kernels), np.stack(biases))
            self.activation = keras.activations.get(activation)
            self.penalty = (l1, l2)

        def build(self, input_shape):
            kernel, bias = self._init
            self.kernel = self.add_weight(shape=kernel.shape, initializer="zeros", name="kernel")
            self.bias = self.add_weight(shape=bias.shape, initializer="zeros", name="bias")
            # Each slice starts from its own trial's initial weights.
            self.kernel.assign(kernel)
            self.bias.assign(bias)

        def call(self, x):
            y = keras.ops.einsum("kbi,kio->kbo", x, self.kernel)
            y = self.activation(y + keras.ops.expand_dims(self.bias, 1))
            l1, l2 = self.penalty
            if l1 or l2:
                # Summed over the stack: each slice's penalty is the one it has alone.
                self.add_loss(
                    l1 * keras.ops.sum(keras.ops.abs(self.kernel))
                    + l2 * keras.ops.sum(keras.ops.square(self.kernel))
                )
            return y

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], self._init[0].shape[-1])

    class StackRows(keras.layers.Layer):
        """Gathers each slice's input rows from the one data table: (b, seeds) -> (k, b, in)."""

        def __init__(self, table, columns, **kw):
            super().__init__(**kw)
            self.table = table
            self.columns = list(columns)
            self.width = int(np.prod(table.shape[1:]))

        def call(self, rows):
            picked = keras.ops.take(rows, self.columns, axis=1)
            x = keras.ops.take(self.table, picked, axis=0)
            x = keras.ops.reshape(x, (-1, len(self.columns), self.width))
            return keras.ops.transpose(x, (1, 0, 2))

        def compute_output_shape(self, input_shape):
            return (len(self.columns), input_shape[0], self.width)

    class StackMetrics(keras.metrics.Metric):
        """Each slice's data loss and headline metric, reported under its trial's name."""

        def __init__(self, names, task, **kw):
            super().__init__(**kw)
            self.names, self.task = list(names), task
            k = len(self.names)
            self.loss_sum = self.add_variable(shape=(k,), initializer="zeros", name="loss_sum")
            self.hit_sum = self.add_variable(shape=(k,), initializer="zeros", name="hit_sum")
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            losses = per_slice_loss(keras, self.task, y_true, y_pred)
            ops = keras.ops
            if self.task == "multiclass":
                hits = ops.cast(
                    ops.equal(ops.argmax(y_pred, axis=-1), ops.cast(y_true, "int64")), "float32"
                )
            elif self.task == "binary":
                guess = ops.cast(ops.greater(y_pred[..., 0], 0.5), "float32")  # (b, k, 1) here
                hits = ops.cast(ops.equal(guess, ops.cast(y_true, "float32")), "float32")
            else:
                hits = ops.abs(y_pred[..., 0] - ops.cast(y_true, "float32"))
            self.loss_sum.assign_add(ops.sum(losses, axis=0))
            self.hit_sum.assign_add(ops.sum(hits, axis=0))
            self.count.assign_add(ops.cast(ops.shape(y_true)[0], "float32"))

        def result(self):
            metric = "mae" if self.task == "regression" else "accuracy"
            out = {}
            for i, name in enumerate(self.names):
                out[f"{name}_data_loss"] = self.loss_sum[i] / self.count
                out[f"{name}_{metric}"] = self.hit_sum[i] / self.count
            return out

        def reset_state(self):
            for v in (self.loss_sum, self.hit_sum, self.count):
                v.assign(keras.ops.zeros(v.shape, v.dtype))

    class StackedPack(keras.Model):
        """A pack whose outputs are stacks; slice metrics come from ``StackMetrics``."""

        def __init__(self, *args, stack_metrics=(), **kw):
            super().__init__(*args, **kw)
            self.stack_metrics = list(stack_metrics)

        def compute_metrics(self, x, y, y_pred, sample_weight=None):
            for metric in self.stack_metrics:
                metric.update_state(y[metric.name], y_pred[metric.name])
            return self.get_metrics_result()

    return {
        "StackedDense": StackedDense,
        "StackRows": StackRows,
        "StackMetrics": StackMetrics,
        "StackedPack": StackedPack,
    }


def per_slice_loss(keras: Any, task: str, y_true: Any, y_pred: Any) -> Any:
    """The task's loss for each row and slice: (batch, k)."""
    ops = keras.ops
    if task == "multiclass":
        return ops.sparse_categorical_crossentropy(ops.cast(y_true, "int64"), y_pred)
    if len(y_pred.shape) == len(y_true.shape) + 1:
        y_pred = y_pred[..., 0]  # (batch, k, 1); Keras's loss wrapper may have squeezed it
    if task == "binary":
        return ops.binary_crossentropy(ops.cast(y_true, "float32"), y_pred)
    return ops.square(ops.cast(y_true, "float32") - y_pred)


def build(
    keras: Any,
    branches: Sequence[tuple[Trial, Any]],
    names: dict[str, str],
    stacks: list[list[int]],
    column: dict[int, int],
    table: Any,
    spec: Any,
) -> tuple[Any, dict[str, list[str]]]:
    """A stacked pack over ``rows`` input; returns the model and each stack's trial names."""
    kinds = make_layers(keras)
    rows_in = keras.Input(shape=(len(column),), dtype="int32", name="rows")
    outputs, members, metrics = {}, {}, []
    out_activation = {"multiclass": "softmax", "binary": "sigmoid", "regression": "linear"}
    for g, idx in enumerate(stacks):
        stack = [branches[i] for i in idx]
        trial0 = stack[0][0]
        p = _params.resolve(trial0.params, "mlp")
        dense = [
            [layer for layer in mdl.layers if isinstance(layer, keras.layers.Dense)]
            for _, mdl in stack
        ]
        x = kinds["StackRows"](table, [column[t.seed] for t, _ in stack], name=f"g{g}_rows")(
            rows_in
        )
        for j in range(len(dense[0])):
            last = j == len(dense[0]) - 1
            x = kinds["StackedDense"](
                [d[j].kernel.numpy() for d in dense],
                [d[j].bias.numpy() for d in dense],
                out_activation[spec.task] if last else p["activation"],
                *((0.0, 0.0) if last else (p["l1"], p["l2"])),
                name=f"g{g}_dense{j}",
            )(x)
            if not last and p["dropout"]:
                x = keras.layers.Dropout(p["dropout"], name=f"g{g}_dropout{j}")(x)
        key = f"g{g}"
        outputs[key] = keras.ops.transpose(x, (1, 0, 2))
        members[key] = [names[t.trial_id] for t, _ in stack]
        metrics.append(kinds["StackMetrics"](members[key], spec.task, name=key))
    model = kinds["StackedPack"](rows_in, outputs, name="stacked_pack", stack_metrics=metrics)
    return model, members


def loss_fn(keras: Any, task: str) -> Any:
    """A stack's training loss: the sum over slices of each slice's own loss."""

    def stacked_loss(y_true, y_pred):
        return keras.ops.sum(per_slice_loss(keras, task, y_true, y_pred), axis=-1)

    return stacked_loss
