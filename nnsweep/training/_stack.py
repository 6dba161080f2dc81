"""A stack of built-in MLPs as a few wide tensors (see ``_units`` for which trials stack).

TensorFlow only; used by the pack engine. The first layer is one product with every
block's kernel side by side (the blocks of one seed read the same batch); each later layer
is one batched product per run of equal-shaped blocks, so no product mixes two trials'
numbers and a block that diverges cannot spread nan to another. Seeds stack on a leading
axis. Every variable is laid out so that each trial's block can be taken out and put back
(``trial_state``, and ``StackUnit(..., carried=...)``), which lets the engine move the
trials still training into a smaller stack once others are done.

Dropout draws its masks from a counter-based hash of (trial, layer, epoch, row position in
the epoch, unit): the same masks for a trial alone or in any pack, at any micro-batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nnsweep.definition import params as _params
from nnsweep.definition.sweep import Trial
from nnsweep.training import _initializers
from nnsweep.training._losses import row_losses, set_targets, weighed
from nnsweep.training._metrics import slot_sums
from nnsweep.training._units import Stack, padded_widths

OUTPUT_ACTIVATION = {"multiclass": "softmax", "binary": "sigmoid", "regression": "linear"}
# A trial's arrays, layer by layer: (kernel (inputs, units), bias (units,)).
Layers = list[tuple[np.ndarray, np.ndarray]]


# -- dropout masks by position ---------------------------------------------------------------


def _fmix(h: Any) -> Any:
    """MurmurHash3's 32-bit finalizer, for TensorFlow uint32 tensors and NumPy arrays."""
    if isinstance(h, np.ndarray):
        h = h ^ (h >> np.uint32(16))
        h = h * np.uint32(0x85EBCA6B)
        h = h ^ (h >> np.uint32(13))
        h = h * np.uint32(0xC2B2AE35)
        return h ^ (h >> np.uint32(16))
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(16, tf.uint32)))
    h = h * tf.constant(0x85EBCA6B, tf.uint32)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(13, tf.uint32)))
    h = h * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(16, tf.uint32)))


def trial_key(trial: Trial) -> int:
    """A trial's own 32-bit stream key (stable across processes and machines)."""
    return int.from_bytes(hashlib.sha1(trial.trial_id.encode()).digest()[:4], "little")


def _row_hash(epoch: tf.Tensor, layer: int, positions: tf.Tensor) -> tf.Tensor:
    salt = _fmix(tf.cast(epoch, tf.uint32) * tf.constant(0x9E3779B9, tf.uint32) + (layer + 1))
    return _fmix(tf.cast(positions, tf.uint32) * tf.constant(0xC2B2AE3D, tf.uint32) + salt)


@tf.function(jit_compile=True, autograph=False)
def dropout_mask(rows: tf.Tensor, stream: tf.Tensor, threshold: tf.Tensor, scale: tf.Tensor) -> Any:
    """Dropout's multipliers (0 or 1 / (1 - rate)) from the rows' and the elements'
    streams. Compiled: as separate operations the hash passed over every element a dozen
    times (on CNN feature maps 100 ms of a 186 ms step with 96 filters on 128 MNIST
    images; on MLPs a sixth of the step's busy time); fused, XLA passes once. Integer
    operations: the same bits either way."""
    keep = _fmix(tf.bitwise.bitwise_xor(rows, stream)) >= threshold
    return tf.where(keep, scale, tf.zeros_like(scale))


# -- the stack ---------------------------------------------------------------------------------


class StackUnit:
    """Stacked MLPs: (seeds, batch, features) in, (seeds, batch, blocks[, outputs]) out.

    ``carried`` gives some trials' arrays (weights, from ``trial_state``) instead of fresh
    initial weights.
    """

    def __init__(
        self,
        plan: Stack,
        trials: Sequence[Trial],
        spec: Any,
        width: int,
        carried: dict[int, Layers] | None = None,
    ) -> None:
        self._common(plan, spec, width)
        # Each block's layer sizes as laid out: hidden widths padded (``padded_widths``)
        # with units of zero weights that stay zero; ``real`` holds the trials' own.
        self.dims = [[width, *padded_widths(w, plan.key.activation), self.out] for w in plan.widths]
        # Per layer: each block's output columns, and runs of equal blocks (later layers).
        self.columns_of: list[np.ndarray] = []
        self.groups: list[list[tuple[int, int, int, int]]] = []  # (start, n, inputs, units)
        for j in range(self.depth + 1):
            units = [d[j + 1] for d in self.dims]
            self.columns_of.append(np.concatenate([[0], np.cumsum(units)]))
            runs, start = [], 0
            for n, (i, o) in _runs([(d[j], d[j + 1]) for d in self.dims]) if j else []:
                runs.append((start, n, i, o))
                start += n
            self.groups.append(runs)
        self._maps()
        self._start(trials, carried)

    def _start(self, trials: Sequence[Trial], carried: dict[int, Layers] | None) -> None:
        """The variables, made by the first ``load``."""
        self.trainable: list[tf.Variable] = []
        self.dropout: list[tuple[tf.Variable, tf.Variable, tf.Variable] | None] = []
        self._penalties: list[tuple[tf.Variable, Any, tf.Variable]] = []
        self.load(trials, carried)

    def _common(self, plan: Stack, spec: Any, width: int) -> None:
        """What every stack keeps, MLPs' and CNNs' alike (the pack sets the rest)."""
        self.plan, self.task = plan, spec.task
        self.slots = plan.order
        self.batch_size, self.epochs = plan.key.batch_size, plan.key.epochs
        self.S, self.B, self.out = len(plan.seeds), len(plan.blocks[0]), spec.output_units
        self.columns: tuple[int, ...] = ()  # set by the pack: its seeds' row columns
        self.updater: Any = None  # set by the pack: the optimizer of this stack's trials
        self.owned: Any = None  # set by the pack: which of the pack's trials are here
        self.class_w: Any = None  # set by the pack: class weights, label smoothing
        self.metrics: Any = None  # the added metrics' layout, set by the pack
        self.smooth: Any = None
        self.activation = keras.activations.get(plan.key.activation)
        self.out_activation = keras.activations.get(OUTPUT_ACTIVATION[spec.task])
        self.position = {i: (s, b) for s, row in enumerate(plan.blocks) for b, i in enumerate(row)}
        self.width, self.depth = width, plan.key.depth

    def load(self, trials: Sequence[Trial], carried: dict[int, Layers] | None = None) -> None:
        """This stack's trials (same layout): their weights, fresh or ``carried``, and
        dropout streams. Makes the variables the first time, assigns them later."""
        self.params = {i: _params.resolve(trials[i].params, "mlp") for i in self.plan.order}
        self.real = [[self.width, *w, self.out] for w in self.plan.widths]
        self.n_params = {
            i: sum(d[j] * d[j + 1] + d[j + 1] for j in range(len(d) - 1))
            for row in self.plan.blocks
            for i, d in zip(row, self.real, strict=True)
        }
        seed_of = [trials[row[0]].seed for row in self.plan.blocks]

        def fresh(t: int) -> Layers:
            s, b = self.position[t]
            init = self.params[t]["kernel_initializer"]
            dims = self.real[b]
            return [
                (
                    _initializers.kernel(init, (dims[j], dims[j + 1]), seed_of[s], j),
                    np.zeros(dims[j + 1], "float32"),
                )
                for j in range(self.depth + 1)
            ]

        carried = carried or {}
        arrays = self.assemble(lambda t: carried[t] if t in carried else fresh(t))
        _set(self.trainable, arrays)
        self.weights = self.trainable
        _set_optional(self.dropout, self._dropout_arrays(trials))

    # -- layout: each trial's block in each variable --------------------------------------

    def assemble(self, of_trial: Callable[[int], Layers], fill: float = 0.0) -> list[np.ndarray]:
        """Stacked arrays, in variable order, from each trial's layer-by-layer arrays (its
        own sizes: padded here with ``fill``)."""
        blocks = self.plan.blocks
        dims = self.dims
        per = {t: _pad(of_trial(t), dims[self.position[t][1]], fill) for t in self.plan.order}
        out: list[np.ndarray] = []
        for j in range(self.depth + 1):
            if j == 0:
                out.append(
                    np.stack([np.concatenate([per[t][0][0] for t in row], 1) for row in blocks])
                )
            for start, n, _, _ in self.groups[j]:
                k = np.stack(
                    [np.stack([per[t][j][0] for t in row[start : start + n]]) for row in blocks]
                )
                out.append(k if n > 1 else k[:, 0])
            out.append(np.stack([np.concatenate([per[t][j][1] for t in row]) for row in blocks]))
        return out

    def extract(self, arrays: Sequence[np.ndarray], t: int) -> Layers:
        """Trial ``t``'s layer-by-layer arrays out of stacked ones (in variable order)."""
        s, b = self.position[t]
        layers, k = [], 0
        for j in range(self.depth + 1):
            c0, c1 = self.columns_of[j][b], self.columns_of[j][b + 1]
            if j == 0:
                kernel = arrays[k][s][:, c0:c1]
                k += 1
            else:
                for start, n, _, _ in self.groups[j]:
                    if start <= b < start + n:
                        kernel = arrays[k][s, b - start] if n > 1 else arrays[k][s]
                    k += 1
            rows, units = self.real[b][j], self.real[b][j + 1]
            bias = arrays[k][s][c0:c1]
            layers.append((np.array(kernel[:rows, :units]), np.array(bias[:units])))
            k += 1
        return layers

    def carry(self, old: StackUnit, slots: dict[str, list], keep: list | None) -> None:
        """Take this stack's trials' optimizer state and snapshots from ``old`` (its
        ``updater``'s slots and ``keep``, as arrays), where they trained until now."""
        starts = self.updater.starts()
        for name, values in slots.items():
            if name in self.updater.slots:  # an SGD stack left with momentum 0 has none
                arrays = self.assemble(partial(old.extract, values), starts[name])
                for var, array in zip(self.updater.slots[name], arrays, strict=True):
                    var.assign(array)
        self.updater.iterations.assign(old.updater.iterations)
        if hasattr(old.updater, "u_product"):
            self.updater.u_product.assign(old.updater.u_product)
        if keep is not None:
            self.keep = [tf.Variable(a) for a in self.assemble(lambda t: old.extract(keep, t))]

    def _maps(self) -> None:
        """Each variable's trial slots, broadcastable to it, and how to sum per block."""
        slot = np.array(self.plan.blocks)  # (S, B)
        self.maps: list[np.ndarray] = []
        self.reducers: list[tuple[str, np.ndarray]] = []
        for j in range(self.depth + 1):
            units = [d[j + 1] for d in self.dims]
            cols = np.stack([np.repeat(slot[s], units) for s in range(self.S)])  # (S, W)
            segments = np.repeat(np.arange(self.B), units).astype("int32")
            if j == 0:
                self.maps.append(cols[:, None, :])
                self.reducers.append(("kernel", segments))
            for start, n, _, _ in self.groups[j]:
                group = slot[:, start : start + n]
                self.maps.append(group[:, :, None, None] if n > 1 else group[:, :1, None])
                self.reducers.append(("groups", segments))
            self.maps.append(cols)
            self.reducers.append(("bias", segments))

    def _dropout_arrays(self, trials: Sequence[Trial]) -> list[tuple[np.ndarray, ...] | None]:
        """Per hidden layer: each column's stream, keep threshold and scale (or None)."""
        rates = np.array([[self.params[t]["dropout"] for t in row] for row in self.plan.blocks])
        keys = np.array(
            [[trial_key(trials[t]) for t in row] for row in self.plan.blocks], np.uint32
        )
        out: list[tuple[np.ndarray, ...] | None] = []
        for j in range(self.depth):
            if not rates.any():
                out.append(None)
                continue
            units = [d[j + 1] for d in self.dims]
            rate = np.stack([np.repeat(rates[s], units) for s in range(self.S)])[:, None, :]
            unit_index = np.concatenate([np.arange(u) for u in units]).astype(np.uint32)
            col_key = np.stack([np.repeat(keys[s], units) for s in range(self.S)])
            stream = _fmix(col_key + unit_index * np.uint32(0x9E3779B9))[:, None, :]
            threshold = np.minimum(rate * 2.0**32, 2.0**32 - 1).astype(np.uint32)
            out.append((stream, threshold, (1.0 / (1.0 - rate)).astype("float32")))
        return out

    # -- computing ---------------------------------------------------------------------------

    def forward(self, x: tf.Tensor, training: bool, epoch: Any = None, pos: Any = None) -> Any:
        """(seeds or 1, batch, features) -> (seeds, batch, blocks[, outputs])."""
        S, B = self.S, self.B
        h, k = x, 0
        for j in range(self.depth + 1):
            if j == 0:
                h = tf.matmul(h, self.trainable[0])
                k = 1
            else:
                kernels = self.trainable[k : k + len(self.groups[j])]
                h = grouped_matmul(h, self.groups[j], kernels, S)
                k += len(kernels)
            h = h + tf.expand_dims(self.trainable[k], 1)
            k += 1
            if j < self.depth:
                h = self.activation(h)
                drop = self.dropout[j]
                if training and drop is not None:
                    stream, threshold, scale = drop
                    rows = _row_hash(epoch, j, pos)[None, :, None]
                    h = h * dropout_mask(rows, stream, threshold, scale)
        if self.out == 1:
            return self.out_activation(tf.reshape(h, (S, -1, B)))
        # Softmax is the last operation, so that Keras's loss reads its logits.
        return self.out_activation(tf.reshape(h, (S, -1, B, self.out)))

    def losses(self, x: tf.Tensor, y: tf.Tensor, training: bool, epoch=None, pos=None):
        """Per-slot sums over the batch of the loss and the metric, the penalty, and the
        added metrics' sums (``_metrics``; None without them)."""
        if x.shape[0] != 1 and self.columns != tuple(range(x.shape[0])):
            x, y = tf.gather(x, list(self.columns)), tf.gather(y, list(self.columns))
        pred = self.forward(x, training, epoch, pos)
        y = tf.broadcast_to(tf.expand_dims(y, -1), tf.shape(pred)[:3])
        loss, hit = row_losses(self.task, y, pred, self.smooth)
        if training and self.class_w is not None:
            w = weighed(self, y, (self.S, self.B))
            loss = loss * w  # Keras's accuracy stays unweighted
        flat = (self.S * self.B,)
        penalty = self._penalty() if training else None
        sums = None if self.metrics is None else slot_sums(self.metrics, y, pred, self.S, self.B)
        return (
            tf.reshape(tf.reduce_sum(loss, 1), flat),
            tf.reshape(tf.reduce_sum(hit, 1), flat),
            penalty,
            sums,
        )

    def settings(self, values: np.ndarray, per_block: bool = False) -> list[Any]:
        """Per-trial values (indexed by pack slot) as one value per variable: a float
        where the unit's trials agree (unless ``per_block``), else an array that
        broadcasts over the blocks."""
        mine = values[self.slots]
        if not per_block and np.all(mine == mine[0]):
            return [float(mine[0])] * len(self.trainable)
        return [values[m].astype("float32") for m in self.maps]

    def set_targets(self, targets: Any) -> None:
        """This stack's blocks' class weights and label smoothing (``targets``, by slot)."""
        last = (1,) if self.out > 1 else ()  # the smoothed target's class axis
        blocks = np.array(self.plan.blocks)
        set_targets(self, targets, blocks[:, None, :], last)

    def set_penalties(self, l1: np.ndarray, l2: np.ndarray) -> None:
        """Keras's L1L2 kernel regularizer on the hidden layers, each block its own factors
        (per-trial values indexed by pack slot)."""
        hidden = [k for k, (kind, _) in enumerate(self.reducers) if kind != "bias"]
        hidden = [k for k in hidden if self._layer_of(k) < self.depth]
        factors = [
            (k, fn, values[self.maps[k]].astype("float32"))
            for values, fn in ((l1, tf.abs), (l2, tf.square))
            if values[self.slots].any()
            for k in hidden
        ]
        if self._penalties:  # a reload: same layout, new values
            for (_, _, var), (_, _, value) in zip(self._penalties, factors, strict=True):
                var.assign(value)
        else:
            self._penalties = [(self.trainable[k], fn, tf.Variable(v)) for k, fn, v in factors]

    def _layer_of(self, k: int) -> int:
        counts = [(1 if j == 0 else len(self.groups[j])) + 1 for j in range(self.depth + 1)]
        return int(np.searchsorted(np.cumsum(counts), k, side="right"))

    def _penalty(self) -> tf.Tensor | None:
        terms = [tf.reduce_sum(factor * fn(kernel)) for kernel, fn, factor in self._penalties]
        return tf.add_n(terms) if terms else None

    def block_sum(self, i: int, x: tf.Tensor) -> tf.Tensor:
        """``x`` (shaped like trainable ``i``) summed over each trial's block."""
        kind, segments = self.reducers[i]
        if kind == "groups":  # (S, n, i, o) or (S, i, o): one block per (seed, n)
            return tf.reduce_sum(x, [2, 3] if len(x.shape) == 4 else [1, 2], keepdims=True)
        cols = tf.reduce_sum(x, 1) if kind == "kernel" else x  # (S, columns)
        # segment_sum adds no products, so a block of nan or inf cannot spread to others.
        sums = tf.transpose(tf.gather(tf.math.segment_sum(tf.transpose(cols), segments), segments))
        return tf.expand_dims(sums, 1) if kind == "kernel" else sums


def grouped_matmul(h: tf.Tensor, groups: Sequence[tuple], kernels: Sequence[Any], S: int) -> Any:
    """(seeds, batch, blocks' inputs side by side) times each run of equal blocks' kernels
    ((seeds, n, inputs, units), or (seeds, inputs, units) for one block), side by side."""
    sizes = [n * i for _, n, i, _ in groups]
    parts = tf.split(h, sizes, axis=-1) if len(sizes) > 1 else [h]
    ys = []
    for (_, n, i, o), part, kernel in zip(groups, parts, kernels, strict=True):
        if n == 1:
            ys.append(tf.matmul(part, kernel))
        else:
            # Blocks first, so that the product and both its gradients are batched matrix
            # products (an einsum's kernel gradient ran at a seventh of the matmul's speed).
            part = tf.transpose(tf.reshape(part, (S, -1, n, i)), (0, 2, 1, 3))
            y = tf.transpose(tf.matmul(part, kernel), (0, 2, 1, 3))
            ys.append(tf.reshape(y, (S, -1, n * o)))
    return tf.concat(ys, -1) if len(ys) > 1 else ys[0]


def _pad(layers: Layers, dims: list[int], fill: float) -> Layers:
    """A trial's arrays grown to its block's layer sizes. Weights are padded with zeros, so
    the padded units output 0 and their gradients stay 0; an optimizer's slots with their
    start value (FTRL divides by a function of its accumulator)."""
    out = []
    for j, (kernel, bias) in enumerate(layers):
        if kernel.shape == (dims[j], dims[j + 1]):
            out.append((kernel, bias))
            continue
        k = np.full((dims[j], dims[j + 1]), fill, kernel.dtype)
        k[: kernel.shape[0], : kernel.shape[1]] = kernel
        b = np.full(dims[j + 1], fill, bias.dtype)
        b[: bias.shape[0]] = bias
        out.append((k, b))
    return out


def _set(variables: list[tf.Variable], arrays: Sequence[np.ndarray]) -> None:
    """Fill ``variables`` with ``arrays``: made the first time, assigned after."""
    if variables:
        for var, array in zip(variables, arrays, strict=True):
            var.assign(array)
    else:
        variables.extend(tf.Variable(a) for a in arrays)


def _set_optional(slots: list, arrays: Sequence[Sequence[np.ndarray] | None]) -> None:
    """``_set`` for a list of optional groups of variables (same Nones every time)."""
    if not slots:
        slots.extend(None if a is None else tuple(tf.Variable(x) for x in a) for a in arrays)
        return
    for group, values in zip(slots, arrays, strict=True):
        for var, value in zip(group or (), values or (), strict=True):
            var.assign(value)


def _runs(shapes: Sequence[tuple[int, ...]]) -> list[tuple[int, tuple[int, ...]]]:
    """Consecutive equal shapes as (count, shape) runs."""
    out: list[tuple[int, tuple[int, ...]]] = []
    for shape in shapes:
        if out and out[-1][1] == shape:
            out[-1] = (out[-1][0] + 1, shape)
        else:
            out.append((1, shape))
    return out
