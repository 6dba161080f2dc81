"""Stacked packs: a pack of built-in MLPs as a few wide matrix products.

The MLPs of one seed read the same batch, so their first layers are one product with the
kernels side by side (``inputs x sum of widths``), and each later layer is one product
too: batched when every block has the same shape, block-diagonal (masked) otherwise.
Seeds whose MLPs have the same layout are stacked on a leading axis, so a hidden-units
sweep of 7 widths x 3 seeds trains as one ``(3, 784, 1016)`` product per step instead of
21 small ones. Each block starts from the weights the trial's own model was built with
and learns only from its own loss, so a stack trains each trial as it would be trained
alone (up to float rounding, and dropout masks drawn in another order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsweep import params as _params
from nnsweep.models import mlp_widths
from nnsweep.sweep import Trial

# What the trials of a stack must share besides their data and optimizer (see packing).
_STACK_KEYS = ("activation", "dropout", "l1", "l2")


@dataclass(frozen=True)
class Stack:
    """Trials trained as one set of layers: one row of blocks per seed, same layout."""

    seeds: tuple[int, ...]
    blocks: tuple[tuple[int, ...], ...]  # per seed, indices into the pack's trials
    widths: tuple[tuple[int, ...], ...]  # each block's hidden widths (every seed alike)

    @property
    def order(self) -> list[int]:
        """The pack's trial indices in slice order: seed by seed, block by block."""
        return [i for row in self.blocks for i in row]


def stack_key(model: Any, trial: Trial) -> tuple | None:
    """Trials with equal keys can share a stack; None when the trial cannot be stacked."""
    if model != "mlp":
        return None
    p = _params.resolve(trial.params, "mlp")
    # Batch statistics couple rows; clipnorm clips a whole stacked gradient at once.
    if p["batch_norm"] or p["clipnorm"] is not None:
        return None
    return (len(mlp_widths(p)), *(p[k] for k in _STACK_KEYS))


def group(model: Any, trials: Sequence[Trial]) -> list[Stack] | None:
    """The trials arranged into stacks, or None if any trial cannot stack."""
    keys = [stack_key(model, t) for t in trials]
    if any(k is None for k in keys):
        return None
    widths = [mlp_widths(_params.resolve(t.params, "mlp")) for t in trials]
    rows: dict[tuple, list[int]] = {}
    for i, (trial, key) in enumerate(zip(trials, keys, strict=True)):
        rows.setdefault((key, trial.seed), []).append(i)
    stacks: dict[tuple, list[tuple[int, tuple[int, ...]]]] = {}
    for (key, seed), idx in rows.items():
        idx.sort(key=lambda i: widths[i])  # stable: equal widths keep the pack's order
        layout = (key, tuple(widths[i] for i in idx))
        stacks.setdefault(layout, []).append((seed, tuple(idx)))
    return [
        Stack(tuple(s for s, _ in members), tuple(b for _, b in members), layout[1])
        for layout, members in stacks.items()
    ]


def _combine(kernels: list[list[np.ndarray]], first: bool) -> tuple[str, np.ndarray, Any]:
    """One stacked kernel from each seed's blocks: its mode, the array, and a mask."""
    n = len(kernels[0])
    shapes = {k.shape for k in kernels[0]}
    if first or n == 1:
        # Blocks read the same input: their kernels side by side make one product.
        return "dense", np.stack([np.concatenate(row, axis=1) for row in kernels]), None
    if len(shapes) == 1:
        return "batched", np.stack([np.stack(row) for row in kernels]), None
    rows_in = sum(k.shape[0] for k in kernels[0])
    cols_out = sum(k.shape[1] for k in kernels[0])
    stacked = np.zeros((len(kernels), rows_in, cols_out), dtype="float32")
    mask = np.zeros((rows_in, cols_out), dtype="float32")
    r = c = 0
    for j, k in enumerate(kernels[0]):
        for s, row in enumerate(kernels):
            stacked[s, r : r + k.shape[0], c : c + k.shape[1]] = row[j]
        mask[r : r + k.shape[0], c : c + k.shape[1]] = 1.0
        r, c = r + k.shape[0], c + k.shape[1]
    return "masked", stacked, mask


def make_layers(keras: Any) -> dict[str, Any]:
    """The Keras classes a stacked pack is made of (defined once Keras is imported)."""
    ops = keras.ops

    class StackedDense(keras.layers.Layer):
        """One layer of every block at once: (seeds, batch, sum in) -> (seeds, batch, sum out).

        The output layer (``out_units`` set) returns (seeds, batch, blocks, out_units), so
        that softmax normalizes each block's outputs on their own.
        """

        def __init__(
            self, kernels, biases, activation, *, first, out_units=None, l1=0.0, l2=0.0, **kw
        ):
            super().__init__(**kw)
            self.mode, kernel, self._mask = _combine(kernels, first)
            self._init = (kernel, np.stack([np.concatenate(row) for row in biases]))
            self.blocks = len(kernels[0])
            self.out_units = out_units
            self.activation = keras.activations.get(activation)
            self.penalty = (l1, l2)

        def build(self, input_shape):
            kernel, bias = self._init
            self.kernel = self.add_weight(shape=kernel.shape, initializer="zeros", name="kernel")
            self.bias = self.add_weight(shape=bias.shape, initializer="zeros", name="bias")
            # Each block starts from its own trial's initial weights.
            self.kernel.assign(kernel)
            self.bias.assign(bias)

        def call(self, x):
            kernel = self.kernel
            if self.mode == "masked":
                # Off-block entries never act and never learn: their gradient is masked too.
                kernel = kernel * ops.convert_to_tensor(self._mask)
            if self.mode == "batched":
                seeds, blocks, width_in, width_out = kernel.shape
                x = ops.reshape(x, (seeds, -1, blocks, width_in))
                y = ops.einsum("sbni,snio->sbno", x, kernel)
                y = ops.reshape(y, (seeds, -1, blocks * width_out))
            else:
                y = ops.matmul(x, kernel)
            y = y + ops.expand_dims(self.bias, 1)
            if self.out_units is not None:
                y = ops.reshape(y, (y.shape[0], -1, self.blocks, self.out_units))
            y = self.activation(y)
            l1, l2 = self.penalty
            if l1 or l2:
                # Summed over the blocks: each block's penalty is the one it has alone.
                self.add_loss(l1 * ops.sum(ops.abs(kernel)) + l2 * ops.sum(ops.square(kernel)))
            return y

        def compute_output_shape(self, input_shape):
            seeds, batch = input_shape[:2]
            if self.out_units is not None:
                return (seeds, batch, self.blocks, self.out_units)
            return (seeds, batch, self._init[1].shape[-1])

    class StackRows(keras.layers.Layer):
        """Each seed's batch from the one data table: rows (b, seeds) -> (seeds, b, inputs)."""

        def __init__(self, table, columns, **kw):
            super().__init__(**kw)
            self.table = table
            self.columns = list(columns)
            self.width = int(np.prod(table.shape[1:]))

        def call(self, rows):
            picked = ops.transpose(ops.take(rows, self.columns, axis=1))
            x = ops.take(self.table, picked, axis=0)
            return ops.reshape(x, (len(self.columns), -1, self.width))

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

        def update_state(self, y_true, y_pred, sample_weight=None, losses=None):
            if losses is None:  # a training step passes the losses it computed already
                losses = per_slice_loss(keras, self.task, y_true, y_pred)
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
                v.assign(ops.zeros(v.shape, v.dtype))

    class StackedPack(keras.Model):
        """A pack whose outputs are stacks; slice metrics come from ``StackMetrics``."""

        def __init__(self, *args, stack_metrics=(), **kw):
            super().__init__(*args, **kw)
            self.stack_metrics = list(stack_metrics)

        def compute_metrics(self, x, y, y_pred, sample_weight=None, losses=None):
            for metric in self.stack_metrics:
                given = None if losses is None else losses[metric.name]
                metric.update_state(y[metric.name], y_pred[metric.name], losses=given)
            # One value per step, not two per trial: Keras converts every logged value to a
            # Python float after each step, which cost more than a small pack's arithmetic.
            return {"rows": self.stack_metrics[0].count}

        def _get_metrics_result_or_logs(self, logs):
            # Where Keras reads an epoch's (or an evaluation's) logs: from the metrics.
            return self.get_metrics_result()

    if keras.backend.backend() == "tensorflow":

        def train_step(self, data):
            """Keras's step, with each slice's loss computed once for the gradient and the
            metrics (the total loss is the same: the slices' batch means plus penalties)."""
            import tensorflow as tf

            x, y = data[0], data[1]
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                losses = {
                    m.name: per_slice_loss(keras, m.task, y[m.name], y_pred[m.name])
                    for m in self.stack_metrics
                }
                loss = ops.sum([ops.sum(ops.mean(v, axis=0)) for v in losses.values()])
                if self.losses:
                    loss = loss + ops.sum(self.losses)
            variables = self.trainable_variables
            self.optimizer.apply(tape.gradient(loss, variables), variables)
            tracker = getattr(self, "_loss_tracker", None)  # Keras's "loss" (--verbose shows it)
            if tracker is not None:
                tracker.update_state(loss, sample_weight=ops.shape(x)[0])
            return self.compute_metrics(x, y, y_pred, losses=losses)

        StackedPack.train_step = train_step

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
    stacks: list[Stack],
    column: dict[int, int],
    table: Any,
    spec: Any,
) -> tuple[Any, dict[str, list[str]]]:
    """A stacked pack over ``rows`` input; returns the model and each stack's trial names."""
    kinds = make_layers(keras)
    rows_in = keras.Input(shape=(len(column),), dtype="int32", name="rows")
    outputs, members, metrics = {}, {}, []
    gathered: dict[tuple[int, ...], Any] = {}  # stacks of the same seeds share their batch
    out_activation = {"multiclass": "softmax", "binary": "sigmoid", "regression": "linear"}
    for g, stack in enumerate(stacks):
        p = _params.resolve(branches[stack.order[0]][0].params, "mlp")
        dense = {
            i: [layer for layer in branches[i][1].layers if isinstance(layer, keras.layers.Dense)]
            for i in stack.order
        }
        cols = tuple(column[s] for s in stack.seeds)
        if cols not in gathered:
            gathered[cols] = kinds["StackRows"](table, cols, name=f"rows{len(gathered)}")(rows_in)
        x = gathered[cols]
        n_layers = len(stack.widths[0]) + 1
        for j in range(n_layers):
            last = j == n_layers - 1
            x = kinds["StackedDense"](
                [[dense[i][j].kernel.numpy() for i in row] for row in stack.blocks],
                [[dense[i][j].bias.numpy() for i in row] for row in stack.blocks],
                out_activation[spec.task] if last else p["activation"],
                first=j == 0,
                out_units=spec.output_units if last else None,
                l1=0.0 if last else p["l1"],
                l2=0.0 if last else p["l2"],
                name=f"g{g}_dense{j}",
            )(x)
            if not last and p["dropout"]:
                x = keras.layers.Dropout(p["dropout"], name=f"g{g}_dropout{j}")(x)
        key = f"g{g}"
        # (seeds, batch, blocks, out) -> (batch, slices, out), slices in ``stack.order``.
        x = keras.ops.transpose(x, (1, 0, 2, 3))
        outputs[key] = keras.ops.reshape(x, (-1, len(stack.order), spec.output_units))
        members[key] = [names[branches[i][0].trial_id] for i in stack.order]
        metrics.append(kinds["StackMetrics"](members[key], spec.task, name=key))
    model = kinds["StackedPack"](rows_in, outputs, name="stacked_pack", stack_metrics=metrics)
    return model, members


def loss_fn(keras: Any, task: str) -> Any:
    """A stack's training loss: the sum over slices of each slice's own loss."""

    def stacked_loss(y_true, y_pred):
        return keras.ops.sum(per_slice_loss(keras, task, y_true, y_pred), axis=-1)

    return stacked_loss
