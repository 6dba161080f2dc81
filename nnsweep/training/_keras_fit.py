"""One trial through Keras's own ``fit``: the path for Keras backends other than TensorFlow.

The pack engine (``_engine``) is TensorFlow code; on JAX or PyTorch every trial trains
alone here, with Keras's own batching and dropout, so its numbers differ from a
TensorFlow run of the same trial. ``packing`` plans packs of one on these backends and
``nnsweep run`` says so. Imported lazily (it imports Keras).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import keras
import numpy as np

from nnsweep.definition import params as _params
from nnsweep.definition.pruning import PRUNED, PackJudge
from nnsweep.definition.sweep import Trial
from nnsweep.training.context import EpochHook, Outcome, TrainContext
from nnsweep.training.models import (
    build_model,
    keras_metrics,
    loss_function,
    make_optimizer,
    task_loss,
)
from nnsweep.training.schedules import keras_plateau, keras_schedule, trial_schedule
from nnsweep.training.targets import class_weights, n_classes


class _Watch(keras.callbacks.Callback):
    """Reports each epoch, notes the first non-finite loss, honours Ctrl-C, and stops at a
    rung where pruning's judge says the trial's configuration is lost."""

    def __init__(
        self,
        trial: Trial,
        on_epoch: EpochHook | None,
        stop: threading.Event,
        judge: PackJudge | None = None,
        objective: str = "",
        epochs: int = 0,
    ) -> None:
        super().__init__()
        self.trial, self.on_epoch, self.stop = trial, on_epoch, stop
        self.judge, self.objective, self.epochs = judge, objective, epochs
        self.diverged: tuple[int, float] | None = None
        self.rungs: list[tuple[int, str]] = []
        self.pruned: str | None = None
        # The epoch's learning rate for the logs (``lr_schedule`` sweeps), or None.
        self.rate: Any = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.stop.is_set():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.rate is not None and logs is not None:
            logs["learning_rate"] = self.rate(epoch)  # Keras's History records it too
        logs = _plain(logs or {})
        loss = logs.get("loss")
        if self.diverged is None and loss is not None and not math.isfinite(loss):
            self.diverged = (epoch + 1, loss)
        if self.on_epoch is not None:
            self.on_epoch(self.trial, epoch + 1, logs)
        if self.judge is None or self.diverged is not None:
            return
        if epoch + 1 in self.judge.trial_rungs(self.epochs):
            value = logs.get(self.objective, math.nan)
            cid = self.trial.config_id
            verdict = self.judge.judge(epoch + 1, {0: cid}, {0: (cid, value)})[0]
            self.rungs.append((epoch + 1, verdict.status))
            if verdict.status == PRUNED:
                self.pruned = verdict.text
                self.model.stop_training = True


def _plain(logs: dict[str, Any]) -> dict[str, float]:
    """Keras's logs under nnsweep's names: ``loss`` is the data loss, without penalties."""
    out = {}
    for key, value in logs.items():
        if key in ("loss", "val_loss", "weighted_loss", "val_weighted_loss"):
            continue
        out[key.replace("data_loss", "loss")] = float(value)
    if "weighted_loss" in logs:  # class weights: the training loss is weighted, as Keras's
        out["loss"] = float(logs["weighted_loss"])
    return out


def fit_alone(
    keras_module: Any,
    trial: Trial,
    ctx: TrainContext,
    on_epoch: EpochHook | None,
    judge: PackJudge | None = None,
):
    """Train one trial with Keras's ``fit``; its outcome as the pack engine would give it."""
    sweep, spec, data = ctx.sweep, ctx.dataset.spec, ctx.dataset
    p = _params.resolve(trial.params, None)
    keras.utils.set_random_seed(trial.seed)
    model = build_model(sweep.model, trial.params, spec)
    split = data.split(sweep.validation_split, sweep.split_seed, sweep.cv, trial.fold)
    objective, direction = ctx.objective
    base = float(make_optimizer(trial.params).learning_rate)  # the trial's, or Keras's default
    schedule = trial_schedule(trial.params, base, len(split.fit_idx), direction)
    weights = class_weights(p["class_weight"], data.y_train[split.fit_idx], n_classes(spec))
    # The data loss as a metric (Keras's loss without penalties); with class weights, also
    # weighted as Keras's training loss is (validation stays unweighted).
    metrics = [spec.metric, *keras_metrics(sweep.metrics, spec)]
    metrics.append(keras.metrics.MeanMetricWrapper(loss_function(p, spec), "data_loss"))
    if weights:
        metrics.append(
            keras.metrics.MeanMetricWrapper(loss_function(p, spec, weights), "weighted_loss")
        )
    model.compile(
        optimizer=make_optimizer(trial.params, keras_schedule(schedule)),
        loss=task_loss(trial.params, spec),
        metrics=metrics,
    )
    watch = _Watch(trial, on_epoch, ctx.stop, judge, objective, p["epochs"])
    if ctx.records_learning_rate:
        # Before ReduceLROnPlateau lowers it: the rate the epoch trained with.
        watch.rate = (
            (lambda e: float(model.optimizer.learning_rate))
            if schedule.kind == "plateau"
            else schedule.epoch_rate
        )
    callbacks: list[Any] = [watch]
    if schedule.kind == "plateau":
        callbacks.append(keras_plateau(schedule, objective))
    if p["patience"] is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=objective, mode=direction, patience=p["patience"], restore_best_weights=True
            )
        )
    y = data.y_train if spec.task == "multiclass" else data.y_train[:, None]
    history = model.fit(
        data.x_train[split.fit_idx],
        y[split.fit_idx],
        validation_data=(data.x_train[split.val_idx], y[split.val_idx]),
        batch_size=p["batch_size"],
        epochs=p["epochs"],
        class_weight=weights,
        shuffle=True,
        verbose=2 if ctx.verbose else 0,
        callbacks=callbacks,
    ).history
    epochs = len(history.get("loss", []))
    outcome = Outcome(
        history=[_plain({k: v[i] for k, v in history.items()}) for i in range(epochs)],
        diverged=watch.diverged,
        n_params=model.count_params(),
        rungs=watch.rungs,
        pruned=watch.pruned,
    )
    if (
        watch.diverged is None
        and watch.pruned is None
        and data.x_test is not None
        and data.y_test is not None
    ):
        y_test = data.y_test if spec.task == "multiclass" else data.y_test[:, None]
        scores = _plain(model.evaluate(data.x_test, y_test, verbose=0, return_dict=True))
        names = ["loss", spec.metric, *sweep.metrics]
        outcome.test = {k: scores[k] for k in names}
    if ctx.keep_weights and watch.diverged is None and watch.pruned is None:
        outcome.weights = [np.array(w) for w in model.get_weights()]
    return outcome
