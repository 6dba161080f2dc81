"""The results tables' layout: file names and the columns of trials.csv and history.csv."""

from __future__ import annotations

import re
from collections.abc import Sequence

from nnsweep.store._table_files import TRIALS

__all__ = ["TRIALS"]  # with the names below: the store's layout

HISTORY = "history.csv"
SWEEP_JSON = "sweep.json"
LOCK = ".lock"
DEFAULT_RESULTS = "results"
BASE_COLUMNS = ("trial_id", "config_id")
RUN_COLUMNS = ("seed", "fold", "phase", "status", "error", "epochs_run", "rungs", "pruned_by")
# Added after tables were written without them: such a table gains them on open, with
# these values in its rows (every older row was a search row, and nothing was pruned).
PHASE = "phase"
LATE_COLUMNS = {PHASE: "search", "rungs": "", "pruned_by": ""}
TAIL_COLUMNS = (
    "n_params",
    "fit_seconds",
    "started_at",
    "finished_at",
    "backend",
    "pack_size",
    "worker",
)
HISTORY_KEYS = ("trial_id", "config_id", "seed", "fold", "epoch")


def epoch_columns(metric: str, added: Sequence[str] = (), split: str = "") -> list[str]:
    """An epoch's metrics: the loss, the task's metric and the sweep's added ones, on the
    training rows and then on the validation rows (or on one ``split``: ``"test_"``)."""
    train = ["loss", metric, *added]
    prefixes = (split,) if split else ("", "val_")
    return [f"{prefix}{m}" for prefix in prefixes for m in train]


def trial_columns(
    param_names: Sequence[str], metric: str, objective: str, added: Sequence[str] = ()
) -> list[str]:
    """The trials.csv header for a sweep with these hyperparameters, its task's metric and
    the metrics it adds (``Sweep.metrics``)."""
    return [
        *BASE_COLUMNS,
        *param_names,
        *RUN_COLUMNS,
        *epoch_columns(metric, added),
        f"best_{objective}",
        "best_epoch",
        *epoch_columns(metric, added, "test_"),
        *TAIL_COLUMNS,
    ]


def history_columns(
    metric: str, learning_rate: bool = False, added: Sequence[str] = ()
) -> list[str]:
    """The history.csv header; ``learning_rate`` where the sweep names ``lr_schedule``."""
    lr = ["learning_rate"] if learning_rate else []
    return [*HISTORY_KEYS, *epoch_columns(metric, added), *lr]


def with_late_columns(header: Sequence[str]) -> list[str]:
    """``header`` with each missing late column inserted after the run column before it."""
    out = list(header)
    for column in LATE_COLUMNS:
        if column in out:
            continue
        before = RUN_COLUMNS[RUN_COLUMNS.index(column) - 1]
        at = out.index(before) + 1 if before in out else len(out)
        out.insert(at, column)
    return out


# ``run --epochs N`` (a quick look) writes ``<name>-epochsN`` beside the sweep's own folder.
_QUICK_LOOK = re.compile(r"(?P<base>.+)-epochs(?P<epochs>[1-9][0-9]*)")


def quick_look_name(name: str, epochs: int | None) -> str:
    """The results folder of sweep ``name``'s quick look of ``epochs`` (or its own)."""
    return f"{name}-epochs{epochs}" if epochs else name


def split_quick_look(name: str) -> tuple[str, int | None]:
    """``("hidden_units", 1)`` for ``hidden_units-epochs1``; ``(name, None)`` otherwise."""
    match = _QUICK_LOOK.fullmatch(name)
    return (match["base"], int(match["epochs"])) if match else (name, None)
