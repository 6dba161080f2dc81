"""Grouping trials into packs: trials that can train as one Keras model, one ``fit``.

Trials pack when they share everything ``fit`` sees besides the weights: the fold (so the
same rows), batch size, epochs and the optimizer's settings. Each trial's loss touches
only its own branch, so a pack trains every trial exactly as it would alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nnsweep import params as _params
from nnsweep.sweep import Trial

DEFAULT_PACK_SIZE = 32
# A pack's weights, gradients and optimizer slots stay under this many bytes.
DEFAULT_MEMORY_BUDGET = 2 * 1024**3
_PACK_KEYS = (
    "optimizer",
    "learning_rate",
    "momentum",
    "nesterov",
    "weight_decay",
    "clipnorm",
    "batch_size",
    "epochs",
)


def pack_key(trial: Trial) -> tuple | None:
    """What trials must share to train together; None for a trial that trains alone."""
    p = _params.resolve({k: v for k, v in trial.params.items() if k in _PACK_KEYS}, None)
    if trial.params.get("patience") is not None:
        return None  # early stopping ends a whole fit, so each such trial stops on its own
    return (trial.fold, *(p[k] for k in _PACK_KEYS))


def estimate_bytes(params: Mapping[str, Any], input_size: int, n_params: int | None) -> int:
    """A rough upper bound of one trial's training memory (weights x4, activations)."""
    if n_params is None:
        widths = _params.resolve(params, "mlp")
        n_params = input_size * widths["hidden_units"] * max(1, widths["depth"])
    batch = _params.resolve(params, None)["batch_size"]
    return 4 * (4 * n_params + 4 * batch * max(input_size, 1))


def make_packs(
    trials: Sequence[Trial],
    *,
    max_size: int = DEFAULT_PACK_SIZE,
    input_size: int = 1,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> list[list[Trial]]:
    """Split trials into packs, keeping the given order within each pack.

    ``max_size=1`` trains every trial alone. Packs are formed in order of first
    appearance, so the seeds of one configuration always end up together.
    """
    groups: dict[Any, list[Trial]] = {}
    order: list[Any] = []
    for i, trial in enumerate(trials):
        key = pack_key(trial)
        key = ("alone", i) if key is None or max_size == 1 else key
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(trial)
    packs: list[list[Trial]] = []
    for key in order:
        pack: list[Trial] = []
        used = 0
        for trial in groups[key]:
            need = estimate_bytes(trial.params, input_size, None)
            if pack and (len(pack) >= max_size or used + need > memory_budget):
                packs.append(pack)
                pack, used = [], 0
            pack.append(trial)
            used += need
        if pack:
            packs.append(pack)
    return packs
