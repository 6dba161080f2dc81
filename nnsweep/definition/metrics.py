"""The metrics a sweep may add beside its task's headline one (``Sweep(metrics=[...])``):
their names and the tasks they apply to.

Each is the Keras metric of the same name with Keras's defaults (``auc``: ROC over 200
thresholds, interpolated; ``precision``, ``recall`` and binary ``f1``: threshold 0.5;
``top_k_accuracy``: k = 5; multiclass ``f1``: macro-averaged over the classes, each row's
prediction its highest class). No NumPy, no TensorFlow: the sweep checks its fields here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nnsweep.errors import SweepDefinitionError

# name -> the tasks it applies to
METRICS: dict[str, tuple[str, ...]] = {
    "auc": ("binary",),
    "precision": ("binary",),
    "recall": ("binary",),
    "f1": ("binary", "multiclass"),
    "top_k_accuracy": ("multiclass",),
    "mse": ("regression",),
    "rmse": ("regression",),
}
TOP_K = 5  # Keras's SparseTopKCategoricalAccuracy default


def check_metrics(value: Any) -> tuple[str, ...]:
    """``Sweep.metrics`` as a tuple of known, distinct names (in the order given)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SweepDefinitionError(
            "metrics", "must be a list of metric names (e.g. ['auc'])", value
        )
    names = tuple(value)
    for name in names:
        if name not in METRICS:
            known = ", ".join(METRICS)
            hint = " (accuracy and mae are always recorded)" if name in ("accuracy", "mae") else ""
            raise SweepDefinitionError("metrics", f"must name metrics among {known}{hint}", name)
    if len(set(names)) != len(names):
        raise SweepDefinitionError("metrics", "must name each metric once", list(names))
    return names


def check_metrics_task(names: Iterable[str], task: str) -> None:
    """Each metric against the data's task (AUC on a multiclass task is refused)."""
    for name in names:
        if task not in METRICS[name]:
            tasks = " and ".join(METRICS[name])
            raise SweepDefinitionError(
                "metrics", f"{name} applies to {tasks} tasks, and this data is {task}", name
            )


def check_objective_metrics(objective: str | None, names: Iterable[str]) -> None:
    """An objective such as ``val_auc`` needs ``auc`` among the sweep's metrics."""
    if not objective:
        return
    base = objective.removeprefix("val_")
    if base in METRICS and base not in tuple(names):
        raise SweepDefinitionError(
            "objective", f"needs {base!r} in the sweep's metrics to be recorded", objective
        )
