"""A stack of built-in CNNs as a few wide tensors (see ``_units`` for which trials stack).

TensorFlow only; used by the pack engine. The blocks of one seed read the same images, so
their first convolution is one convolution with every block's filters side by side; each
later convolution is one per block (TensorFlow's grouped convolution has no CPU gradient
without XLA), pooling acts on each channel and so on each block, and dropout masks each
block by its own stream. Each block's channels are flattened in its own order (cells, then
its channels), so that its dense layers are batched products per run of equal-shaped
blocks, as in an MLP stack. Filter counts are padded (``_units.padded_widths``) with filters of
zero weights that stay zero, and every variable is laid out so that each trial's block can
be taken out and put back (``extract``, ``assemble``): what the engine's snapshots,
compaction and kept models need, as for MLP stacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from nnsweep.definition import params as _params
from nnsweep.definition.sweep import Trial
from nnsweep.training import _initializers, _pool
from nnsweep.training._stack import (
    Layers,
    StackUnit,
    _fmix,
    _row_hash,
    _runs,
    _set,
    _set_optional,
    dropout_mask,
    grouped_matmul,
    trial_key,
)
from nnsweep.training._units import Stack, padded_widths
from nnsweep.training.pool_paths import Choice, ConvShape

# Activations that never decrease (gelu, silu, swish and mish dip below 0 before rising).
MONOTONE = frozenset("relu tanh sigmoid elu selu leaky_relu relu6 softplus softsign linear".split())


# Inputs of at most this many channels (images) pool as measured (``pool_paths``).
_PHASED_CHANNELS = 4


def make_stack(
    plan: Stack, trials: Sequence[Trial], spec: Any, width: int, carried: dict | None = None
) -> StackUnit:
    """The stack unit for ``plan``: CNNs' or MLPs'."""
    cls = ConvStackUnit if plan.key.cnn is not None else StackUnit
    return cls(plan, trials, spec, width, carried)


class ConvStackUnit(StackUnit):
    """Stacked CNNs: (seeds or 1, batch, pixels) in, (seeds, batch, blocks[, outputs]) out.

    Layers are numbered as the trial's Keras model has them: its convolutions, then its
    dense layers (the first reads the flattened channels), the output layer last.
    """

    def __init__(
        self,
        plan: Stack,
        trials: Sequence[Trial],
        spec: Any,
        width: int,
        carried: dict[int, Layers] | None = None,
    ) -> None:
        # The MLP stack's __init__ lays out dense layers only: this one sets its own.
        self._common(plan, spec, width)
        assert plan.key.cnn is not None  # make_stack sends CNN plans only
        self.convs, self.size, padding, self.pool, _ = plan.key.cnn
        self.pool_first = plan.key.activation in MONOTONE and self.pool > 1
        self.padding = padding.upper()
        shape = tuple(spec.input_shape)
        self.image = shape if len(shape) == 3 else (*shape, 1)
        rows, cols = self.image[:2]
        self.map_sizes: list[tuple[int, int]] = []  # each convolution's input rows, columns
        for _ in range(self.convs):
            self.map_sizes.append((rows, cols))
            if padding == "valid":
                rows, cols = rows - self.size + 1, cols - self.size + 1
            if self.pool > 1:
                rows, cols = rows // self.pool, cols // self.pool
        self.cells = rows * cols  # positions of the last pooled feature map
        channels = self.image[2]
        self.dims = [
            [channels, *padded_widths(w, plan.key.activation), self.out] for w in plan.widths
        ]
        self.columns_of: list[np.ndarray] = []
        self.layer_runs: list[list[tuple[int, int, tuple[int, ...]]]] = []  # (start, n, shape)
        for j in range(self.depth + 1):
            self.columns_of.append(np.concatenate([[0], np.cumsum([d[j + 1] for d in self.dims])]))
            runs, start = [], 0
            for n, shape in _runs([self._shape(d, j) for d in self.dims]) if j else []:
                runs.append((start, n, shape))
                start += n
            self.layer_runs.append(runs)
        self._maps()
        self._start(trials, carried)
        self.paths: dict[tuple[int, int, int], str] = {}  # set by ``choose_paths``
        self.choices: list[Choice] = []

    def choose_paths(self, micro: int) -> None:
        """How each few-channel convolution pools, on this machine, at the pack's
        micro-batch (``pool_paths``): by (layer, input channels, filters)."""
        self.paths, self.choices = {}, []
        if not self.pool_first:
            return
        total = sum(d[1] for d in self.dims)  # the first: every block's filters at once
        wanted = {(0, self.image[2], total)}
        wanted |= {(j, d[j], d[j + 1]) for j in range(1, self.convs) for d in self.dims}
        for j, channels, filters in sorted(wanted):
            if channels > _PHASED_CHANNELS:
                continue  # many channels: TensorFlow's max pool (see ``_convolve``)
            rows, cols = self.map_sizes[j]
            shape = ConvShape(
                micro, rows, cols, channels, filters, self.size, self.padding, self.pool, j > 0
            )
            choice = _pool.path_for(shape)
            self.paths[j, channels, filters] = choice.path
            self.choices.append(choice)

    def _shape(self, dims: list[int], j: int) -> tuple[int, ...]:
        """Layer ``j``'s kernel shape for a block of layer sizes ``dims``."""
        if j < self.convs:
            return (self.size, self.size, dims[j], dims[j + 1])
        if j == self.convs:
            return (self.cells * dims[j], dims[j + 1])
        return (dims[j], dims[j + 1])

    def load(self, trials: Sequence[Trial], carried: dict[int, Layers] | None = None) -> None:
        """This stack's trials: their weights, fresh or ``carried``, and dropout streams
        (a reused stack's new trials share its layout, not their own sizes)."""
        self.params = {i: _params.resolve(trials[i].params, "cnn") for i in self.plan.order}
        self.real = [[self.image[2], *w, self.out] for w in self.plan.widths]
        self.n_params = {
            i: sum(int(np.prod(self._shape(d, j))) + d[j + 1] for j in range(self.depth + 1))
            for row in self.plan.blocks
            for i, d in zip(row, self.real, strict=True)
        }
        seed_of = [trials[row[0]].seed for row in self.plan.blocks]

        def fresh(t: int) -> Layers:
            s, b = self.position[t]
            init, dims = self.params[t]["kernel_initializer"], self.real[b]
            return [
                (
                    _initializers.kernel(init, self._shape(dims, j), seed_of[s], j),
                    np.zeros(dims[j + 1], "float32"),
                )
                for j in range(self.depth + 1)
            ]

        carried = carried or {}
        _set(self.trainable, self.assemble(lambda t: carried[t] if t in carried else fresh(t)))
        self.weights = self.trainable
        _set_optional(self.dropout, [self._dropout_streams(trials)])

    # -- layout ----------------------------------------------------------------------------

    def _padded(self, kernel: np.ndarray, j: int, b: int, fill: float) -> np.ndarray:
        """A trial's layer-``j`` kernel grown to its block's laid-out shape (the flattened
        layer's rows by cell and channel, so each cell's channels are padded)."""
        dims, real = self.dims[b], self.real[b]
        if j == self.convs:
            kernel = kernel.reshape(self.cells, real[j], real[j + 1])
            want: tuple[int, ...] = (self.cells, dims[j], dims[j + 1])
        else:
            want = self._shape(dims, j)
        if kernel.shape != want:
            grown = np.full(want, fill, kernel.dtype)
            grown[tuple(slice(0, n) for n in kernel.shape)] = kernel
            kernel = grown
        return kernel.reshape(self._shape(dims, j))

    def assemble(self, of_trial: Callable[[int], Layers], fill: float = 0.0) -> list[np.ndarray]:
        """Stacked arrays, in variable order, from each trial's layer-by-layer arrays."""
        blocks = self.plan.blocks
        per = {t: of_trial(t) for t in self.plan.order}
        out: list[np.ndarray] = []
        for j in range(self.depth + 1):
            kernels = {t: self._padded(per[t][j][0], j, self.position[t][1], fill) for t in per}
            if j == 0:
                out.append(
                    np.stack([np.concatenate([kernels[t] for t in row], -1) for row in blocks])
                )
            for start, n, _ in self.layer_runs[j]:
                k = np.stack(
                    [np.stack([kernels[t] for t in row[start : start + n]]) for row in blocks]
                )
                out.append(k if n > 1 or j < self.convs else k[:, 0])
            biases = []
            for row in blocks:
                parts = []
                for t in row:
                    b = per[t][j][1]
                    grown = np.full(self.dims[self.position[t][1]][j + 1], fill, b.dtype)
                    grown[: len(b)] = b
                    parts.append(grown)
                biases.append(np.concatenate(parts))
            out.append(np.stack(biases))
        return out

    def extract(self, arrays: Sequence[np.ndarray], t: int) -> Layers:
        """Trial ``t``'s layer-by-layer arrays, as its own Keras model has them."""
        s, b = self.position[t]
        real, layers, k = self.real[b], [], 0
        for j in range(self.depth + 1):
            c0, c1 = self.columns_of[j][b], self.columns_of[j][b + 1]
            if j == 0:
                kernel = arrays[k][s][..., c0:c1]
                k += 1
            for start, n, _ in self.layer_runs[j]:
                if start <= b < start + n:
                    kernel = arrays[k][s, b - start] if n > 1 or j < self.convs else arrays[k][s]
                k += 1
            if j == self.convs:
                cut = kernel.reshape(self.cells, self.dims[b][j], -1)[:, : real[j], : real[j + 1]]
                kernel = cut.reshape(-1, real[j + 1])
            elif j < self.convs:
                kernel = kernel[:, :, : real[j], : real[j + 1]]
            else:
                kernel = kernel[: real[j], : real[j + 1]]
            layers.append((np.array(kernel), np.array(arrays[k][s][c0:c1][: real[j + 1]])))
            k += 1
        return layers

    def _maps(self) -> None:
        """Each variable's trial slots, broadcastable to it; how to sum it per block; and
        the layer of each kernel (None for biases)."""
        slot = np.array(self.plan.blocks)  # (S, B)
        self.maps: list[np.ndarray] = []
        self.reducers: list[tuple[str, Any]] = []
        self.layer_of: list[int | None] = []
        for j in range(self.depth + 1):
            units = [d[j + 1] for d in self.dims]
            cols = np.stack([np.repeat(slot[s], units) for s in range(self.S)])  # (S, W)
            segments = np.repeat(np.arange(self.B), units).astype("int32")
            if j == 0:
                self.maps.append(cols[:, None, None, None, :])
                self.reducers.append(("conv", segments))
                self.layer_of.append(j)
            for start, n, shape in self.layer_runs[j]:
                lead = 2 if n > 1 or j < self.convs else 1  # a run axis, or one block
                group = slot[:, start : start + n] if lead == 2 else slot[:, start]
                self.maps.append(group.reshape(group.shape + (1,) * len(shape)))
                self.reducers.append(("groups", lead))
                self.layer_of.append(j)
            self.maps.append(cols)
            self.reducers.append(("bias", segments))
            self.layer_of.append(None)

    def _dropout_streams(self, trials: Sequence[Trial]) -> tuple[np.ndarray, ...] | None:
        """The dropout after the last convolution: each (cell, column)'s stream, and each
        column's keep threshold and scale (None without dropout). A block's element index
        is its own model's flattened one (cell by cell, its own channels)."""
        rates = np.array([[self.params[t]["dropout"] for t in row] for row in self.plan.blocks])
        if not rates.any():
            return None
        keys = np.array(
            [[trial_key(trials[t]) for t in row] for row in self.plan.blocks], np.uint32
        )
        j = self.convs
        units = [d[j] for d in self.dims]
        cells = np.arange(self.cells, dtype=np.uint32)[:, None]
        index = np.concatenate(
            [
                cells * np.uint32(real[j]) + np.arange(u, dtype=np.uint32)
                for u, real in zip(units, self.real, strict=True)
            ],
            1,
        )  # (cells, W): each block's own flat index
        col_key = np.stack([np.repeat(keys[s], units) for s in range(self.S)])[:, None, :]
        stream = _fmix(col_key + index[None] * np.uint32(0x9E3779B9))[:, None]  # (S,1,cells,W)
        rate = np.stack([np.repeat(rates[s], units) for s in range(self.S)])[:, None, None, :]
        threshold = np.minimum(rate * 2.0**32, 2.0**32 - 1).astype(np.uint32)
        return stream, threshold, (1.0 / (1.0 - rate)).astype("float32")

    # -- computing ---------------------------------------------------------------------------

    def _convolve(self, x: tf.Tensor, kernel: tf.Tensor, j: int) -> tf.Tensor:
        """Convolution ``j``, max-pooled here where the activation is monotone (``_pool``:
        the full-size map need not be made, and the bias and activation act on the pooled
        map; where a saturated tanh or sigmoid rounds two inputs to one value, Keras's
        gradient goes to the window's first of them and this one to the larger input:
        either way a gradient of about 0). A few-channel input pools as ``pool_paths``
        measured on this machine; on feature maps of 16 or 32 channels the strided
        convolutions and their p x p input gradients took twice the time of one
        convolution and TensorFlow's max pool, which pool there."""
        if not self.pool_first:
            return tf.nn.conv2d(x, kernel, 1, self.padding)
        if x.shape[-1] > _PHASED_CHANNELS:
            return _pool.max_pooled(x, kernel, self.pool, self.padding)
        path = self.paths[j, int(kernel.shape[2]), int(kernel.shape[3])]  # choose_paths's
        return _pool.pooled(x, kernel, self.pool, self.padding, path)

    def _feature_maps(self, z: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
        """A convolution's output (``_convolve``) biased, activated and pooled."""
        h = self.activation(tf.nn.bias_add(z, bias))
        if self.pool > 1 and not self.pool_first:
            h = tf.nn.max_pool2d(h, self.pool, self.pool, "VALID")
        return h

    def forward(self, x: tf.Tensor, training: bool, epoch: Any = None, pos: Any = None) -> Any:
        """(seeds or 1, batch, pixels) -> (seeds, batch, blocks[, outputs])."""
        S, views = self.S, x.shape[0]
        first, bias = tf.unstack(self.trainable[0]), self.trainable[1]
        maps = []
        for s in range(S):
            image = tf.reshape(x[s if views > 1 else 0], (-1, *self.image))
            conv = self._convolve(image, first[s], 0)
            maps.append(self._feature_maps(conv, bias[s]))
        k = 2
        for j in range(1, self.convs):
            runs = self.layer_runs[j]
            kernels = [tf.unstack(self.trainable[k + r]) for r in range(len(runs))]
            bias = self.trainable[k + len(runs)]
            k += len(runs) + 1
            inputs = [d[j] for d in self.dims]
            for s in range(S):
                parts = tf.split(maps[s], inputs, axis=-1) if self.B > 1 else [maps[s]]
                ys = [
                    self._convolve(parts[start + i], block, j)
                    for (start, _, _), run in zip(runs, kernels, strict=True)
                    for i, block in enumerate(tf.unstack(run[s]))
                ]
                maps[s] = self._feature_maps(tf.concat(ys, -1) if len(ys) > 1 else ys[0], bias[s])
        drop = self.dropout[0] if training else None
        if drop is not None:
            stream, threshold, scale = drop
            rows = _row_hash(epoch, 0, pos)[None, :, None, None]
            masks = tf.unstack(dropout_mask(rows, stream, threshold, scale))
        # Each block's channels flattened in its own order (cell, then its channels) and
        # multiplied by its first dense kernel: a plain product per block (a batched one
        # per run of equal blocks needed transposes that cost more than the products).
        j = self.convs
        runs = self.layer_runs[j]
        kernels = [tf.unstack(v) for v in self.trainable[k : k + len(runs)]]
        channels = [d[j] for d in self.dims]
        rows_out = []
        for s in range(S):
            h = tf.reshape(maps[s], (-1, self.cells, maps[s].shape[-1]))
            if drop is not None:
                h = h * masks[s]
            parts = tf.split(h, channels, axis=-1) if self.B > 1 else [h]
            ys = []
            for (start, n, (rows_in, _)), run in zip(runs, kernels, strict=True):
                blocks = tf.unstack(run[s]) if n > 1 else [run[s]]
                for i, kernel in enumerate(blocks):
                    ys.append(tf.matmul(tf.reshape(parts[start + i], (-1, rows_in)), kernel))
            rows_out.append(tf.concat(ys, -1) if len(ys) > 1 else ys[0])
        k += len(runs)
        h = tf.stack(rows_out) + tf.expand_dims(self.trainable[k], 1)
        k += 1
        for j in range(self.convs + 1, self.depth + 1):
            h = self.activation(h)
            groups = [(start, n, i, o) for start, n, (i, o) in self.layer_runs[j]]
            kernels = self.trainable[k : k + len(groups)]
            h = grouped_matmul(h, groups, kernels, S) + tf.expand_dims(
                self.trainable[k + len(groups)], 1
            )
            k += len(groups) + 1
        if self.out == 1:
            return self.out_activation(tf.reshape(h, (S, -1, self.B)))
        return self.out_activation(tf.reshape(h, (S, -1, self.B, self.out)))

    def set_penalties(self, l1: np.ndarray, l2: np.ndarray) -> None:
        """Keras's L1L2 kernel regularizer on the convolutions and the hidden dense layer,
        each block its own factors (per-trial values indexed by pack slot)."""
        hidden = [k for k, j in enumerate(self.layer_of) if j is not None and j < self.depth]
        factors = [
            (k, fn, values[self.maps[k]].astype("float32"))
            for values, fn in ((l1, tf.abs), (l2, tf.square))
            if values[self.slots].any()
            for k in hidden
        ]
        if self._penalties:
            for (_, _, var), (_, _, value) in zip(self._penalties, factors, strict=True):
                var.assign(value)
        else:
            self._penalties = [(self.trainable[k], fn, tf.Variable(v)) for k, fn, v in factors]

    def block_sum(self, i: int, x: tf.Tensor) -> tf.Tensor:
        """``x`` (shaped like trainable ``i``) summed over each trial's block."""
        kind, how = self.reducers[i]
        if kind == "groups":
            return tf.reduce_sum(x, list(range(how, len(x.shape))), keepdims=True)
        cols = tf.reduce_sum(x, [1, 2, 3]) if kind == "conv" else x  # (S, columns)
        sums = tf.transpose(tf.gather(tf.math.segment_sum(tf.transpose(cols), how), how))
        return sums[:, None, None, None, :] if kind == "conv" else sums
