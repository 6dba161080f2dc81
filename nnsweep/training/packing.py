"""Grouping trials into packs: trials that train together as one TensorFlow program.

A pack's trials share their fold (the same rows) and a micro-batch. Built-in MLPs and
CNNs (without batch normalization) pack when their batch sizes are multiples of the
pack's smallest: with one permutation per
seed, a batch of 256 is four consecutive micro-batches of 64, so the larger batch adds up
its gradient over them at fixed weights and updates once (exactly, the last partial batch
included). Other models (custom models, batch normalization) pack with equal batch sizes
only, since their layers may see the whole batch. Everything else packs: widths,
depth, activation, dropout, l1/l2, initializer, optimizer, learning rate, momentum,
weight decay, clipnorm, epochs and early stopping (see ``_units`` for how). Off
TensorFlow every trial trains alone. Kept free of Keras: ``run --dry-run`` shows packs.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from nnsweep.definition import params as _params
from nnsweep.definition.sweep import Trial
from nnsweep.training._units import describe_units, stackable

# Large enough for most sweeps to be one pack; a kill loses at most one pack's trials.
DEFAULT_PACK_SIZE = 64
# A pack's weights, gradients and optimizer slots stay under this many bytes.
DEFAULT_MEMORY_BUDGET = 2 * 1024**3
# Rows the engine evaluates at once (validation and test); fewer where a CNN stack's
# feature maps are made (1024 rows of 64 MNIST CNNs of 64 filters: 11 GB of maps).
EVAL_BATCH = 1024
CNN_EVAL_BATCH = 256
# A batch may be this many micro-batches at most: beyond, its steps get too small to
# compute efficiently, and it trains in a pack of its own batch size instead.
MAX_MICRO_BATCHES = 16


@dataclass(frozen=True)
class Pack(Sequence[Trial]):
    """Trials that train together, the micro-batch they step by, and what keeps them
    apart from the sweep's other packs (empty when nothing does)."""

    trials: tuple[Trial, ...]
    micro_batch: int
    apart: str = ""

    @overload
    def __getitem__(self, i: int) -> Trial: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Trial]: ...
    def __getitem__(self, i: int | slice) -> Trial | Sequence[Trial]:
        return self.trials[i]

    def __len__(self) -> int:
        return len(self.trials)

    def __iter__(self) -> Iterator[Trial]:
        return iter(self.trials)


def estimate_bytes(
    params: Mapping[str, Any],
    input_size: int,
    n_params: int | None,
    family: Any = "mlp",
    image: Sequence[int] | None = None,
) -> int:
    """A rough upper bound of one trial's training memory: its weights x4 (gradients and
    two optimizer slots), and per row of its batch its input and, for a built-in CNN
    (``family`` "cnn", on inputs shaped ``image``), its feature maps."""
    batch = _params.resolve(params, None)["batch_size"]
    if family == "cnn":
        return _cnn_bytes(_params.resolve(params, "cnn"), image or (input_size,), batch)
    if n_params is None:
        widths = _params.resolve(params, "mlp")
        n_params = input_size * widths["hidden_units"] * max(1, widths["depth"])
    return 4 * (4 * n_params + 4 * batch * max(input_size, 1))


def _cnn_bytes(p: Mapping[str, Any], image: Sequence[int], batch: int) -> int:
    """``estimate_bytes`` for a built-in CNN: each convolution's full-size map and its
    pooled one, each kept for the gradient and matched by a gradient of its own (the
    stacks make the full-size map where TensorFlow's max pool pools), at 4 bytes, or
    evaluation's maps where they are more."""
    if len(image) == 3:
        rows, cols, channels = image
    elif len(image) == 2:
        (rows, cols), channels = image, 1  # as the CNN reads it: one channel
    else:
        rows, cols, channels = math.prod(image), 1, 1  # a flat input as one row of pixels
    filters = p["filters"] if isinstance(p["filters"], tuple) else (p["filters"],)
    filters = filters * p["conv_layers"] if len(filters) == 1 else filters
    k, pool = p["kernel_size"], p["pool_size"]
    weights, maps = 0, rows * cols * channels
    for f in filters:
        if p["padding"] == "valid":
            rows, cols = max(1, rows - k + 1), max(1, cols - k + 1)
        maps += rows * cols * f
        weights += k * k * channels * f + f
        if pool > 1:
            rows, cols = max(1, rows // pool), max(1, cols // pool)
            maps += rows * cols * f
        channels = f
    flat, dense = rows * cols * channels, p["dense_units"]
    weights += (flat * dense + dense + dense * 10) if dense else flat * 10
    # Evaluation makes the same maps, without gradients, for CNN_EVAL_BATCH rows at once.
    return 4 * (4 * weights + max(2 * batch, CNN_EVAL_BATCH) * maps)


# Each row's shape in the built-in datasets, known without loading them (for --dry-run).
_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion_mnist": (28, 28), "boston_housing": (13,)}


def input_shape(sweep: Any) -> tuple[int, ...]:
    """Each row's shape, read without loading the data where it can be (else (1,)): for
    ``--dry-run``, whose pack layout depends on it."""
    data = str(sweep.data) if isinstance(sweep.data, (str, Path)) else ""
    if data in ("imdb", "reuters"):
        return (int(sweep.data_options.get("num_words", 10_000)),)
    try:
        if data.endswith(".csv"):
            with open(data) as f:
                return (max(1, len(f.readline().split(",")) - 1),)
        if data.endswith(".npz"):
            with zipfile.ZipFile(data) as z:
                name = "x_train.npy" if "x_train.npy" in z.namelist() else "x.npy"
                with z.open(name) as f:
                    major, _ = np.lib.format.read_magic(f)
                    header = np.lib.format.read_array_header_1_0
                    if major > 1:
                        header = np.lib.format.read_array_header_2_0
                    shape = header(f)[0]
                return tuple(int(n) for n in shape[1:]) or (1,)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return (1,)  # the run itself reports what is wrong with the file
    return _SHAPES.get(data, (1,))


def _batch(trial: Trial) -> int:
    return _params.resolve(trial.params, None)["batch_size"]


def _micro_batches(model: Any, trials: Sequence[Trial]) -> dict[str, tuple[int, str]]:
    """Each trial's micro-batch, and why its batch size could not join a smaller one.

    Sizes are taken smallest first; a built-in MLP's or CNN's size joins the smallest micro-batch
    that divides it (into at most ``MAX_MICRO_BATCHES``), else starts its own; other
    models' sizes always step by themselves.
    """
    out: dict[tuple[int, int, bool], tuple[int, str]] = {}
    for fold in sorted({t.fold for t in trials}):
        mine = [t for t in trials if t.fold == fold]
        stacked = {_batch(t) for t in mine if stackable(model, t)}
        whole = {_batch(t) for t in mine if not stackable(model, t)}
        bases: list[int] = []
        for size in sorted(stacked | whole):
            smaller = bases[0] if bases else None
            if size in stacked:
                fits = [b for b in bases if size % b == 0 and size // b <= MAX_MICRO_BATCHES]
                if fits:
                    out[(fold, size, True)] = (fits[0], "")
                else:
                    why = ""
                    if smaller is not None:
                        why = f"batch_size {size} is " + (
                            f"not a multiple of {smaller}"
                            if size % smaller
                            else f"more than {MAX_MICRO_BATCHES} micro-batches of {smaller}"
                        )
                    out[(fold, size, True)] = (size, why)
                    bases.append(size)
            if size in whole:
                why = out.get((fold, size, True), (0, ""))[1]
                if size not in bases:
                    if smaller is not None:
                        why = (
                            f"batch_size {size}: {_label(model)} models pack with equal batch sizes"
                        )
                    bases.append(size)
                out[(fold, size, False)] = (size, why)
    return {t.trial_id: out[(t.fold, _batch(t), stackable(model, t))] for t in trials}


def _label(model: Any) -> str:
    if callable(model):
        return "custom"
    if isinstance(model, Mapping):  # named models: which of them is the trial's to say
        return "batch-norm"
    return f"batch-norm {str(model).upper()}"


def make_packs(
    trials: Sequence[Trial],
    *,
    model: Any = "mlp",
    max_size: int = DEFAULT_PACK_SIZE,
    input_size: int = 1,
    input_shape: Sequence[int] | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: str = "tensorflow",
    whole_configs: bool = False,
) -> list[Pack]:
    """Split trials into packs, keeping the given order within each pack.

    ``max_size=1`` trains every trial alone. ``input_shape`` (each row's, where known)
    sizes a CNN's feature maps for the memory budget. Packs are formed in order of first
    appearance. ``whole_configs`` (pruning): a configuration's seeds start a new pack
    rather than split over two, where they fit in one, so that each configuration is
    judged at its rungs on all its seeds at once.
    """
    if max_size == 1 or backend != "tensorflow":
        why = "--no-pack" if max_size == 1 else f"the {backend} backend trains trials one by one"
        return [Pack((t,), _batch(t), why) for t in trials]
    micro = _micro_batches(model, trials)
    several_folds = len({t.fold for t in trials}) > 1
    groups: dict[tuple[int, int], list[Trial]] = {}
    for trial in trials:
        groups.setdefault((trial.fold, micro[trial.trial_id][0]), []).append(trial)
    packs: list[Pack] = []
    for (fold, batch), members in groups.items():
        apart = [f"fold {fold}"] if several_folds else []
        apart += sorted({micro[t.trial_id][1] for t in members} - {""})
        chunks: list[list[Trial]] = [[]]
        used, limits = 0, set()
        sizes = {t.config_id: 0 for t in members}
        for t in members:
            sizes[t.config_id] += 1
        for i, trial in enumerate(members):
            family = _params.family(model, trial.params)
            need = estimate_bytes(trial.params, input_size, None, family, input_shape)
            room = len(chunks[-1]) >= max_size
            first_of_config = i == 0 or members[i - 1].config_id != trial.config_id
            if whole_configs and first_of_config and sizes[trial.config_id] <= max_size:
                room = len(chunks[-1]) + sizes[trial.config_id] > max_size
            if chunks[-1] and (room or used + need > memory_budget):
                limits.add(f"--pack-size {max_size}" if room else "memory")
                chunks.append([])
                used = 0
            chunks[-1].append(trial)
            used += need
        why = "; ".join(apart + sorted(limits))
        packs.extend(Pack(tuple(chunk), batch, why) for chunk in chunks)
    return packs


def describe(packs: Sequence[Pack], model: Any, inputs: int = 1) -> list[str]:
    """Lines for ``run --dry-run``: each pack, its layout and what keeps it apart."""
    sizes = ", ".join(str(len(p)) for p in packs[:12]) + (", ..." if len(packs) > 12 else "")
    lines = [f"{len(packs)} packs ({sizes} trials)" if len(packs) != 1 else "1 pack"]
    for i, pack in enumerate(packs[:50], 1):
        head = f"  pack {i}: {len(pack)} trials, micro-batch {pack.micro_batch}"
        if pack.apart:
            head += f" (apart: {pack.apart})"
        lines.append(head)
        if len(pack) > 1:
            lines.append(f"    {describe_units(model, pack.trials, inputs)}")
    if len(packs) > 50:
        lines.append(f"  ... and {len(packs) - 50} more packs")
    return lines
