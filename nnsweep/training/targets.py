"""Class weights and label smoothing, each trial's own: the tables a pack's losses read.

NumPy only. ``class_weight`` is Keras's ``fit(class_weight=...)``: a training row's loss is
weighted by its class's weight, a class not named keeping 1.0; ``"balanced"`` gives each
class n / (classes x its count) over the trial's training split, scikit-learn's rule (the
classes the split holds). As in Keras 3, the training loss is the weighted sum over the
rows divided by the rows, and the training metric, validation and test stay unweighted.
Label smoothing is Keras's ``CategoricalCrossentropy`` / ``BinaryCrossentropy
(label_smoothing=...)``, validation and test losses included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsweep.definition import params as _params


def n_classes(spec: Any) -> int:
    """The classes a class weight can name: the multiclass task's, else 2 (binary; unused
    for regression, which takes no class weights)."""
    return int(spec.output_units) if spec.task == "multiclass" else 2


def class_weights(value: str | None, y_fit: np.ndarray, classes: int) -> dict[int, float] | None:
    """A trial's class weights as Keras's ``fit`` takes them (None: unweighted)."""
    if value is None:
        return None
    if value != "balanced":
        # Every class named (1.0 where the dict is silent): Keras's tf.data path needs it.
        return {**dict.fromkeys(range(classes), 1.0), **_params.parse_class_weight(value)}
    counts = np.bincount(np.asarray(y_fit).astype(np.int64).ravel(), minlength=classes)
    n, present = float(counts.sum()), int(np.count_nonzero(counts))
    # A class absent from the split has no rows to weight: Keras's 1.0 for it.
    return {c: n / (present * float(k)) if k else 1.0 for c, k in enumerate(counts)}


def smoothing(label_smoothing: float, task: str, classes: int) -> tuple[np.float32, np.float32]:
    """Keras's smoothed target ``y * keep + add``, its two constants as Keras rounds them:
    ``1 - ls`` and ``0.5 * ls`` in float64 (binary), ``ls / classes`` in float32."""
    keep = np.float32(1.0 - label_smoothing)
    if task == "binary":
        return keep, np.float32(0.5 * label_smoothing)
    return keep, np.float32(label_smoothing) / np.float32(classes)


@dataclass
class Targets:
    """A pack's trials' class-weight table and label smoothing, by pack slot."""

    weights: np.ndarray | None  # (trials, classes) float32; None: no trial weighs classes
    keep: np.ndarray  # (trials,) float32: 1 - label_smoothing
    add: np.ndarray  # (trials,) float32: what smoothing adds to every class's target

    @property
    def smoothed(self) -> bool:
        return bool(np.any(self.keep != 1))


def pack_targets(params: Sequence[Mapping[str, Any]], y_fit: np.ndarray, spec: Any) -> Targets:
    """The tables for a pack whose trials (resolved ``params``, by pack slot) fit on
    ``y_fit``. Regression trials have neither setting (the sweep's rules refuse them), so
    their tables are the neutral ones."""
    classes = n_classes(spec)
    weights = np.ones((len(params), classes), "float32")
    for t, p in enumerate(params):
        for c, w in (class_weights(p["class_weight"], y_fit, classes) or {}).items():
            weights[t, c] = w
    constants = [smoothing(p["label_smoothing"], spec.task, classes) for p in params]
    return Targets(
        weights if any(p["class_weight"] is not None for p in params) else None,
        np.array([k for k, _ in constants], "float32"),
        np.array([a for _, a in constants], "float32"),
    )
