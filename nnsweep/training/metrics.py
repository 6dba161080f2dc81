"""A sweep's added metrics (``Sweep(metrics=[...])``) as per-trial sums and Keras's formulas.

Every added metric is a function of counts or sums over rows: AUC of the positives' and
negatives' histograms over Keras's 200 thresholds, precision, recall and binary F1 of
(TP, FP, FN) at 0.5, macro F1 of each class's (TP, FP, FN), top-k accuracy of its hits,
MSE and RMSE of the squared errors. A pack adds these up per trial over an epoch's (or a
split's) rows, as Keras's metric objects add up their state over batches, and ``finalize``
turns them into the metrics with Keras's ``result()`` formulas, in float32.

NumPy only: the sums are made inside the traced step (``_metrics``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

THRESHOLDS = 200  # Keras's AUC default
_EPSILON = np.float32(1e-7)  # keras.backend.epsilon()


@dataclass(frozen=True)
class MetricLayout:
    """Which sums a pack keeps per trial for these metrics, and where each sits in a row of
    the (trials, width) table."""

    task: str
    classes: int
    names: tuple[str, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        """The sums needed, once each, in a fixed order."""
        wanted = {self.kind(n) for n in self.names}
        order = ("buckets", "confusion", "classes", "top_k", "squares")
        return tuple(k for k in order if k in wanted)

    def kind(self, name: str) -> str:
        if name == "auc":
            return "buckets"
        if name == "f1":
            return "classes" if self.task == "multiclass" else "confusion"
        if name in ("precision", "recall"):
            return "confusion"
        return "top_k" if name == "top_k_accuracy" else "squares"

    def size(self, kind: str) -> int:
        return {
            "buckets": 2 * THRESHOLDS,  # positives', then negatives' histogram
            "confusion": 3,  # TP, FP, FN
            "classes": 3 * self.classes,  # each class's TP, then FP, then FN
            "top_k": 1,
            "squares": 1,
        }[kind]

    @property
    def width(self) -> int:
        return sum(self.size(k) for k in self.kinds)

    def slices(self) -> dict[str, slice]:
        out, at = {}, 0
        for k in self.kinds:
            out[k] = slice(at, at + self.size(k))
            at += self.size(k)
        return out

    def finalize(self, sums: np.ndarray, rows: int) -> dict[str, np.ndarray]:
        """Each metric per trial from the (trials, width) sums over ``rows`` rows."""
        parts = {k: sums[:, s].astype("float32") for k, s in self.slices().items()}
        out: dict[str, np.ndarray] = {}
        for name in self.names:
            part = parts[self.kind(name)]
            if name == "auc":
                out[name] = roc_auc(part[:, :THRESHOLDS], part[:, THRESHOLDS:])
            elif name in ("precision", "recall"):
                tp, fp, fn = part[:, 0], part[:, 1], part[:, 2]
                out[name] = _no_nan(tp, tp + (fp if name == "precision" else fn))
            elif name == "f1":
                C = part.shape[1] // 3
                out[name] = f1(part[:, :C], part[:, C : 2 * C], part[:, 2 * C :])
            elif name == "top_k_accuracy":
                out[name] = part[:, 0] / np.float32(rows)
            else:
                mse = part[:, 0] / np.float32(rows)
                out[name] = np.sqrt(mse) if name == "rmse" else mse
        return out


def layout_for(names: Sequence[str], task: str, n_classes: int | None) -> MetricLayout | None:
    """A pack's layout for the sweep's added metrics (None when it adds none)."""
    if not names:
        return None
    return MetricLayout(task, int(n_classes or 2), tuple(names))


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """Keras's ``AUC()`` (ROC, interpolated) from each trial's histograms over the
    thresholds' buckets: a bucket counts the rows whose prediction exceeds its threshold
    and not the next one's."""
    tp = np.flip(np.cumsum(np.flip(positives, 1), 1, dtype="float32"), 1)
    fp = np.flip(np.cumsum(np.flip(negatives, 1), 1, dtype="float32"), 1)
    fn = positives.sum(1, dtype="float32")[:, None] - tp
    tn = negatives.sum(1, dtype="float32")[:, None] - fp
    recall, fp_rate = _no_nan(tp, tp + fn), _no_nan(fp, fp + tn)
    heights = (recall[:, :-1] + recall[:, 1:]) / np.float32(2)
    return ((fp_rate[:, :-1] - fp_rate[:, 1:]) * heights).sum(1, dtype="float32")


def f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Keras's ``F1Score(average="macro")`` from each trial's per-class counts."""
    precision = tp / (tp + fp + _EPSILON)
    recall = tp / (tp + fn + _EPSILON)
    score = precision * recall / (precision + recall + _EPSILON) * np.float32(2)
    return score.mean(1, dtype="float32")


def _no_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b``, 0 where ``b`` is 0 (Keras's ``divide_no_nan``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, np.float32(0), a / np.where(b == 0, np.float32(1), b))
