"""Learning-rate schedules per trial: Keras's formulas, computed on the host.

NumPy only (no Keras), so that the pack engine and the tests share one source. A trial's
rate at each optimizer update is what Keras's ``CosineDecay`` (with its warm-up),
``ExponentialDecay`` (``step``: its staircase) or the ``ReduceLROnPlateau`` callback give
it alone: Keras reads the schedule with the optimizer's update count before each update,
so a trial that steps by several micro-batches counts its own updates. The arithmetic is
Keras's, in float32, operation by operation (cosine and power in float64, rounded once),
so a trial's rates do not depend on its pack.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsweep.definition import params as _params

_f32 = np.float32
# ReduceLROnPlateau's own default: smaller changes of the monitored value are no change.
PLATEAU_MIN_DELTA = 1e-4


@dataclass
class Schedule:
    """One trial's rate at each update (``rates``) and, for ``plateau``, its state."""

    kind: str
    learning_rate: float
    steps_per_epoch: int
    epochs: int
    warmup_epochs: int = 0
    final_lr_fraction: float = 0.0
    decay_rate: float = 0.5
    decay_epochs: int = 1
    plateau_factor: float = 0.1
    plateau_patience: int = 2
    min_lr: float = 0.0
    direction: str = "min"

    def __post_init__(self) -> None:
        self.current = float(_f32(self.learning_rate))  # plateau's rate, as Keras holds it
        self.best: float | None = None
        self.wait = 0

    def rates(self, steps: np.ndarray) -> np.ndarray:
        """The rate (float32) of the updates numbered ``steps`` (0 is the first update)."""
        steps = np.asarray(steps)
        lr = _f32(self.learning_rate)
        if self.kind == "constant":
            return np.full(steps.shape, lr, "float32")
        if self.kind == "plateau":
            return np.full(steps.shape, _f32(self.current), "float32")
        if self.kind == "cosine":
            return self._cosine(steps.astype("float32"), lr)
        # ExponentialDecay: initial * rate ** (step / decay_steps), floored for "step".
        p = steps.astype("float32") / _f32(self.decay_epochs * self.steps_per_epoch)
        if self.kind == "step":
            p = np.floor(p)
        power = np.power(float(_f32(self.decay_rate)), p.astype("float64")).astype("float32")
        return lr * power

    def _cosine(self, step: np.ndarray, lr: np.float32) -> np.ndarray:
        warmup = _f32(self.warmup_epochs * self.steps_per_epoch)
        decay = _f32((self.epochs - self.warmup_epochs) * self.steps_per_epoch)
        step = np.minimum(step, decay + warmup)
        # Keras's warm-up from 0: (target - 0) * step / warmup_steps + 0.
        rising = (lr - _f32(0.0)) * (step / np.maximum(warmup, _f32(1))) + _f32(0.0)
        fraction = (step - warmup) / decay
        cos = np.cos((_f32(math.pi) * fraction).astype("float64")).astype("float32")
        decayed = _f32(0.5) * (_f32(1.0) + cos)
        alpha = self.final_lr_fraction
        decayed = _f32(1 - alpha) * decayed + _f32(alpha)
        return np.where(step < warmup, rising, lr * decayed).astype("float32")

    def epoch_rate(self, epoch: int) -> float:
        """The rate of epoch ``epoch``'s (0-based) last update, as history.csv records it."""
        return float(self.rates(np.array([(epoch + 1) * self.steps_per_epoch - 1]))[0])

    def observe(self, value: float) -> None:
        """After an epoch whose objective was ``value``: Keras's ReduceLROnPlateau rule
        (``min_delta`` 1e-4, no cooldown), which lowers ``current`` for later epochs."""
        if self.kind != "plateau":
            return
        delta = -PLATEAU_MIN_DELTA if self.direction == "min" else PLATEAU_MIN_DELTA
        # Keras compares in float32 (its ops turn both sides into tensors).
        if self.best is None or (
            _f32(value - delta) < _f32(self.best)
            if self.direction == "min"
            else _f32(value - delta) > _f32(self.best)
        ):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.plateau_patience and self.current > _f32(self.min_lr):
            self.current = float(_f32(max(self.current * self.plateau_factor, self.min_lr)))
            self.wait = 0


def trial_schedule(
    params: Mapping[str, Any], learning_rate: float, fit_rows: int, direction: str = "min"
) -> Schedule:
    """A trial's schedule: its settings, its base rate and its updates per epoch."""
    p = _params.resolve({k: v for k, v in params.items() if k in _params.TRAINING_PARAMS}, None)
    return Schedule(
        p["lr_schedule"],
        float(learning_rate),
        math.ceil(fit_rows / p["batch_size"]),
        p["epochs"],
        direction=direction,
        **{name: p[name] for name in _params.SCHEDULE_SETTINGS},
    )


def keras_schedule(schedule: Schedule) -> Any:
    """The same schedule as Keras's own object (``plateau``, ``constant``: the rate), for
    Keras's ``fit``; imports Keras."""
    import keras

    s, per_epoch = schedule, schedule.steps_per_epoch
    if s.kind == "cosine":
        warm = s.warmup_epochs * per_epoch
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warm else s.learning_rate,
            (s.epochs - s.warmup_epochs) * per_epoch,
            alpha=s.final_lr_fraction,
            warmup_target=s.learning_rate if warm else None,
            warmup_steps=warm,
        )
    if s.kind in ("exponential", "step"):
        return keras.optimizers.schedules.ExponentialDecay(
            s.learning_rate,
            s.decay_epochs * per_epoch,
            s.decay_rate,
            staircase=s.kind == "step",
        )
    return s.learning_rate


def keras_plateau(schedule: Schedule, monitor: str) -> Any:
    """Keras's ReduceLROnPlateau with a plateau schedule's settings; imports Keras."""
    import keras

    return keras.callbacks.ReduceLROnPlateau(
        monitor=monitor,
        mode=schedule.direction,
        factor=schedule.plateau_factor,
        patience=schedule.plateau_patience,
        min_delta=PLATEAU_MIN_DELTA,
        min_lr=schedule.min_lr,
    )
