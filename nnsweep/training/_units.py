"""Inside a pack: which trials share stacked weight tensors and which keep a model of their own.

Kept free of Keras, so ``run --dry-run`` can show a pack's layout. Built-in MLPs without
batch normalization become *stacks*: the MLPs of one seed read the same batch, so their
first layers are one product with the kernels side by side; each later layer is one
batched product per group of equal-shaped blocks; seeds whose MLPs have the same layout
stack on a leading axis. Within a stack every trial (block) keeps its own widths,
initializer, dropout, l1/l2, learning rate and its schedule, momentum, weight decay and
clipnorm. What a stack's trials must share is its key: depth and activation (the layers),
the optimizer (its update formula), the batch size (when it updates) and the epochs (a
stack whose epochs are over leaves the computation); and, for large stacks only, the
optimizer settings, where TensorFlow's fused update saves more than another stack costs.
Built-in CNNs without batch normalization stack alike (``_conv``): filters and dense units
are a block's widths, and the convolutions' count, kernel size, padding, pool size and
whether there is a dense layer join the key. Every other model is a *branch*: its own
Keras model, optimizer and settings, in the same step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from nnsweep.definition import params as _params
from nnsweep.definition.sweep import Trial
from nnsweep.training.models import cnn_filters, mlp_widths


class StackKey(NamedTuple):
    """What the trials of one stack share."""

    depth: int
    activation: str
    optimizer: str  # the update formula: an optimizer name, "sgd-nesterov" for Nesterov
    batch_size: int
    epochs: int
    # Learning rate, momentum, weight decay, clipnorm, the rate's schedule: shared only by
    # large stacks (see ``plan_units``); None where each block keeps its own.
    settings: tuple | None = None
    # A CNN stack's layers: (conv_layers, kernel_size, padding, pool_size, dense head or
    # not); None for MLPs.
    cnn: tuple | None = None


# Activations that are 0 at 0. A hidden unit padded with zero weights then outputs 0, so
# its gradients stay exactly 0 and it never touches the trial's own numbers (sigmoid and
# softplus are not 0 at 0: their stacks keep the trials' own widths).
ZERO_AT_ZERO = frozenset(
    "relu tanh elu selu gelu silu swish leaky_relu relu6 softsign mish linear".split()
)


def padded_width(units: int) -> int:
    """A hidden width rounded up to a multiple of 16 (of an eighth of its power of two
    above 256), so that packs of nearby widths share shapes: TensorFlow's oneDNN kernels
    keep a compiled primitive per matrix shape, and traces are reused by shape. Measured:
    a multiple of 16 costs no more time than the width itself, often less. A CNN's filter
    counts pad alike: oneDNN computes a convolution's output channels in groups of 16
    (measured: a 16-aligned group comes out bit for bit as a convolution of that group
    alone, 8 filters do not), so a block gets its own numbers in any stack."""
    step = max(16, 1 << max(units.bit_length() - 4, 0))
    return -(-units // step) * step


def padded_widths(widths: tuple[int, ...], activation: str) -> tuple[int, ...]:
    """Each hidden layer's width as a stack lays it out (see ``padded_width``)."""
    if activation not in ZERO_AT_ZERO:
        return widths
    return tuple(padded_width(w) for w in widths)


@dataclass(frozen=True)
class Stack:
    """Trials trained as one set of stacked tensors: one row of blocks per seed."""

    key: StackKey
    seeds: tuple[int, ...]
    blocks: tuple[tuple[int, ...], ...]  # per seed, indices into the pack's trials
    widths: tuple[tuple[int, ...], ...]  # each block's hidden widths (every seed alike)

    @property
    def order(self) -> list[int]:
        """The pack's trial indices in slice order: seed by seed, block by block."""
        return [i for row in self.blocks for i in row]

    def describe(self) -> str:
        k = self.key
        layers = f"depth {k.depth}"
        if k.cnn is not None:
            convs, size, padding, pool, head = k.cnn
            layers = f"cnn {convs} conv {size}x{size} {padding} pool {pool}"
            layers += " dense" if head else " no dense"
        settings = ""
        if k.settings is not None:
            names = ("lr", "momentum", "weight_decay", "clipnorm")
            settings = " " + " ".join(
                f"{n} {v}" for n, v in zip(names, k.settings[:4], strict=True) if v
            )
            if k.settings[4][0] != "constant":
                settings += f" {k.settings[4][0]} schedule"
        return (
            f"{layers} {k.activation} {k.optimizer}{settings} batch {k.batch_size} "
            f"{k.epochs} epochs: {len(self.seeds)} seeds x {len(self.blocks[0])} blocks"
        )


def optimizer_kind(params: Any) -> str:
    """The update formula a trial's optimizer settings select."""
    p = _params.resolve(params, None)
    name = p["optimizer"]
    if name == "nesterov" or (name == "sgd" and p["nesterov"]):
        return "sgd-nesterov"
    return name


def stackable(model: Any, trial: Trial) -> bool:
    """Built-in MLPs and CNNs stack, unless batch statistics couple the rows of a batch."""
    family = _params.family(model, trial.params)
    return family in ("mlp", "cnn") and not _params.resolve(trial.params, family)["batch_norm"]


def hidden_sizes(model: Any, p: Any) -> tuple[int, ...]:
    """A stacked trial's hidden sizes: an MLP's widths; a CNN's filters per convolution,
    then its dense units (where it has a dense layer)."""
    if _params.family(model, p) == "cnn":
        return cnn_filters(p) + ((p["dense_units"],) if p["dense_units"] else ())
    return mlp_widths(p)


def stack_key(model: Any, trial: Trial) -> StackKey:
    model = _params.family(model, trial.params)
    p = _params.resolve(trial.params, model)
    cnn = None
    if model == "cnn":
        cnn = (
            p["conv_layers"],
            p["kernel_size"],
            p["padding"],
            p["pool_size"],
            p["dense_units"] > 0,
        )
    return StackKey(
        len(hidden_sizes(model, p)),
        p["activation"],
        optimizer_kind(p),
        p["batch_size"],
        p["epochs"],
        cnn=cnn,
    )


# Per optimizer step, measured on the 2-core CPU this was tuned on: a stack whose blocks
# have different settings updates with separate operations, about 1.4 ns per parameter
# more than TensorFlow's fused kernels; a stack of its own costs about 0.4 ms. A group of
# trials splits by settings where the first outweighs the second.
_SEPARATE_NS_PER_PARAM = 1.4
STACK_NS = 400_000


def schedule_key(params: Any) -> tuple:
    """A trial's learning-rate schedule and its settings (equal keys: equal rates)."""
    p = _params.resolve(params, None)
    kind = p["lr_schedule"]
    used = (n for n, users in _params.SCHEDULE_SETTINGS.items() if kind in users)
    return (kind, *(p[name] for name in used))


def _settings(trial: Trial) -> tuple:
    p = _params.resolve(trial.params, None)
    return (
        p["learning_rate"],
        p["momentum"],
        p["weight_decay"],
        p["clipnorm"],
        schedule_key(trial.params),
    )


def _n_params(widths: tuple[int, ...], inputs: int) -> int:
    dims = [inputs, *widths, 10]  # the output layer is small: ten units stand for it
    return sum(a * b + b for a, b in zip(dims[:-1], dims[1:], strict=True))


def plan_units(
    model: Any, trials: Sequence[Trial], inputs: int = 1
) -> tuple[list[Stack], list[int]]:
    """The pack's stacks, and the indices of the trials that train as branches.

    ``inputs`` (features per row) sizes the stacks, for the choice between per-block
    optimizer settings and one stack per setting.
    """
    branches = [i for i, t in enumerate(trials) if not stackable(model, t)]
    widths = {
        i: hidden_sizes(model, _params.resolve(t.params, _params.family(model, t.params)))
        for i, t in enumerate(trials)
        if i not in branches
    }
    groups: dict[StackKey, list[int]] = {}
    for i in widths:
        groups.setdefault(stack_key(model, trials[i]), []).append(i)
    keys: dict[int, StackKey] = {}
    for key, members in groups.items():
        kinds = {_settings(trials[i]) for i in members}
        size = sum(_n_params(widths[i], inputs) for i in members)
        split = len(kinds) > 1 and size * _SEPARATE_NS_PER_PARAM > (len(kinds) - 1) * STACK_NS
        for i in members:
            keys[i] = key._replace(settings=_settings(trials[i])) if split else key
    rows: dict[tuple[StackKey, int], list[int]] = {}
    for i in widths:
        rows.setdefault((keys[i], trials[i].seed), []).append(i)
    layouts: dict[tuple, list[tuple[int, tuple[int, ...]]]] = {}
    for (key, seed), idx in rows.items():
        # Blocks of equal shapes sit side by side, so each later layer has few groups
        # (stable: equal widths keep the pack's order).
        idx.sort(key=lambda i: widths[i])
        layout = (key, tuple(widths[i] for i in idx))
        layouts.setdefault(layout, []).append((seed, tuple(idx)))
    stacks = [
        Stack(key, tuple(s for s, _ in members), tuple(b for _, b in members), layout)
        for (key, layout), members in layouts.items()
    ]
    return stacks, branches


def describe_units(model: Any, trials: Sequence[Trial], inputs: int = 1) -> str:
    """One line: the pack's stacks and branches, for ``run --dry-run``."""
    stacks, branches = plan_units(model, trials, inputs)
    parts = [s.describe() for s in stacks]
    if branches:
        parts.append(f"{len(branches)} models of their own")
    return "; ".join(parts)
