"""What training shares between its stages: the run's context, per-trial outcomes, the
ledger of epochs with early stopping's rule, and the hooks a front end passes in.

Apart from ``train`` so that the pack engine and Keras's own ``fit`` path, which ``train``
calls, can use these without importing it back.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnsweep.data import Dataset
from nnsweep.definition import params as _params
from nnsweep.definition.pruning import PRUNED, PackJudge
from nnsweep.definition.sweep import Sweep, Trial
from nnsweep.store._layout import epoch_columns
from nnsweep.store.provenance import this_process


def guess_direction(metric: str) -> str:
    """'max' for accuracy-like metrics, 'min' for losses and errors."""
    scores = ("accuracy", "auc", "precision", "recall", "f1")
    return "max" if any(k in metric for k in scores) else "min"


EpochHook = Callable[[Trial, int, dict[str, float]], None]
FallbackHook = Callable[[Sequence[Trial], BaseException], None]


@dataclass
class Outcome:
    """What training gave one trial: its epochs' metrics, test scores and divergence."""

    history: list[dict[str, float]] = field(default_factory=list)
    test: dict[str, float] = field(default_factory=dict)
    diverged: tuple[int, float] | None = None
    n_params: int = 0
    rungs: list[tuple[int, str]] = field(default_factory=list)  # its verdict at each rung
    pruned: str | None = None  # what pruned it (pruning's evidence), at its last epoch
    # Its kept (best or final) weights as its own Keras model lists them, when the run
    # keeps models (``TrainContext.keep_weights``); None otherwise.
    weights: list[np.ndarray] | None = None


@dataclass(frozen=True)
class TrainContext:
    """What every trial of a sweep shares: the sweep, its data loaded once, and settings."""

    sweep: Sweep
    dataset: Dataset
    verbose: bool = False
    debug: bool = False
    worker: str = field(default_factory=this_process)  # runs.jsonl keys its runs by it
    phase: str = "search"  # or "confirm": rows trained on fresh seeds by nnsweep confirm
    # Give each tested trial's weights back in its outcome (``run --keep-models``).
    keep_weights: bool = False
    # Set by the runner on Ctrl-C: packs stop at the next call and nothing half-done is kept.
    stop: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def objective(self) -> tuple[str, str]:
        """(metric column, 'min' or 'max') that picks the best epoch and configuration."""
        default, default_dir = self.dataset.spec.default_objective
        name = self.sweep.objective or default
        direction = self.sweep.direction
        if direction is None:
            direction = default_dir if name == default else guess_direction(name)
        return name, direction

    @property
    def epoch_metrics(self) -> list[str]:
        """Each epoch's metrics: the loss, the task's metric and the sweep's added ones, on
        the training rows and then on the validation rows."""
        return epoch_columns(self.dataset.spec.metric, self.sweep.metrics)

    @property
    def records_learning_rate(self) -> bool:
        """Whether each epoch's learning rate goes into history.csv (``lr_schedule``)."""
        return _params.records_learning_rate(self.sweep.space)

    @property
    def history_keys(self) -> list[str]:
        """What history.csv records of each epoch besides the trial and epoch."""
        return [*self.epoch_metrics, *(["learning_rate"] if self.records_learning_rate else [])]

    def shuffle_seed(self, fold: int) -> int:
        """The seed of the epochs' reshuffling: the split's and the fold's, shared by every
        trial of a fold, so packing cannot change a trial's batches."""
        return (self.sweep.split_seed * 7919 + fold) % 2**32


class EarlyStop:
    """Keras's ``EarlyStopping(patience=p, restore_best_weights=True)`` for one trial of a
    pack: the same rule (min_delta 0, no baseline), epoch by epoch."""

    def __init__(self, patience: int, direction: str) -> None:
        self.patience, self.direction = patience, direction
        self.best: float | None = None
        self.wait = 0

    def update(self, epoch: int, current: float) -> tuple[bool, bool]:
        """After ``epoch`` (0-based) with objective ``current``: (keep these weights as the
        best ones, stop training)."""
        self.wait += 1
        # Keras takes the first value as the best, whatever it is (nan included).
        if self.best is None or (
            current > self.best if self.direction == "max" else current < self.best
        ):
            self.best, self.wait = current, 0
            return True, False
        return False, self.wait >= self.patience and epoch > 0


class Ledger:
    """What each trial of a pack has done, epoch by epoch: its metrics, divergence, early
    stopping, pruning, whether it is done, and whose weights to keep (final, or best)."""

    def __init__(
        self,
        trials: Sequence[Trial],
        metric: str,
        objective: str,
        direction: str,
        on_epoch: EpochHook | None = None,
        judge: PackJudge | None = None,
    ) -> None:
        self.trials, self.metric, self.objective, self.on_epoch = (
            trials,
            metric,
            objective,
            on_epoch,
        )
        self.judge = judge
        self.params = [_params.resolve(t.params, None) for t in trials]
        self.outcomes = [Outcome() for _ in trials]
        self.done = np.zeros(len(trials), bool)
        self.kept = np.zeros(len(trials), bool)  # weights to bring back from a snapshot
        self.stops = {
            t: EarlyStop(p["patience"], direction)
            for t, p in enumerate(self.params)
            if p["patience"] is not None
        }
        self.epochs = max(p["epochs"] for p in self.params)
        # Each trial's learning-rate schedule (``training.schedules``): plateau's rule is
        # told each epoch's objective; and whether the epoch's rate goes into its logs.
        self.schedules: Sequence[Any] | None = None
        self.records_learning_rate = False

    def record(self, epoch: int, train: tuple, val: tuple) -> np.ndarray:
        """Note an epoch's (loss, metric, added metrics by name) per trial, for training and
        validation; return the trials whose weights to copy aside now (final or best)."""
        keep = np.zeros(len(self.trials), bool)
        m = self.metric
        recorded = ~self.done
        for t in map(int, np.flatnonzero(recorded)):
            logs = {"loss": float(train[0][t]), m: float(train[1][t])}
            logs.update({k: float(v[t]) for k, v in train[2].items()})
            logs.update({"val_loss": float(val[0][t]), f"val_{m}": float(val[1][t])})
            logs.update({f"val_{k}": float(v[t]) for k, v in val[2].items()})
            schedule = None if self.schedules is None else self.schedules[t]
            if schedule is not None and self.records_learning_rate:
                logs["learning_rate"] = schedule.epoch_rate(epoch)
            self.outcomes[t].history.append(logs)
            if schedule is not None:
                schedule.observe(logs[self.objective])
            if self.on_epoch is not None:
                self.on_epoch(self.trials[t], epoch + 1, logs)
            if not math.isfinite(logs["loss"]):
                self.outcomes[t].diverged = (epoch + 1, logs["loss"])
                self.done[t] = True
            elif t in self.stops:
                best, stop = self.stops[t].update(epoch, logs[self.objective])
                if best:  # the weights restore_best_weights would bring back
                    keep[t] = self.kept[t] = True
                self.done[t] = stop or epoch + 1 == self.params[t]["epochs"]
            elif epoch + 1 == self.params[t]["epochs"]:
                self.done[t] = keep[t] = self.kept[t] = True
        if self.judge is not None:
            self._prune(epoch + 1, recorded)
        return keep

    def _prune(self, epoch: int, recorded: np.ndarray) -> None:
        """At a rung, stop the live trials whose configuration is lost beyond seed noise;
        a pruned trial stops like one whose early stopping fired (its weights are not kept:
        it is never tested)."""
        assert self.judge is not None
        live = {
            t: self.trials[t].config_id
            for t in map(int, np.flatnonzero(recorded & ~self.done))
            if epoch in self.judge.trial_rungs(self.params[t]["epochs"])
        }
        if not live:
            return
        values = {
            t: (self.trials[t].config_id, self.outcomes[t].history[-1][self.objective])
            for t in map(int, np.flatnonzero(recorded))
            if self.outcomes[t].diverged is None
        }
        for t, verdict in self.judge.judge(epoch, live, values).items():
            self.outcomes[t].rungs.append((epoch, verdict.status))
            if verdict.status == PRUNED:
                self.outcomes[t].pruned = verdict.text
                self.done[t] = True
